"""A beamline whose config names a 0MQ proxy publishes every document there, analysis or not."""

from __future__ import annotations

import time

import bluesky.plans as bp
import pytest
import zmq

import insitu.beamline
from insitu import clock
from insitu.services.streaming import parse_zmq_address, start_proxy


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
            time.sleep(1.0)  # 0MQ PUB drops what is sent before the subscription is through
            beamline.RE(bp.count([beamline.stage], num=3))
            names = _received_names(subscriber, until="stop")
    finally:
        subscriber.close(linger=0)
        context.term()
        clock.reset()
    assert names[0] == "start" and names[-1] == "stop"
    assert names.count("event") + names.count("event_page") >= 1
