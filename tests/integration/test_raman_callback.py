"""RamanTransitionCallback on a real RunEngine: derived streams, flags, the transition Signal.

The test device serves spectra of the simulated film (``insitu.sim``) at the stage's temperature
on the 5 C/min ramp: 30 s at 10 mW, cosmic rays on. Its ``spectrum`` is read as
``raman_spectrum`` and its ``wavenumber`` is configuration (``raman_wavenumber``), as for the
real ``RamanSpectrometer``.
"""

from __future__ import annotations

import logging
import time

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import event_model
import numpy as np
import pytest
from bluesky import RunEngine
from ophyd import Component, Device, Signal

from insitu.analysis.callbacks import RamanTransitionCallback
from insitu.analysis.callbacks import raman_transitions as raman_module
from insitu.analysis.raman import TRANSITION_KINDS
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile
from insitu.testing.devices import SoftStage

AXIS = raman_model.default_axis()
PROFILE = ThermalProfile.ramp(25.0, 850.0, 5.0)
TEMPERATURES = np.arange(25.0, 850.01, 5.0)
LEVELS = {"crystallization_onset": 0.05, "crystallized": 0.95, "decomposition": 0.10}


class SimulatedRaman(Device):
    """Measures the simulated film at the stage's temperature (one spectrum per trigger)."""

    spectrum = Component(Signal, value=np.zeros(AXIS.size), kind="normal")
    wavenumber = Component(Signal, value=AXIS, kind="config")

    def __init__(self, *args, stage: SoftStage, broken_at_c: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._stage = stage
        self._film = GarnetFilm(PROFILE, start_time=0.0)
        self._rng = np.random.default_rng(11)
        self._broken_at_c = broken_at_c
        self.truth: list[tuple[float, float]] = []  # (crystalline, pyrochlore) per trigger

    def trigger(self):
        temperature = float(self._stage.temperature.get())
        state = self._film.state(PROFILE.time_at_temperature(temperature))
        counts = raman_model.spectrum(
            state, temperature, exposure_s=30.0, laser_power_mW=10.0, rng=self._rng
        )
        if self._broken_at_c is not None and temperature == self._broken_at_c:
            counts[100] = np.nan  # a readout glitch the callback must report, not swallow
        self.truth.append((state.crystalline_fraction, state.pyrochlore))
        self.spectrum.put(counts)
        return super().trigger()

    def crossing(self, kind: str) -> int:
        column = 1 if kind == "decomposition" else 0
        values = np.array([t[column] for t in self.truth])
        return int(np.argmax(values > LEVELS[kind]))

    def earliest(self, kind: str) -> int:
        """First spectrum where the phase is really there (1 %, 90 % crystalline, 1 %)."""
        column = 1 if kind == "decomposition" else 0
        values = np.array([t[column] for t in self.truth])
        return int(np.argmax(values >= (0.9 if kind == "crystallized" else 0.01)))


@pytest.fixture
def rig(collect_documents):
    engine = RunEngine({})
    stage = SoftStage(name="stage")
    raman = SimulatedRaman(name="raman", stage=stage)
    callback = RamanTransitionCallback()
    collector = collect_documents()
    callback.subscribe(collector)
    engine.subscribe(callback)
    yield engine, stage, raman, callback, collector
    callback.close()


def ramp(engine, stage, raman, temperatures=TEMPERATURES):
    (uid,) = engine(bp.list_scan([raman], stage.temperature, list(temperatures)))
    return uid


def test_streams_flags_signal_and_log_in_the_same_run(rig, caplog):
    engine, stage, raman, callback, collector = rig
    with caplog.at_level(logging.WARNING, logger=raman_module.__name__):
        uid = ramp(engine, stage, raman)
        callback.flush(timeout=120)

    analysis = collector.stream("raman_analysis")
    primary = collector.stream("primary")
    assert len(analysis) == len(primary) == TEMPERATURES.size
    assert all(event["data"]["success"] for event in analysis)
    assert [e["data"]["source_seq_num"] for e in analysis] == [e["seq_num"] for e in primary]
    assert [e["data"]["temperature"] for e in analysis] == pytest.approx(list(TEMPERATURES))
    assert np.isnan(analysis[0]["data"]["crystalline_z"])  # a calibration spectrum
    assert abs(analysis[20]["data"]["crystalline_z"]) < 4.0
    assert analysis[-1]["data"]["decomposed_z"] > 5.0
    assert analysis[-1]["data"]["n_peaks"] > 3

    transitions = collector.stream("transitions")
    assert [e["data"]["kind"] for e in transitions] == list(TRANSITION_KINDS)
    for event in transitions:
        data = event["data"]
        crossing = raman.crossing(data["kind"])
        assert raman.earliest(data["kind"]) <= data["index"] <= crossing + 2
        assert data["temperature"] == TEMPERATURES[data["index"]]
        assert data["source_seq_num"] == data["index"] + 1
        assert data["kind"] in analysis[data["index"]]["data"]["flags"]
        assert "band signal" in data["evidence"] and 0.5 < data["confidence"] <= 1.0
    assert callback.transition.get() == "decomposition"
    assert [flag.kind for flag in callback.flags] == list(TRANSITION_KINDS)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [kind for kind in TRANSITION_KINDS if any(kind in r.getMessage() for r in warnings)] == (
        list(TRANSITION_KINDS)
    )

    derived = [
        doc
        for name, doc in collector.documents
        if name == "descriptor" and doc["name"] in ("raman_analysis", "transitions")
    ]
    assert len(derived) == 2 and all(doc["run_start"] == uid for doc in derived)
    names = [name for name, _ in collector.documents]
    assert names[0] == "start" and names[-1] == "stop" and names.count("stop") == 1
    stop = collector.documents[-1][1]
    assert stop["num_events"] == {
        "primary": TEMPERATURES.size,
        "raman_analysis": TEMPERATURES.size,
        "transitions": 3,
    }
    assert collector.threads == {"RamanTransitionCallback"}


def test_every_document_passes_the_event_model_schemas(rig):
    engine, stage, raman, callback, collector = rig
    ramp(engine, stage, raman, TEMPERATURES[100:140])
    callback.flush(timeout=60)
    for name, doc in collector.documents:
        event_model.schema_validators[event_model.DocumentNames(name)].validate(doc)
    for event in collector.stream("raman_analysis") + collector.stream("transitions"):
        for value in event["data"].values():
            assert type(value) in (float, int, bool, str)


def test_a_plan_waits_for_the_analysis_and_stops_heating_at_the_onset(rig):
    engine, stage, raman, callback, collector = rig
    seen: list[str] = []

    def heat_until_crystals_appear():
        yield from bps.open_run()
        for temperature in TEMPERATURES:
            yield from bps.mv(stage.temperature, temperature)
            yield from bps.trigger_and_read([raman, stage])
            yield from bps.mv(callback.analysed, 0)  # the spectrum just read is analysed
            kind = yield from bps.rd(callback.transition)
            seen.append(kind)
            if kind == "crystallization_onset":
                break
        yield from bps.close_run()

    engine(heat_until_crystals_appear())
    callback.flush(timeout=60)
    stopped_at = len(seen) - 1
    assert seen[-1] == "crystallization_onset" and set(seen[:-1]) == {""}
    # the plan stopped heating once crystals were really there and before 5 % + 2 spectra
    crystalline = raman.truth[stopped_at][0]
    assert raman.earliest("crystallization_onset") <= stopped_at and crystalline >= 0.01
    assert crystalline <= 0.05 or stopped_at <= raman.crossing("crystallization_onset") + 2
    assert len(collector.stream("raman_analysis")) == stopped_at + 1
    assert callback.analysed.get() == stopped_at + 1


def test_the_mean_temperature_of_the_exposure_is_preferred(rig):
    engine, stage, raman, callback, collector = rig
    stage.temperature_mean.kind = "normal"

    def plan():
        yield from bps.open_run()
        for temperature in (600.0, 605.0, 610.0):
            yield from bps.mv(
                stage.temperature, temperature, stage.temperature_mean, temperature + 2
            )
            yield from bps.trigger_and_read([raman, stage])
        yield from bps.close_run()

    engine(plan())
    callback.flush(timeout=60)
    temperatures = [e["data"]["temperature"] for e in collector.stream("raman_analysis")]
    assert temperatures == [602.0, 607.0, 612.0]


def test_a_broken_spectrum_gives_a_failed_event_a_traceback_and_a_flush_error(
    caplog, collect_documents
):
    engine = RunEngine({})
    stage = SoftStage(name="stage")
    raman = SimulatedRaman(name="raman", stage=stage, broken_at_c=300.0)
    callback = RamanTransitionCallback()
    collector = collect_documents()
    callback.subscribe(collector)
    engine.subscribe(callback)
    with caplog.at_level(logging.ERROR, logger=raman_module.__name__):
        ramp(engine, stage, raman, TEMPERATURES[:70])
        with pytest.raises(RuntimeError, match="error") as raised:
            callback.flush(timeout=60)
    callback.close()
    assert "NaN" in str(raised.value.__cause__)
    analysis = collector.stream("raman_analysis")
    failed = [e["data"] for e in analysis if not e["data"]["success"]]
    assert len(analysis) == 70 and len(failed) == 1
    assert failed[0]["temperature"] == 300.0 and "NaN" in failed[0]["error"]
    assert np.isnan(failed[0]["crystalline_signal"]) and failed[0]["index"] == -1
    assert any(r.exc_info is not None and "NaN" in str(r.exc_info[1]) for r in caplog.records)
    # the detector went on with the next spectra
    assert analysis[-1]["data"]["index"] == 68


def test_the_axis_may_come_with_the_event_and_is_required(rig):
    engine, stage, raman, callback, collector = rig
    raman.wavenumber.kind = "normal"  # now read with every event instead of configuration
    ramp(engine, stage, raman, TEMPERATURES[:6])
    callback.flush(timeout=60)
    assert all(e["data"]["success"] for e in collector.stream("raman_analysis"))

    class NoAxis(Device):
        spectrum = Component(Signal, value=np.ones(AXIS.size), kind="normal")

    engine(bp.count([NoAxis(name="raman")], num=1))
    with pytest.raises(RuntimeError):
        callback.flush(timeout=60)
    (failed,) = collector.stream("raman_analysis")[-1:]
    assert "no wavenumber axis 'raman_wavenumber'" in failed["data"]["error"]


def test_an_axis_without_the_decomposition_band_is_a_warning_in_the_run_data(collect_documents):
    # A spectrometer set from 300 cm-1: LLZO's decomposition is read at 275 cm-1 alone, so that
    # flag cannot come; an unattended run's data says so with every spectrum, not just a log.
    on = AXIS >= 300.0

    class CutRaman(SimulatedRaman):
        spectrum = Component(Signal, value=np.zeros(int(on.sum())), kind="normal")
        wavenumber = Component(Signal, value=AXIS[on], kind="config")

        def trigger(self):
            status = super().trigger()
            self.spectrum.put(self.spectrum.get()[on])
            return status

    engine = RunEngine({})
    stage = SoftStage(name="stage")
    callback = RamanTransitionCallback()
    collector = collect_documents()
    callback.subscribe(collector)
    engine.subscribe(callback)
    ramp(engine, stage, CutRaman(name="raman", stage=stage), TEMPERATURES[:3])
    callback.flush(timeout=60)
    callback.close()
    analysis = [e["data"] for e in collector.stream("raman_analysis")]
    assert len(analysis) == 3 and all(data["success"] for data in analysis)
    assert all("decomposition (bands at 275 cm-1" in data["warning"] for data in analysis)


def test_a_full_axis_has_no_warning_in_the_run_data(rig):
    engine, stage, raman, callback, collector = rig
    ramp(engine, stage, raman, TEMPERATURES[:3])
    callback.flush(timeout=60)
    assert [e["data"]["warning"] for e in collector.stream("raman_analysis")] == [""] * 3


def test_the_run_engine_is_not_blocked_by_slow_analysis(monkeypatch, collect_documents):
    engine = RunEngine({})
    stage = SoftStage(name="stage")
    raman = SimulatedRaman(name="raman", stage=stage)
    callback = RamanTransitionCallback()
    collector = collect_documents()
    callback.subscribe(collector)
    analysis_seconds = 0.05
    real_update = raman_module.RamanTransitionDetector.update

    def slow_update(self, *args, **kwargs):
        time.sleep(analysis_seconds)
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(raman_module.RamanTransitionDetector, "update", slow_update)
    call_seconds = []

    def timed(name, doc):
        started = time.perf_counter()
        callback(name, doc)
        call_seconds.append(time.perf_counter() - started)

    engine.subscribe(timed)
    started = time.perf_counter()
    ramp(engine, stage, raman, TEMPERATURES[:40])
    run_seconds = time.perf_counter() - started
    # The first call (the start document) starts the analysis worker, which a loaded CI timed at
    # 11 ms; no call of a spectrum may wait for its 50 ms analysis.
    assert max(call_seconds[1:]) < analysis_seconds / 5, call_seconds[:5]
    assert run_seconds < analysis_seconds * 40 / 2
    assert "stop" not in [name for name, _ in collector.documents]
    assert callback.wait_for_analysis(timeout=60) == 40
    callback.flush(timeout=60)
    callback.close()
    assert [name for name, _ in collector.documents][-1] == "stop"


def test_waiting_for_a_future_event_times_out(rig):
    _, _, _, callback, _ = rig
    status = callback.analysed.set(0)
    status.wait(5)  # no run yet: nothing to wait for
    with pytest.raises(ValueError, match="integer"):
        callback.analysed.set("latest")
    with pytest.raises(ValueError, match=">= 0"):
        callback.wait_for_analysis(-1)


def test_invalid_configuration_is_rejected():
    with pytest.raises(ValueError, match="must differ"):
        RamanTransitionCallback(analysis_stream="x", transitions_stream="x")
    with pytest.raises(ValueError, match="spectrum_key"):
        RamanTransitionCallback(spectrum_key="")
    with pytest.raises(ValueError, match="max_step"):
        RamanTransitionCallback(detector_options={"threshold": 1.0, "max_step": 2.0})


def test_a_tiled_writer_behind_the_callback_stores_the_analysis_beside_the_raw_data(tmp_path):
    from bluesky_tiled_plugins import TiledWriter

    from insitu.beamline.catalog import close_catalog, open_catalog

    catalog = open_catalog(tmp_path / "catalog")
    callback = RamanTransitionCallback()
    try:
        callback.subscribe(TiledWriter(catalog))
        engine = RunEngine({})
        engine.subscribe(callback)
        stage = SoftStage(name="stage")
        raman = SimulatedRaman(name="raman", stage=stage)
        uid = ramp(engine, stage, raman, TEMPERATURES[110:150])
        callback.flush(timeout=120)
        run = catalog[uid]
        assert {"primary", "raman_analysis", "transitions"} <= set(run)
        analysis = run["raman_analysis"].read()
        assert len(analysis["crystalline_total"]) == 40
        assert analysis["crystalline_z"].values[-1] > 10.0
        kinds = list(run["transitions"].read()["kind"].values)
        assert kinds == ["crystallization_onset", "crystallized"]
    finally:
        callback.close()
        close_catalog(catalog)
