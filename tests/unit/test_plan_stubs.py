"""insitu.plans.stubs: experiment-time waits become wall-time sleep messages, never time.sleep."""

import pytest

from insitu.plans import stubs


def test_sleep_converts_experiment_time_to_wall_time(real_time_clock):
    real_time_clock.set_speedup(100.0)
    (msg,) = list(stubs.sleep(120.0))
    assert msg.command == "sleep"
    assert msg.args == (pytest.approx(1.2),)


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_sleep_rejects_bad_durations(bad):
    with pytest.raises(ValueError, match="plans.sleep .* give a finite time >= 0 s"):
        list(stubs.sleep(bad))
