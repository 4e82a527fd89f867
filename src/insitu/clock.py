"""Experiment time: real by default, sped up by a factor on a simulated beamline.

Everything that measures or waits for *experiment* time (settle times, stabilization, exposures,
ramp progress in emulators) goes through this module, so that a simulated beamline can run a
three-hour ramp in well under a minute. Wall-time things (serial timeouts, socket round trips)
do not: they stay in real seconds.

The experiment clock is ``t = t0 + speedup * (wall - wall0)``; changing the speed-up re-anchors
the clock so that experiment time is continuous.
"""

from __future__ import annotations

import threading
import time

__all__ = [
    "now",
    "sleep",
    "speedup",
    "set_speedup",
    "reset",
    "to_experiment",
    "to_wall",
    "wall_period",
]

_lock = threading.Lock()
_speedup = 1.0
_wall0 = time.monotonic()
_t0 = time.time()
# Set on every speed-up change so that sleepers re-compute their remaining wall time.
_changed = threading.Condition(_lock)


def now() -> float:
    """Return the experiment time in seconds (epoch-based, like ``time.time()``).

    With a speed-up of 1 this is the wall clock; with a speed-up of ``k`` it advances ``k``
    experiment seconds per wall second.
    """
    with _lock:
        return _t0 + _speedup * (time.monotonic() - _wall0)


def speedup() -> float:
    """Return the current speed-up factor (1.0 means real time)."""
    return _speedup


def set_speedup(factor: float) -> None:
    """Set how many experiment seconds pass per wall second.

    Parameters
    ----------
    factor : float
        Speed-up factor, at least 1e-3 and at most 1e5. 1.0 restores real time.

    Raises
    ------
    ValueError
        If ``factor`` is not a finite number in the allowed range.
    """
    global _speedup, _wall0, _t0
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        raise TypeError(f"clock.speedup {factor!r} is not a number") from None
    if not (1e-3 <= factor <= 1e5):
        raise ValueError(f"clock.speedup {factor} is outside the allowed range 0.001 to 100000")
    with _lock:
        wall = time.monotonic()
        _t0 = _t0 + _speedup * (wall - _wall0)
        _wall0 = wall
        _speedup = factor
        _changed.notify_all()


def reset() -> None:
    """Return to real time *and* re-align experiment time with the wall clock.

    ``set_speedup(1.0)`` keeps experiment time continuous, so after a sped-up simulation it stays
    ahead of the wall clock. A simulated beamline calls this when it closes, after its emulators
    (whose physics is anchored to experiment time) are gone.
    """
    global _speedup, _wall0, _t0
    with _lock:
        _wall0 = time.monotonic()
        _t0 = time.time()
        _speedup = 1.0
        _changed.notify_all()


def to_experiment(wall_seconds: float) -> float:
    """Convert a wall-time duration into experiment seconds at the current speed-up."""
    return float(wall_seconds) * _speedup


def to_wall(seconds: float) -> float:
    """Convert an experiment-time duration into wall seconds at the current speed-up."""
    return float(seconds) / _speedup


def wall_period(seconds: float, floor: float = 0.01) -> float:
    """Wall seconds for a periodic task of ``seconds`` experiment time, never below ``floor``.

    A poll period is experiment time, but a serial round trip is wall time: at high speed-up the
    period shrinks until it hits ``floor`` (coarser time resolution, never a busy loop).
    """
    return max(float(floor), to_wall(seconds))


def sleep(seconds: float, *, cancel: threading.Event | None = None) -> bool:
    """Wait ``seconds`` of experiment time.

    Parameters
    ----------
    seconds : float
        Experiment-time duration; zero or negative returns at once.
    cancel : threading.Event, optional
        If given and set while waiting, return early.

    Returns
    -------
    bool
        True if the full duration elapsed, False if ``cancel`` cut it short.
    """
    end = now() + float(seconds)
    while True:
        remaining = end - now()
        if remaining <= 0:
            return True
        # Wake at least every 0.1 s of wall time so a speed-up change or cancel is noticed.
        wait = min(to_wall(remaining), 0.1)
        if cancel is not None:
            if cancel.wait(wait):
                return False
        else:
            with _changed:
                _changed.wait(wait)
