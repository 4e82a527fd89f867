"""thales_remote: ThalesRemoteConnection's private port, socket, receiver; no public API has them.

``ThalesRemoteConnection`` connects to the port in its private ``_term_port`` (fixed at 260 in
its constructor, no parameter), and its only way to close is ``disconnectFromTerm``, a goodbye
that hangs or raises before closing anything on a dead link. The Zahner session
(:mod:`insitu.devices.zahner._session`) therefore reaches, only through this module:

* ``_term_port``: :func:`set_term_port` (before ``connectToTerm``);
* ``_socket_handle``, the connected socket: :func:`thales_socket` (to shut it down, which wakes
  the receiver thread blocked in ``recv``);
* ``_closeSocket()``, which closes it and marks the connection closed: :func:`close_socket`;
* ``_receiving_worker``, the receiver thread: :func:`receiver_thread` (to join it).
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

from insitu.compat import check_version

if TYPE_CHECKING:
    from thales_remote.connection import ThalesRemoteConnection

__all__ = [
    "DISTRIBUTION",
    "WRITTEN_FOR",
    "close_socket",
    "receiver_thread",
    "set_term_port",
    "thales_socket",
]

DISTRIBUTION = "thales-remote"
WRITTEN_FOR = "1.2.8"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)


def set_term_port(connection: ThalesRemoteConnection, port: int) -> None:
    """Make ``connection`` connect to Term on ``port`` (call before ``connectToTerm``)."""
    connection._term_port = port


def thales_socket(connection: ThalesRemoteConnection) -> socket.socket | None:
    """The connection's socket, or None when it is not connected."""
    return connection._socket_handle


def close_socket(connection: ThalesRemoteConnection) -> None:
    """Close the connection's socket without a goodbye; it then reports not connected."""
    connection._closeSocket()


def receiver_thread(connection: ThalesRemoteConnection) -> threading.Thread | None:
    """The connection's receiver thread (None before it first connected)."""
    return getattr(connection, "_receiving_worker", None)
