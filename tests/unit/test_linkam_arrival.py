"""A stage move's expected settle time: ramp + settle time + the least lag seen for its kind."""

from __future__ import annotations

import pytest

from insitu.devices.linkam._arrival import ArrivalEstimate

TOLERANCE = 1.0  # C: a move can be in its band 6 s (at 10 C/min) before its ramp ends


def test_a_move_of_a_kind_not_seen_yet_expects_the_earliest_it_can_settle():
    arrival = ArrivalEstimate()
    assert arrival.expected_duration(30.0, 130.0, 10.0, 10.0, TOLERANCE) == pytest.approx(604.0)
    assert arrival.expected_duration(130.0, 30.0, 10.0, 10.0, TOLERANCE) == pytest.approx(604.0)


def test_the_least_lag_of_the_same_direction_target_band_and_rate_is_added():
    arrival = ArrivalEstimate()
    arrival.observe(30.0, 130.0, 10.0, 10.0, TOLERANCE, took=640.0)  # 30 s late
    arrival.observe(30.0, 130.0, 10.0, 10.0, TOLERANCE, took=625.0)  # 15 s late: the least
    assert arrival.expected_duration(50.0, 120.0, 10.0, 10.0, TOLERANCE) == pytest.approx(445.0)
    # cooling to 40 C lags far more; it is learned apart, and never used for heating
    arrival.observe(300.0, 40.0, 10.0, 10.0, TOLERANCE, took=1560.0 + 10.0 + 300.0)
    assert arrival.expected_duration(200.0, 40.0, 10.0, 10.0, TOLERANCE) == pytest.approx(1270.0)
    assert arrival.expected_duration(30.0, 130.0, 10.0, 10.0, TOLERANCE) == pytest.approx(625.0)


def test_another_band_or_rate_borrows_no_lag():
    """A lag learned elsewhere could put the expectation after the real settle."""
    arrival = ArrivalEstimate()
    arrival.observe(30.0, 130.0, 10.0, 10.0, TOLERANCE, took=650.0)
    assert arrival.expected_duration(30.0, 630.0, 10.0, 10.0, TOLERANCE) == pytest.approx(3604.0)
    assert arrival.expected_duration(30.0, 130.0, 5.0, 10.0, TOLERANCE) == pytest.approx(1198.0)


def test_a_move_that_began_in_the_band_teaches_nothing_and_no_move_ends_before_settling():
    arrival = ArrivalEstimate()
    arrival.observe(100.0, 101.0, 10.0, 10.0, TOLERANCE, took=10.0)  # in band from the start
    assert arrival.expected_duration(30.0, 130.0, 10.0, 10.0, TOLERANCE) == pytest.approx(604.0)
    arrival.observe(30.0, 130.0, 10.0, 10.0, TOLERANCE, took=100.0)  # far ahead of its ramp
    assert arrival.expected_duration(129.0, 130.0, 10.0, 10.0, TOLERANCE) >= 10.0
    assert arrival.expected_duration(129.5, 130.0, 10.0, 10.0, TOLERANCE) >= 10.0
