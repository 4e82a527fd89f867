"""A run the catalog fails to take is kept on disk, every event and spectrum, and written later.

The catalog's storage is broken in-process (every write of batched events raises, as a tiled
server that went away does once its retries are spent), then repaired. The tiled server really
going down during a ramp is in ``tests/services/test_catalog_outage.py``.
"""

from __future__ import annotations

import logging

import bluesky.plans as bp
import httpx
import numpy as np
import pytest
from bluesky import RunEngine
from ophyd import Component, Device, Signal
from tiled.client.dataframe import DataFrameClient

import insitu.beamline
from insitu import clock
from insitu.beamline.durable_writer import CatalogWriteError, DurableTiledWriter
from insitu.beamline.run_spool import RunSpool, encode, read_spool, spool_directory
from insitu.compat.bluesky_tiled_plugins import RunWriter
from insitu.plans import heat_ramp


class SpectrumDetector(Device):
    """A 1600-point spectrum and a scalar whose values differ per event."""

    spectrum = Component(Signal, value=np.zeros(1600), kind="hinted")
    step = Component(Signal, value=0.0, kind="hinted")

    def trigger(self):
        self.step.put(self.step.get() + 1.0)
        self.spectrum.put(np.linspace(0.0, 1.0, 1600) * self.step.get() + 0.25)
        return super().trigger()


class Storage:
    """Breaks and repairs the catalog's storage under every TiledWriter run writer."""

    def __init__(self, monkeypatch) -> None:
        self.broken = False
        self.failures = 0
        original = RunWriter._write_internal_data

        def write(run_writer, cache, desc_node):
            if self.broken:
                self.failures += 1
                raise httpx.ConnectError("tiled server gone (test)")
            return original(run_writer, cache, desc_node)

        monkeypatch.setattr(RunWriter, "_write_internal_data", write)


class Recorder:
    """Every event the RunEngine emitted, by descriptor name."""

    def __init__(self) -> None:
        self.descriptors: dict[str, str] = {}
        self.events: dict[str, list[dict]] = {}

    def __call__(self, name, doc):
        if name == "descriptor":
            self.descriptors[doc["uid"]] = doc["name"]
        elif name == "event":
            stream = self.descriptors[doc["descriptor"]]
            self.events.setdefault(stream, []).append(doc)


def _assert_run_complete(catalog, uid: str, recorded: Recorder, stream: str = "primary") -> None:
    run = catalog[uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    data = run[stream].read()
    events = recorded.events[stream]
    assert data.sizes["time"] == len(events)  # every event, exactly once
    np.testing.assert_array_equal(data["det_step"].values, [e["data"]["det_step"] for e in events])
    np.testing.assert_array_equal(
        data["det_spectrum"].values, np.array([e["data"]["det_spectrum"] for e in events])
    )


def _count(writer, on_document, num: int) -> tuple[str, Recorder]:
    """Count the spectrum detector ``num`` times into ``writer``; ``on_document`` sees it all."""
    detector = SpectrumDetector(name="det")
    recorder = Recorder()
    engine = RunEngine({})
    engine.subscribe(writer)
    engine.subscribe(recorder)
    engine.subscribe(on_document)
    (uid,) = engine(bp.count([detector], num=num))
    return uid, recorder


def _count_with_outage(writer, storage, *, num=30, break_at=8, repair_at=None):
    def on_event(name, doc):
        if name == "event" and doc["seq_num"] == break_at:
            writer.wait(10)  # the first events are in the catalog: the replay must replace them
            storage.broken = True
        if name == "event" and doc["seq_num"] == repair_at:
            storage.broken = False

    return _count(writer, on_event, num)


def test_a_run_whose_writes_fail_is_spooled_then_written_once_when_the_catalog_is_back(
    catalog, tmp_path, monkeypatch
):
    storage = Storage(monkeypatch)
    writer = DurableTiledWriter(catalog, max_delay=0.1, spool_directory=tmp_path / "spool")
    try:
        uid, recorded = _count_with_outage(writer, storage)
        # The catalog is still down: nothing says the run is written (the writer works in its
        # own thread: the failures are counted once it has handled every document).
        assert writer.wait(10) is False
        assert storage.failures >= 1
        (spooled,) = writer.unwritten()
        assert [name for name, _ in read_spool(spooled)][0] == "start"
        assert oct(spooled.stat().st_mode & 0o777) == "0o600"
        storage.broken = False
        assert writer.wait(30) is True
        assert writer.unwritten() == []
    finally:
        writer.close()
    _assert_run_complete(catalog, uid, recorded)


def test_the_catalog_back_mid_run_still_gets_the_whole_run_once(catalog, tmp_path, monkeypatch):
    storage = Storage(monkeypatch)
    writer = DurableTiledWriter(catalog, max_delay=0.1, spool_directory=tmp_path / "spool")
    try:
        uid, recorded = _count_with_outage(writer, storage, break_at=5, repair_at=12)
        assert writer.wait(30) is True
    finally:
        writer.close()
    _assert_run_complete(catalog, uid, recorded)


@pytest.mark.allow_slow("two beamline loads: the second writes back what the first spooled")
def test_runs_left_in_the_spool_are_written_at_the_next_load(tmp_path, monkeypatch, caplog):
    config = {
        "catalog": {"location": str(tmp_path / "catalog")},
        "metadata_dir": str(tmp_path / "md"),
        # Held time: the ramp's six spectra whatever the machine's load (at 300x, 0.2 wall s).
        "simulation": {"speedup": 300, "seed": 2, "virtual_time": True},
    }
    storage = Storage(monkeypatch)
    try:
        with insitu.beamline.load(config, table=False) as beamline:
            recorded = Recorder()
            beamline.RE.subscribe(recorded)

            def break_after_first(name, doc):
                if name == "event" and doc["seq_num"] == 2:
                    storage.broken = True

            beamline.RE.subscribe(break_after_first)
            (uid,) = beamline.RE(
                heat_ramp(beamline.stage, [beamline.raman], start=30, stop=80, rate=50,
                          every_C=10)
            )  # fmt: skip
            with pytest.raises(CatalogWriteError, match="kept in .*spool"):
                beamline.flush(30)
            with caplog.at_level(logging.ERROR, logger="insitu.beamline.durable_writer"):
                beamline.close()
            assert "not in the catalog and are kept in" in caplog.text
        storage.broken = False
        spool = spool_directory(config["metadata_dir"], config["catalog"]["location"])
        assert len(RunSpool(spool).pending()) == 1
        with insitu.beamline.load(config, table=False) as beamline:
            assert RunSpool(spool).pending() == []
            _assert_run_raman_complete(beamline.catalog, uid, recorded)
    finally:
        clock.reset()


def _assert_run_raman_complete(catalog, uid, recorded):
    run = catalog[uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    data = run["primary"].read()
    events = recorded.events["primary"]
    assert data.sizes["time"] == len(events) >= 3
    spectra = np.array([e["data"]["raman_spectrum"] for e in events])
    np.testing.assert_array_equal(data["raman_spectrum"].values, spectra)
    # The live analysis's derived stream went with the run into the spool and back.
    assert run["raman_analysis"].read().sizes["time"] == len(events)


@pytest.mark.allow_slow("a ramp long enough in wall time for the write error to land inside it")
def test_a_spool_that_cannot_be_written_aborts_the_run_through_the_analysis_chain(
    tmp_path, monkeypatch
):
    config = {
        "catalog": {"location": str(tmp_path / "catalog")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": 20, "seed": 2},  # a ramp of ~5 wall s: the error lands in it
    }
    storage = Storage(monkeypatch)
    try:
        with insitu.beamline.load(config, table=False) as beamline:
            assert beamline.analysis  # the default: documents reach the writer via the chain

            def disk_full(uid):
                raise OSError(28, "No space left on device (test)")

            monkeypatch.setattr(beamline.writer.spool, "open_run", disk_full)

            def break_after_first(name, doc):
                if name == "event" and doc["seq_num"] == 2:
                    beamline.flush(30)
                    storage.broken = True

            beamline.RE.subscribe(break_after_first)
            with pytest.raises(CatalogWriteError, match="No space left on device"):
                beamline.RE(
                    heat_ramp(beamline.stage, [beamline.raman], start=30, stop=110, rate=50,
                              every_C=5)
                )  # fmt: skip
            storage.broken = False
    finally:
        clock.reset()


def test_a_document_that_meets_an_earlier_error_is_still_written(catalog):
    writer = DurableTiledWriter(catalog)
    failures = iter([OSError("disk full")])

    def flush_once_broken():
        error = next(failures, None)
        if error is not None:
            raise error
        return 0

    writer._writer.flush = flush_once_broken
    engine = RunEngine({})
    engine.subscribe(writer)
    with pytest.raises(CatalogWriteError, match="disk full"):
        engine(bp.count([SpectrumDetector(name="det")], num=40, delay=0.05))
    assert writer.wait(30) is False  # it reports the failure once ...
    assert writer.wait(30) is True  # ... and nothing is pending any more
    writer.close()
    (run,) = catalog.values()
    assert run.metadata["stop"]["exit_status"] == "fail"  # the stop that met the error is stored


def test_a_record_cut_off_by_a_crash_ends_the_spool(tmp_path):
    spool = RunSpool(tmp_path / "spool")
    file = spool.open_run("abc-123")
    file.append(encode("start", {"uid": "abc-123", "time": 1.0}))
    file.append(encode("event", {"data": {"x": np.arange(3.0)}}))
    file.close()
    (path,) = spool.pending()
    path.write_bytes(path.read_bytes()[:-5])
    assert [name for name, _ in read_spool(path)] == ["start"]
    assert oct(spool.directory.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("uid", ["../../escape", "a/b", ".hidden"])
def test_a_uid_never_names_a_path_outside_the_spool(tmp_path, uid):
    spool = RunSpool(tmp_path / "spool")
    spool.open_run(uid).close()
    (path,) = spool.pending()
    assert path.parent == spool.directory and path.name.startswith("uid-")


def test_an_append_whose_response_is_lost_is_in_the_catalog_once(catalog, monkeypatch):
    """The server takes a batch of rows and goes away before answering: no row twice.

    bluesky-tiled-plugins retries such an append blindly; a run that then said ``success``
    had 59 scalar rows against 57 spectra and could not be read back.
    """
    original = DataFrameClient.append_partition
    appends = []

    def append_then_lose_the_response(client, partition, table):
        original(client, partition, table)
        appends.append(table.num_rows)
        if len(appends) in (3, 4):
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    monkeypatch.setattr(DataFrameClient, "append_partition", append_then_lose_the_response)
    writer = DurableTiledWriter(catalog, max_delay=0.05)

    def slow(name, doc):
        if name == "event":
            writer.wait(10)  # one append per event: the lost responses fall mid-run

    try:
        uid, recorder = _count(writer, slow, num=8)
        assert writer.wait(30) is True
    finally:
        writer.close()
    assert len(appends) >= 5
    _assert_run_complete(catalog, uid, recorder)
    seq = catalog[uid]["primary"].base["internal"].read()["seq_num"].to_numpy()
    np.testing.assert_array_equal(seq, np.arange(1, 9))
