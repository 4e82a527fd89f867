"""A TCP byte stream with CRLF-terminated replies, and VISA-style socket addresses."""

from __future__ import annotations

import re
import socket
import time
from typing import Protocol

__all__ = ["ByteStream", "SocketStream", "parse_socket_address"]


class ByteStream(Protocol):
    """A connected byte stream: what the client needs from a transport."""

    def send(self, data: bytes) -> None:
        """Send ``data`` at once (one message, no terminator added)."""
        ...

    def read_line(self, timeout_s: float) -> bytes:
        """Return the next ``\\r\\n``-terminated line without its terminator."""
        ...

    def close(self) -> None:
        """Close the stream."""
        ...


class SocketStream:
    """A TCP connection to LabSpec's remote server.

    Parameters
    ----------
    host, port : str, int
        Server address.
    connect_timeout_s : float
        Wall-time limit to open the connection.

    Raises
    ------
    ConnectionError
        If the connection cannot be opened.
    """

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 5.0) -> None:
        self.address = f"{host}:{port}"
        try:
            self._sock = socket.create_connection((host, int(port)), timeout=connect_timeout_s)
        except OSError as exc:
            raise ConnectionError(f"labspec6 cannot connect to {self.address}: {exc}") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def send(self, data: bytes) -> None:
        """Send ``data`` in one piece."""
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ConnectionError(f"labspec6 lost the connection to {self.address}: {exc}") from exc

    def read_line(self, timeout_s: float) -> bytes:
        """Next ``\\r\\n`` line (wall-time ``timeout_s``), without the terminator.

        Raises
        ------
        TimeoutError
            If no complete line arrives in time.
        ConnectionError
            If the server closes the connection.
        """
        deadline = time.monotonic() + timeout_s  # wall time: a network round trip
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"labspec6 got no reply from {self.address} in {timeout_s} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise ConnectionError(
                    f"labspec6 lost the connection to {self.address}: {exc}"
                ) from exc
            if not chunk:
                raise ConnectionError(f"labspec6 server at {self.address} closed the connection")
            self._buffer += chunk

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


def parse_socket_address(address: str) -> tuple[str, int]:
    """``TCPIP::host::port::SOCKET`` (VISA style) or ``host:port`` -> ``(host, port)``.

    Raises
    ------
    ValueError
        If the address is in neither form.
    """
    visa = re.fullmatch(r"TCPIP\d*::([^:]+)::(\d+)::SOCKET", address.strip(), re.IGNORECASE)
    plain = re.fullmatch(r"([^:\s]+):(\d+)", address.strip())
    match = visa or plain
    if match is None:
        raise ValueError(
            f"labspec6 address {address!r} is neither 'TCPIP::host::port::SOCKET' nor 'host:port'"
        )
    port = int(match.group(2))
    if not 0 < port < 65536:
        raise ValueError(f"labspec6 address {address!r}: port {port} is outside 1 to 65535")
    return match.group(1), port
