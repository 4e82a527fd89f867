"""Publish a beamline's documents to a 0MQ proxy: the RunEngine side of the 0MQ pattern.

The proxy and the consumers (the other side) are in :mod:`insitu.services.streaming` and
:mod:`insitu.services.analysis_consumer`; this half lives in the beamline layer because the
beamline assembly attaches it when its config has ``streaming.publish_to``.
"""

from __future__ import annotations

from typing import Any

from bluesky.callbacks.zmq import Publisher

from insitu.beamline import document_wire

__all__ = ["CONNECT_SETTLE_S", "attach_publisher", "parse_zmq_address"]

#: Wall seconds after a 0MQ connect before documents sent on it are sure to reach subscribers.
CONNECT_SETTLE_S = 0.5


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


def attach_publisher(beamline: Any, address: str, *, prefix: bytes = b"") -> Publisher:
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

    Returns
    -------
    bluesky.callbacks.zmq.Publisher

    Notes
    -----
    The RunEngine calls the publisher in its own thread; a send never blocks (0MQ PUB queues,
    and drops above its high-water mark rather than holding the RunEngine up). Documents sent
    in the first :data:`CONNECT_SETTLE_S` after this call may be dropped by 0MQ.
    """
    # msgpack, not bluesky's default pickle: a consumer must never unpickle network data.
    publisher = Publisher(parse_zmq_address(address), prefix=prefix, serializer=document_wire.dumps)
    token = beamline.RE.subscribe(publisher)

    def detach() -> None:
        beamline.RE.unsubscribe(token)
        publisher.close()

    beamline.on_close(detach)
    return publisher
