"""Out-of-process stage guard: a real stage is made safe even when the beamline's process can't.

The watchdog and the safe exit are threads and handlers of the beamline's own process: a
SIGKILL, an OOM kill, a SIGSTOP, a hard crash or a hang leaves them nothing to run on, and the
controller keeps its last program (heating). :class:`StageGuard` starts a small process
(:mod:`insitu.beamline.stage_guard_process`, in a session of its own so a terminal's signals
do not reach it) that receives a heartbeat over a pipe while the stage's poller is alive. When
the heartbeats stop it ends the stopped or hung process if it must, connects to the stage and
puts it in the beamline's safe state, within the stall timeout plus a few seconds. A clean
close, or a safe exit that reached the stage, tells it to stand down.

Only real stages get a guard: a simulated stage lives and dies with its process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["StageGuard"]

logger = logging.getLogger(__name__)

#: Heartbeats per stall timeout (a late beat or two never trips the guard).
_BEATS_PER_TIMEOUT = 4
_STAND_DOWN_WAIT_S = 5.0


class StageGuard:
    """Start and feed the guard process of one stage.

    Parameters
    ----------
    address : str
        The stage's VISA address (the guard opens it once the beamline's process is gone).
    stage_model : str
        ``"TS1500"`` or ``"HFS600E"``.
    safe_state : {"stop", "hold"}
        What the guard sends: heater off (``E``) or hold (``O``).
    stall_timeout_s : float
        Wall seconds without a heartbeat after which the guard acts.
    alive : callable
        ``alive() -> bool``, asked before each heartbeat: False (the stage's poller has not
        moved for the stall timeout, say) withholds it.
    pid : int, optional
        The process the guard ends if it stops answering: this one by default.
    """

    def __init__(
        self,
        address: str,
        *,
        stage_model: str,
        safe_state: str,
        stall_timeout_s: float,
        alive: Callable[[], bool],
        pid: int | None = None,
    ) -> None:
        if safe_state not in ("stop", "hold"):
            raise ValueError(f"stage guard safe_state {safe_state!r} is neither 'stop' nor 'hold'")
        if not (stall_timeout_s > 0):
            raise ValueError(f"stage guard stall_timeout_s {stall_timeout_s!r} must be > 0")
        self.address = address
        self.stage_model = stage_model
        self.safe_state = safe_state
        self.stall_timeout_s = float(stall_timeout_s)
        self._alive = alive
        self.guarded_pid = os.getpid() if pid is None else int(pid)
        self._process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The guard process's pid (None before ``start``)."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the guard process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> StageGuard:
        """Start the guard process and the heartbeat thread."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "insitu.beamline.stage_guard_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        settings = {
            "address": self.address,
            "stage_model": self.stage_model,
            "safe_state": self.safe_state,
            "stall_timeout_s": self.stall_timeout_s,
            "pid": self.guarded_pid,
        }
        self._send(json.dumps(settings))
        self._thread = threading.Thread(
            target=self._beat, name="stage-guard-heartbeat", daemon=True
        )
        self._thread.start()
        return self

    def _send(self, line: str) -> bool:
        process = self._process
        if process is None or process.stdin is None:
            return False
        with self._write_lock:
            try:
                process.stdin.write(line.encode() + b"\n")
                process.stdin.flush()
                return True
            except (BrokenPipeError, ValueError, OSError):
                return False

    def _beat(self) -> None:
        period = max(self.stall_timeout_s / _BEATS_PER_TIMEOUT, 0.05)
        warned = False
        while not self._stopping.wait(period):
            if not self._alive():
                continue
            if not self._send("beat") and not warned and not self._stopping.is_set():
                logger.error(
                    "the stage guard process (pid %s) is gone: a crash of this process would "
                    "now leave the stage at %s in its last program",
                    self.pid,
                    self.address,
                )
                warned = True

    def stand_down(self) -> None:
        """Tell the guard the stage is safe (or closed on purpose) and let it exit."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        process = self._process
        if process is None:
            return
        self._send("bye")
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass
        deadline = time.monotonic() + _STAND_DOWN_WAIT_S
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            process.kill()
            process.wait()
