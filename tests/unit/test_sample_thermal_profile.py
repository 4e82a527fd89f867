"""Piecewise-linear thermal programs used to drive the virtual film."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.sim.thermal_profile import ThermalProfile


def test_ramp_dwell_cool_break_points():
    profile = ThermalProfile.ramp_dwell_cool(650.0, rate_C_per_min=5.0, dwell_min=15.0)
    heat = (650.0 - 25.0) / 5.0 * 60.0
    assert profile.times == pytest.approx((0.0, heat, heat + 900.0, 2 * heat + 900.0))
    assert profile.temperatures_C == (25.0, 650.0, 650.0, 25.0)
    assert profile.peak_C == 650.0


def test_evaluates_arrays_and_scalars_and_holds_the_ends():
    ramp = ThermalProfile.ramp(25.0, 125.0, 10.0, start_time=100.0)
    assert ramp(0.0) == 25.0
    assert ramp(100.0 + 300.0) == pytest.approx(75.0)
    assert ramp(1e9) == 125.0
    values = ramp(np.array([100.0, 700.0]))
    assert isinstance(values, np.ndarray)
    assert values.tolist() == [25.0, 125.0]


def test_time_at_temperature():
    ramp = ThermalProfile.ramp(25.0, 850.0, 5.0)
    assert ramp.time_at_temperature(750.0) == pytest.approx((750.0 - 25.0) / 5.0 * 60.0)
    with pytest.raises(ValueError, match="never reaches"):
        ramp.time_at_temperature(900.0)


def test_invalid_programs_raise():
    with pytest.raises(ValueError, match="non-decreasing"):
        ThermalProfile((0.0, -1.0), (25.0, 30.0))
    with pytest.raises(ValueError, match="positive"):
        ThermalProfile.ramp(25.0, 100.0, 0.0)
    with pytest.raises(ValueError, match="as many times"):
        ThermalProfile((0.0,), (25.0, 30.0))
    with pytest.raises(ValueError, match="absolute zero"):
        ThermalProfile.constant(-300.0)
