"""Open a line-oriented byte transport to an instrument from one VISA address string.

pyvisa with the pyvisa-py backend does the serial and TCP work; this module only adds what every
driver here needs on top: raw-byte lines (replies may hold bytes >= 0x80), errors that name the
address, and a distinction between "no reply" and "the connection is gone".
"""

from __future__ import annotations

import os
import socket
from typing import Protocol, runtime_checkable

import pyvisa
import pyvisa.constants
import pyvisa.errors

__all__ = [
    "Transport",
    "TransportAddressError",
    "TransportConnectionError",
    "TransportError",
    "TransportTimeout",
    "VisaTransport",
    "open_transport",
]


class TransportError(Exception):
    """Base class of every transport failure."""


class TransportTimeout(TransportError, TimeoutError):  # noqa: N818 - like socket.timeout
    """No complete line arrived within the timeout."""


class TransportConnectionError(TransportError, ConnectionError):
    """The connection is closed, reset or otherwise unusable."""


class TransportAddressError(TransportError, ValueError):
    """The address is malformed or names nothing that can be opened."""


@runtime_checkable
class Transport(Protocol):
    """What a driver needs from a transport: framed writes and raw-byte line reads."""

    address: str

    def write(self, data: bytes | str) -> None:
        """Send ``data`` followed by the write termination."""

    def read_line(self) -> bytes:
        """Return the raw bytes of the next line, without the read termination."""

    def discard_input(self) -> None:
        """Drop whatever has been received but not read yet."""

    def close(self) -> None:
        """Release the connection; further use raises TransportConnectionError."""


class VisaTransport:
    """A line transport over an open pyvisa message-based resource.

    Build it with :func:`open_transport`. Not thread-safe: a driver serialises access.
    """

    def __init__(
        self,
        address: str,
        manager: pyvisa.ResourceManager,
        resource: pyvisa.resources.MessageBasedResource,
        *,
        timeout: float,
        read_termination: str,
        write_termination: str,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._manager = manager
        self._resource = resource
        self._read_termination = read_termination.encode("latin-1")
        self._write_termination = write_termination.encode("latin-1")
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<VisaTransport {self.address!r} ({state})>"

    def write(self, data: bytes | str) -> None:
        """Send ``data`` (str is encoded as latin-1) followed by the write termination.

        Raises
        ------
        TransportConnectionError
            If the transport is closed or the operating system reports the link is gone.
        """
        payload = data.encode("latin-1") if isinstance(data, str) else bytes(data)
        self._check_open()
        try:
            self._resource.write_raw(payload + self._write_termination)
        except pyvisa.errors.VisaIOError as exc:
            raise TransportConnectionError(f"write to {self.address} failed: {exc}") from exc
        except OSError as exc:
            raise TransportConnectionError(f"write to {self.address} failed: {exc}") from exc

    def read_line(self) -> bytes:
        """Return the next line as raw bytes, without the read termination.

        Raises
        ------
        TransportTimeout
            If no complete line arrived within ``timeout`` seconds (wall time).
        TransportConnectionError
            If the link is gone (for TCP: the peer closed the connection).
        """
        self._check_open()
        try:
            line = self._resource.read_raw()
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code != pyvisa.constants.StatusCode.error_timeout:
                raise TransportConnectionError(f"read from {self.address} failed: {exc}") from exc
            if self._peer_closed():
                raise TransportConnectionError(
                    f"{self.address}: the connection was closed by the other end"
                ) from exc
            raise TransportTimeout(
                f"{self.address}: no complete reply within {self.timeout:g} s"
            ) from exc
        except OSError as exc:
            raise TransportConnectionError(f"read from {self.address} failed: {exc}") from exc
        if line.endswith(self._read_termination):
            line = line[: -len(self._read_termination)]
        return line

    def discard_input(self) -> None:
        """Drop received but unread bytes (stale replies after a timeout or garbage)."""
        self._check_open()
        try:
            self._resource.flush(pyvisa.constants.BufferOperation.discard_read_buffer)
        except (pyvisa.errors.VisaIOError, OSError) as exc:
            raise TransportConnectionError(f"flushing {self.address} failed: {exc}") from exc

    def close(self) -> None:
        """Close the resource and its resource manager. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            self._resource.close()
        finally:
            self._manager.close()

    def _check_open(self) -> None:
        if self._closed:
            raise TransportConnectionError(f"{self.address}: the transport is closed")

    def _peer_closed(self) -> bool:
        """True if this is a TCP socket whose peer has closed the connection.

        pyvisa-py reports a closed peer as a read timeout; peeking at its socket tells the two
        apart, so a dropped serial-to-TCP adapter is not mistaken for a silent instrument.
        """
        sock = _socket_of(self._resource)
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


def _socket_of(resource: pyvisa.resources.MessageBasedResource) -> socket.socket | None:
    """The socket under a pyvisa-py TCPIP SOCKET session, or None for anything else."""
    sessions = getattr(resource.visalib, "sessions", None)
    session = sessions.get(resource.session) if isinstance(sessions, dict) else None
    interface = getattr(session, "interface", None)
    return interface if isinstance(interface, socket.socket) else None


def open_transport(
    address: str,
    *,
    baud_rate: int = 19200,
    timeout: float = 1.0,
    read_termination: str = "\r",
    write_termination: str = "\r",
) -> VisaTransport:
    """Open a VISA resource string as a line transport through pyvisa-py.

    Parameters
    ----------
    address : str
        A VISA resource string: ``ASRL/dev/ttyUSB0::INSTR`` or ``ASRL/dev/pts/5::INSTR`` for a
        serial port (8 data bits, no parity, 1 stop bit) or ``TCPIP::127.0.0.1::4001::SOCKET``
        for a raw TCP byte stream (serial-to-TCP adapters, emulators, TCP instruments).
        pyvisa-py hands the ASRL board to pyserial, so a pyserial URL works there too:
        ``ASRLsocket://host:4001::INSTR`` (tested); ``rfc2217://`` should, untested.
    baud_rate : int, optional
        Serial baud rate; ignored for TCP.
    timeout : float, optional
        Wall seconds to wait for a complete reply line (and for a TCP connect).
    read_termination, write_termination : str, optional
        Line terminators (a carriage return by default).

    Returns
    -------
    VisaTransport
        An open transport; close it with ``close()``.

    Raises
    ------
    TransportAddressError
        If the address is malformed, names a port that does not exist, or nobody listens there.
    """
    if not isinstance(address, str) or not address.strip():
        raise TransportAddressError(f"transport address {address!r} is not a VISA resource string")
    if not (timeout > 0):
        raise ValueError(f"transport timeout {timeout!r} s for {address} must be positive")
    options: dict[str, object] = {
        "timeout": round(timeout * 1000),
        "open_timeout": round(timeout * 1000),
        "read_termination": read_termination,
        "write_termination": write_termination,
    }
    is_serial = address.upper().startswith("ASRL")
    if is_serial:
        options.update(
            baud_rate=baud_rate,
            data_bits=8,
            parity=pyvisa.constants.Parity.none,
            stop_bits=pyvisa.constants.StopBits.one,
        )
    manager = pyvisa.ResourceManager("@py")
    try:
        resource = manager.open_resource(address, **options)
        if not isinstance(resource, pyvisa.resources.MessageBasedResource):
            resource.close()
            raise TransportAddressError(
                f"{address} is not a message-based resource (serial port or TCP socket)"
            )
        _check_connected(address, resource)
    except TransportAddressError:
        manager.close()
        raise
    except (pyvisa.errors.Error, ValueError, OSError) as exc:
        manager.close()
        raise TransportAddressError(f"cannot open instrument address {address}: {exc}") from exc
    return VisaTransport(
        address,
        manager,
        resource,
        timeout=timeout,
        read_termination=read_termination,
        write_termination=write_termination,
    )


def _check_connected(address: str, resource: pyvisa.resources.MessageBasedResource) -> None:
    """Raise if a TCP connect was refused: pyvisa-py only notices at the first write."""
    sock = _socket_of(resource)
    if sock is None:
        return
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        resource.close()
        raise TransportAddressError(
            f"cannot open instrument address {address}: connection failed ({os.strerror(error)})"
        )
