"""Pinned instants on virtual time: time does not pass a pin until its owner lets go."""

from __future__ import annotations

import threading
import time

from insitu import clock


def test_time_stands_at_a_pin_until_it_is_released_then_runs_from_there(virtual_clock):
    start = clock.now()
    pinned = clock.pin(start + 5.0)
    time.sleep(0.05)  # 50 experiment seconds at 1000x, were nothing pinned
    assert clock.now() == start + 5.0 and clock.pinned_now()
    pinned.release()
    assert not clock.pinned_now()
    time.sleep(0.02)
    assert start + 5.0 + 10.0 < clock.now() < start + 5.0 + 100.0  # from the pin, not a jump


def test_a_moved_pin_lets_time_run_to_the_new_instant(virtual_clock):
    start = clock.now()
    pinned = clock.pin(start + 1.0)
    time.sleep(0.01)
    pinned.move(start + 3.0)
    time.sleep(0.02)
    assert clock.now() == start + 3.0
    pinned.move(start - 100.0)  # never earlier than now
    assert pinned.at == start + 3.0
    pinned.release()


def test_a_pin_with_a_wall_limit_lapses_and_time_runs_from_when_it_did(virtual_clock):
    before = time.monotonic()
    start = clock.now()
    pinned = clock.pin(wall_limit=0.05)
    pinned_by = time.monotonic()
    time.sleep(0.15)  # stood 0.05 s, then ran ~0.1 s: ~100 experiment seconds
    asked_from = time.monotonic()
    elapsed = clock.now() - start
    asked_by = time.monotonic()
    # Bounded by the wall time that really passed (a loaded machine oversleeps), at 1000x.
    speedup = clock.speedup()
    low = (asked_from - pinned_by - 0.05) * speedup - 1.0
    high = (asked_by - before - 0.05) * speedup + 1.0
    assert 50.0 < elapsed and low <= elapsed <= high, (low, elapsed, high)
    assert not pinned.active


def test_a_simulated_instruments_sleep_ends_exactly_and_releases_the_pins_awaiting_it(
    virtual_clock,
):
    clock.hold()
    start = clock.now()
    awaiting = clock.pin(until_started=True, wall_limit=5.0)
    results = []
    instrument = threading.Thread(target=lambda: results.append(clock.sleep(20.0)))
    clock.release()
    instrument.start()
    instrument.join(5.0)
    assert results == [True] and not awaiting.active
    # The instrument started at the pinned instant and its sleep pinned its own end.
    assert clock.now() >= start + 20.0


def test_pins_do_nothing_on_real_time():
    clock.reset()
    assert clock.pin() is None and not clock.is_virtual()


def test_wait_until_returns_when_time_stands_at_the_instant(virtual_clock):
    start = clock.now()
    pinned = clock.pin(start + 2.0)
    assert clock.wait_until(start + 2.0, wall_timeout=1.0)
    assert not clock.wait_until(start + 3.0, wall_timeout=0.02)  # the pin holds time at 2 s
    pinned.release()


def test_an_instrument_keeps_a_pinned_schedule_to_the_instant_and_a_claim_lets_go(
    virtual_clock,
):
    """A sweep pins its next point and sleeps to it (``sleep_until``: a ``sleep(end - now())``
    would end past the pin when time moved between the two ``now()``, and stall there); after
    the last point time stays at it until the client claims the result."""
    clock.set_speedup(2000.0)
    done = []

    def instrument():
        end = clock.now() + 3.0
        schedule = clock.pin(end, until_claimed=True, wall_limit=5.0)
        assert clock.sleep_until(end)
        for _ in range(40):
            end += 4.0
            schedule.move(end)
            assert clock.sleep_until(end)
        done.append((schedule, end))

    started = time.monotonic()
    worker = threading.Thread(target=instrument)
    worker.start()
    worker.join(10.0)
    ((schedule, end),) = done
    assert time.monotonic() - started < 1.0  # no pin stood until its wall limit
    time.sleep(0.02)
    assert schedule.active and clock.now() == end
    clock.claim()
    time.sleep(0.02)
    assert not schedule.active and clock.now() > end + 10.0
