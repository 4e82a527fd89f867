"""A campaign at the message level: whatever message it is stopped at, the stage ends parked.

The over-the-wire tests (``tests/faults/test_plans_safe_state.py``) stop a campaign at a few
points; here a reduced ``anneal_and_measure`` runs on instant fakes, so it can be stopped at
*every* one of its messages, by an error raised there and by a pause then an abort there. What
the stage was told (its setpoint, which the fake stage reaches at once) is checked after every
message: always one of the plan's own temperatures, never above its top, and 30 C at the end.

The stop is put *into* the plan (``plan_mutator``), where a failing device's error or a
person's pause arrives; an exception raised in a RunEngine ``msg_hook`` would not be: the
RunEngine ends the run without throwing it into the plan, so no cleanup would run at all.
"""

from __future__ import annotations

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine
from bluesky.preprocessors import plan_mutator
from bluesky.utils import Msg, RunEngineInterrupted

from insitu import clock
from insitu.plans import anneal_and_measure
from insitu.testing.devices import FakeDetector, FakeStage

TOP = 160.0
PARK = 30.0
START = 25.0
OWN_TEMPERATURES = {START, PARK, 80.0, 120.0, TOP}


class _StoppedHereError(RuntimeError):
    """The error raised at the chosen message."""


class _Walk:
    """One RunEngine, fresh fakes per campaign; the setpoint recorded after every message."""

    def __init__(self) -> None:
        self.RE = RunEngine({})
        self.RE.msg_hook = lambda msg: self.setpoints.append(self.stage.setpoint.get())
        self.setpoints: list[float] = []

    def _stop_at(self, stop_at: int, how: str):
        count = 0

        def error(msg):
            raise _StoppedHereError(f"stopped at message {stop_at} ({msg.command})")
            yield msg  # a generator that raises where the message would have gone

        def pause(msg):
            yield Msg("pause", None, defer=False)
            return (yield msg)

        def insert(msg):
            nonlocal count
            count += 1
            if count == stop_at:
                return (error if how == "error" else pause)(msg), None
            return None, None

        return insert

    def campaign(self, stop_at: int | None = None, how: str = "error") -> None:
        self.stage = FakeStage(name="stage", temperature=START)
        raman, eis = FakeDetector(name="raman"), FakeDetector(name="eis")
        self.setpoints = []

        def change_sample(index, temperature):
            yield from bps.null()

        plan = anneal_and_measure(
            self.stage,
            raman,
            eis,
            anneal_temperatures=[TOP],
            rate=50,
            dwell_s=30,
            raman_every_C=40,
            eis_temperatures=[80.0, 120.0],
            stabilize_s=5,
            cycles=1,
            eis_rate=50,
            change_sample=change_sample,
            band_settle_s=0,
        )
        if stop_at is None:
            self.RE(plan)
        elif how == "error":
            with pytest.raises(_StoppedHereError):
                self.RE(plan_mutator(plan, self._stop_at(stop_at, how)))
        else:
            with pytest.raises(RunEngineInterrupted):
                self.RE(plan_mutator(plan, self._stop_at(stop_at, how)))
            assert self.RE.state == "paused"
            self.RE.abort(reason="stopped by a person")
        assert self.RE.state == "idle"


@pytest.fixture
def walk():
    clock.set_speedup(1e5)  # the dwell and the stabilisation waits are experiment time
    yield _Walk()
    clock.reset()


def test_every_message_of_a_campaign_is_checked_and_it_ends_parked(walk):
    walk.campaign()
    assert len(walk.setpoints) > 100  # a whole anneal + impedance campaign, message by message
    assert set(walk.setpoints) <= OWN_TEMPERATURES and max(walk.setpoints) == TOP
    assert walk.stage.setpoint.get() == PARK


@pytest.mark.allow_slow("~150 whole campaigns of ~150 messages each, on fakes")
@pytest.mark.parametrize("how", ["error", "pause then abort"])
def test_stopped_at_any_message_the_stage_is_parked_and_never_sent_above_its_top(walk, how):
    walk.campaign()
    total = len(walk.setpoints)
    for stop_at in range(1, total + 1):
        walk.campaign(stop_at, how)
        told = walk.setpoints + [walk.stage.setpoint.get()]
        assert set(told) <= OWN_TEMPERATURES and max(told) <= TOP, (how, stop_at)
        moved = any(setpoint != START for setpoint in walk.setpoints)
        final = walk.stage.setpoint.get()
        assert final == PARK or (not moved and final == START), (how, stop_at, final)
