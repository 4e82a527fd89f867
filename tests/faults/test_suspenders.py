"""Temperature-band and connection suspenders: what must hold.

* An isothermal measurement whose temperature leaves the band is suspended (the RunEngine stops
  taking points), and resumes only after the temperature has been back in the band for the settle
  time (experiment seconds); the run then completes with every point.
* Bad arguments raise at once with a message naming the value and the allowed range.
"""

from __future__ import annotations

import math
import threading
import time

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import pytest
from bluesky import RunEngine
from ophyd import Component as Cpt
from ophyd import Device, Signal

from insitu import clock
from insitu.plans.suspenders import (
    connection_suspenders,
    isothermal,
    temperature_band_suspender,
)
from insitu.testing.devices import FakeStage

SPEEDUP = 100.0


def fake_stage() -> FakeStage:
    """A stage at 500 C whose limits are those of a TS1500 cooled with liquid nitrogen."""
    return FakeStage(name="stage", temperature=500.0, limits=(-196.0, 1500.0))


@pytest.fixture
def fast_clock():
    clock.set_speedup(SPEEDUP)
    yield clock
    clock.reset()


class Recorder:
    """RunEngine messages and documents, each stamped with experiment time."""

    def __init__(self, RE: RunEngine) -> None:
        self.messages: list[tuple[float, str, tuple]] = []
        self.documents: list[tuple[str, dict]] = []
        RE.msg_hook = lambda msg: self.messages.append((clock.now(), msg.command, msg.args))

    def __call__(self, name: str, doc: dict) -> None:
        self.documents.append((name, doc))

    def times(self, command: str) -> list[float]:
        return [t for t, c, _ in self.messages if c == command]

    def events(self) -> list[dict]:
        return [doc for name, doc in self.documents if name == "event"]

    def points(self) -> list[int]:
        """The points measured, by sequence number.

        A suspension between a point's ``save`` and the next ``checkpoint`` makes bluesky rewind
        to that checkpoint and take the point again: it may appear twice, never be missing.
        """
        return sorted({doc["seq_num"] for doc in self.events()})


def _after_event(recorder: Recorder, n: int, action) -> None:
    """Run ``action`` in a thread once the ``n``-th event document has been emitted."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while len(recorder.events()) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        action()

    threading.Thread(target=watch, daemon=True).start()


def test_temperature_leaving_the_band_suspends_until_back_for_the_settle_time(fast_clock):
    stage = fake_stage()
    det = Signal(name="det", value=1.0)
    RE = RunEngine({})
    recorder = Recorder(RE)
    back_in_band: list[float] = []

    def excursion() -> None:
        stage.temperature.put(512.0)  # 7 C above a 5 C band
        time.sleep(0.3)
        stage.temperature.put(501.0)
        back_in_band.append(clock.now())

    _after_event(recorder, 2, excursion)
    settle = 40.0  # experiment seconds: 0.4 s of wall time at 100x
    plan = isothermal(
        bp.count([det], num=6, delay=0.05), stage, 500.0, band=5.0, settle_time=settle
    )
    RE(plan, recorder)

    assert [doc["exit_status"] for name, doc in recorder.documents if name == "stop"] == ["success"]
    assert recorder.points() == [1, 2, 3, 4, 5, 6]  # every point measured
    suspended = [args for _, c, args in recorder.messages if c == "_start_suspender"]
    assert len(suspended) == 1
    justification = suspended[0][2]
    assert "stage.temperature = 512.0 C is outside the band 500 +/- 5 C" in justification
    (resumed_at,) = recorder.times("_resume_from_suspender")
    assert resumed_at - back_in_band[0] >= 0.95 * settle
    # No point was taken while suspended: between the trip and the resume, no 'save'.
    tripped_at = recorder.times("_start_suspender")[0]
    assert not [t for t in recorder.times("save") if tripped_at < t < resumed_at]
    assert RE.suspenders == ()  # suspend_wrapper removed it


def test_a_second_excursion_during_the_settle_time_restarts_the_wait(fast_clock):
    stage = fake_stage()
    det = Signal(name="det", value=1.0)
    RE = RunEngine({})
    recorder = Recorder(RE)
    last_back: list[float] = []
    settle = 50.0  # 0.5 s wall

    def two_excursions() -> None:
        stage.temperature.put(480.0)
        time.sleep(0.1)
        stage.temperature.put(499.0)  # back, but only for ~0.15 s of the 0.5 s settle
        time.sleep(0.15)
        stage.temperature.put(480.0)
        time.sleep(0.1)
        stage.temperature.put(499.0)
        last_back.append(clock.now())

    _after_event(recorder, 1, two_excursions)
    RE(isothermal(bp.count([det], num=3, delay=0.05), stage, 500.0, settle_time=settle), recorder)

    assert recorder.points() == [1, 2, 3]
    resumes = recorder.times("_resume_from_suspender")
    # Whatever bluesky does with the stacked suspensions, the plan only moves on again once the
    # temperature has been back for the settle time after the *second* excursion.
    assert resumes and max(resumes) - last_back[0] >= 0.95 * settle
    saves_in_between = [t for t in recorder.times("save") if last_back[0] - 0.45 < t < max(resumes)]
    assert saves_in_between == []


def test_isothermal_eis_on_the_simulated_beamline_waits_out_a_temperature_excursion(
    sim_beamline, monkeypatch
):
    beamline = sim_beamline
    stage, eis = beamline.stage, beamline.eis
    recorder = Recorder(beamline.RE)
    stop_calls: list[float] = []
    stage_stop = stage.stop

    def recording_stop(*args, **kwargs):
        stage_stop(*args, **kwargs)
        stop_calls.append(clock.now())

    monkeypatch.setattr(stage, "stop", recording_stop)
    excursion_errors: list[BaseException] = []
    stage.rate.put(50.0)
    eis.f_min.put(100.0)  # a short sweep: the test is about the suspension, not the spectrum
    # Every reading as the stage's poller takes it (experiment time, C): the resume is judged
    # from the one that brought the stage back, not from when this test's thread saw one.
    readings: list[tuple[float, float]] = []
    stage.temperature.subscribe(
        lambda value, timestamp, **_: readings.append((timestamp, value)), run=False
    )

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, f"stage never {what}"
            time.sleep(0.01)

    def excursion() -> None:
        try:
            # A disturbance: the stage is sent 20 C up, then back to the target.
            stage.driver.set_limit(140.0)
            stage.driver.start()
            # Past the band's edge (125 C), not further: the suspender trips there and the
            # RunEngine holds the stage where it is, which on a loaded machine can be 125.9.
            wait_for(lambda: stage.temperature.get() > 125.0, "left the band")
            left_band.set()
            # Suspending, the RunEngine calls stop() on the stage it moved, which holds a
            # ramping stage where it is: send it back only after that call (not after a guessed
            # delay: on a loaded machine the RunEngine may take longer to get there).
            wait_for(lambda: recorder.times("_start_suspender"), "tripped the suspender")
            wait_for(lambda: stop_calls, "stopped by the suspending RunEngine")
            stage.driver.set_limit(120.0)
            stage.driver.start()
            wait_for(lambda: abs(stage.temperature.get() - 120.0) < 4.0, "came back")
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            # Without this, a failed excursion leaves the RunEngine suspended until the timeout.
            excursion_errors.append(error)
            beamline.RE.request_pause(defer=False)
        finally:
            left_band.set()

    left_band = threading.Event()

    def shot_then_wait_for_the_disturbance(detectors):
        yield from bps.one_shot(detectors)
        # The disturbance must come while the plan measures, not after its last point: on a
        # loaded machine the excursion thread can start after four short sweeps are done.
        while not left_band.is_set():
            yield from bps.sleep(0.02)

    def campaign():
        yield from bps.mv(stage, 120.0)
        measure = bp.count([eis, stage], num=4, per_shot=shot_then_wait_for_the_disturbance)
        return (yield from isothermal(measure, stage, 120.0, band=5.0, settle_time=60.0))

    _after_event(recorder, 1, excursion)
    try:
        beamline.RE(campaign(), recorder)
    finally:
        assert not excursion_errors, excursion_errors
    (stop,) = [doc for name, doc in recorder.documents if name == "stop"]
    assert stop["exit_status"] == "success"
    events = recorder.events()
    assert recorder.points() == [1, 2, 3, 4]
    assert all(ev["data"]["eis_z_real"].size > 0 for ev in events)
    justifications = [args[2] for _, c, args in recorder.messages if c == "_start_suspender"]
    assert justifications and "outside the band 120 +/- 5 C" in justifications[0]
    resumed_at = max(recorder.times("_resume_from_suspender"))
    back_in_band = [
        t
        for (_, before), (t, value) in zip(readings, readings[1:], strict=False)
        if abs(before - 120.0) > 5.0 >= abs(value - 120.0) and t < resumed_at
    ]
    assert back_in_band, readings
    assert resumed_at - back_in_band[-1] >= 0.9 * 60.0, (resumed_at, back_in_band)
    # Every point kept was measured in the band: the one the excursion cut was measured again.
    assert all(abs(ev["data"]["stage_temperature"] - 120.0) <= 5.0 for ev in events)


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target": math.nan}, ValueError, "target nan C is not a finite"),
        ({"target": 2000.0}, ValueError, "target 2000.0 C is outside the stage limits -196.0 to"),
        ({"target": "hot"}, TypeError, "target 'hot' is not a number"),
        ({"band": 0.0}, ValueError, "band 0.0 C is outside the allowed range: > 0 C"),
        ({"band": -1}, ValueError, "band -1 C"),
        ({"settle_time": -5.0}, ValueError, "settle_time -5.0 s is outside the allowed range"),
        ({"settle_time": math.inf}, ValueError, "settle_time inf s"),
        ({"settle_time": True}, TypeError, "settle_time True is not a number"),
    ],
)
def test_temperature_band_suspender_rejects_bad_arguments(kwargs, error, message):
    stage = fake_stage()
    arguments = {"target": 500.0, **kwargs}
    target = arguments.pop("target")
    with pytest.raises(error, match=message):
        temperature_band_suspender(stage, target, **arguments)
    with pytest.raises(error, match=message):
        isothermal(bp.count([]), stage, target, **arguments)


def test_suspenders_need_the_signals_they_watch():
    with pytest.raises(TypeError, match="det has no temperature Signal"):
        temperature_band_suspender(Signal(name="det"), 100.0)
    with pytest.raises(TypeError, match="stage has no 'connected' Signal"):
        connection_suspenders(Device(name="stage"))  # its .connected: ophyd's bool
    with pytest.raises(ValueError, match="settle_time -1.0 s"):
        connection_suspenders(settle_time=-1.0)
    with pytest.raises(TypeError, match="is a function"):
        isothermal(bp.count, fake_stage(), 100.0)
    assert connection_suspenders() == []


def test_the_resume_delay_is_experiment_time_at_the_moment_of_resuming(fast_clock):
    stage = fake_stage()
    suspender = temperature_band_suspender(stage, 500.0, settle_time=60.0)
    assert suspender._sleep == pytest.approx(60.0 / SPEEDUP)
    clock.set_speedup(10.0)
    assert suspender._sleep == pytest.approx(6.0)


def test_a_connection_suspender_trips_on_zero_and_resumes_on_one(fast_clock):
    class Instrument(Device):
        connected = Cpt(Signal, value=1)

    device = Instrument(name="spectrometer")
    det = Signal(name="det", value=1.0)
    RE = RunEngine({})
    recorder = Recorder(RE)

    def blip() -> None:
        device.connected.put(0)
        time.sleep(0.2)
        device.connected.put(1)

    _after_event(recorder, 1, blip)
    suspenders = connection_suspenders(device, settle_time=10.0)
    from bluesky.preprocessors import suspend_wrapper

    RE(suspend_wrapper(bp.count([det], num=4, delay=0.05), suspenders), recorder)
    assert recorder.points() == [1, 2, 3, 4]
    justifications = [args[2] for _, c, args in recorder.messages if c == "_start_suspender"]
    assert justifications == [
        "spectrometer.connected = 0: the link is down; reconnecting with backoff, the plan "
        "resumes 10 s (experiment time) after it is back"
    ]
