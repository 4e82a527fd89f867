"""bluesky-queueserver: the 0MQ context and sockets its clients keep private; none closes them all.

``REManagerAPI`` (bluesky-queueserver-api, see :mod:`insitu.compat.queueserver_api`) talks
through queueserver's ``ZMQCommSendThreads`` (requests) and ``ReceiveConsoleOutput`` /
``ReceiveSystemInfo`` (its monitors). Their ``close`` closes the sockets but leaves each
``zmq.Context`` made at init to the garbage collector, which pyzmq reports as a ResourceWarning;
to destroy them :func:`~insitu.services.queue_server.manager_api` reaches, only through here:

* ``ZMQCommSendThreads._ctx``, the request client's context: :func:`comm_context`;
* ``ReceiveConsoleOutput._socket`` / ``ReceiveSystemInfo._socket``, a receiver's SUB socket
  (its own context is ``socket.context``): :func:`receiver_socket`.

Missing attributes give None (the caller then has nothing to destroy), as before this module.
"""

from __future__ import annotations

from typing import Any

from insitu.compat import check_version

__all__ = ["DISTRIBUTION", "WRITTEN_FOR", "comm_context", "receiver_socket"]

DISTRIBUTION = "bluesky-queueserver"
WRITTEN_FOR = "0.0.25"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)


def comm_context(client: Any) -> Any:
    """The ``zmq.Context`` of a ``ZMQCommSendThreads`` request client (None if it has none)."""
    return getattr(client, "_ctx", None)


def receiver_socket(receiver: Any) -> Any:
    """The 0MQ SUB socket of a ``ReceiveConsoleOutput``/``ReceiveSystemInfo`` (None if none)."""
    return getattr(receiver, "_socket", None)
