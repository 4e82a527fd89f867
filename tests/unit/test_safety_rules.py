"""The stage's hard limits as pure rules, swept with synthetic readings (no wire, no thread)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from insitu.beamline.safety_rules import SafetyAlarm, StageLimits


def limits(**kwargs) -> StageLimits:
    arguments = {"max_temperature": 900.0, "max_rate": 75.0, "rate_window": 30.0}
    return StageLimits("linkam", **{**arguments, **kwargs})


def first_alarm(rules: StageLimits, readings) -> SafetyAlarm | None:
    for t, temperature in readings:
        alarm = rules.judge(t, temperature)
        if alarm is not None:
            return alarm
    return None


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=1.0, max_value=200.0),
    ripple=st.floats(min_value=0.0, max_value=0.1),
    period=st.floats(min_value=0.5, max_value=2.0),
)
def test_a_steady_ramp_trips_the_rate_limit_exactly_when_it_is_faster(rate, ripple, period):
    """A linear ramp with the regulation's +/-0.1 C ripple: the least-squares slope sees through
    the ripple, so a ramp 5 % above the limit trips and one 5 % below never does."""
    if 0.95 * 75.0 <= rate <= 1.05 * 75.0:
        return  # within the ripple's reach of the limit: either answer is right
    times = np.arange(0.0, 120.0, period)
    wiggle = ripple * np.where(np.arange(times.size) % 2, 1.0, -1.0)
    readings = zip(times, 25.0 + rate / 60.0 * times + wiggle, strict=True)
    alarm = first_alarm(limits(), readings)
    if rate > 75.0:
        assert alarm is not None and alarm.limit == "max_rate_C_per_min"
        assert alarm.value == pytest.approx(rate, rel=0.05)
        assert alarm.time <= 30.0 + 2 * period  # once the window is half full, at most
    else:
        assert alarm is None


def test_cooling_however_fast_is_not_a_rate_breach():
    readings = ((t, 800.0 - 10.0 * t) for t in np.arange(0.0, 60.0, 1.0))
    assert first_alarm(limits(), readings) is None


@settings(max_examples=60, deadline=None)
@given(limit=st.floats(min_value=100.0, max_value=1000.0), over=st.floats(0.01, 50.0))
def test_one_reading_above_max_temperature_trips_at_once(limit, over):
    rules = limits(max_temperature=limit, max_rate=1e6)
    assert rules.judge(0.0, limit) is None  # at the limit is allowed
    alarm = rules.judge(1.0, limit + over)
    assert alarm.limit == "max_temperature_C" and alarm.value == limit + over
    assert alarm.threshold == limit and alarm.time == 1.0
    assert f"{limit + over} C is above max_temperature_C {limit} C" in alarm.message


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.floats(min_value=10.0, max_value=3600.0),
    step=st.floats(min_value=0.5, max_value=5.0),
    dips=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=3),
)
@example(seconds=125.0, step=4.999999999999999, dips=[0.5])  # seen in CI: 130.0 vs 129.99...
def test_time_above_trips_after_an_unbroken_dwell_of_its_seconds(seconds, step, dips):
    """A dwell above the threshold trips ``seconds`` after it began (to one reading); a dip to
    the threshold restarts the count."""
    rules = limits(time_above=(700.0, seconds), max_rate=1e6)
    t, start = 0.0, None
    dip_times = sorted(d * seconds for d in dips)
    while True:
        t += step
        dipped = bool(dip_times) and t >= dip_times[0]
        if dipped:
            dip_times.pop(0)
        alarm = rules.judge(t, 700.0 if dipped else 750.0)
        if dipped:
            assert alarm is None
            start = None
            continue
        if start is None:
            start = t
        if alarm is not None:
            break
        assert t - start < seconds
    assert alarm.limit == "time_above"
    assert seconds <= t - start < seconds + step + 1e-9  # 1e-9: float sums of the step


def test_an_error_flag_trips_first_and_names_the_flag():
    alarm = limits().judge(5.0, 950.0, "open_circuit|power_surge")
    assert alarm.limit == "stage_error" and alarm.value == "open_circuit|power_surge"
    assert "error flag open_circuit|power_surge at 950.0 C" in alarm.message


def test_restart_forgets_the_rate_and_dwell_history():
    rules = limits(time_above=(700.0, 10.0))
    for t in range(9):
        assert rules.judge(float(t), 750.0) is None
    rules.restart()
    assert rules.judge(9.0, 750.0) is None and rules.judge(18.0, 750.0) is None
    assert rules.judge(19.0, 750.0).limit == "time_above"


def test_the_rate_window_floor_widens_the_window_on_a_sped_up_clock():
    """At 400x the watchdog floors the window at one wall second (400 experiment s): a 3 C
    jitter over 1.5 s, which reads as 120 C/min in a 2 s window, is no breach."""
    readings = [(0.0, 100.0), (0.5, 100.0), (1.0, 101.5), (1.5, 103.0)]
    narrow = limits(rate_window=2.0)
    assert first_alarm(narrow, readings) is not None
    wide = limits(rate_window=2.0)
    assert all(wide.judge(t, T, min_rate_window=400.0) is None for t, T in readings)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_temperature": math.nan}, ValueError, "watchdog.max_temperature nan C"),
        ({"max_rate": 0.0}, ValueError, "watchdog.max_rate 0.0 C/min is outside"),
        ({"rate_window": -1.0}, ValueError, "watchdog.rate_window -1.0 s is outside"),
        ({"time_above": (700.0, 0.0)}, ValueError, "watchdog.time_above seconds 0.0 s"),
        ({"max_rate": "fast"}, TypeError, "watchdog.max_rate 'fast' is not a number"),
    ],
)
def test_bad_limits_are_refused_naming_the_limit(kwargs, error, message):
    with pytest.raises(error, match=message):
        limits(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    deadline=st.floats(min_value=10.0, max_value=2000.0),
    step=st.floats(min_value=1.0, max_value=5.0),
    cools_at=st.one_of(st.none(), st.floats(min_value=0.0, max_value=2400.0)),
)
@example(deadline=24.0, step=1.0, cools_at=25.0)  # hot at the deadline, cool at the next reading
def test_a_declared_dwell_trips_just_after_its_deadline_unless_the_stage_cools(
    deadline, step, cools_at
):
    rules = limits()
    rules.declare_dwell(725.0, deadline)
    readings = [
        (t, 30.0 if cools_at is not None and t >= cools_at else 750.0)
        for t in np.arange(0.0, 2500.0, step)
    ]
    alarm = first_alarm(rules, readings)
    # A reading still hot after the deadline trips; a stage cooled before any such reading
    # ended its dwell in time.
    overdue = [t for t, temperature in readings if t > deadline and temperature > 725.0]
    if not overdue:
        assert alarm is None and rules.dwell is None
    else:
        assert alarm is not None and alarm.limit == "dwell"
        # (np.arange's 11 * 1.1 is 12.100000000000001, one rounding past 11.0 + 1.1)
        assert alarm.time == overdue[0] <= deadline + step * (1.0 + 1e-12)
        assert "above 725.0 C" in alarm.message


def test_restore_takes_over_an_earlier_watchdogs_dwell_measurements():
    rules = limits(time_above=(700.0, 600.0))
    rules.restore(above_since=100.0, dwell=(725.0, 5000.0))
    alarm = first_alarm(rules, [(t, 750.0) for t in np.arange(650.0, 800.0, 1.0)])
    assert alarm is not None and alarm.limit == "time_above" and alarm.time == 700.0
    rules.restart()
    assert rules.dwell is None and rules.above_since is None
