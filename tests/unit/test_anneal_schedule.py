"""insitu.plans.anneal: the dwell's acquisitions on a fixed schedule from its start."""

import pytest

from insitu.plans.anneal import _dwell_schedule


@pytest.mark.parametrize(
    ("dwell_s", "every_s", "expected"),
    [
        (240.0, 60.0, [60.0, 120.0, 180.0, 240.0]),
        (250.0, 60.0, [60.0, 120.0, 180.0, 240.0, 250.0]),
        (30.0, 60.0, [30.0]),
        (240.0, None, []),
        (0.0, 60.0, []),
    ],
)
def test_a_dwell_is_acquired_on_a_fixed_schedule_ending_at_its_end(dwell_s, every_s, expected):
    assert _dwell_schedule(dwell_s, every_s) == pytest.approx(expected)
