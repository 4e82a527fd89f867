"""Experiment time: real by default, sped up by a factor on a simulated beamline.

Everything that measures or waits for *experiment* time (settle times, stabilization, exposures,
ramp progress in emulators) goes through this module, so that a simulated beamline can run a
three-hour ramp in well under a minute. Wall-time things (serial timeouts, socket round trips)
do not: they stay in real seconds.

The experiment clock is ``t = t0 + speedup * (wall - wall0)``; changing the speed-up re-anchors
the clock so that experiment time is continuous.

Held time (simulations only, :func:`set_virtual`): a sped-up simulation turns every wall
millisecond the RunEngine spends working (sending commands, emitting documents, a loaded
machine's latency) into seconds of experiment the virtual film lives through. With virtual time
on, :func:`hold` freezes experiment time while the RunEngine works and :func:`release` lets it
run while the RunEngine waits (a sleep, a move, an exposure); a release may carry a deadline
(``until``) that time stops at by itself, so a plan's sleep lasts exactly what it asked for
whenever the RunEngine wakes. :mod:`insitu.beamline.virtual_time` drives this from the
RunEngine. Real instruments never use it: :func:`hold` and :func:`release` do nothing then.
"""

from __future__ import annotations

import threading
import time

__all__ = [
    "held",
    "hold",
    "expect_end",
    "expected_end",
    "is_instant",
    "mark_instant",
    "now",
    "release",
    "set_virtual",
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
_virtual = False
_held_at: float | None = None  # experiment time frozen at (held)
_cap: float | None = None  # time stops here by itself until the next hold/release
_holder: int | None = None  # the thread that holds (its own clock.sleep releases)
_rate = 1.0  # experiment seconds per wall second now: the speed-up, or a release's ``then``
_then: float | None = None  # the rate time goes on at past the cap (None: it stops there)


def _now_locked() -> float:
    global _held_at, _t0, _wall0, _rate, _cap
    if _held_at is not None:
        return _held_at
    wall = time.monotonic()
    t = _t0 + _rate * (wall - _wall0)
    if _cap is not None and t >= _cap:
        if _then is None:
            _held_at = _cap  # the deadline is reached: time stops there until released
            return _cap
        # Past the deadline time goes on at the slower rate, from the wall instant it was hit.
        _wall0 = _wall0 + (_cap - _t0) / _rate
        _t0, _rate, _cap = _cap, _then, None
        t = _t0 + _rate * (wall - _wall0)
    return t


def now() -> float:
    """Return the experiment time in seconds (epoch-based, like ``time.time()``).

    With a speed-up of 1 this is the wall clock; with a speed-up of ``k`` it advances ``k``
    experiment seconds per wall second.
    """
    with _lock:
        return _now_locked()


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
    global _speedup, _wall0, _t0, _rate
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        raise TypeError(f"clock.speedup {factor!r} is not a number") from None
    if not (1e-3 <= factor <= 1e5):
        raise ValueError(f"clock.speedup {factor} is outside the allowed range 0.001 to 100000")
    with _lock:
        t = _now_locked()
        _t0, _wall0 = t, time.monotonic()
        _speedup = _rate = factor
        _changed.notify_all()


def reset() -> None:
    """Return to real time *and* re-align experiment time with the wall clock.

    ``set_speedup(1.0)`` keeps experiment time continuous, so after a sped-up simulation it stays
    ahead of the wall clock. A simulated beamline calls this when it closes, after its emulators
    (whose physics is anchored to experiment time) are gone.
    """
    global _speedup, _wall0, _t0, _virtual, _held_at, _cap, _holder, _rate, _then
    with _lock:
        _wall0 = time.monotonic()
        _t0 = time.time()
        _speedup = _rate = 1.0
        _virtual, _held_at, _cap, _holder, _then = False, None, None, None, None
        _changed.notify_all()


def set_virtual(enabled: bool) -> None:
    """Let :func:`hold` freeze experiment time (simulations only; off again on :func:`reset`)."""
    global _virtual
    if enabled:
        _virtual = True
    else:
        release()
        _virtual = False


def held() -> bool:
    """True while experiment time is frozen."""
    with _lock:
        _now_locked()
        return _held_at is not None


def hold() -> None:
    """Freeze experiment time now, for the calling thread (no effect without virtual time)."""
    global _held_at, _cap, _holder, _rate, _then
    with _lock:
        if not _virtual:
            return
        _held_at = _now_locked()
        _cap, _then, _rate = None, None, _speedup
        _holder = threading.get_ident()


def release(*, until: float | None = None, then: float | None = None) -> None:
    """Let experiment time run again, stopping by itself at ``until`` if given.

    Parameters
    ----------
    until : float, optional
        Experiment time at which time stops by itself (a sleep's end).
    then : float, optional
        With ``until``: instead of stopping there, go on at this slower rate (experiment seconds
        per wall second). For work expected to end at ``until`` that the RunEngine only hears of
        later (an exposure read over the wire): the wall latency past it costs ``then`` times
        itself, not the full speed-up, and work that ends a little late still ends.
    """
    global _held_at, _cap, _holder, _t0, _wall0, _rate, _then
    if then is not None and not then > 0:
        raise ValueError(f"clock.release then={then!r}: the rate past a deadline must be > 0")
    with _lock:
        if not _virtual:
            return
        t = _now_locked()
        _t0, _wall0, _rate = t, time.monotonic(), _speedup
        _held_at, _holder = None, None
        _cap = None if until is None else max(float(until), t)
        _then = None if _cap is None or then is None else min(float(then), _speedup)
        _changed.notify_all()


def mark_instant(status):
    """Mark a Status whose wait takes no experiment time (the live analysis of a spectrum: in a
    lab it is milliseconds against seconds of exposure); held time stays held while a plan waits
    for it. Returns the status."""
    status.insitu_instant = True
    return status


def is_instant(status) -> bool:
    """Whether ``status`` was marked by :func:`mark_instant`."""
    return bool(getattr(status, "insitu_instant", False))


def expect_end(status, at: float):
    """Tell held time that ``status`` should complete at experiment time ``at`` (the end of an
    exposure started now). A plan waiting only for such statuses lets time run at full speed to
    the last of them, then slowly (see :func:`release`). An instrument may say it again while the
    plan waits (a sweep once its measuring starts): the wait follows. Returns the status."""
    status.insitu_expected_end = float(at)
    on_change = getattr(status, "insitu_on_expected_end", None)
    if on_change is not None:  # a wait in progress re-reads it (a sweep that started measuring)
        on_change()
    return status


def expected_end(status) -> float | None:
    """The experiment time :func:`expect_end` gave ``status``, or None."""
    return getattr(status, "insitu_expected_end", None)


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
    if _holder == threading.get_ident():
        # The thread that holds time waits for it: let it run to the end, then hold again.
        release(until=end)
        try:
            return _sleep_until(end, cancel)
        finally:
            hold()
    return _sleep_until(end, cancel)


def _sleep_until(end: float, cancel: threading.Event | None) -> bool:
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
