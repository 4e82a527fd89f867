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

Pins (virtual time only, :func:`pin`) make a simulation repeat itself to the experiment second:
time never passes a pinned instant until its owner lets go, so what an instrument does at that
instant (a stage poll that judges a move, the start and end of an exposure) happens there in
every run, not where the wall-clock latency of a thread happened to put it. Every
:func:`sleep` on virtual time pins its own end and lets go of the pins that wait for an
instrument to start (``until_started``).
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
    "is_virtual",
    "claim",
    "mark_instant",
    "now",
    "pin",
    "pinned_now",
    "Pin",
    "release",
    "set_virtual",
    "sleep",
    "sleep_until",
    "speedup",
    "set_speedup",
    "reset",
    "to_experiment",
    "to_wall",
    "wall_period",
    "wait_until",
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
_pins: dict[int, Pin] = {}  # pinned instants (virtual time), by id
_at_pin: float | None = None  # experiment time stands at a pin until the lowest one moves on
_at_pin_wall = 0.0  # monotonic time it got there (a pin with a wall limit lapses after it)


class Pin:
    """An instant experiment time does not pass until :meth:`release` (see :func:`pin`)."""

    def __init__(
        self, at: float, until_started: bool, wall_limit: float | None, until_claimed: bool
    ) -> None:
        self.at = at
        self.until_started = until_started
        self.until_claimed = until_claimed
        self.wall_limit = wall_limit

    @property
    def active(self) -> bool:
        """False once released or lapsed."""
        return id(self) in _pins

    def move(self, at: float) -> None:
        """Pin a later instant instead (never earlier than now)."""
        with _lock:
            if id(self) in _pins:
                self.at = max(float(at), _now_locked())
                _let_go_locked()
            _changed.notify_all()

    def release(self) -> None:
        """Let time pass this pin (again safe to call)."""
        with _lock:
            _now_locked()  # where time stands now, before this pin stops holding it
            _pins.pop(id(self), None)
            _let_go_locked()
            _changed.notify_all()


def pin(
    at: float | None = None,
    *,
    until_started: bool = False,
    until_claimed: bool = False,
    wall_limit: float | None = None,
) -> Pin | None:
    """Stop experiment time at ``at`` (now by default) until the returned pin is released.

    Virtual time only (:func:`set_virtual`); otherwise nothing is pinned and None is returned.

    Parameters
    ----------
    at : float, optional
        The experiment time to stop at; an instant already past is pinned at now.
    until_started : bool
        Released by itself when a simulated instrument starts waiting (the next
        :func:`sleep`): a request that must reach the instrument before time goes on.
    until_claimed : bool
        Released by itself at the next :func:`claim`: a simulated instrument's result that
        time must not run past before the client that asked for it has taken it.
    wall_limit : float, optional
        Wall seconds time may stand at this pin before it lapses by itself: for pins whose
        owner waits for someone else (an emulator that might, in a fault, never answer), so a
        pin can delay a simulation but never stop it.
    """
    if not _virtual:
        return None
    with _lock:
        now = _now_locked()
        at = now if at is None else max(float(at), now)
        made = Pin(at, until_started, wall_limit, until_claimed)
        _pins[id(made)] = made
        return made


def claim() -> None:
    """Release every ``until_claimed`` pin: the client has taken the instrument's result (pin
    the instant first if time must stay there while it goes on with it)."""
    _release_pins(lambda p: p.until_claimed)


def _release_pins(which) -> None:
    """Release every pin for which ``which(pin)`` is true; time that stood at them runs on."""
    with _lock:
        _now_locked()
        for released in [p for p in _pins.values() if which(p)]:
            del _pins[id(released)]
        _let_go_locked()
        _changed.notify_all()


def pinned_now() -> bool:
    """True while an instrument still has to act at the current instant (a pin at or before
    now: a stage poll due, an exposure whose spectrum is being read)."""
    with _lock:
        t = _now_locked()
        return any(p.at <= t for p in _pins.values())


def _lowest_pin() -> Pin | None:
    return min(_pins.values(), key=lambda p: p.at) if _pins else None


def _stand_or_run_locked() -> float | None:
    """If time stands at a pin: that instant, or None once no pin holds it any more (time then
    runs from there, from the wall instant the last holding pin let go or lapsed)."""
    global _t0, _wall0, _at_pin
    while _at_pin is not None:
        lowest = _lowest_pin()
        if lowest is None or lowest.at > _at_pin:  # let go (see _let_go_locked)
            _t0, _wall0, _at_pin = _at_pin, time.monotonic(), None
            return None
        if lowest.wall_limit is None or time.monotonic() - _at_pin_wall <= lowest.wall_limit:
            return _at_pin
        # Stood past its wall limit: the pin lapses; time runs from the moment it did.
        del _pins[id(lowest)]
        following = _lowest_pin()
        if following is None or following.at > _at_pin:
            _t0, _wall0, _at_pin = _at_pin, _at_pin_wall + lowest.wall_limit, None
            return None
    return None


def _let_go_locked() -> None:
    """After a pin moved or was released: time that stood at it runs again from now."""
    global _t0, _wall0, _at_pin
    if _at_pin is None:
        return
    lowest = _lowest_pin()
    if lowest is None or lowest.at > _at_pin:
        _t0, _wall0, _at_pin = _at_pin, time.monotonic(), None


def _now_locked() -> float:
    global _held_at, _t0, _wall0, _rate, _cap, _at_pin, _at_pin_wall
    if _held_at is not None:
        return _held_at
    standing = _stand_or_run_locked()
    if standing is not None:
        return standing
    wall = time.monotonic()
    t = _t0 + _rate * (wall - _wall0)
    lowest = _lowest_pin()
    if lowest is not None and t >= lowest.at and (_cap is None or lowest.at <= _cap):
        # Time got to the pin when the wall clock read this (not when somebody looked).
        _at_pin, _at_pin_wall = lowest.at, _wall0 + max(0.0, lowest.at - _t0) / _rate
        return _now_locked()
    if _cap is not None and t >= _cap:
        if _then is None:
            _held_at = _cap  # the deadline is reached: time stops there until released
            return _cap
        # Past the deadline time goes on at the slower rate, from the wall instant it was hit.
        _wall0 = _wall0 + (_cap - _t0) / _rate
        _t0, _rate, _cap = _cap, _then, None
        return _now_locked()
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
    global _speedup, _wall0, _t0, _virtual, _held_at, _cap, _holder, _rate, _then, _at_pin
    with _lock:
        _wall0 = time.monotonic()
        _t0 = time.time()
        _speedup = _rate = 1.0
        _virtual, _held_at, _cap, _holder, _then = False, None, None, None, None
        _pins.clear()
        _at_pin = None
        _changed.notify_all()


def set_virtual(enabled: bool) -> None:
    """Let :func:`hold` freeze experiment time (simulations only; off again on :func:`reset`)."""
    global _virtual
    if enabled:
        _virtual = True
    else:
        release()
        with _lock:
            _pins.clear()
        _virtual = False


def is_virtual() -> bool:
    """True on virtual (held) time: a simulation whose instruments may pin instants."""
    return _virtual


def held() -> bool:
    """True while experiment time is frozen."""
    with _lock:
        _now_locked()
        return _held_at is not None


def hold() -> None:
    """Freeze experiment time now, for the calling thread (no effect without virtual time)."""
    global _held_at, _cap, _holder, _rate, _then, _at_pin
    with _lock:
        if not _virtual:
            return
        _held_at = _now_locked()
        _at_pin = None  # re-judged from the held instant on release
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
    global _held_at, _cap, _holder, _t0, _wall0, _rate, _then, _at_pin
    if then is not None and not then > 0:
        raise ValueError(f"clock.release then={then!r}: the rate past a deadline must be > 0")
    with _lock:
        if not _virtual:
            return
        t = _now_locked()
        _t0, _wall0, _rate = t, time.monotonic(), _speedup
        _held_at, _holder, _at_pin = None, None, None
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
    return sleep_until(now() + float(seconds), cancel=cancel)


def sleep_until(end: float, *, cancel: threading.Event | None = None) -> bool:
    """Wait until experiment time ``end`` (see :func:`sleep`); at once if it has passed.

    An instrument keeping a schedule sleeps to its instants with this, not with
    ``sleep(end - now())``: time may move between that ``now()`` and the sleep's own, and on
    virtual time a sleep that ends past a pinned instant of the same schedule never wakes.
    """
    end = float(end)
    if _virtual and _holder != threading.get_ident():
        return _pinned_sleep(end, cancel)
    if _holder == threading.get_ident():
        # The thread that holds time waits for it: let it run to the end, then hold again.
        release(until=end)
        try:
            return _sleep_until(end, cancel)
        finally:
            hold()
    return _sleep_until(end, cancel)


def wait_until(t: float, *, wall_timeout: float, cancel: threading.Event | None = None) -> bool:
    """Wait until experiment time reaches ``t``, at most ``wall_timeout`` wall seconds.

    Returns True if it did. For a poller that serves pinned instants (virtual time): it wakes
    as soon as time stands at its pin, not a fixed wall period later.
    """
    deadline = time.monotonic() + float(wall_timeout)
    while True:
        with _lock:
            remaining = t - _now_locked()
            rate = _rate if _held_at is None and _at_pin is None else _speedup
        if remaining <= 0:
            return True
        left = deadline - time.monotonic()
        if left <= 0 or (cancel is not None and cancel.is_set()):
            return False
        with _changed:
            _changed.wait(min(left, max(remaining / rate, 1e-4)))


def _pinned_sleep(end: float, cancel: threading.Event | None) -> bool:
    """A simulated instrument's wait on virtual time: it ends exactly at ``end``, and it tells
    whoever waits for the instrument to start (``until_started`` pins) that it has."""
    own = pin(end)
    _release_pins(lambda p: p.until_started)
    try:
        return _sleep_until(end, cancel)
    finally:
        if own is not None:
            own.release()


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
