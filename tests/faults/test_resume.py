"""Resume from the catalog and crash recovery, fast: small fake devices, a real RunEngine and a
real embedded catalog (no emulators, no speed-up, a few seconds in all).

What must hold:
- a run cut off without a stop document gets one from ``close_interrupted_runs`` only if it is
  this host's and its process is dead; its events are untouched and counted;
- a resumed campaign runs exactly the measurements the catalog lacks: nothing finished is
  repeated, an interrupted anneal is redone from a fresh sample, stored impedance points are
  not measured again, and every point of the schedule is stored exactly once in the end.
"""

from __future__ import annotations

import os
import socket
import uuid

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import numpy as np
import pytest
from bluesky import RunEngine
from ophyd import Component as Cpt
from ophyd import Device, Signal
from tiled.queries import Key

from insitu.analysis.stored_stream import read_stream
from insitu.beamline.durable_writer import DurableTiledWriter
from insitu.beamline.recovery import close_interrupted_runs
from insitu.plans import resume as resume_module
from insitu.plans.campaign import anneal_and_measure
from insitu.plans.resume import campaign_progress, use_catalog
from insitu.plans.step_eis import step_eis, step_eis_schedule
from insitu.testing.devices import FakeDetector, FakeStage

HOST = socket.gethostname()
EIS_TEMPERATURES = [100.0, 200.0]


class Lab:
    """RunEngine -> (optionally stop-dropping) durable writer -> catalog; fake devices."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.campaign_id = f"c-{uuid.uuid4()}"  # tests share one catalog (it is slow to make)
        self.writer = DurableTiledWriter(catalog, max_delay=0.1)
        self.drop_stop_of: set[str] = set()  # measurements whose stop document is "lost"
        self.RE = RunEngine({"host": HOST, "pid": os.getpid()})
        self.messages = []
        self.RE.msg_hook = self.messages.append
        self._current = None
        self.RE.subscribe(self._forward)
        self.stage = FakeStage(name="stage")
        self.raman = FakeDetector(name="raman")
        self.eis = FakeDetector(name="eis")
        self.sample_changes = []

    def _forward(self, name, doc):
        if name == "start":
            self._current = doc.get("measurement")
        if name == "stop" and self._current in self.drop_stop_of:
            return  # as if the process had died before the stop document
        self.writer(name, doc)

    def change_sample(self, index, temperature):
        self.sample_changes.append(index)
        yield from bps.null()

    def campaign(self, **kwargs):
        options = dict(
            anneal_temperatures=[300.0, 400.0],
            rate=10.0,
            dwell_s=0,
            raman_every_C=50.0,
            eis_temperatures=EIS_TEMPERATURES,
            stabilize_s=0,
            cycles=1,
            change_sample=self.change_sample,
            campaign_id=self.campaign_id,
            temperature_band=5.0,
            band_settle_s=0.0,
        )
        options.update(kwargs)
        return anneal_and_measure(self.stage, self.raman, self.eis, **options)

    def flush(self):
        assert self.writer.wait(30)

    def opened_runs(self):
        return [m.kwargs.get("measurement") for m in self.messages if m.command == "open_run"]


@pytest.fixture(scope="module")
def shared_catalog(tmp_path_factory):
    from insitu.beamline.catalog import close_catalog, open_catalog

    runs = open_catalog(tmp_path_factory.mktemp("catalog"))
    yield runs
    close_catalog(runs)


@pytest.fixture
def lab(shared_catalog):
    bench = Lab(shared_catalog)
    yield bench
    bench.writer.close()
    use_catalog(None)


def _stored_eis_points(lab, index):
    """Every stored (cycle, direction, setpoint) of a sample, with repeats."""
    catalog = lab.catalog
    points = []
    for uid in catalog.search(Key("campaign_id") == lab.campaign_id):
        run = catalog[uid]
        start = run.start
        if start.get("measurement") == "eis" and start.get("sample_index") == index:
            data = run["primary"].read()
            points += [
                (int(c), str(d), float(t))
                for c, d, t in zip(
                    data["cycle"].values,
                    data["direction"].values,
                    data["stage_setpoint"].values,
                    strict=True,
                )
            ]
    return sorted(points)


@pytest.mark.allow_slow("runs a whole (fake) campaign into a real catalog, then resumes it")
def test_a_finished_campaign_resumes_to_nothing(lab):
    lab.RE(lab.campaign())
    lab.flush()
    progress = campaign_progress(lab.catalog, lab.campaign_id)
    assert progress.completed == {(i, m) for i in (0, 1) for m in ("anneal", "raman_rt", "eis")}
    assert not progress.interrupted
    lab.messages.clear()
    lab.RE(lab.campaign(resume=True, catalog=lab.catalog))
    assert lab.opened_runs() == []  # nothing left to measure
    assert lab.stage.setpoint.get() == 30.0  # still parked at room temperature


@pytest.mark.allow_slow("a failing impedance run into a real catalog, then its resume")
def test_a_failed_impedance_run_resumes_at_the_first_missing_point(lab):
    schedule = step_eis_schedule(EIS_TEMPERATURES, 1)  # 3 points per sample
    lab.eis.fail_at = len(schedule) + 2  # sample 1's second impedance point
    with pytest.raises(RuntimeError, match="injected failure"):
        lab.RE(lab.campaign())
    assert lab.stage.setpoint.get() == 30.0  # parked after the failure
    lab.flush()
    progress = campaign_progress(lab.catalog, lab.campaign_id)
    assert (1, "eis") not in progress.completed and (1, "raman_rt") in progress.completed
    assert progress.eis_points[1] == {(1, "heating", 100.0)}

    lab.eis.fail_at = None
    lab.messages.clear()
    lab.RE(lab.campaign(resume=True, catalog=lab.catalog))
    assert lab.opened_runs() == ["eis"]  # only the rest of sample 1's impedance
    assert lab.sample_changes == [0, 1]  # no new sample: sample 1's anneal had finished
    lab.flush()
    expected = sorted((c, d, float(t)) for c, d, t in schedule)
    assert _stored_eis_points(lab, 1) == expected  # each point exactly once
    assert _stored_eis_points(lab, 0) == expected
    resumed = lab.catalog[_last_uid(lab)]
    assert resumed.start["eis_resumed_at"] == [1, "heating", 200.0]
    assert resumed.stop["exit_status"] == "success"


def test_an_anneal_cut_off_by_a_crash_is_redone_on_a_fresh_sample(lab):
    lab.drop_stop_of = {"anneal"}
    lab.raman.fail_at = 1  # inside sample 0's anneal (its stop document never arrives)
    with pytest.raises(RuntimeError):
        lab.RE(lab.campaign())
    lab.flush()
    (cut_off,) = list(lab.catalog.search(Key("campaign_id") == lab.campaign_id))
    assert lab.catalog[cut_off].metadata.get("stop") is None
    lab.raman.fail_at = None
    lab.drop_stop_of = set()
    lab.messages.clear()
    lab.RE(lab.campaign(resume=True, catalog=lab.catalog))
    assert lab.opened_runs() == ["anneal", "raman_rt", "eis"] * 2
    assert lab.sample_changes == [0, 0, 1]  # sample 0 changed again: a fresh film


def test_resume_with_other_anneal_temperatures_is_refused_before_anything_moves(lab):
    lab.RE(lab.campaign(anneal_temperatures=[300.0]))
    lab.flush()
    lab.messages.clear()
    with pytest.raises(ValueError, match="sample 0 was annealed at 300.0 C in the catalog"):
        lab.RE(lab.campaign(anneal_temperatures=[350.0], resume=True, catalog=lab.catalog))
    assert not any(m.command in ("set", "open_run") for m in lab.messages)


def test_resume_needs_a_campaign_id_and_a_catalog(lab):
    with pytest.raises(ValueError, match="needs the campaign_id"):
        lab.RE(lab.campaign(campaign_id=None, resume=True))
    use_catalog(None)
    with pytest.raises(ValueError, match="no catalog to resume from"):
        lab.RE(lab.campaign(resume=True))
    assert not lab.messages


def test_the_default_catalog_is_flushed_before_it_is_read(lab):
    flushes = []
    lab.RE(lab.campaign(anneal_temperatures=[300.0]))
    use_catalog(lab.catalog, before_read=lambda: flushes.append(lab.flush()))
    lab.messages.clear()
    lab.RE(lab.campaign(anneal_temperatures=[300.0], resume=True))  # a queued plan's call
    assert flushes and lab.opened_runs() == []
    assert resume_module.catalog_for_resume(None) is lab.catalog
    flushes.clear()  # passed explicitly, the same catalog is flushed all the same
    assert resume_module.catalog_for_resume(lab.catalog) is lab.catalog and flushes
    flushes.clear()
    other = object()  # another catalog: not this writer's to flush
    assert resume_module.catalog_for_resume(other) is other and not flushes


def test_standalone_step_eis_resumes_by_campaign_id(lab):
    lab.eis.fail_at = 3
    plan = step_eis(
        lab.stage, lab.eis, temperatures=[100, 150, 200], cycles=1, stabilize_s=0,
        campaign_id=lab.campaign_id, band_settle_s=0,
    )  # fmt: skip
    with pytest.raises(RuntimeError):
        lab.RE(plan)
    lab.eis.fail_at = None
    lab.flush()
    lab.messages.clear()
    lab.RE(
        step_eis(
            lab.stage,
            lab.eis,
            temperatures=[100, 150, 200],
            cycles=1,
            stabilize_s=0,
            campaign_id=lab.campaign_id,
            resume=True,
            catalog=lab.catalog,
            band_settle_s=0,
        )  # fmt: skip
    )
    sets = [m.args[0] for m in lab.messages if m.command == "set" and m.obj is lab.stage]
    assert sets == [200.0, 150.0, 100.0, 30.0]  # the three missing points, then the park


def test_a_device_without_a_connected_signal_is_refused(lab):
    class Bare(Device):
        value = Cpt(Signal, value=0.0)

    with pytest.raises(
        TypeError, match="bare has no 'connected' Signal; .* or pass suspenders=False"
    ):
        lab.RE(anneal_and_measure(lab.stage, lab.raman, Bare(name="bare"), campaign_id="x"))
    assert not lab.messages


def _last_uid(lab):
    runs = lab.catalog.search(Key("campaign_id") == lab.campaign_id)
    return max(runs, key=lambda uid: runs[uid].start["time"])


# -- crash recovery ------------------------------------------------------------------------


def _cut_off_run(lab, md, num=4):
    """A run whose stop document never reaches the catalog (its process 'died')."""
    lab.drop_stop_of = {"cut"}
    (uid,) = lab.RE(bp.count([lab.raman], num=num, md={"measurement": "cut", **md}))
    lab.drop_stop_of = set()
    return uid


def test_close_interrupted_runs_closes_only_this_hosts_runs_of_dead_processes(lab):
    host = f"host-{uuid.uuid4()}"  # this test's own "machine" in the shared catalog
    dead = _cut_off_run(lab, {"pid": 999_001, "host": host})
    alive = _cut_off_run(lab, {"pid": 999_002, "host": host})
    elsewhere = _cut_off_run(lab, {"pid": 999_001, "host": "other-beamline"})
    no_pid = _cut_off_run(lab, {"pid": None, "host": host})
    (finished,) = lab.RE(bp.count([lab.raman], num=2, md={"pid": 999_001, "host": host}))
    lab.flush()

    closed = close_interrupted_runs(lab.catalog, host=host, is_alive=lambda pid: pid == 999_002)
    assert closed == [dead]
    stop = lab.catalog[dead].stop
    assert stop["exit_status"] == "fail"
    assert stop["reason"].startswith(f"process died (pid 999001 on host {host}); stop document")
    assert stop["num_events"] == {"primary": 4}
    np.testing.assert_array_equal(lab.catalog[dead]["primary"].read()["raman_value"], [1, 2, 3, 4])
    for untouched in (alive, elsewhere, no_pid):
        assert lab.catalog[untouched].metadata.get("stop") is None
    assert lab.catalog[finished].stop["exit_status"] == "success"
    assert close_interrupted_runs(lab.catalog, host=host, is_alive=lambda pid: False) == [alive]
    assert close_interrupted_runs(lab.catalog, host=host) == []  # nothing left open


# -- a crash at every point of a campaign: the fast twin of test_sigkill_resume ----------------


class _ProcessDiedError(Exception):
    """Raised into the RunEngine when the 'process' dies: no document reaches the catalog after."""


class _DyingLab(Lab):
    """A Lab whose process dies once ``die_after`` documents have reached the catalog."""

    def __init__(self, catalog, campaign_id, die_after):
        super().__init__(catalog)
        self.campaign_id = campaign_id
        self.die_after = die_after
        self.forwarded: list[tuple[str, dict]] = []

    def _forward(self, name, doc):
        if self.die_after is not None and len(self.forwarded) >= self.die_after:
            raise _ProcessDiedError(f"died after document {self.die_after}")
        self.forwarded.append((name, doc))
        self.writer(name, doc)


def _stored_times(catalog, uid, stream):
    """seq_num -> time of the events of one stored stream."""
    columns = read_stream(catalog[uid][stream], ("seq_num", "time"))
    return dict(zip(columns["seq_num"].astype(int).tolist(), columns["time"].tolist(), strict=True))


def _all_eis_points(catalog, campaign_id, index):
    points = []
    for uid in catalog.search(Key("campaign_id") == campaign_id):
        run = catalog[uid]
        if run.start.get("measurement") == "eis" and run.start.get("sample_index") == index:
            if "primary" in run and "cycle" in run["primary"]:
                data = read_stream(run["primary"], ("cycle", "direction", "stage_setpoint"))
                points += [
                    (int(c), str(d), float(t))
                    for c, d, t in zip(
                        data["cycle"], data["direction"], data["stage_setpoint"], strict=True
                    )
                ]
    return sorted(points)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_crash_after_any_document_resumes_to_the_full_campaign_with_nothing_lost(lab):
    """Cut the campaign after many of its documents, recover, resume: every impedance point of
    the schedule is stored exactly once, every run is closed, and no stored event is lost."""
    # Runs other tests of this module left open (they share the catalog and the host) are not
    # this test's to count: close them first.
    close_interrupted_runs(lab.catalog, host=HOST, is_alive=lambda pid: False)
    reference = _DyingLab(lab.catalog, f"ref-{uuid.uuid4()}", die_after=None)
    reference.RE(reference.campaign())
    total = len(reference.forwarded)
    reference.writer.close()
    expected = sorted((c, d, float(t)) for c, d, t in step_eis_schedule(EIS_TEMPERATURES, 1))
    # Every third document: each run is cut after its start, inside its events and before its
    # stop at one cut or another (the campaign's runs are 4-6 documents long).
    cuts = range(1, total, 3)
    assert total > 20, total
    for cut in cuts:
        campaign_id = f"cut-{cut}-{uuid.uuid4()}"
        dying = _DyingLab(lab.catalog, campaign_id, die_after=cut)
        with pytest.raises(_ProcessDiedError):
            dying.RE(dying.campaign())
        dying.flush()
        dying.writer.close()
        # What the dead process had handed to the (durable) writer must all be in the catalog.
        streams = {
            doc["uid"]: (doc["run_start"], doc["name"])
            for name, doc in dying.forwarded
            if name == "descriptor"
        }
        before = {
            (*streams[doc["descriptor"]], doc["seq_num"]): doc["time"]
            for name, doc in dying.forwarded
            if name == "event"
        }
        started = {doc["uid"] for name, doc in dying.forwarded if name == "start"}
        stopped = {doc["run_start"] for name, doc in dying.forwarded if name == "stop"}
        closed = close_interrupted_runs(lab.catalog, host=HOST, is_alive=lambda pid: False)
        assert set(closed) == started - stopped, cut

        restarted = _DyingLab(lab.catalog, campaign_id, die_after=None)
        restarted.RE(restarted.campaign(resume=True, catalog=lab.catalog))
        restarted.flush()
        restarted.writer.close()
        for uid, stream in {(uid, stream) for uid, stream, _ in before}:
            stored = _stored_times(lab.catalog, uid, stream)
            lost = [
                seq
                for (u, st, seq), when in before.items()
                if (u, st) == (uid, stream) and stored.get(seq) != pytest.approx(when)
            ]
            assert not lost, f"cut after document {cut}: {uid} {stream} lost events {lost}"
        for index in (0, 1):
            assert _all_eis_points(lab.catalog, campaign_id, index) == expected, (cut, index)
        found = lab.catalog.search(Key("campaign_id") == campaign_id)
        stops = {(found[uid].metadata.get("stop") or {}).get("exit_status") for uid in found}
        assert stops == ({"success", "fail"} if closed else {"success"}), (cut, stops)
