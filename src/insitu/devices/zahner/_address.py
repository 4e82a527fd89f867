"""Where Term listens: "host", "host:port" or "TCPIP::host::port::SOCKET" (port 260 by default)."""

from __future__ import annotations

import re

__all__ = ["TERM_PORT", "parse_term_address"]

#: Term's fixed TCP port (the one thales_remote connects to).
TERM_PORT = 260

_VISA_SOCKET = re.compile(r"^TCPIP\d*::(?P<host>[^:]+)::(?P<port>\d+)::SOCKET$", re.IGNORECASE)
_HOST_PORT = re.compile(r"^(?P<host>[^:\s]+)(?::(?P<port>\d+))?$")


def parse_term_address(address: str) -> tuple[str, int]:
    """Split a Term address into ``(host, port)``.

    Parameters
    ----------
    address : str
        ``"192.168.2.66"``, ``"localhost:5260"`` or ``"TCPIP::127.0.0.1::260::SOCKET"``.

    Raises
    ------
    ValueError
        If the address has none of these forms or the port is not in 1-65535.
    """
    text = str(address).strip()
    match = _VISA_SOCKET.match(text) or _HOST_PORT.match(text)
    if match is None:
        raise ValueError(
            f"Zahner Term address {address!r} is not 'host', 'host:port' or "
            "'TCPIP::host::port::SOCKET'"
        )
    port = int(match.group("port") or TERM_PORT)
    if not 1 <= port <= 65535:
        raise ValueError(f"Zahner Term address {address!r}: port {port} is not in 1-65535")
    return match.group("host"), port
