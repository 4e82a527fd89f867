"""The experiment clock: speed-up, continuity, sleeps and cancellation."""

import threading
import time

import pytest

from insitu import clock


def test_real_time_by_default(real_time_clock):
    assert clock.speedup() == 1.0
    assert abs(clock.now() - time.time()) < 1.0


def test_speedup_advances_experiment_time_faster(real_time_clock):
    clock.set_speedup(100.0)
    t0, w0 = clock.now(), time.monotonic()
    time.sleep(0.05)
    elapsed = clock.now() - t0
    wall = time.monotonic() - w0
    assert elapsed == pytest.approx(100.0 * wall, rel=0.2)


def test_changing_speedup_keeps_time_continuous(real_time_clock):
    clock.set_speedup(1000.0)
    before = clock.now()
    clock.set_speedup(1.0)
    after = clock.now()
    assert 0.0 <= after - before < 1.0


def test_sleep_takes_experiment_time(real_time_clock):
    clock.set_speedup(200.0)
    w0 = time.monotonic()
    t0 = clock.now()
    assert clock.sleep(10.0) is True
    assert clock.now() - t0 >= 10.0
    assert time.monotonic() - w0 < 0.5  # 10 s at 200x is 0.05 s of wall time


def test_sleep_can_be_cancelled(real_time_clock):
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    w0 = time.monotonic()
    assert clock.sleep(60.0, cancel=cancel) is False
    assert time.monotonic() - w0 < 1.0


def test_reset_realigns_with_the_wall_clock(real_time_clock):
    clock.set_speedup(10000.0)
    time.sleep(0.01)
    clock.set_speedup(1.0)
    assert clock.now() - time.time() > 50.0  # continuity: still ahead after the fast stretch
    clock.reset()
    assert abs(clock.now() - time.time()) < 0.5 and clock.speedup() == 1.0


def test_wall_period_has_a_floor(real_time_clock):
    clock.set_speedup(1000.0)
    assert clock.wall_period(0.5, floor=0.01) == 0.01
    clock.set_speedup(1.0)
    assert clock.wall_period(0.5, floor=0.01) == 0.5


@pytest.mark.parametrize("bad", [0.0, -1.0, 1e9, float("nan")])
def test_bad_speedup_names_value_and_range(bad, real_time_clock):
    with pytest.raises(ValueError, match=r"clock.speedup .* allowed range 0.001 to 100000"):
        clock.set_speedup(bad)
