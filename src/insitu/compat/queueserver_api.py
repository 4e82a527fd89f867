"""bluesky-queueserver-api: REManagerAPI's private 0MQ client and receivers; close() leaks them.

``REManagerAPI.close()`` closes its sockets but leaves the ``zmq.Context`` objects of its request
client and of its console and system-info monitors (made at init) to the garbage collector,
which pyzmq reports as ResourceWarnings, and no public attribute leads to them. To destroy them
:func:`~insitu.services.queue_server.manager_api` uses :func:`zmq_contexts`, which reaches, only
through this module:

* ``REManagerAPI._client``, the request client: :func:`request_client`;
* ``ConsoleMonitor_ZMQ_Threads._rco`` / ``SystemInfoMonitor_ZMQ_Threads._rco``, a monitor's
  receiver: :func:`monitor_receiver`;

and the contexts inside those through :mod:`insitu.compat.bluesky_queueserver` (the classes of
the client and receivers are bluesky-queueserver's). The monitors themselves are public
(``console_monitor``, ``system_info_monitor``). Missing attributes give None, as before.
"""

from __future__ import annotations

from typing import Any

from insitu.compat import check_version
from insitu.compat.bluesky_queueserver import comm_context, receiver_socket

__all__ = ["DISTRIBUTION", "WRITTEN_FOR", "monitor_receiver", "request_client", "zmq_contexts"]

DISTRIBUTION = "bluesky-queueserver-api"
WRITTEN_FOR = "0.0.13"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)


def request_client(api: Any) -> Any:
    """The 0MQ request client (``ZMQCommSendThreads``) of an ``REManagerAPI`` (None if none)."""
    return getattr(api, "_client", None)


def monitor_receiver(monitor: Any) -> Any:
    """The queueserver receiver (``ReceiveConsoleOutput``...) of an API monitor (None if none)."""
    return getattr(monitor, "_rco", None)


def zmq_contexts(api: Any) -> list[Any]:
    """The ``zmq.Context`` objects of ``api``'s request client and of its two monitors.

    Destroy them (``context.destroy(linger=0)``) after ``api.close()``: nothing else does.
    """
    monitors = (getattr(api, name, None) for name in ("console_monitor", "system_info_monitor"))
    sockets = (receiver_socket(monitor_receiver(monitor)) for monitor in monitors)
    contexts = [comm_context(request_client(api))]
    contexts += [getattr(socket, "context", None) for socket in sockets]
    return [context for context in contexts if context is not None]
