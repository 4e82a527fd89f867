"""Publish a beamline's documents to a 0MQ proxy: the RunEngine side of the 0MQ pattern.

The proxy and the consumers (the other side) are in :mod:`insitu.services.streaming` and
:mod:`insitu.services.analysis_consumer`; this half lives in the beamline layer because the
beamline assembly attaches it when its config has ``streaming.publish_to``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from insitu.beamline import document_wire

__all__ = [
    "CONNECT_SETTLE_S",
    "DocumentPublisher",
    "ProxyUnreachableError",
    "attach_publisher",
    "parse_zmq_address",
]

#: Wall seconds after a 0MQ connect before documents sent on it are sure to reach subscribers.
CONNECT_SETTLE_S = 0.5

#: After the handshake the proxy's subscription is on its way; this covers its processing.
_AFTER_HANDSHAKE_S = 0.2


class ProxyUnreachableError(ConnectionError):
    """No 0MQ proxy answered at the publisher's address: documents would go nowhere."""


class DocumentPublisher:
    """Publish bluesky documents to a 0MQ proxy's in-port, once the connection is confirmed.

    The wire format is bluesky's ``Publisher``'s (``b"PREFIX NAME PAYLOAD"``, what
    ``RemoteDispatcher`` reads), with :mod:`insitu.beamline.document_wire` as the serializer.
    bluesky's ``Publisher`` is not used because it connects in its constructor and returns at
    once: there is no way to learn that the proxy is there, so a run published before the 0MQ
    handshake (a loaded machine) or to a proxy that is not running is silently lost. This one
    watches the socket's handshake before it returns and raises when no proxy answers.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` or ``tcp://HOST:PORT`` of the proxy's in-port.
    prefix : bytes
        bluesky's publisher prefix (no spaces).
    timeout : float
        Seconds to wait for the proxy's handshake.

    Raises
    ------
    ProxyUnreachableError
        If no proxy completes a handshake at ``address`` within ``timeout``.
    """

    def __init__(self, address: str, *, prefix: bytes = b"", timeout: float = 10.0) -> None:
        if not isinstance(prefix, bytes) or b" " in prefix:
            raise ValueError(f"0MQ publisher prefix {prefix!r} must be bytes without spaces")
        self.address = parse_zmq_address(address)
        self._prefix = prefix
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
        try:
            self._connect(timeout)
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> None:
        # The monitor must exist before connect() or the handshake event can be missed.
        monitor = self._socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        try:
            self._socket.connect(self.address)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if monitor.poll(int(left * 1000) + 1):
                    if recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        break
            else:
                raise ProxyUnreachableError(
                    f"no 0MQ proxy answered at {self.address} within {timeout} s: start it first "
                    "(bluesky-0MQ-proxy) or remove streaming.publish_to from the config"
                )
        finally:
            self._socket.disable_monitor()
            monitor.close(linger=0)
        time.sleep(_AFTER_HANDSHAKE_S)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Send one document (never blocks: 0MQ drops above its high-water mark)."""
        payload = document_wire.dumps(copy.deepcopy(doc))
        self._socket.send(b" ".join([self._prefix, name.encode(), payload]))

    def close(self) -> None:
        """Close the socket (pending messages get one second to leave)."""
        self._socket.close(linger=1000)
        self._context.term()


def parse_zmq_address(address: str) -> str:
    """Return ``tcp://HOST:PORT`` for ``HOST:PORT`` or ``tcp://HOST:PORT``.

    Raises
    ------
    ValueError
        If the address has no host or no port in 1-65535.
    """
    if not isinstance(address, str):
        raise TypeError(f"0MQ address {address!r} must be a str 'HOST:PORT'")
    text = address.strip()
    if text.startswith("tcp://"):
        text = text[len("tcp://") :]
    elif "://" in text:
        raise ValueError(f"0MQ address {address!r}: only tcp:// is supported ('HOST:PORT')")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not (1 <= int(port) <= 65535):
        raise ValueError(f"0MQ address {address!r} must be 'HOST:PORT' with a port in 1-65535")
    return f"tcp://{host}:{int(port)}"


def attach_publisher(
    beamline: Any, address: str, *, prefix: bytes = b"", timeout: float = 10.0
) -> DocumentPublisher:
    """Publish every document of ``beamline``'s RunEngine to a 0MQ proxy's in-port.

    Parameters
    ----------
    beamline : insitu.beamline.Beamline
        Its ``RE`` gets the publisher as a subscriber; closing the beamline unsubscribes and
        closes the publisher.
    address : str
        ``HOST:PORT`` (or ``tcp://HOST:PORT``) of the proxy's in-port.
    prefix : bytes
        bluesky's publisher prefix, to tell several beamlines apart on one proxy.
    timeout : float
        Seconds to wait for the proxy's handshake.

    Returns
    -------
    DocumentPublisher

    Raises
    ------
    ProxyUnreachableError
        If no proxy answers at ``address`` (the beamline would otherwise publish into nothing).

    Notes
    -----
    The RunEngine calls the publisher in its own thread; a send never blocks (0MQ PUB queues,
    and drops above its high-water mark rather than holding the RunEngine up). The connection to
    the proxy is up when this returns; consumers must be subscribed to the proxy before the
    runs they should see (:data:`CONNECT_SETTLE_S` after their own connect).
    """
    # msgpack, not bluesky's default pickle: a consumer must never unpickle network data.
    publisher = DocumentPublisher(address, prefix=prefix, timeout=timeout)
    token = beamline.RE.subscribe(publisher)

    def detach() -> None:
        beamline.RE.unsubscribe(token)
        publisher.close()

    beamline.on_close(detach)
    return publisher
