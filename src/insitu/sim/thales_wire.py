"""Term's TCP framing, server side: the registration handshake and the telegrams after it.

What a client sends first (``thales_remote.connection.ThalesRemoteConnection.connectToTerm``)::

    2 bytes   big-endian length of the connection name
    6 bytes   fixed: 12 D0 FF FF FF FF
    n bytes   the connection name in ASCII ("ScriptRemote", "FileExchange", "Logging", ...)

Every telegram afterwards, in both directions::

    2 bytes   little-endian payload length (so at most 65535 bytes of payload)
    1 byte    message type (see :class:`MessageType`)
    n bytes   payload

The framing is small and fixed, so it is written out here rather than borrowed from a package.
"""

from __future__ import annotations

import socket
import struct
from enum import IntEnum

__all__ = [
    "MAX_PAYLOAD",
    "REGISTRATION_MAGIC",
    "MessageType",
    "PeerClosedError",
    "encode_telegram",
    "read_registration",
    "read_telegram",
]

REGISTRATION_MAGIC = bytes([0x12, 0xD0, 0xFF, 0xFF, 0xFF, 0xFF])
MAX_PAYLOAD = 0xFFFF


class MessageType(IntEnum):
    """Message types of Term telegrams (the values ``thales_remote`` listens on)."""

    SCRIPT = 2  # "1:<command>:<command>:" to Thales' Remote Script, and its reply
    GOODBYE = 4  # FF FF: the client is about to close its socket
    CONTROL = 128  # "<kind>,<connection name>[,...]": heartbeat, version, remote-script control
    FILE_LENGTH = 129  # file exchange: the file length in bytes, as ASCII decimal
    FILE_PATH = 130  # file exchange: the file's full path on the Thales PC
    FILE_DATA = 131  # file exchange: a chunk of the file's bytes
    FILE_CONTROL_REPLY = 132  # file exchange: reply to "automatic file exchange on/off"


class PeerClosedError(ConnectionError):
    """The client closed or reset the connection."""


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except OSError as error:
            raise PeerClosedError(str(error)) from error
        if not chunk:
            raise PeerClosedError("connection closed by the client")
        data += chunk
    return bytes(data)


def read_registration(sock: socket.socket) -> str:
    """Read the registration a client sends right after connecting and return its name.

    Raises
    ------
    PeerClosedError
        If the connection ends before the registration is complete.
    ValueError
        If the six fixed bytes are not the ones ``thales_remote`` sends.
    """
    (length,) = struct.unpack(">H", _read_exactly(sock, 2))
    magic = _read_exactly(sock, len(REGISTRATION_MAGIC))
    if magic != REGISTRATION_MAGIC:
        raise ValueError(f"Term registration: unexpected header bytes {magic.hex(' ')}")
    return _read_exactly(sock, length).decode("ascii")


def read_telegram(sock: socket.socket) -> tuple[int, bytes]:
    """Read one telegram and return ``(message type, payload)``.

    Raises
    ------
    PeerClosedError
        If the connection ends, also in the middle of a telegram.
    """
    (length,) = struct.unpack("<H", _read_exactly(sock, 2))
    (message_type,) = _read_exactly(sock, 1)
    return message_type, _read_exactly(sock, length)


def encode_telegram(message_type: int, payload: bytes | str) -> bytes:
    """Frame ``payload`` (str is sent as ASCII) as one telegram of ``message_type``.

    Raises
    ------
    ValueError
        If the payload is longer than the 16-bit length field allows.
    """
    data = payload.encode("ascii") if isinstance(payload, str) else bytes(payload)
    if len(data) > MAX_PAYLOAD:
        raise ValueError(f"Term telegram payload of {len(data)} bytes exceeds {MAX_PAYLOAD}")
    return struct.pack("<HB", len(data), message_type) + data
