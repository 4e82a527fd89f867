"""``insitu serve queue`` in a subprocess, driven from Python: scripts, benchmarks and tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from insitu.services.queue_server import DEFAULT_ZMQ_CONTROL, manager_api

__all__ = ["QueueService"]


class QueueService:
    """``insitu serve queue`` in a subprocess: for scripts, benchmarks and tests.

    Parameters
    ----------
    config : path
        The station's beamline YAML.
    log_path : path
        Where the service's output goes (appended to on each start).
    **options
        ``redis``, ``redis_prefix``, ``zmq_control``, ``zmq_info``, ``state_dir``,
        ``startup_dir`` as for :func:`serve_queue`; the environment is always opened.
    """

    READY = "insitu serve queue: environment open"

    def __init__(self, config: str | os.PathLike, log_path: str | os.PathLike, **options) -> None:
        self.config = Path(config)
        self.log_path = Path(log_path)
        self.zmq_control = options.get("zmq_control", DEFAULT_ZMQ_CONTROL)
        self.options = options
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The ``insitu serve queue`` command line."""
        command = [sys.executable, "-m", "insitu.cli", "serve", "queue", "--open"]
        command += ["--config", str(self.config)]
        for name, value in self.options.items():
            if value is not None:
                command += [f"--{name.replace('_', '-')}", str(value)]
        return command

    def start(self, timeout: float = 300.0) -> None:
        """Start the service and wait until its environment is open."""
        if self.process is not None and self.process.poll() is None:
            return
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while self.READY not in self.log_text(offset):
            if self.process.poll() is not None or time.monotonic() > deadline:
                text = self.log_text(offset)
                self.kill()
                raise RuntimeError(f"insitu serve queue did not get ready:\n{text[-4000:]}")
            time.sleep(0.2)

    def stop(self, timeout: float = 120.0) -> int:
        """Stop it as Ctrl-C does (in order); return its exit code."""
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        return process.returncode

    def kill(self) -> None:
        """Kill the service, its manager and worker at once (a crash, a power cut)."""
        process, self.process = self.process, None
        if process is None:
            return
        # The manager runs in its own process group (see serve_queue): kill both groups.
        groups = [process.pid] + [
            int(pid) for pid in re.findall(r"manager pid (\d+)", self.log_text())[-1:]
        ]
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(10)

    def api(self, timeout: float = 10.0):
        """Context manager: a ``REManagerAPI`` on the service's control address."""
        return manager_api(self.zmq_control, timeout=timeout)

    def log_text(self, offset: int = 0) -> str:
        """What the service printed so far (from byte ``offset`` of its log)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[offset:].decode(errors="replace")
