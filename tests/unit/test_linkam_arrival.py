"""A stage move's expected settle time: ramp + settle time + the least lag seen for its kind."""

from __future__ import annotations

import pytest

from insitu.devices.linkam._arrival import ArrivalEstimate


def test_before_any_move_the_expectation_is_the_ramp_and_the_settle_time():
    arrival = ArrivalEstimate()
    assert arrival.expected_duration(30.0, 130.0, 10.0, 10.0) == pytest.approx(610.0)
    assert arrival.expected_duration(130.0, 30.0, 10.0, 10.0) == pytest.approx(610.0)


def test_the_least_lag_of_the_same_direction_and_target_band_is_added():
    arrival = ArrivalEstimate()
    arrival.observe(30.0, 130.0, 10.0, 10.0, 1.0, took=640.0)  # 30 s late
    arrival.observe(30.0, 130.0, 10.0, 10.0, 1.0, took=625.0)  # 15 s late: the least
    assert arrival.expected_duration(50.0, 120.0, 10.0, 10.0) == pytest.approx(430.0 + 15.0)
    # cooling to 40 C lags far more; it is learned apart, and never used for heating
    arrival.observe(300.0, 40.0, 10.0, 10.0, 1.0, took=1560.0 + 10.0 + 300.0)
    assert arrival.expected_duration(200.0, 40.0, 10.0, 10.0) == pytest.approx(970.0 + 300.0)
    assert arrival.expected_duration(30.0, 130.0, 10.0, 10.0) == pytest.approx(625.0)


def test_a_target_band_not_seen_yet_takes_the_least_lag_of_its_direction():
    arrival = ArrivalEstimate()
    arrival.observe(30.0, 130.0, 10.0, 10.0, 1.0, took=650.0)
    arrival.observe(30.0, 330.0, 10.0, 10.0, 1.0, took=1830.0)
    assert arrival.expected_duration(30.0, 630.0, 10.0, 10.0) == pytest.approx(3610.0 + 20.0)
    assert arrival.expected_duration(630.0, 30.0, 10.0, 10.0) == pytest.approx(3610.0)


def test_a_move_that_began_in_the_band_teaches_nothing_and_no_move_ends_before_settling():
    arrival = ArrivalEstimate()
    arrival.observe(100.0, 101.0, 10.0, 10.0, 1.0, took=10.0)  # in band from the start
    assert arrival.expected_duration(30.0, 130.0, 10.0, 10.0) == pytest.approx(610.0)
    arrival.observe(30.0, 130.0, 10.0, 10.0, 1.0, took=100.0)  # a stage far ahead of its ramp
    assert arrival.expected_duration(129.0, 130.0, 10.0, 10.0) >= 10.0
