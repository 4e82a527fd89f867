"""The stage's arrival rule: continuously in band for the settle time, overshoot restarts it."""

from __future__ import annotations

from insitu.devices.linkam._settle import SettleTracker


def tracker(**kwargs) -> SettleTracker:
    defaults = dict(target=150.0, tolerance=1.0, settle_time=10.0, deadline=1000.0)
    return SettleTracker(**{**defaults, **kwargs})


def test_settles_only_after_the_full_settle_time_in_band():
    move = tracker()
    verdicts = [move.update(t, 150.2) for t in (0.0, 5.0, 9.9)]
    assert verdicts == [None, None, None]
    assert move.update(10.0, 149.5) == "settled"


def test_an_overshoot_after_the_first_crossing_restarts_the_settle_time():
    move = tracker()
    readings = [(0, 140.0), (2, 149.2), (4, 150.8), (6, 151.6), (8, 152.0), (10, 151.2)]
    readings += [(12, 150.9), (14, 150.4), (20, 150.1), (21.9, 150.0)]
    verdicts = [move.update(t, temperature) for t, temperature in readings]
    # First crossing at t=2 is in band for 2 s only; the band is re-entered at t=12.
    assert verdicts == [None] * len(readings)
    assert move.in_band_since == 12
    assert move.update(22.0, 150.0) == "settled"


def test_a_slow_reply_does_not_shorten_the_settle_time():
    """Each reading is timed by the interval it can have been sampled in: the stay starts at the
    first in-band reply's arrival and must last until the latest poll was sent."""
    move = tracker()
    assert move.update(2.0, 150.0, requested_at=0.0) is None  # sampled anywhere in [0, 2]
    # Sent at 11.5, answered at 12.5: perhaps sampled 9.5 s after the stay began; not enough.
    assert move.update(12.5, 150.0, requested_at=11.5) is None
    assert move.update(13.0, 150.0, requested_at=12.0) == "settled"


def test_band_edges_are_inclusive():
    move = tracker(settle_time=0.0)
    assert move.update(0.0, 151.0) == "settled"


def test_times_out_after_the_deadline_unless_settled():
    move = tracker(deadline=100.0)
    assert move.update(100.0, 120.0) is None
    assert move.update(100.5, 120.0) == "timed out"
    settled = tracker(deadline=100.0, settle_time=0.0)
    assert settled.update(101.0, 150.0) == "settled"
