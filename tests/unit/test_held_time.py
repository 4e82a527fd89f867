"""Held experiment time: frozen while held, released up to a deadline that it stops at by itself."""

from __future__ import annotations

import threading
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine
from ophyd import Signal
from ophyd.status import Status

from insitu import clock
from insitu.beamline import virtual_time


@pytest.fixture
def held_engine():
    """A RunEngine holding experiment time (``virtual_time``) at 1000x; the clock reset after."""
    clock.set_speedup(1000.0)
    engine = RunEngine({})
    try:
        virtual_time.enable(engine)
        yield engine
    finally:
        clock.reset()


def run_timed(engine, step) -> tuple[float, float]:
    """Run the plan ``step`` in ``engine``; the (experiment, wall) seconds it took."""
    marks = []

    def plan():
        marks.append((clock.now(), time.monotonic()))
        yield from step
        marks.append((clock.now(), time.monotonic()))

    engine(plan())
    experiment, wall = (b - a for a, b in zip(*marks, strict=True))
    return experiment, wall


def test_held_time_stands_still_and_a_release_stops_at_its_deadline(virtual_clock):
    clock.hold()
    frozen = clock.now()
    time.sleep(0.05)  # 50 experiment seconds at 1000x, were it running
    assert clock.now() == frozen and clock.held()
    clock.release(until=frozen + 5.0)
    time.sleep(0.05)
    assert clock.now() == frozen + 5.0  # exactly the deadline, not 50 s later
    assert clock.held()
    clock.release()
    time.sleep(0.02)
    assert clock.now() > frozen + 5.0 + 10.0 and not clock.held()


def test_the_holding_thread_sleeping_lets_time_run_to_the_end_of_its_sleep(virtual_clock):
    clock.hold()
    start = clock.now()
    assert clock.sleep(30.0) is True  # would never end if time stayed held for this thread
    assert clock.now() == start + 30.0 and clock.held()


def test_without_virtual_time_hold_and_release_do_nothing():
    clock.reset()
    clock.set_speedup(1000.0)
    try:
        clock.hold()
        before = clock.now()
        time.sleep(0.02)
        assert clock.now() > before + 10.0 and not clock.held()
    finally:
        clock.reset()


@pytest.mark.parametrize("kind", ["instant", "chatter", "slow"])
def test_a_plan_waiting_for_instant_work_keeps_time_held(kind, held_engine, monkeypatch):
    """The live analysis a closed loop waits for takes no experiment time; nor does a status that
    says nothing of its end (a setting's put: wire chatter), time standing pinned while it
    completes; one that takes longer than ``CHATTER_WALL_LIMIT_S`` of wall time gets time."""
    if kind == "slow":
        monkeypatch.setattr(virtual_time, "CHATTER_WALL_LIMIT_S", 0.05)

    class Slow(Signal):
        def set(self, value, **kwargs):
            status = Status(self)
            threading.Timer(0.2, status.set_finished).start()  # 200 experiment s at 1000x
            return clock.mark_instant(status) if kind == "instant" else status

    elapsed, _ = run_timed(held_engine, bps.mv(Slow(name="analysed", value=0), 1))
    if kind == "slow":
        assert elapsed >= 100.0  # ~150 s: the 0.15 s of wall past the pin's limit
    else:
        assert elapsed == 0.0


def test_past_a_release_deadline_time_goes_on_at_the_slower_rate(virtual_clock):
    clock.hold()
    start = clock.now()
    clock.release(until=start + 5.0, then=10.0)
    time.sleep(0.2)  # 5 s reached after 5 ms of wall time; then ~195 ms at 10x
    elapsed = clock.now() - start
    assert 5.0 + 1.0 < elapsed < 5.0 + 10.0 * 0.2 + 1.0  # not 200 s at the full 1000x
    assert not clock.held()
    with pytest.raises(ValueError, match="then=0"):
        clock.release(until=start + 10.0, then=0)


@pytest.mark.parametrize("expected", [True, False])
def test_a_wait_for_an_exposure_does_not_run_the_readout_latency_at_full_speed(
    expected, held_engine, monkeypatch
):
    """A spectrum read back 0.3 s of wall time after its exposure ended is not 300 s more."""
    if not expected:  # the control: no expected end, and a chatter pin that lapses at once
        monkeypatch.setattr(virtual_time, "CHATTER_WALL_LIMIT_S", 0.01)

    class Exposure(Signal):
        def trigger(self):
            status = Status(self)
            if expected:
                clock.expect_end(status, clock.now() + 10.0)  # a 10 s exposure
            # the exposure's 10 ms of wall time plus 300 ms of readout latency
            threading.Timer(0.31, status.set_finished).start()
            return status

    elapsed, wall = run_timed(
        held_engine, bps.trigger(Exposure(name="spectrum", value=0), wait=True)
    )
    if expected:
        # The wall time the wait really took (0.31 s, more on a loaded machine), past the end
        # at the slow rate: never the full speed-up.
        assert 10.0 <= elapsed < 10.0 + virtual_time.PAST_EXPECTED_END_RATE * wall + 5.0
    else:
        assert elapsed >= 250.0


def test_a_wait_follows_an_instrument_that_says_again_when_it_ends(held_engine):
    """A sweep: wire chatter first (its end is now: slow time), then 100 s of measuring that
    it announces when it starts; the wait runs the measuring at full speed, not at 100x."""

    class Sweep(Signal):
        def trigger(self):
            status = clock.expect_end(Status(self), clock.now())

            def run():
                time.sleep(0.02)  # chatter: 20 wall ms at the slow rate, 2 s
                clock.expect_end(status, clock.now() + 100.0)
                clock.sleep(100.0)  # the measuring, on experiment time
                status.set_finished()

            threading.Thread(target=run, daemon=True).start()
            return status

    experiment, wall = run_timed(held_engine, bps.trigger(Sweep(name="eis", value=0), wait=True))
    assert 100.0 <= experiment < 100.0 + 15.0
    assert wall < 0.6  # 100 s at 100x would be a whole second
