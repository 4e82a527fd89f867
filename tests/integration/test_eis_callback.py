"""EISFitCallback on a real RunEngine: derived streams in the same run, in order, valid, async."""

from __future__ import annotations

import logging
import time

import bluesky.plans as bp
import event_model
import numpy as np
import pytest
from bluesky import RunEngine
from ophyd import Component, Device, Signal

from insitu.analysis.arrhenius import BOLTZMANN_EV_PER_K, CELSIUS_ZERO_K
from insitu.analysis.callbacks import EISFitCallback
from insitu.analysis.callbacks import eis_fit as eis_fit_module
from insitu.analysis.eis import FILM_MODELS, FilmGeometry, circuit_impedance, conductivity
from insitu.testing.devices import SoftStage

EA_EV = 0.36
SIGMA_30C = 5.59e-9  # S/cm, the paper's 650 C film
TEMPERATURES_C = [100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0]
FREQUENCY = np.logspace(6, -1, 61)


def film_resistance_at(temperature_c: float) -> float:
    """R of the paper's geometry for sigma*T = A exp(-Ea/kT) through SIGMA_30C."""
    t, t30 = temperature_c + CELSIUS_ZERO_K, 30.0 + CELSIUS_ZERO_K
    sigma = SIGMA_30C * (t30 / t) * np.exp(-EA_EV / BOLTZMANN_EV_PER_K * (1 / t - 1 / t30))
    geometry = FilmGeometry()
    return float(geometry.gap / (sigma * geometry.electrode_length * geometry.thickness) / 100.0)


class SyntheticImpedanceAnalyzer(Device):
    """Measures a film + blocking electrodes spectrum at the stage's temperature, 1 % noise."""

    frequency = Component(Signal, value=FREQUENCY, kind="normal")
    z_real = Component(Signal, value=np.zeros(FREQUENCY.size), kind="normal")
    z_imag = Component(Signal, value=np.zeros(FREQUENCY.size), kind="normal")

    def __init__(self, *args, stage: SoftStage, broken_at_c: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._stage = stage
        self._broken_at_c = broken_at_c
        self._rng = np.random.default_rng(42)

    def trigger(self):
        temperature_c = self._stage.temperature.get()
        params = {
            "R1": film_resistance_at(temperature_c),
            "CPE1_0": 2e-11,
            "CPE1_1": 0.9,
            "CPE2_0": 1e-7,
            "CPE2_1": 0.8,
        }
        z = circuit_impedance("p(R1,CPE1)-CPE2", params, FREQUENCY)
        noise = self._rng.standard_normal((2, FREQUENCY.size))
        z = z + 0.01 * np.abs(z) * (noise[0] + 1j * noise[1])
        if self._broken_at_c is not None and temperature_c == self._broken_at_c:
            z[10] = np.nan  # a glitch the fit must report, not swallow
        self.z_real.put(z.real.copy())
        self.z_imag.put(z.imag.copy())
        return super().trigger()


@pytest.fixture
def beamline(collect_documents):
    engine = RunEngine({})
    stage = SoftStage(name="stage")
    analyzer = SyntheticImpedanceAnalyzer(name="eis", stage=stage)
    callback = EISFitCallback()
    collector = collect_documents()
    callback.subscribe(collector)
    yield engine, stage, analyzer, callback, collector
    callback.close()


def run_ramp(engine, stage, analyzer):
    (uid,) = engine(bp.list_scan([analyzer], stage.temperature, TEMPERATURES_C))
    return uid


def test_eis_fit_stream_recovers_film_resistance_in_the_same_run(beamline):
    engine, stage, analyzer, callback, collector = beamline
    engine.subscribe(callback)
    uid = run_ramp(engine, stage, analyzer)
    callback.flush(timeout=60)

    names = [name for name, _ in collector.documents]
    assert names[0] == "start" and names[-1] == "stop"
    assert names.count("start") == 1 and names.count("stop") == 1
    fits = collector.stream("eis_fit")
    assert len(fits) == len(TEMPERATURES_C)
    for event, temperature_c in zip(fits, TEMPERATURES_C, strict=True):
        data = event["data"]
        assert data["success"], data["error"]
        assert data["error"] == ""
        expected_r = film_resistance_at(temperature_c)
        assert data["film_resistance"] == pytest.approx(expected_r, rel=0.03)
        assert 0 < data["film_resistance_err"] < 0.03 * expected_r
        assert data["conductivity"] == pytest.approx(conductivity(expected_r), rel=0.03)
        assert data["temperature"] == pytest.approx(temperature_c + CELSIUS_ZERO_K)
        assert data["model"] in FILM_MODELS
        assert data["kk_valid"] is True
        assert data["chi2"] > 0
    # hot film: the blocking electrodes' tail is in the window; cold film: it is hidden
    assert fits[-1]["data"]["model"] == "p(R1,CPE1)-CPE2"
    assert fits[0]["data"]["model"] == "p(R1,CPE1)"
    # source_seq_num points back at the raw event that was fitted
    primary = collector.stream("primary")
    assert [e["data"]["source_seq_num"] for e in fits] == [e["seq_num"] for e in primary]
    assert [e["data"]["source_uid"] for e in fits] == [e["uid"] for e in primary]

    (summary,) = collector.stream("eis_arrhenius")
    assert summary["data"]["success"] and summary["data"]["group"] == "all"
    assert summary["data"]["Ea_eV"] == pytest.approx(EA_EV, abs=0.01)
    assert summary["data"]["sigma_30C"] == pytest.approx(SIGMA_30C, rel=0.15)

    # every derived descriptor belongs to the RunEngine's run
    derived = [
        doc
        for name, doc in collector.documents
        if name == "descriptor" and doc["name"] in ("eis_fit", "eis_arrhenius")
    ]
    assert len(derived) == 2
    assert all(doc["run_start"] == uid for doc in derived)
    stop = collector.documents[-1][1]
    assert stop["run_start"] == uid
    assert stop["num_events"]["eis_fit"] == len(TEMPERATURES_C)
    assert stop["num_events"]["eis_arrhenius"] == 1
    assert stop["num_events"]["primary"] == len(TEMPERATURES_C)


def test_every_forwarded_document_passes_the_event_model_schemas(beamline):
    engine, stage, analyzer, callback, collector = beamline
    engine.subscribe(callback)
    run_ramp(engine, stage, analyzer)
    callback.flush(timeout=60)
    for name, doc in collector.documents:
        event_model.schema_validators[event_model.DocumentNames(name)].validate(doc)
    # the derived events' values are plain JSON types, as their descriptors declare
    for event in collector.stream("eis_fit") + collector.stream("eis_arrhenius"):
        for value in event["data"].values():
            assert type(value) in (float, int, bool, str)


def test_derived_documents_come_before_stop_and_from_one_thread(beamline):
    engine, stage, analyzer, callback, collector = beamline
    engine.subscribe(callback)
    run_ramp(engine, stage, analyzer)
    callback.flush(timeout=60)
    names = [name for name, _ in collector.documents]
    last_derived = max(
        i
        for i, (name, doc) in enumerate(collector.documents)
        if name == "event" and doc in collector.stream("eis_arrhenius")
    )
    assert last_derived < names.index("stop")
    assert collector.threads == {"EISFitCallback"}


def test_the_run_engine_is_not_blocked_by_slow_fits(beamline, monkeypatch):
    engine, stage, analyzer, callback, collector = beamline
    fit_seconds = 0.25
    real_fit_film = eis_fit_module.fit_film

    def slow_fit_film(*args, **kwargs):
        time.sleep(fit_seconds)
        return real_fit_film(*args, **kwargs)

    monkeypatch.setattr(eis_fit_module, "fit_film", slow_fit_film)
    call_seconds = []

    def timed(name, doc):
        start = time.perf_counter()
        callback(name, doc)
        call_seconds.append(time.perf_counter() - start)

    engine.subscribe(timed)
    started = time.perf_counter()
    run_ramp(engine, stage, analyzer)
    run_seconds = time.perf_counter() - started
    assert max(call_seconds) < fit_seconds / 5
    assert run_seconds < fit_seconds * len(TEMPERATURES_C) / 2
    # the RunEngine is done, the fits are not: stop has not been forwarded yet
    assert "stop" not in [name for name, _ in collector.documents]
    callback.flush(timeout=60)
    assert [name for name, _ in collector.documents][-1] == "stop"
    assert len(collector.stream("eis_fit")) == len(TEMPERATURES_C)


def test_a_spectrum_that_cannot_be_fitted_gives_a_failed_event_and_a_logged_traceback(
    caplog, collect_documents
):
    engine = RunEngine({})
    stage = SoftStage(name="stage")
    analyzer = SyntheticImpedanceAnalyzer(name="eis", stage=stage, broken_at_c=200.0)
    callback = EISFitCallback()
    collector = collect_documents()
    callback.subscribe(collector)
    engine.subscribe(callback)
    with caplog.at_level(logging.ERROR, logger=eis_fit_module.__name__):
        run_ramp(engine, stage, analyzer)
        callback.flush(timeout=60)
    callback.close()
    fits = collector.stream("eis_fit")
    assert len(fits) == len(TEMPERATURES_C)
    failed = [e["data"] for e in fits if not e["data"]["success"]]
    assert len(failed) == 1
    assert "NaN" in failed[0]["error"] and "ValueError" in failed[0]["error"]
    assert np.isnan(failed[0]["film_resistance"])
    assert failed[0]["temperature"] == pytest.approx(200.0 + CELSIUS_ZERO_K)
    records = [r for r in caplog.records if r.exc_info is not None]
    assert records and "NaN" in str(records[0].exc_info[1])
    # the other eight still make an Arrhenius summary
    (summary,) = collector.stream("eis_arrhenius")
    assert summary["data"]["success"] and summary["data"]["n_points"] == len(TEMPERATURES_C) - 1


def test_runs_without_impedance_pass_through_untouched(beamline):
    engine, stage, _, callback, collector = beamline
    engine.subscribe(callback)
    engine(bp.count([stage], num=3))
    callback.flush(timeout=60)
    assert [name for name, _ in collector.documents] == [
        "start",
        "descriptor",
        "event",
        "event",
        "event",
        "stop",
    ]
    assert collector.stream("eis_fit") == []


def test_keys_are_configurable_and_temperature_is_optional(collect_documents):
    class Analyzer(Device):
        f = Component(Signal, value=FREQUENCY, kind="normal")
        re = Component(Signal, value=np.zeros(FREQUENCY.size), kind="normal")
        im = Component(Signal, value=np.zeros(FREQUENCY.size), kind="normal")

    analyzer = Analyzer(name="zahner")
    z = circuit_impedance("p(R1,CPE1)", {"R1": 1e8, "CPE1_0": 1e-10, "CPE1_1": 0.9}, FREQUENCY)
    analyzer.re.put(z.real)
    analyzer.im.put(z.imag)
    callback = EISFitCallback(
        frequency_key="zahner_f",
        z_real_key="zahner_re",
        z_imag_key="zahner_im",
        temperature_key=None,
        stream_name="impedance_fit",
    )
    collector = collect_documents()
    callback.subscribe(collector)
    engine = RunEngine({})
    engine.subscribe(callback)
    engine(bp.count([analyzer], num=2))
    callback.flush(timeout=60)
    callback.close()
    fits = collector.stream("impedance_fit")
    assert len(fits) == 2
    assert fits[0]["data"]["film_resistance"] == pytest.approx(1e8, rel=1e-4)
    assert np.isnan(fits[0]["data"]["temperature"])
    assert collector.stream("eis_arrhenius") == []  # no temperature, no Arrhenius summary


def test_a_failing_subscriber_is_reported_by_flush_not_swallowed(beamline):
    engine, stage, analyzer, callback, collector = beamline

    def broken(name, doc):
        raise RuntimeError("writer is down")

    callback.subscribe(broken)
    engine.subscribe(callback)
    engine(bp.count([stage], num=1))
    with pytest.raises(RuntimeError, match="subscriber") as raised:
        callback.flush(timeout=60)
    assert "writer is down" in str(raised.value.__cause__)
    # the healthy subscriber still got the whole run
    assert [name for name, _ in collector.documents][-1] == "stop"


def test_invalid_configuration_is_rejected():
    with pytest.raises(ValueError, match="temperature_unit"):
        EISFitCallback(temperature_unit="F")
    with pytest.raises(ValueError, match="arrhenius_form"):
        EISFitCallback(arrhenius_form="log")


def test_a_tiled_writer_behind_the_callback_stores_the_fits_beside_the_raw_data(tmp_path):
    from bluesky_tiled_plugins import TiledWriter

    from insitu.beamline.catalog import close_catalog, open_catalog

    catalog = open_catalog(tmp_path / "catalog")
    callback = EISFitCallback()
    try:
        callback.subscribe(TiledWriter(catalog))
        engine = RunEngine({})
        engine.subscribe(callback)
        stage = SoftStage(name="stage")
        uid = run_ramp(engine, stage, SyntheticImpedanceAnalyzer(name="eis", stage=stage))
        callback.flush(timeout=120)
        run = catalog[uid]
        assert {"primary", "eis_fit", "eis_arrhenius"} <= set(run)
        fits = run["eis_fit"].read()
        expected = [film_resistance_at(t) for t in TEMPERATURES_C]
        np.testing.assert_allclose(fits["film_resistance"].values, expected, rtol=0.03)
        assert run["eis_arrhenius"].read()["Ea_eV"].values[0] == pytest.approx(EA_EV, abs=0.01)
    finally:
        callback.close()
        close_catalog(catalog)
