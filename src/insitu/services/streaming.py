"""Stream a beamline's documents over 0MQ with bluesky's ``Publisher`` and ``bluesky-0MQ-proxy``.

The bluesky 0MQ pattern, used as is: the RunEngine's documents go to a
:class:`bluesky.callbacks.zmq.Publisher` (PUB, connects), through a proxy (``bluesky-0MQ-proxy``,
binds an in-port and an out-port), to any number of
:class:`bluesky.callbacks.zmq.RemoteDispatcher` consumers (SUB, connect) in other processes or
on other machines, e.g. ``insitu serve analysis``::

    bluesky-0MQ-proxy --in-address tcp://127.0.0.1:5577 --out-address tcp://127.0.0.1:5578
    TILED_API_KEY=... insitu serve analysis --zmq 127.0.0.1:5578 --catalog http://catalog:8000
    # in the beamline session:
    attach_publisher(beamline, "127.0.0.1:5577")

0MQ PUB/SUB drops what is sent before a subscriber's connection is up (the "slow joiner"): start
the proxy and the consumers before the runs they should see, and give a fresh connection a few
hundred milliseconds (:data:`CONNECT_SETTLE_S`) before the first run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insitu.beamline.publisher import CONNECT_SETTLE_S, attach_publisher, parse_zmq_address
from insitu.services.loopback import require_loopback

__all__ = [
    "CONNECT_SETTLE_S",
    "ProxyProcess",
    "attach_publisher",
    "parse_zmq_address",
    "start_proxy",
]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class ProxyProcess:
    """A running ``bluesky-0MQ-proxy``: publishers connect to ``in_address``, consumers to
    ``out_address`` (both ``HOST:PORT``)."""

    process: subprocess.Popen
    in_address: str
    out_address: str
    _log: Any = field(default=None, repr=False)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the proxy process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_proxy(
    in_port: int | None = None,
    out_port: int | None = None,
    *,
    host: str = "127.0.0.1",
    log_path: str | Path | None = None,
    timeout: float = 20.0,
) -> ProxyProcess:
    """Start bluesky's ``bluesky-0MQ-proxy`` in a child process and wait until it listens.

    Parameters
    ----------
    in_port, out_port : int, optional
        Ports to bind (default: free ports picked now).
    host : str
        Interface to bind: loopback only (the proxy started here has no keys; anything else
        raises ``ValueError``).
    log_path : path, optional
        File for the proxy's output (default: discarded).
    timeout : float
        Seconds to wait for both ports to accept connections.

    Raises
    ------
    RuntimeError
        If the proxy exits or does not listen within ``timeout``.
    """
    require_loopback(
        f"{host}:{in_port or 0}",
        "start_proxy host",
        how="run bluesky-0MQ-proxy yourself with its --in-curve-secret/--out-curve-secret keys",
    )
    command = shutil.which("bluesky-0MQ-proxy", path=str(Path(sys.executable).parent))
    command = command or shutil.which("bluesky-0MQ-proxy")
    if command is None:
        raise RuntimeError("bluesky-0MQ-proxy is not installed (it comes with bluesky)")
    ports = [in_port or _free_port(host), out_port or _free_port(host)]
    for name, port in zip(("in_port", "out_port"), ports, strict=True):
        if not (1 <= port <= 65535):
            raise ValueError(f"start_proxy {name} {port} is outside 1-65535")
    log = open(log_path, "w") if log_path is not None else None  # noqa: SIM115 (closed by close)
    process = subprocess.Popen(
        [
            command,
            "--in-address",
            f"tcp://{host}:{ports[0]}",
            "--out-address",
            f"tcp://{host}:{ports[1]}",
        ],
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    proxy = ProxyProcess(process, f"{host}:{ports[0]}", f"{host}:{ports[1]}", log)
    deadline = time.monotonic() + timeout
    while not all(_accepts(host, port) for port in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            proxy.close()
            raise RuntimeError(
                f"bluesky-0MQ-proxy on {host}:{ports[0]}->{ports[1]} did not start "
                f"(exit code {process.returncode}) within {timeout} s"
            )
        time.sleep(0.05)
    return proxy
