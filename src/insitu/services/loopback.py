"""Which listening addresses stay on this machine: services bind loopback unless secured.

A 0MQ control socket moves a heating stage and runs code in the queue's worker; a document
proxy carries measured data. Bound beyond loopback without CurveZMQ keys, anyone who reaches
the port has them, so the services refuse such an address with the way to do it safely.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["host_of", "is_loopback", "require_loopback"]


def host_of(address: str) -> str:
    """The host of ``tcp://HOST:PORT``, ``HOST:PORT`` or ``[V6]:PORT``."""
    rest = re.sub(r"^[a-z]+://", "", address.strip())
    bracketed = re.fullmatch(r"\[([^\]]+)\](:\d+)?", rest)
    if bracketed:
        return bracketed.group(1)
    return rest.rsplit(":", 1)[0] if re.search(r":\d+$", rest) else rest


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1; False for wildcards and anything else."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def require_loopback(address: str, what: str, *, secured: bool = False, how: str = "") -> None:
    """Refuse a listening ``address`` beyond loopback unless ``secured`` (keys configured).

    Raises
    ------
    ValueError
        Naming the address, the service and how to expose it safely.
    """
    host = host_of(address)
    if secured or is_loopback(host):
        return
    raise ValueError(
        f"{what} {address} would listen beyond this machine (host {host!r}) without "
        f"encryption keys: anyone who reaches it could use it. Bind 127.0.0.1 and reach it "
        f"over SSH (ssh -L), or {how}"
    )
