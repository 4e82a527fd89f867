"""Raman and Zahner faults during real runs on the simulated beamline (step_eis, heat_ramp).

``test_reconnect.py`` proves the devices' reconnect with backoff under a plain RunEngine and
``bp.count``; here the same faults hit the beamline's own plans, with the stage, the watchdog,
live analysis and the catalog. Each fault starts from inside the RunEngine's document stream,
when the run has emitted a given event, so "before the fault" is exact. What must hold:

- Term drops the connection in the middle of a sweep during ``step_eis``: the analyzer
  reconnects by itself, the cut sweep is measured again, and the run completes with one event
  per scheduled (cycle, direction, temperature), the potentiostat off at the end;
- Term answers a sweep with an error, or the cell overloads: the run fails at once with the
  analyzer's name, the command and the error code; the potentiostat is off; the stage is parked
  at room temperature; the events before the fault are all in the catalog;
- the spectrometer stops answering during a ``heat_ramp``: it is reconnected once it answers,
  the cut spectrum is taken again (its start and end temperatures bracket the outage: a
  continuous ramp cannot go back for the steps it passed meanwhile) and the run completes;
- the spectrometer answers garbage for a moment: the connection is dropped and reopened, the
  spectrum taken again, nothing decoded from the garbage stored, and the run completes;
- the spectrometer refuses commands (an error reply): the run fails at once naming it and
  LabSpec's error, the events before are kept, the stage is parked;
- a spectrometer that never comes back ends the ``heat_ramp`` with a clear ``ConnectionError``
  within the reconnect timeout (no hang), every event before it kept, the stage parked.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from bluesky.utils import RunEngineInterrupted

import insitu.beamline
from insitu import clock
from insitu.plans.heat_ramp import heat_ramp
from insitu.plans.safe_state import SAFE_TEMPERATURE_C
from insitu.plans.step_eis import step_eis, step_eis_schedule
from insitu.testing.recorders import RunRecorder, assert_no_event_lost, error_text

SPEEDUP = 200.0
EIS_PLAN = {"temperatures": [100.0, 150.0], "cycles": 1, "stabilize_s": 0.0, "rate": 50.0}
RAMP = {"start": 30.0, "stop": 90.0, "rate": 10.0, "every_C": 10.0}


@pytest.fixture
def beamline(tmp_path) -> Iterator[insitu.beamline.Beamline]:
    """The simulated beamline at 200x with live analysis; 6 s Raman exposures."""
    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": SPEEDUP, "seed": 1},
    }
    bl = insitu.beamline.load(config, table=False)
    bl.RE.waiting_hook = None
    bl.raman.exposure.put(6.0)
    yield bl
    bl.simulation.labspec.clear_fault()
    bl.simulation.term.clear_fault()
    bl.close()
    clock.reset()


def run(bl, plan, recorder: RunRecorder) -> BaseException | None:
    """Run ``plan``; return what the RunEngine raised, if anything."""
    try:
        bl.RE(plan, recorder)
    except (Exception, RunEngineInterrupted) as error:  # the outcome is checked after
        return error
    return None


def track(signal) -> list:
    """Every value ``signal`` takes from now on."""
    seen: list = []
    signal.subscribe(lambda value, **_: seen.append(value), run=False)
    return seen


# --- Zahner Term ----------------------------------------------------------------------------------
@pytest.mark.allow_slow(
    "EIS sweeps to 0.1 Hz: minutes of experiment time at the speed-up (issue 17)"
)
def test_step_eis_completes_every_point_when_term_drops_the_connection_mid_sweep(beamline):
    """Term closes the connection halfway through the 2nd sweep: the analyzer reconnects by
    itself and sweeps again; the run succeeds with exactly one complete spectrum per scheduled
    (cycle, direction, temperature), each fitted live; the potentiostat ends off."""
    bl, term = beamline, beamline.simulation.term
    connected = track(bl.eis.connected)
    recorder = RunRecorder(1, lambda: term.inject_fault("drop_connection_mid_sweep"))
    error = run(bl, step_eis(bl.stage, bl.eis, **EIS_PLAN), recorder)
    assert error is None, error_text(error)
    stop = assert_no_event_lost(bl, recorder, derived="eis_fit")
    assert stop["exit_status"] == "success"
    assert connected == [0, 1]  # the link was lost during the run, and came back
    assert bl.eis.reconnector.state == "up"
    schedule = step_eis_schedule(EIS_PLAN["temperatures"], EIS_PLAN["cycles"])
    measured = [
        (e["data"]["cycle"], e["data"]["direction"], e["data"]["stage_setpoint"])
        for e in recorder.primary
    ]
    assert measured == [(c, d, float(t)) for c, d, t in schedule]
    table = bl.catalog[recorder.start["uid"]]["primary"].read()
    z_real = np.asarray(table["eis_z_real"])
    assert z_real.shape == (len(schedule), 57) and np.all(np.isfinite(z_real))
    assert not term.potentiostat_on


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "arm", "says"),
    [
        ("error_reply", {"command": "EIS", "code": 42}, r"to EIS (error code 42)"),
        ("overload", {}, "error code 300"),
    ],
)
def test_a_thales_error_during_step_eis_fails_the_run_cleanly_with_the_potentiostat_off(
    beamline, fault, arm, says
):
    """Term answers the 2nd sweep with an error (or the cell overloads): the run fails at once,
    the caller is told the analyzer, the command and the error code; the potentiostat is off,
    the stage is parked at room temperature, and the first event is in the catalog."""
    bl, term, linkam = beamline, beamline.simulation.term, beamline.simulation.linkam
    recorder = RunRecorder(1, lambda: term.inject_fault(fault, **arm))
    error = run(bl, step_eis(bl.stage, bl.eis, **EIS_PLAN), recorder)
    assert error is not None
    told = error_text(error)
    assert "eis" in told and says in told, told
    stop = assert_no_event_lost(bl, recorder, derived="eis_fit")
    assert stop["exit_status"] == "fail"
    assert len(recorder.primary) == 1
    assert not term.potentiostat_on
    assert [on for _, on in term.potentiostat_log][-2:] == [True, False]
    assert linkam.limit == SAFE_TEMPERATURE_C  # the park's ramp: what it keeps if we die now
    assert bl.stage.position == pytest.approx(SAFE_TEMPERATURE_C, abs=1.0)


# --- the Raman spectrometer -----------------------------------------------------------------------
@pytest.mark.allow_slow(
    "waits out the spectrometer's 1 s reply timeout and the reconnect backoff in wall time"
)
def test_heat_ramp_goes_on_through_a_spectrometer_that_stops_answering(beamline):
    """LabSpec goes silent for 1.5 wall s after the 2nd spectrum: the spectrometer notices (a
    reply timeout of 1 s here), reconnects once LabSpec answers, takes the cut spectrum again,
    and the run completes; every spectrum is complete, in the catalog with its analysis, and
    labelled with the temperatures it was really taken between."""
    bl, labspec = beamline, beamline.simulation.labspec
    bl.raman.backend.client.timeout_s = 1.0  # the beamline's 20 s would make this test slow
    connected = track(bl.raman.connected)

    def silence() -> None:
        labspec.inject_fault("no_reply")
        threading.Timer(1.5, labspec.clear_fault).start()

    recorder = RunRecorder(2, silence)
    # To 150 C: the ramp outlasts the outage and its reconnection (3 s of wall time left after
    # the 2nd spectrum; to 90 C a loaded CI reconnected after the ramp had ended, at the top).
    ramp = {**RAMP, "stop": 150.0}
    error = run(bl, heat_ramp(bl.stage, [bl.raman], **ramp), recorder)
    assert error is None, error_text(error)
    stop = assert_no_event_lost(bl, recorder, derived="raman_analysis")
    assert stop["exit_status"] == "success"
    assert connected[:1] == [0] and connected[-1] == 1
    assert len(recorder.primary) >= 3
    table = bl.catalog[recorder.start["uid"]]["primary"].read()
    spectra = np.asarray(table["raman_spectrum"])
    assert spectra.shape[1] == 1600 and np.all(np.isfinite(spectra))
    start = np.asarray(table["stage_temperature_start"])
    end = np.asarray(table["stage_temperature_end"])
    # Rising while the ramp runs; once it holds at the top (the outage can outlast the ramp at
    # 200x) the controller's 0.1 C reading flickers by a count either side of the setpoint, so
    # a spectrum there may start one count above and end one below (CI: 90.1 -> 89.9).
    assert np.all(end >= start - 0.2 - 1e-9) and np.all(np.diff(start) > 0)
    assert np.all(end[start < ramp["stop"] - 1.0] >= start[start < ramp["stop"] - 1.0])
    # The spectrum cut by the silence was retaken: it spans the outage, not one 6 s exposure.
    spans = end - start
    assert spans[2] > 3 * max(spans[0], spans[1]), spans


@pytest.mark.slow
def test_a_spectrometer_that_never_comes_back_ends_heat_ramp_with_a_clear_error(beamline):
    """LabSpec drops every connection for good after the 2nd spectrum: within the reconnect
    timeout (3 s here) the run fails with a ConnectionError naming the spectrometer, no event
    is lost, and the stage is parked at room temperature (its last command, if we die now)."""
    bl, labspec, linkam = beamline, beamline.simulation.labspec, beamline.simulation.linkam
    bl.raman.reconnector.give_up_after = 3.0  # wall s; 300 s on the beamline
    recorder = RunRecorder(2, lambda: labspec.inject_fault("disconnect"))
    started = time.monotonic()
    error = run(bl, heat_ramp(bl.stage, [bl.raman], **RAMP), recorder)
    assert time.monotonic() - started < 60.0  # bounded by the reconnect timeout: no hang
    told = error_text(error)
    assert "raman" in told and "did not come back" in told, told
    stop = assert_no_event_lost(bl, recorder, derived="raman_analysis")
    assert stop["exit_status"] == "fail"
    assert "raman" in stop["reason"], stop["reason"]
    assert len(recorder.primary) == 2
    assert linkam.limit == SAFE_TEMPERATURE_C
    assert bl.stage.position == pytest.approx(SAFE_TEMPERATURE_C, abs=1.0)


@pytest.mark.slow
def test_the_stop_document_itself_names_the_analyzer_and_its_error(beamline):
    """Term answers the 2nd sweep with error 42: the stop document's reason, what stays in the
    catalog for whoever reads the run later, names the analyzer, the command and the code."""
    bl, term = beamline, beamline.simulation.term
    recorder = RunRecorder(1, lambda: term.inject_fault("error_reply", command="EIS", code=42))
    run(bl, step_eis(bl.stage, bl.eis, **EIS_PLAN), recorder)
    bl.flush()
    stop = bl.catalog[recorder.start["uid"]].stop
    assert stop["exit_status"] == "fail"
    assert "eis" in stop["reason"] and "to EIS (error code 42)" in stop["reason"], stop["reason"]


@pytest.mark.slow
def test_heat_ramp_goes_on_through_garbage_from_the_spectrometer(beamline):
    """LabSpec answers with non-protocol bytes for 0.3 wall s after the 2nd spectrum (a link
    out of step): the spectrometer drops that connection, reconnects, takes the spectrum
    again, and the run completes; nothing decoded from the garbage is stored."""
    bl, labspec = beamline, beamline.simulation.labspec
    connected = track(bl.raman.connected)

    def garble() -> None:
        labspec.inject_fault("garbage")
        threading.Timer(0.3, labspec.clear_fault).start()

    recorder = RunRecorder(2, garble)
    error = run(bl, heat_ramp(bl.stage, [bl.raman], **RAMP), recorder)
    assert error is None, error_text(error)
    stop = assert_no_event_lost(bl, recorder, derived="raman_analysis")
    assert stop["exit_status"] == "success"
    assert connected[:1] == [0] and connected[-1] == 1
    spectra = np.asarray(bl.catalog[recorder.start["uid"]]["primary"].read()["raman_spectrum"])
    assert len(spectra) >= 3 and spectra.shape[1] == 1600
    assert np.all(np.isfinite(spectra)) and np.all(spectra.max(axis=1) > 0)


@pytest.mark.slow
def test_a_spectrometer_error_reply_fails_heat_ramp_cleanly_and_parks_the_stage(beamline):
    """LabSpec refuses every command after the 2nd spectrum (an error reply): the run fails at
    once, the caller is told the spectrometer and LabSpec's error, every event before it is in
    the catalog, and the stage is parked at room temperature."""
    bl, labspec, linkam = beamline, beamline.simulation.labspec, beamline.simulation.linkam
    recorder = RunRecorder(2, lambda: labspec.inject_fault("error"))
    error = run(bl, heat_ramp(bl.stage, [bl.raman], **RAMP), recorder)
    assert error is not None
    told = error_text(error)
    # (the device's name comes with the failed Status; LabSpec's error names the command)
    assert "device=raman" in told, told
    assert re.search(r"labspec6 '\w+' failed: 'Error injected fault'", told), told
    stop = assert_no_event_lost(bl, recorder, derived="raman_analysis")
    assert stop["exit_status"] == "fail"
    assert len(recorder.primary) == 2
    assert linkam.limit == SAFE_TEMPERATURE_C
    assert bl.stage.position == pytest.approx(SAFE_TEMPERATURE_C, abs=1.0)
