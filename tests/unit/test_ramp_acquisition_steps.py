"""ramp_acquisition: one acquisition per step, the step at the ramp's stop included."""

from __future__ import annotations

import threading
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine
from ophyd import Component as Cpt
from ophyd import Signal
from ophyd.status import StatusBase

from insitu.plans.heat_ramp import RampSignals, ramp_acquisition
from insitu.testing.devices import FakeDetector, FakeStage

pytestmark = pytest.mark.unit

TOLERANCE_C = 0.05  # the stage says it arrived this short of its setpoint


class _CreepingTemperature(Signal):
    """A stage reading that moves 1 C towards the setpoint per read and stops within the
    tolerance of it, finishing the move then (as a real stage's settle check does)."""

    def get(self, **kwargs):
        stage = self.parent
        if stage is not None and stage.moving is not None:
            target = stage.setpoint.get() - TOLERANCE_C
            value = min(target, super().get(**kwargs) + 1.0)
            self.put(value)
            if value >= target:
                moving, stage.moving = stage.moving, None
                moving.set_finished()
        return super().get(**kwargs)


class _RampingStage(FakeStage):
    temperature = Cpt(_CreepingTemperature, value=30.0, kind="hinted")

    def __init__(self, *args, **kwargs):
        self.moving: StatusBase | None = None
        super().__init__(*args, temperature=30.0, **kwargs)

    def set(self, value: float) -> StatusBase:
        self.setpoint.put(float(value))
        self.moving = StatusBase()
        return self.moving


# From 30.3 C the steps are 40.3 ... 80.3, and 90.3 lies past the stop: the last is at 90.
@pytest.mark.parametrize("start", [30.0, 30.3, 29.8])
def test_a_ramp_that_ends_within_the_stage_tolerance_of_stop_still_acquires_the_stop_step(
    real_time_clock, start
):
    real_time_clock.set_speedup(1000.0)  # the plan's polling sleeps, 0.5 s each at 1x
    stage, detector = _RampingStage(name="stage"), FakeDetector(name="det")
    stage.temperature.put(start)
    engine = RunEngine({})
    engine.waiting_hook = None
    events = []
    engine.subscribe(lambda name, doc: events.append(doc) if name == "event" else None)

    def plan():
        yield from bps.open_run()
        yield from ramp_acquisition(
            stage,
            [detector],
            stop=90.0,
            rate=600.0,
            every_C=10.0,
            every_s=None,
            signals=RampSignals("stage"),
        )
        yield from bps.close_run()

    engine(plan())
    ends = [doc["data"]["stage_temperature_end"] for doc in events]
    assert len(ends) == 6, ends  # 40, 50, 60, 70, 80 and 90 C
    assert ends[-1] == pytest.approx(90.0 - TOLERANCE_C)


class _SlowDetector(FakeDetector):
    """Each acquisition takes ``wall_s`` wall seconds; records the experiment time it began."""

    def __init__(self, *args, wall_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.wall_s = wall_s
        self.started: list[float] = []

    def trigger(self) -> StatusBase:
        from insitu import clock

        self.started.append(clock.now())
        self.triggers += 1
        if self.triggers > 8:  # the ramp ended after 4: slots caught up on, back to back
            raise RuntimeError(f"{self.name}: still acquiring at trigger {self.triggers}")
        status = StatusBase()
        threading.Timer(self.wall_s, status.set_finished).start()
        return status


class _EndlessRamp(FakeStage):
    """A ramp that ends once the detector has acquired ``acquisitions`` times."""

    def __init__(self, *args, detector, acquisitions: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.detector, self.acquisitions = detector, acquisitions

    def set(self, value: float) -> StatusBase:
        self.setpoint.put(float(value))
        status = StatusBase()

        def finish_when_done():
            while self.detector.triggers < self.acquisitions:
                time.sleep(0.01)
            status.set_finished()

        threading.Thread(target=finish_when_done, daemon=True).start()
        return status


def test_a_timed_ramp_acquisition_that_overruns_its_slot_waits_for_the_next_one(real_time_clock):
    # 100x: each acquisition takes 50 experiment s, the slots are 20 s apart. One that ends
    # past its next slot waits for the one after (60 s between starts), never starts again at
    # once to catch up (50 s: back to back, the spectra bunched; and as the slots fell further
    # behind, the ramp's end was never looked at: it acquired on for ever).
    real_time_clock.set_speedup(100.0)
    detector = _SlowDetector(name="det", wall_s=0.5)
    stage = _EndlessRamp(name="stage", detector=detector, acquisitions=4)
    engine = RunEngine({})
    engine.waiting_hook = None

    def plan():
        yield from bps.open_run()
        yield from ramp_acquisition(
            stage,
            [detector],
            stop=500.0,
            rate=10.0,
            every_C=None,
            every_s=20.0,
            signals=RampSignals("stage"),
        )
        yield from bps.close_run()

    engine(plan())
    gaps = [b - a for a, b in zip(detector.started, detector.started[1:], strict=False)]
    assert len(gaps) >= 3 and min(gaps) >= 57.0, gaps
