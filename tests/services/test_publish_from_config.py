"""A beamline whose config names a 0MQ proxy publishes every document there, analysis or not."""

from __future__ import annotations

import socket
import time

import bluesky.plans as bp
import numpy as np
import pytest
import zmq

import insitu.beamline
from insitu import clock
from insitu.beamline import document_wire
from insitu.beamline.publisher import DocumentPublisher, ProxyUnreachableError
from insitu.services.streaming import CONNECT_SETTLE_S, parse_zmq_address, start_proxy


@pytest.fixture
def proxy():
    with start_proxy() as running:
        yield running


def _received_names(socket: zmq.Socket, until: str, timeout_s: float = 30.0) -> list[str]:
    names: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and until not in names:
        if socket.poll(200):
            # bluesky's Publisher frames a document as b"PREFIX NAME PAYLOAD".
            _prefix, name, _payload = socket.recv().split(b" ", 2)
            names.append(name.decode())
    return names


def test_streaming_publish_to_sends_each_document_of_a_run(tmp_path, proxy):
    context = zmq.Context()
    subscriber = context.socket(zmq.SUB)
    subscriber.connect(parse_zmq_address(proxy.out_address))
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": 200, "seed": 1},
        "streaming": {"local_analysis": False, "publish_to": proxy.in_address},
    }
    try:
        with insitu.beamline.load(config, table=False) as beamline:
            assert beamline.analysis == []  # local_analysis: false leaves it to a consumer
            # load() returned once the publisher's handshake with the proxy was done; the
            # subscriber above needs its own connection through before the run.
            time.sleep(CONNECT_SETTLE_S)
            beamline.RE(bp.count([beamline.stage], num=3))
            names = _received_names(subscriber, until="stop")
    finally:
        subscriber.close(linger=0)
        context.term()
        clock.reset()
    assert names[0] == "start" and names[-1] == "stop"
    assert names.count("event") + names.count("event_page") >= 1


def test_a_config_naming_a_proxy_that_is_not_there_is_refused_with_the_address(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed
    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": 200, "seed": 1},
        "streaming": {"local_analysis": False, "publish_to": f"127.0.0.1:{port}"},
    }
    with pytest.raises(ProxyUnreachableError, match=f"127.0.0.1:{port}.*bluesky-0MQ-proxy"):
        with insitu.beamline.load(config, table=False):
            pass  # pragma: no cover (load must refuse)
    clock.reset()
    with pytest.raises(ProxyUnreachableError):
        DocumentPublisher(f"127.0.0.1:{port}", timeout=0.3)


def test_the_first_document_after_the_handshake_reaches_a_subscriber(proxy):
    context = zmq.Context()
    subscriber = context.socket(zmq.SUB)
    subscriber.connect(parse_zmq_address(proxy.out_address))
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    time.sleep(CONNECT_SETTLE_S)
    publisher = DocumentPublisher(proxy.in_address)
    try:
        publisher("start", {"uid": "u1", "time": 0.0, "x": np.arange(3.0)})  # no settle
        assert subscriber.poll(10_000)
        prefix, name, payload = subscriber.recv().split(b" ", 2)
    finally:
        publisher.close()
        subscriber.close(linger=0)
        context.term()
    assert (prefix, name) == (b"", b"start")
    doc = document_wire.loads(payload)  # msgpack: what the consumer reads; never a pickle
    assert doc["uid"] == "u1"
    np.testing.assert_array_equal(doc["x"], np.arange(3.0))
    assert not payload.startswith(b"\x80")  # a pickle (protocol 2+) starts with PROTO
