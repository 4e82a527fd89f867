"""The embedded catalog: round trips, persistence across processes, durability under SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import bluesky.plans as bp
import numpy as np
import pytest
from bluesky import RunEngine
from ophyd import Component, Device, Signal

from insitu.analysis.stored_stream import complete_events, read_stream, table_columns
from insitu.beamline.catalog import broker, close_catalog, open_catalog
from insitu.beamline.durable_writer import CatalogWriteError, DurableTiledWriter


class SpectrumDetector(Device):
    """A 1600-point spectrum and a scalar whose values differ per event."""

    spectrum = Component(Signal, value=np.zeros(1600), kind="hinted")
    temperature = Component(Signal, value=25.0, kind="hinted")

    def trigger(self):
        step = self.temperature.get() + 5.0
        self.temperature.put(step)
        self.spectrum.put(np.linspace(0.0, 1.0, 1600) * step)
        return super().trigger()


def _run_count(catalog, num=5):
    writer = DurableTiledWriter(catalog)
    engine = RunEngine({})
    engine.subscribe(writer)
    detector = SpectrumDetector(name="det")
    (uid,) = engine(bp.count([detector], num=num))
    assert writer.wait(30)
    writer.close()
    return uid


def test_run_round_trips_scalars_and_1600_point_arrays(catalog):
    uid = _run_count(catalog, num=5)
    data = catalog[uid]["primary"].read()
    np.testing.assert_allclose(data["det_temperature"].values, [30.0, 35.0, 40.0, 45.0, 50.0])
    spectra = np.asarray(data["det_spectrum"].values)
    assert spectra.shape == (5, 1600)
    np.testing.assert_allclose(spectra[2], np.linspace(0.0, 1.0, 1600) * 40.0)
    assert catalog[uid].stop["exit_status"] == "success"


def test_the_scalar_columns_share_one_table_with_seq_num_and_the_arrays_do_not(catalog):
    # read_stream sorts a stream's table by seq_num (a SQL-backed catalog reads it in its own
    # row order) and leaves the arrays, stored by event index: this fails if
    # bluesky-tiled-plugins stops keeping the scalars with seq_num in its "internal" table,
    # where the sort would otherwise silently stop.
    stream = catalog[_run_count(catalog, num=3)]["primary"]
    table = table_columns(stream)
    assert {"seq_num", "time", "det_temperature"} <= table
    assert "det_spectrum" not in table
    columns = read_stream(stream, ["det_temperature", "det_spectrum"])
    assert columns["det_temperature"].tolist() == [30.0, 35.0, 40.0]


def test_a_stored_stream_holds_every_column_its_descriptor_declares(catalog):
    # read_stream and complete_events take a declared column missing for a kill in the middle
    # of the first event's write (zero complete events): this fails if a stored stream stops
    # showing its descriptor's data_keys, or a declared column is not stored as a column.
    stream = catalog[_run_count(catalog, num=2)]["primary"]
    declared = set(stream.metadata["data_keys"])
    assert declared == {"det_spectrum", "det_temperature"} and declared <= set(stream)
    assert complete_events(stream) == 2


def test_stream_tables_are_created_ordered_by_seq_num(catalog):
    # Any reader of the catalog (plain tiled, databroker), not only read_stream, gets a stream's
    # rows in event order: the table is created with tiled's order_by_args on seq_num, so a
    # SQL-backed catalog reads it with ORDER BY (without, PostgreSQL gave a run's rows in its
    # physical order). Fails if the writer stops asking for it or tiled stops keeping it.
    stream = catalog[_run_count(catalog, num=4)]["primary"]
    (source,) = stream.base["internal"].data_sources()
    assert source.parameters["order_by_args"] == [{"column": "seq_num", "direction": "asc"}]
    data = stream.read()
    assert data["det_temperature"].values.tolist() == [30.0, 35.0, 40.0, 45.0]


def test_databroker_v1_table(catalog):
    uid = _run_count(catalog, num=3)
    db = broker(catalog)
    header = db[-1]
    assert header.start["uid"] == uid
    table = header.table()
    assert list(table["det_temperature"]) == [30.0, 35.0, 40.0]


def test_a_broker_and_run_v2_leave_every_other_read_in_the_v3_layout(catalog_dir, catalog):
    """databroker's Broker and ``run.v2`` switch a shared registry to the v2 layout (stream keys
    data/timestamps/config): every later read_stream then failed (CI of 2026-12-03). Each
    catalog client has its own registry that ``.v2`` copies for real."""
    uid = _run_count(catalog, num=3)
    assert broker(catalog)[-1].table()["det_temperature"].tolist() == [30.0, 35.0, 40.0]
    assert "data" in catalog[uid].v2["primary"]  # the v2 accessor still gives v2
    other = open_catalog(catalog_dir)
    try:
        for runs in (catalog, other):
            stream = runs[uid]["primary"]
            assert "det_temperature" in stream and "data" not in stream
            columns = read_stream(stream, ["det_temperature"])
            assert columns["det_temperature"].tolist() == [30.0, 35.0, 40.0]
    finally:
        close_catalog(other)


@pytest.mark.slow  # a second Python process: its start-up alone is seconds
def test_catalog_persists_across_processes(catalog_dir, catalog):
    uid = _run_count(catalog, num=4)
    close_catalog(catalog)
    code = textwrap.dedent(
        f"""
        from insitu.beamline.catalog import open_catalog
        runs = open_catalog({str(catalog_dir)!r})
        data = runs[{uid!r}]["primary"].read()
        print(len(data["det_temperature"]), data["det_spectrum"].shape[1])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=90, check=True
    )
    assert result.stdout.split()[-2:] == ["4", "1600"]


def test_writer_error_reaches_the_run_engine(catalog):
    writer = DurableTiledWriter(catalog)
    writer._writer.flush = _fail  # the storage under the catalog breaks mid-run
    engine = RunEngine({})
    engine.subscribe(writer)
    with pytest.raises(CatalogWriteError, match="writing to the catalog failed"):
        engine(bp.count([SpectrumDetector(name="det")], num=50, delay=0.05))
    writer.close()


def _fail():
    raise OSError("disk full")


def test_bad_max_delay_is_rejected(catalog):
    with pytest.raises(ValueError, match=r"max_delay 5.0 s is outside the allowed range \(0, 1\]"):
        DurableTiledWriter(catalog, max_delay=5.0)


_KILLED_CHILD = """
import sys, time
import numpy as np
import bluesky.plans as bp
from bluesky import RunEngine
from ophyd.sim import SynSignal
from insitu.beamline.catalog import open_catalog
from insitu.beamline.durable_writer import DurableTiledWriter

runs = open_catalog(sys.argv[1])
engine = RunEngine({})
engine.subscribe(DurableTiledWriter(runs))
def emitted(name, doc):
    print(doc["seq_num"], time.time(), flush=True)
engine.subscribe(emitted, "event")
spectrum = SynSignal(func=lambda: np.random.default_rng().normal(100.0, 5.0, 1600), name="spectrum")
temperature = SynSignal(func=lambda: time.time() % 1000, name="temperature")
print("ready", flush=True)
engine(bp.count([spectrum, temperature], num=100000, delay=0.02))
"""


@pytest.mark.alone
@pytest.mark.slow
def test_sigkill_mid_run_keeps_every_event_older_than_one_second(catalog_dir):
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, str(catalog_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    emitted: dict[int, float] = {}
    try:
        assert child.stdout.readline().strip() == "ready"
        first = None
        for line in child.stdout:
            seq, when = line.split()
            emitted[int(seq)] = float(when)
            first = first or time.time()
            # A few seconds into the run, mid-write, with enough events older than a second
            # to judge (a loaded machine emits fewer than the 50/s asked for).
            now = time.time()
            old = sum(1 for at in emitted.values() if at < now - 1.5)
            if (now - first > 4.0 and old > 60) or now - first > 30.0:
                break
        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.time()
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()

    runs = open_catalog(catalog_dir)
    try:
        run = runs[-1]
        assert run.metadata.get("stop") is None  # cut off: no stop document
        # A SIGKILL mid-write can leave one column an event or more longer than another: the
        # stored events are those every column holds.
        data = read_stream(run["primary"])
        stored = set(int(seq) for seq in data["seq_num"])
        due = {seq for seq, when in emitted.items() if when < killed_at - 1.0}
        assert len(due) > 50
        missing = sorted(due - stored)
        assert not missing, f"events emitted > 1 s before the kill are missing: {missing[:10]}"
        assert data["spectrum"].shape[1] == 1600
    finally:
        close_catalog(runs)
