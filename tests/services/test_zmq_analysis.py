"""The 0MQ analysis consumer writes the same derived streams as the in-process analysis chain.

One SQLite ``tiled serve`` (the shared catalog), one ``bluesky-0MQ-proxy`` and one
``insitu serve analysis`` process for the module. A simulated beamline without live analysis
writes the raw runs and publishes its documents; the consumer adds the derived streams to those
runs. The same recorded documents are then replayed through the in-process chain (the one
``insitu.beamline.load(analysis=True)`` builds) into a second container of the same server, and
the two sets of derived streams are compared field by field.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import insitu.beamline
from insitu import clock
from insitu.beamline.assembly import analysis_chain
from insitu.beamline.catalog import close_catalog, open_catalog
from insitu.beamline.durable_writer import CatalogWriteError, DurableTiledWriter
from insitu.plans import heat_ramp, step_eis
from insitu.services.analysis_consumer import READY_LINE
from insitu.services.derived_writer import DerivedStreamConflictError, DerivedStreamsWriter
from insitu.services.streaming import (
    CONNECT_SETTLE_S,
    ProxyProcess,
    attach_publisher,
    parse_zmq_address,
    start_proxy,
)

RAW_STREAMS = {"primary"}
IN_PROCESS = "in_process"  # the container the in-process chain writes its copy of the runs to


class _RunsCode:
    """Unpickling this creates ``path``: proof that a deserializer ran sender-chosen code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _publish_pickles(in_address: str, marker: Path) -> None:
    import pickle

    import zmq

    context = zmq.Context()
    sock = context.socket(zmq.PUB)
    try:
        sock.connect(f"tcp://{in_address}")
        time.sleep(CONNECT_SETTLE_S)
        for name in (b"start", b"event", b"stop"):
            sock.send(b" ".join([b"", name, pickle.dumps({"uid": _RunsCode(marker)})]))
        time.sleep(0.2)
    finally:
        sock.close(linger=1000)
        context.term()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Services:
    """The shared catalog server, the 0MQ proxy and the analysis consumer of this module."""

    uri: str
    key: str
    proxy: ProxyProcess
    consumer: subprocess.Popen
    logs: Path


def _tiled_serve(directory: Path, port: int, key: str, log) -> subprocess.Popen:
    tiled = shutil.which("tiled", path=str(Path(sys.executable).parent))
    return subprocess.Popen(
        [
            tiled, "serve", "catalog", str(directory / "catalog.db"), "--init",
            "-w", str(directory / "data"), "-w", f"sqlite:///{directory / 'storage.sqlite'}",
            "--port", str(port),
        ],
        env=dict(os.environ, TILED_SINGLE_USER_API_KEY=key),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip


def _wait_for_server(server: subprocess.Popen, uri: str, timeout: float = 90.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(f"{uri}/api/v1/", timeout=1.0)
            return True
        except httpx.TransportError:
            time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """A SQLite `tiled serve` with an API key, `bluesky-0MQ-proxy`, `insitu serve analysis`.

    The three start at once (the consumer waits for the catalog server to come up).
    """
    logs = tmp_path_factory.mktemp("services")
    port, key = _free_port(), secrets.token_hex(16)  # tiled wants alphanumeric keys
    uri = f"http://127.0.0.1:{port}"
    server_log = open(logs / "server.log", "w")  # noqa: SIM115 (closed at teardown)
    consumer_log = open(logs / "consumer.log", "w")  # noqa: SIM115 (closed at teardown)
    server = _tiled_serve(logs, port, key, server_log)
    proxy = start_proxy(log_path=logs / "proxy.log")
    consumer = subprocess.Popen(
        [
            sys.executable, "-m", "insitu.cli", "serve", "analysis",
            "--zmq", proxy.out_address, "--catalog", uri,
        ],
        env=dict(os.environ, TILED_API_KEY=key),  # never on the command line
        stdout=subprocess.PIPE,
        stderr=consumer_log,
        text=True,
    )  # fmt: skip
    try:
        if not _wait_for_server(server, uri):
            pytest.fail(f"tiled server did not start: {(logs / 'server.log').read_text()[-2000:]}")
        line = consumer.stdout.readline()
        if not line.startswith(READY_LINE):
            pytest.fail(f"consumer did not start: {(logs / 'consumer.log').read_text()[-3000:]}")
        time.sleep(CONNECT_SETTLE_S)  # 0MQ drops what is published before a subscription is up
        yield Services(uri, key, proxy, consumer, logs)
        consumer.terminate()
        returncode = consumer.wait(120)  # it analyses and writes what it has queued first
        assert returncode == 0, (logs / "consumer.log").read_text()[-3000:]
    finally:
        for process in (consumer, server):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
        consumer.stdout.close()
        proxy.close()
        server_log.close()
        consumer_log.close()


def _wait_for_derived_counts(
    runs, uid: str, streams: set[str], timeout: float = 120.0, log: Path | None = None
) -> dict:
    """The run's stop document once the consumer has merged its derived streams' counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stop = runs[uid].metadata.get("stop") or {}
        if streams <= set(stop.get("num_events") or {}):
            return stop
        time.sleep(0.2)
    raise AssertionError(
        f"run {uid}: derived streams {streams} not in stop after {timeout} s; consumer log:\n"
        + (log.read_text()[-4000:] if log is not None else "(none)")
    )


def _replay_in_process(cfg, documents, uri: str, key: str) -> None:
    """Run the recorded documents through the beamline's in-process analysis chain and writer."""
    runs = open_catalog(uri, api_key=key, container=IN_PROCESS)
    writer = DurableTiledWriter(runs)
    chain = analysis_chain(cfg, writer)
    try:
        for name, doc in documents:
            chain[0](name, doc)
        for callback in chain:
            callback.flush(120)
        assert writer.wait(120)
    finally:
        for callback in chain:
            callback.close()
        writer.close()
        close_catalog(runs)


def _assert_same_stream(remote, local, run_uid: str, stream: str) -> None:
    where = f"run {run_uid} stream {stream!r}"
    assert remote[stream].metadata["data_keys"] == local[stream].metadata["data_keys"], where
    ours, theirs = remote[stream].read(), local[stream].read()
    assert set(ours.data_vars) == set(theirs.data_vars), where
    assert ours.sizes["time"] == theirs.sizes["time"] > 0, where
    for field in ours.data_vars:
        # Same code on the same documents: equal values, not merely close ones (NaN == NaN).
        np.testing.assert_array_equal(
            ours[field].values, theirs[field].values, err_msg=f"{where} field {field!r}"
        )


@pytest.mark.alone
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_zmq_consumer_writes_the_same_derived_streams_as_in_process_analysis(
    services, tmp_path, real_time_clock
):
    uri, key = services.uri, services.key
    config = {
        "catalog": {"location": uri, "api_key": key},
        "metadata_dir": str(tmp_path / "md"),
        # Held time: at 1500x the 10 C steps of the ramp are 20 wall ms apart, and a loaded
        # machine's latency thinned its spectra (and could leave the film unflagged).
        "simulation": {"speedup": 1500, "seed": 3, "virtual_time": True},
    }
    documents: list[tuple[str, dict]] = []
    with insitu.beamline.load(config, table=False, analysis=False) as beamline:
        beamline.RE.waiting_hook = None
        beamline.raman.exposure.put(30.0)
        beamline.RE.subscribe(lambda name, doc: documents.append((name, doc)))
        attach_publisher(beamline, services.proxy.in_address)
        # An intruder publishes pickles (what bluesky's default deserializer would run):
        # they must run nothing, and the consumer must go on with the real runs after them.
        marker = tmp_path / "pickle-ran"
        _publish_pickles(services.proxy.in_address, marker)
        stage, raman, eis = beamline.stage, beamline.raman, beamline.eis
        (eis_uid,) = beamline.RE(
            step_eis(stage, eis, temperatures=[200, 600], cycles=1, stabilize_s=0, rate=50,
                     extra_detectors=[raman])
        )  # fmt: skip
        (ramp_uid,) = beamline.RE(
            heat_ramp(stage, [raman], start=400, stop=850, rate=20, every_C=10)
        )
        beamline.flush()
        cfg = beamline.config
    clock.reset()

    expected = {
        eis_uid: {"raman_analysis", "eis_fit", "eis_arrhenius"},
        ramp_uid: {"raman_analysis", "transitions"},
    }
    shared = open_catalog(uri, api_key=key)
    stops = {
        uid: _wait_for_derived_counts(shared, uid, streams, log=services.logs / "consumer.log")
        for uid, streams in expected.items()
    }
    _replay_in_process(cfg, documents, uri, key)
    in_process = open_catalog(uri, api_key=key, container=IN_PROCESS)

    run_of = {doc["uid"]: doc["run_start"] for name, doc in documents if name == "descriptor"}
    raw_events = Counter(run_of[doc["descriptor"]] for name, doc in documents if name == "event")
    for uid, derived in expected.items():
        remote, local = shared[uid], in_process[uid]
        # The raw streams are the beamline writer's, stored once; the consumer only added streams.
        assert set(remote) == RAW_STREAMS | derived == set(local)
        assert remote["primary"].read().sizes["time"] == raw_events[uid]
        assert stops[uid]["exit_status"] == "success"
        assert stops[uid]["num_events"] == local.metadata["stop"]["num_events"]
        assert remote.metadata["start"] == local.metadata["start"]
        for stream in derived:
            _assert_same_stream(remote, local, uid, stream)
    flags = shared[ramp_uid]["transitions"].read()["kind"].values
    assert len(flags) >= 1  # the ramp crosses the crystallization: a transition was flagged
    assert not marker.exists(), "a pickle from the network ran code in the consumer"
    assert services.consumer.poll() is None, "the consumer died on a pickle"
    close_catalog(shared)
    close_catalog(in_process)


def test_derived_writer_refuses_to_overwrite_an_existing_derived_stream(catalog):
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import SynSignal

    runs = catalog
    raw = DurableTiledWriter(runs)
    engine = RunEngine({})
    engine.subscribe(raw)
    documents: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    signal = SynSignal(func=lambda: 1.0, name="signal")
    (uid,) = engine(count([signal], num=2))
    assert raw.wait(30)
    raw.close()
    # Writing "primary" as if it were derived collides with the raw stream: refused, not merged.
    derived = DerivedStreamsWriter(runs, streams={"primary"})
    assert [name for name, _ in documents[:3]] == ["start", "descriptor", "event"]
    for name, doc in documents[:2]:
        derived(name, doc)
    assert derived.wait(30) is False  # the descriptor was refused: never reported as written
    with pytest.raises(CatalogWriteError) as failure:
        derived(*documents[2])
    assert isinstance(failure.value.__cause__, DerivedStreamConflictError)
    derived.close()
    assert runs[uid]["primary"].read().sizes["time"] == 2


def test_derived_writer_needs_the_run_created_by_the_beamline_writer(catalog):
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import SynSignal

    engine = RunEngine({})
    documents: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    engine(count([SynSignal(func=lambda: 1.0, name="signal")], num=2))
    derived = DerivedStreamsWriter(catalog, streams={"primary"}, run_timeout=0.5)
    for name, doc in documents[:3]:
        derived(name, doc)
    assert derived.wait(30) is False  # the run was not there: never reported as written
    with pytest.raises(CatalogWriteError) as failure:
        derived(*documents[3])
    assert isinstance(failure.value.__cause__, KeyError)
    assert "beamline's writer must create it" in str(failure.value.__cause__)
    derived(*documents[4])  # the rest of that run is dropped, not an error per event
    assert derived.wait(30)  # the failure was reported (once), nothing else went wrong
    derived.close()
    assert documents[0][1]["uid"] not in catalog  # nothing created on its own


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:5578", "tcp://127.0.0.1:5578"), ("tcp://host:1", "tcp://host:1")],
)
def test_zmq_address_accepts_host_and_port(address, expected):
    assert parse_zmq_address(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", ":5578", "host:0", "host:70000", "ipc:///x"])
def test_zmq_address_without_a_valid_port_is_refused(address):
    with pytest.raises(ValueError, match="0MQ address"):
        parse_zmq_address(address)
