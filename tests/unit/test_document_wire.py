"""Documents on the 0MQ wire: msgpack round trip with numpy arrays; a pickle is never run."""

from __future__ import annotations

import ast
import pathlib
import pickle

import numpy as np
import pytest

import insitu
from insitu.beamline.document_wire import dumps, loads

_RAN: list[str] = []


class _Exploit:
    def __reduce__(self):
        return (_RAN.append, ("code from the network ran",))


def test_an_event_with_spectra_and_numpy_scalars_round_trips():
    event = {
        "uid": "u1",
        "seq_num": np.int64(3),
        "time": 1.5,
        "data": {"raman_spectrum": np.linspace(0, 1, 1600), "stage_temperature": np.float32(30.5)},
        "filled": {"raman_spectrum": True},
        "timestamps": {"raman_spectrum": 1.0, "stage_temperature": 1.0},
        "shape": (2, 3),
        "image": np.arange(6, dtype=">u2").reshape(2, 3),
    }
    back = loads(dumps(event))
    np.testing.assert_array_equal(back["data"]["raman_spectrum"], event["data"]["raman_spectrum"])
    assert back["seq_num"] == 3 and back["data"]["stage_temperature"] == pytest.approx(30.5)
    assert back["image"].dtype == np.dtype(">u2") and back["image"].shape == (2, 3)
    assert back["shape"] == [2, 3] and back["filled"] == {"raman_spectrum": True}


def test_a_pickle_from_the_network_is_refused_and_never_run():
    with pytest.raises(Exception):  # noqa: B017 - any error: what matters is that nothing ran
        loads(pickle.dumps({"evil": _Exploit()}))
    assert _RAN == []


def test_object_arrays_are_refused_both_ways():
    with pytest.raises(TypeError, match="object arrays"):
        dumps({"data": np.array([{"a": 1}], dtype=object)})
    import msgpack

    forged = msgpack.packb(
        msgpack.ExtType(42, msgpack.packb(["|O", [1], b"\0" * 8])), use_bin_type=True
    )
    with pytest.raises(ValueError, match="refusing a numpy array of dtype '\\|O'"):
        loads(forged)


def test_every_0mq_publisher_and_dispatcher_in_insitu_is_given_the_msgpack_codec():
    """bluesky's defaults are pickle: each construction in src must pass our codec."""
    root = pathlib.Path(insitu.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                "Publisher",
                "RemoteDispatcher",
            ):
                keywords = {k.arg for k in node.keywords}
                found.append((path.name, node.func.id, keywords & {"serializer", "deserializer"}))
    # The beamline publishes with its own DocumentPublisher (msgpack only, checked on the wire in
    # tests/services/test_publish_from_config.py); bluesky's Publisher is not constructed at all.
    assert {(name, kind) for name, kind, _ in found} >= {
        ("analysis_consumer.py", "RemoteDispatcher"),
    }
    assert all(codec for _, _, codec in found), found
