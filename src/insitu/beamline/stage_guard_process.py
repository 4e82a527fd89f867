"""The stage guard's own process: heartbeats in, the stage made safe when they stop.

Run as ``python -m insitu.beamline.stage_guard_process`` by
:class:`insitu.beamline.stage_guard.StageGuard`, never by hand. The first line on stdin is the
settings (JSON: stage address and model, the beamline's pid, stall timeout, safe state); then
``beat`` lines. What it does on each ending:

- ``bye``: the beamline closed, or its safe exit already made the stage safe: exit, touch
  nothing.
- end of input: the beamline's process is gone (SIGKILL, OOM kill, a crash): make the stage safe.
- no heartbeat for the stall timeout: the process is stopped (SIGSTOP) or hung; it still holds
  the stage's port, so end it (SIGKILL), then make the stage safe.

"Safe" is the beamline's safe state: ``E`` (heater off) or ``O`` (hold), sent over a fresh
connection, retried for :data:`TAKEOVER_S` seconds while the old connection is torn down.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

__all__ = ["main", "TAKEOVER_S"]

#: Wall seconds the guard keeps trying to reach the stage once it has to act.
TAKEOVER_S = 10.0
#: Wall seconds a killed process gets to be gone before the guard goes on regardless.
_END_WAIT_S = 5.0


def _say(message: str) -> None:
    try:
        print(f"insitu stage guard: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # the terminal or log it wrote to is gone: act regardless
        pass


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not: it holds no port any more)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class LineReader:
    """Lines from a pipe's file descriptor, each with a timeout.

    Unbuffered on purpose: a buffered ``sys.stdin`` reads ahead, and heartbeats (or the
    ``bye``) it swallowed would never be seen by ``select``.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pending = b""
        self._lines: list[bytes] = []

    def next_line(self, timeout: float | None) -> bytes | None:
        """The next line (without its newline); ``None`` on timeout; ``b"\0"`` at the end."""
        while not self._lines:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return b"\0"
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            self._lines += [line.strip() for line in lines]
        return self._lines.pop(0)


def watch(lines: LineReader, stall_timeout_s: float) -> str:
    """Read heartbeats until the beamline says ``bye`` (returns ``"bye"``), its end of the
    pipe closes (``"process ended"``) or nothing comes for ``stall_timeout_s`` (``"no
    heartbeat"``)."""
    while True:
        line = lines.next_line(stall_timeout_s)
        if line is None:
            return "no heartbeat"
        if line == b"\0":
            return "process ended"
        if line == b"bye":
            return "bye"


def end_process(pid: int) -> None:
    """SIGKILL a stopped or hung beamline process and wait (briefly) until it is gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + _END_WAIT_S
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def take_the_stage(address: str, deadline: float):
    """The stage's instrument lock, once the ended process has let go of it (the kernel drops
    it with the process); ``None`` if a new session took the stage first, which then guards it
    itself and must not be switched off by this guard."""
    from insitu.beamline.instrument_lock import InstrumentInUseError, InstrumentLock

    while True:
        try:
            return InstrumentLock.for_instrument("stage", address).acquire()
        except InstrumentInUseError as exc:
            if time.monotonic() > deadline:
                _say(f"the stage is held by another session; leaving it alone ({exc})")
                return None
            time.sleep(0.05)


def make_safe(address: str, stage_model: str, safe_state: str) -> bool:
    """Send the safe command over a fresh connection, retrying for :data:`TAKEOVER_S`.

    The guard holds the stage's instrument lock meanwhile, so a session loaded at that moment
    is told the stage is in use (by this guard) instead of racing it for the controller.
    """
    deadline = time.monotonic() + TAKEOVER_S
    lock = take_the_stage(address, time.monotonic() + _END_WAIT_S)
    if lock is None:
        return False
    try:
        return _send_safe_state(address, stage_model, safe_state, deadline)
    finally:
        lock.release()


def _send_safe_state(address: str, stage_model: str, safe_state: str, deadline: float) -> bool:
    from insitu.devices.linkam import LinkamT95

    while True:
        try:
            with LinkamT95(
                address, stage_model=stage_model, timeout=1.0, name="stage guard"
            ) as driver:
                if safe_state == "stop":
                    driver.stop()
                else:
                    driver.hold()
                reading = driver.status(check_errors=False)
            _say(f"stage at {address} put in its safe state ({safe_state}): {reading.status.name}")
            return True
        except Exception as exc:  # a port not yet released, a controller busy: try again
            if time.monotonic() > deadline:
                _say(f"could not reach the stage at {address} within {TAKEOVER_S} s: {exc}")
                return False
            time.sleep(0.3)


def main() -> int:
    """Guard one stage for one beamline process (see the module doc)."""
    lines = LineReader(sys.stdin.fileno())
    first = lines.next_line(None)
    if first in (None, b"\0"):
        return 0  # the beamline went before it said what to guard
    settings = json.loads(first)
    pid = int(settings["pid"])
    why = watch(lines, float(settings["stall_timeout_s"]))
    if why == "bye":
        return 0
    if why == "no heartbeat" and process_alive(pid):
        _say(f"no heartbeat from process {pid} for {settings['stall_timeout_s']} s: ending it")
        end_process(pid)
    else:
        _say(f"process {pid} ended without closing its beamline")
    return (
        0 if make_safe(settings["address"], settings["stage_model"], settings["safe_state"]) else 1
    )


if __name__ == "__main__":
    # The guard outlives the session that started it: a terminal's SIGHUP or SIGINT is not for it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(main())
