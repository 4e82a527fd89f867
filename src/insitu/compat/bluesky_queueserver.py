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

The RE Manager serves every 0MQ request through a handler method named in
``RunEngineManager._zmq_execute`` (``"script_upload"`` -> ``_script_upload_handler``); the
queueserver has no per-method permission for the 0MQ socket, so :func:`deny_methods` replaces
handlers of the methods a station refuses (``insitu.services.queue_manager``).
"""

from __future__ import annotations

from typing import Any

from insitu.compat import check_version

__all__ = [
    "DISTRIBUTION",
    "WRITTEN_FOR",
    "comm_context",
    "deny_methods",
    "handler_name",
    "receiver_socket",
]

DISTRIBUTION = "bluesky-queueserver"
WRITTEN_FOR = "0.0.25"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)


def comm_context(client: Any) -> Any:
    """The ``zmq.Context`` of a ``ZMQCommSendThreads`` request client (None if it has none)."""
    return getattr(client, "_ctx", None)


def receiver_socket(receiver: Any) -> Any:
    """The 0MQ SUB socket of a ``ReceiveConsoleOutput``/``ReceiveSystemInfo`` (None if none)."""
    return getattr(receiver, "_socket", None)


def handler_name(method: str) -> str:
    """The ``RunEngineManager`` attribute that serves 0MQ request ``method``."""
    return f"_{method}_handler"


def deny_methods(manager_class: Any, methods: dict[str, str]) -> None:
    """Make the RE Manager answer each of ``methods`` with a refusal, doing nothing.

    Parameters
    ----------
    manager_class : type
        ``bluesky_queueserver.manager.manager.RunEngineManager``.
    methods : dict
        0MQ method name -> why it is refused (the client gets it as the request's ``msg``).

    Raises
    ------
    AttributeError
        If a method's handler is not where this module expects it (the library changed).
    """
    for method, why in methods.items():
        name = handler_name(method)
        if not callable(getattr(manager_class, name, None)):
            raise AttributeError(f"RunEngineManager has no {name}: cannot refuse {method!r}")

        async def refuse(self, request, _method=method, _why=why):
            return {"success": False, "msg": f"{_method} is refused by this station: {_why}"}

        setattr(manager_class, name, refuse)
