"""Recording far ends for real devices: they record what would go to the instruments.

A real ``LinkamT95`` on :class:`RecordingT95`, a real ``RamanSpectrometer`` on
:class:`RecordingRamanBackend` and a real ``ZahnerEIS`` pointed at :class:`ConnectionCounter`
show whether anything reached the wire.
"""

from __future__ import annotations

import socket
import threading

import numpy as np

__all__ = ["ConnectionCounter", "RecordingRamanBackend", "RecordingT95"]

_STATUS_25C = b"\x01\x80\x80\x80\x80\x8000FA"  # stopped, no error, 25.0 C


class RecordingT95:
    """A transport that answers ``T`` like a T95 at 25 C and records every other command.

    Attributes
    ----------
    commands : list of bytes
        Every write but ``T``, in order (empty replies are queued for them).
    """

    address = "recording-t95"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: list[bytes] = []
        self.commands: list[bytes] = []

    def write(self, data: bytes | str) -> None:
        """Record ``data`` unless it is ``T``; queue its reply."""
        payload = data.encode("latin-1") if isinstance(data, str) else bytes(data)
        with self._lock:
            if payload != b"T":
                self.commands.append(payload)
            self._replies.append(_STATUS_25C if payload == b"T" else b"")

    def read_line(self) -> bytes:
        """The next queued reply."""
        with self._lock:
            return self._replies.pop(0)

    def discard_input(self) -> None:
        """Drop the queued replies."""
        with self._lock:
            self._replies.clear()

    def close(self) -> None:
        """Nothing to close."""


class RecordingRamanBackend:
    """A Raman backend that records configure/acquire and returns a small flat spectrum.

    Attributes
    ----------
    calls : list of tuple
        ``("configure", exposure_s, accumulations, laser_power_mW)`` and ``("acquire",)``, in
        order.
    """

    laser_wavelength_nm = 532.0

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def configure(self, exposure_s: float, accumulations: int, laser_power_mW: float) -> None:
        """Record the settings."""
        self.calls.append(("configure", exposure_s, accumulations, laser_power_mW))

    def acquire(self) -> tuple[np.ndarray, np.ndarray]:
        """Record the call; return 8 points of ones from 100 to 900 cm-1."""
        self.calls.append(("acquire",))
        return np.linspace(100.0, 900.0, 8), np.ones(8)

    def close(self) -> None:
        """Nothing to close."""


class ConnectionCounter:
    """A loopback TCP listener that counts (and drops) every connection made to it.

    Attributes
    ----------
    port : int
        The port it listens on, at 127.0.0.1.
    count : int
        How many connections were made to it so far.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.count = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.count += 1
            connection.close()

    def close(self) -> None:
        """Stop listening."""
        self.server.close()
