"""LinkamStage: the ophyd positioner for a Linkam heating stage, fed by one background poller."""

from __future__ import annotations

import functools
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ophyd import Component as Cpt
from ophyd import Device, PositionerBase
from ophyd.status import DeviceStatus, MoveStatus

from insitu import clock
from insitu.checks import as_positive, in_range
from insitu.devices.linkam._arrival import ArrivalEstimate
from insitu.devices.linkam._driver import LinkamT95
from insitu.devices.linkam._errors import (
    LinkamError,
    LinkamInterlockError,
    LinkamMoveInterrupted,
    LinkamMoveTimeout,
    LinkamStageError,
)
from insitu.devices.linkam._protocol import LinkamReading, LinkamStatus
from insitu.devices.linkam._settle import SettleTracker
from insitu.devices.linkam._signals import CheckedSignal, ReadbackSignal
from insitu.devices.status import ExplainedDeviceStatus, ExplainedMoveStatus

__all__ = ["LinkamStage", "StagePoll"]

logger = logging.getLogger(__name__)

# Default move timeout: the ramp time stretched by this factor, plus the settle time, plus this
# margin (experiment seconds) for the thermal lag and an overshoot to die out.
_RAMP_TIME_FACTOR = 1.25
_TIMEOUT_MARGIN_S = 120.0
# A timeout is experiment time with a floor in wall time: on a sped-up simulation a stall of
# the machine (seconds of wall time are hours of experiment) must not fail a healthy move.
_MIN_WALL_TIMEOUT_S = 30.0
_POLL_FLOOR_S = 0.01
# Virtual time: a move is judged on a grid of experiment instants from its start, coarse (a
# poll's wall floor at the speed-up) until a reading comes within _NEAR_C of the target, then
# every _FINE_GRID_S; a trigger is answered by a reading at its own instant. Both lapse after
# _PIN_WALL_LIMIT_S of wall time if the controller does not answer.
_FINE_GRID_S = 1.0
_NEAR_C = 5.0
_PIN_WALL_LIMIT_S = 2.0
#: Consecutive failed polls after which a pending move, triggers and read() fail.
_MAX_POLL_FAILURES = 3
_RAMPING = (LinkamStatus.HEATING.name, LinkamStatus.COOLING.name)


# Upper bounds of the settings that have no controller limit: a wider arrival band means
# nothing, and a longer settle time is a typo that would leave a move pending for days.
MAX_TOLERANCE_C = 100.0
MAX_SETTLE_TIME_S = 86400.0


def _check_tolerance(signal: CheckedSignal, value: Any) -> float:
    return in_range(value, 0.0, MAX_TOLERANCE_C, signal.name, unit="C", include_low=False)


def _check_settle_time(signal: CheckedSignal, value: Any) -> float:
    return in_range(value, 0.0, MAX_SETTLE_TIME_S, signal.name, unit="s")


#: A declared dwell (``LinkamStage.dwell_end``) is over once the stage is this far (C) below the
#: setpoint it was declared at.
DWELL_MARGIN_C = 25.0


def _check_dwell_end(signal: CheckedSignal, value: Any) -> float:
    # NaN: no dwell declared. Anything else: an experiment time (epoch seconds).
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{signal.name} {value!r} is not a number (experiment time, or nan)")
    value = float(value)
    if math.isinf(value):
        raise ValueError(f"{signal.name} {value}: give an experiment time, or nan for none")
    return value


def _check_rate(signal: CheckedSignal, value: Any) -> float:
    # Stored at the controller's resolution (0.01 C/min) so the Signal says what was sent.
    return round(signal.parent.driver.check_rate(value), 2)


def _apply_rate(signal: CheckedSignal, value: float) -> None:
    signal.parent.apply_rate(value)


@dataclass(frozen=True)
class StagePoll:
    """The outcome of one poll of the controller, as handed to poll subscribers.

    Attributes
    ----------
    reading : LinkamReading or None
        The decoded reply, or None if the poll failed.
    error : Exception or None
        Why the poll failed (timeout, dropped link, bad reply), or None.
    requested_at, received_at : float
        Experiment times (``insitu.clock``) the ``T`` was sent and the outcome known.
    wall_time : float
        ``time.monotonic()`` when the outcome was known (stall detection is wall time).
    """

    reading: LinkamReading | None
    error: Exception | None
    requested_at: float
    received_at: float
    wall_time: float

    @property
    def ok(self) -> bool:
        """True if the controller answered with a valid reading."""
        return self.reading is not None


@dataclass
class _Move:
    status: MoveStatus
    tracker: SettleTracker
    started_at: float
    start_temperature: float
    rate: float
    pin: Any = None  # virtual time: the next instant a poll judges this move (see _grid_after)
    near: bool = False  # a judged reading came near the target: the grid is fine from there
    judging: bool = False  # the poller is judging it (it lets go of the pin after the Status)


def _finish(status: DeviceStatus, error: BaseException | None = None) -> None:
    """End a trigger's Status, then let go of the instant it pinned (virtual time)."""
    try:
        if error is None:
            status.set_finished()
        else:
            status.set_exception(error)
    finally:
        pinned = getattr(status, "insitu_pin", None)
        if pinned is not None:
            pinned.release()


class LinkamStage(Device, PositionerBase):
    """A Linkam heating stage as a bluesky Movable: ``RE(bps.mv(stage, 150))``.

    ``set(T)`` checks ``T`` against the stage limits, sends rate, limit and start, and returns a
    Status that finishes only once the temperature has stayed within ``tolerance`` of ``T``
    continuously for ``settle_time`` (experiment seconds, through ``insitu.clock``); a reading
    outside the band restarts that wait, so an overshoot through the target does not count. The
    Status fails on a stage error flag, a communication failure, or when the move takes longer
    than its timeout.

    One background thread polls the controller every ``poll_period`` experiment seconds (never
    faster than every 0.01 wall seconds) and shares each reading: Signals, the pending move, and
    ``trigger()``. The driver's lock keeps other threads (``set``, ``stop``) off the port while
    it polls.

    Parameters
    ----------
    address_or_driver : str or LinkamT95
        A VISA resource string (the stage opens and owns a ``LinkamT95``) or a driver.
    name : str
        Device name; prefixes the Signal names and the error messages.
    stage_model : str, optional
        ``"TS1500"`` (default) or ``"HFS600E"``; must match the driver's if one is given.
    tolerance : float, optional
        Half-width of the arrival band in degC.
    settle_time : float, optional
        Experiment seconds the temperature must stay in the band.
    poll_period : float, optional
        Experiment seconds between polls.
    timeout : float, optional
        Experiment seconds a move may take; default |distance| / rate x 1.25 + settle_time +
        120 s.
    rate : float, optional
        Initial ramp rate in degC/min (sent with every ``set``).
    min_command_interval, reply_timeout : float, optional
        Wall seconds, passed to the driver the stage opens.

    Attributes
    ----------
    driver : LinkamT95
        The protocol driver, for lower-level use (``stage.driver.set_pump("auto")``).
    """

    temperature = Cpt(ReadbackSignal, value=math.nan, kind="hinted")
    setpoint = Cpt(ReadbackSignal, value=math.nan, kind="normal")
    status = Cpt(ReadbackSignal, value="", kind="normal")
    errors = Cpt(ReadbackSignal, value="", kind="normal")
    pump = Cpt(ReadbackSignal, value=-1, kind="normal")
    # 1 while polls succeed, 0 while they fail. Omitted from readings (a failed poll makes read()
    # raise anyway, so it would always read 1 there); a suspender subscribes to it.
    connected = Cpt(ReadbackSignal, value=0, kind="omitted")
    rate = Cpt(CheckedSignal, value=10.0, kind="config", check=_check_rate, apply=_apply_rate)
    tolerance = Cpt(CheckedSignal, value=1.0, kind="config", check=_check_tolerance)
    settle_time = Cpt(CheckedSignal, value=10.0, kind="config", check=_check_settle_time)
    # When the dwell a plan is in must be over (experiment time; nan: none). The watchdog makes
    # the stage safe if it is still near its setpoint then (insitu.beamline.safety).
    dwell_end = Cpt(CheckedSignal, value=math.nan, kind="omitted", check=_check_dwell_end)

    def __init__(
        self,
        address_or_driver: str | LinkamT95,
        *,
        name: str,
        stage_model: str | None = None,
        tolerance: float = 1.0,
        settle_time: float = 10.0,
        poll_period: float = 0.5,
        timeout: float | None = None,
        rate: float = 10.0,
        min_command_interval: float = 0.3,
        reply_timeout: float = 1.0,
        **kwargs: Any,
    ) -> None:
        poll_period = as_positive(poll_period, f"{name}.poll_period", unit="s")
        if timeout is not None:
            timeout = as_positive(timeout, f"{name}.timeout", unit="s")
        if isinstance(address_or_driver, LinkamT95):
            driver = address_or_driver
            if stage_model is not None and stage_model != driver.stage_model:
                raise ValueError(
                    f"{name}: stage_model {stage_model!r} differs from the driver's "
                    f"{driver.stage_model!r}"
                )
            self._owns_driver = False
        else:
            driver = LinkamT95(
                address_or_driver,
                stage_model=stage_model or "TS1500",
                min_command_interval=min_command_interval,
                timeout=reply_timeout,
                name=name,
            )
            self._owns_driver = True
        self.driver = driver
        self._poll_period = float(poll_period)
        self._move_lock = threading.Lock()
        self._move: _Move | None = None
        self.settled_at: float | None = None
        """Experiment time the last move met its settle criterion (not when a poll saw it)."""
        self._arrival = ArrivalEstimate()
        self._triggers: list[tuple[float, DeviceStatus]] = []
        self._poll_error: BaseException | None = None
        self._poll_failures = 0
        self._poll_subscribers: dict[int, Callable[[StagePoll], None]] = {}
        self._poll_subscriber_ids = itertools.count()
        self._last_poll: StagePoll | None = None
        self._stopping = threading.Event()
        self._poke = threading.Event()  # a pinned trigger or move, or destroy: poll/look now
        self._poller: threading.Thread | None = None
        try:
            super().__init__(name=name, timeout=timeout, **kwargs)
            # Config values are checked like any later put, but not sent: rate goes with each set.
            self.tolerance.put(tolerance, force=False)
            self.settle_time.put(settle_time, force=False)
            self.rate.put(_check_rate(self.rate, rate), force=True)
            now = clock.now()
            self.setpoint.update(math.nan, now, force=True)
            reading = self.driver.status(check_errors=False)
            self._store_reading(reading, now, force=True)
            self.connected.update(1, now, force=True)
            self._last_poll = StagePoll(reading, None, now, now, time.monotonic())
        except BaseException:
            if self._owns_driver:
                driver.close()
            raise
        self._poller = threading.Thread(target=self._poll_loop, name=f"{name}-poller", daemon=True)
        self._poller.start()

    # -- positioner API -----------------------------------------------------------------------

    @property
    def position(self) -> float:
        """The latest polled temperature in degC."""
        return self.temperature.get()

    @property
    def egu(self) -> str:
        """Engineering units of the position."""
        return "degC"

    @property
    def limits(self) -> tuple[float, float]:
        """(lowest, highest) setpoint the stage model accepts, in degC."""
        return (self.driver.limits.min_temperature, self.driver.limits.max_temperature)

    @property
    def poll_period(self) -> float:
        """Experiment seconds between polls (never faster than every 0.01 wall seconds)."""
        return self._poll_period

    @property
    def moving(self) -> bool:
        """True while a move is pending (ramping or settling)."""
        return self._move is not None

    def check_value(self, value: float) -> None:
        """Raise ValueError/TypeError if ``value`` is not a setpoint the stage accepts."""
        self.driver.check_limit(value)

    def move(
        self,
        position: float,
        wait: bool = False,
        timeout: float | None = None,
        moved_cb: Any = None,
    ) -> MoveStatus:
        """Ramp to ``position`` degC; the Status finishes once settled (see the class doc).

        Parameters
        ----------
        position : float
            Target temperature in degC, checked against the stage limits before anything is
            sent.
        wait : bool, optional
            Block until the Status is done.
        timeout : float, optional
            Experiment seconds for this move instead of the default.
        moved_cb : callable, optional
            Called as ``moved_cb(status, obj=self)`` when the Status is done.

        Returns
        -------
        MoveStatus

        Raises
        ------
        ValueError, TypeError
            If the target or the timeout is not acceptable; nothing was sent.
        LinkamInterlockError
            If a safety interlock is engaged (see ``enter_safe_state``); nothing was sent.
        LinkamError
            If sending rate, limit or start failed.
        """
        target = self.driver.check_limit(position)
        if timeout is not None:
            timeout = as_positive(timeout, f"{self.name}.timeout", unit="s")
        self.driver.check_interlock(f"move to {target} C")
        if self._stopping.is_set():
            raise LinkamMoveInterrupted(f"{self.name}: the device is destroyed")
        self._interrupt_move(f"superseded by a move to {target} C")
        rate = self.rate.get()
        start_temperature = self.position
        self.driver.set_rate(rate)
        self.driver.set_limit(target)
        self.driver.start()
        started_at = clock.now()
        self.setpoint.update(target, started_at)
        status = ExplainedMoveStatus(self, target)
        if moved_cb is not None:
            status.add_callback(functools.partial(moved_cb, obj=self))
        if timeout is None:
            timeout = self.timeout  # the constructor's, or None
        duration = timeout if timeout is not None else self._default_timeout(target, rate)
        tracker = SettleTracker(
            target=target,
            tolerance=self.tolerance.get(),
            settle_time=self.settle_time.get(),
            deadline=started_at + duration,
        )
        # Held time runs at full speed only to here (insitu.beamline.virtual_time).
        expected = self._arrival.expected_duration(
            start_temperature, target, rate, tracker.settle_time, tracker.tolerance
        )
        clock.expect_end(status, started_at + expected)
        move = _Move(status, tracker, started_at, start_temperature, rate)
        move.pin = clock.pin(self._grid_after(move, started_at), wall_limit=_PIN_WALL_LIMIT_S)
        if move.pin is not None:  # ended elsewhere (stop, interlock...): let time go on
            status.add_callback(lambda _status: move.judging or move.pin.release())
        with self._move_lock:
            self._move = move
        if move.pin is not None:  # virtual time only: real controllers keep their poll period
            self._poke.set()
        self._run_subs(sub_type=self.SUB_START, timestamp=started_at)
        if wait:
            status.wait()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Hold the current temperature (``O``) and end the pending move.

        Only a stage that is moving (a move pending, or the controller ramping: HEATING or
        COOLING) is told to hold. The RunEngine calls ``stop()`` on every device a plan has set,
        at the end of every plan, so a stage resting at its limit, holding, or stopped with the
        heater off is left as it is (holding would switch the heater on). While a safety
        interlock is engaged the stage is already in its safe state: nothing is sent.

        Parameters
        ----------
        success : bool, optional
            Finish the pending Status successfully instead of failing it with
            LinkamMoveInterrupted.
        """
        move = self._take_move()
        try:
            interlocked = self.driver.interlock is not None
            if not interlocked and (move is not None or self.status.get() in _RAMPING):
                self.driver.hold()
                if clock.is_virtual():
                    # Only readings at pinned instants are kept on virtual time: read what the
                    # stage does now that it holds (at this instant, the same in every run).
                    self._store_reading(self.driver.status(check_errors=False), clock.now())
        finally:
            if move is not None:
                if success:
                    move.status.set_finished()
                else:
                    move.status.set_exception(
                        LinkamMoveInterrupted(
                            f"{self.name}: move to {move.tracker.target} C stopped; holding at "
                            f"{self.position} C"
                        )
                    )

    # -- safety --------------------------------------------------------------------------------

    def enter_safe_state(
        self, mode: Literal["hold", "stop"], reason: str, *, end_move: bool = True
    ) -> None:
        """Latch the safety interlock, send the safe command, and end the pending move.

        The interlock is engaged first, so no other thread can start a ramp after this call
        (moves raise LinkamInterlockError until ``release_safe_state()``); then ``E``
        (``"stop"``: heater off) or ``O`` (``"hold"``: regulate at the current temperature)
        is sent; then the pending move fails with LinkamInterlockError naming ``reason``.

        Parameters
        ----------
        mode : "hold" or "stop"
        reason : str
            Why (e.g. the safety alarm); appears in refusals and in the failed move.
        end_move : bool, optional
            False leaves the pending move to the caller (``end_move_by_interlock``), e.g. to
            abort the RunEngine first so that the run ends as aborted for ``reason`` rather
            than failed for a failed move.

        Raises
        ------
        ValueError
            If ``mode`` is neither "hold" nor "stop" (nothing is latched).
        LinkamError
            If the safe command could not be sent (the interlock stays engaged: call again).
        """
        if mode not in ("hold", "stop"):
            raise ValueError(f"{self.name}: safe state {mode!r} is neither 'hold' nor 'stop'")
        self.driver.engage_interlock(reason, allow_hold=mode == "hold")
        try:
            if mode == "stop":
                self.driver.stop()
            else:
                self.driver.hold()
        finally:
            if end_move:
                self.end_move_by_interlock(reason)

    def end_move_by_interlock(self, reason: str) -> None:
        """Fail the pending move, if any, with LinkamInterlockError naming ``reason``."""
        move = self._take_move()
        if move is not None:
            move.status.set_exception(
                LinkamInterlockError(
                    f"{self.name}: move to {move.tracker.target} C ended by the safety "
                    f"interlock: {reason}"
                )
            )

    def release_safe_state(self) -> None:
        """Release the safety interlock: moves are accepted again (nothing is sent)."""
        self.driver.release_interlock()

    @property
    def interlock(self) -> str | None:
        """Why the safety interlock is engaged, or None."""
        return self.driver.interlock

    # -- poll subscribers -------------------------------------------------------------------

    def subscribe_polls(self, callback: Callable[[StagePoll], None]) -> int:
        """Call ``callback(poll)`` from the poller thread after every poll, good or failed.

        The callback must return quickly (hand the poll to another thread); an exception in
        it is logged and does not stop the poller.

        Returns
        -------
        int
            An id for ``unsubscribe_polls``.
        """
        if not callable(callback):
            raise TypeError(f"{self.name}: poll subscriber {callback!r} is not callable")
        with self._move_lock:
            cid = next(self._poll_subscriber_ids)
            self._poll_subscribers[cid] = callback
        return cid

    def unsubscribe_polls(self, cid: int) -> None:
        """Stop calling the poll subscriber ``cid`` (unknown ids are ignored)."""
        with self._move_lock:
            self._poll_subscribers.pop(cid, None)

    @property
    def last_poll(self) -> StagePoll | None:
        """The latest poll's outcome (good or failed)."""
        return self._last_poll

    def _publish_poll(self, poll: StagePoll) -> None:
        self._last_poll = poll
        with self._move_lock:
            subscribers = list(self._poll_subscribers.values())
        for callback in subscribers:
            try:
                callback(poll)
            except Exception:  # a subscriber's bug must not stop the poller; it is reported
                logger.exception("%s: poll subscriber %r failed", self.name, callback)

    # -- readable API ---------------------------------------------------------------------------

    def trigger(self) -> DeviceStatus:
        """Return a Status that finishes at the next reading requested after this call."""
        # A reading is wire chatter, due at once: held time runs slowly until it is back.
        status = clock.expect_end(ExplainedDeviceStatus(self), clock.now())
        if self._stopping.is_set():
            status.set_exception(LinkamMoveInterrupted(f"{self.name}: the device is destroyed"))
            return status
        asked_at = clock.now()
        # Virtual time stands here until a reading answers (a simulation repeats itself).
        status.insitu_pin = clock.pin(asked_at, wall_limit=_PIN_WALL_LIMIT_S)
        with self._move_lock:
            self._triggers.append((asked_at, status))
        if status.insitu_pin is not None:  # virtual time only, as for moves
            self._poke.set()
        return status

    def read(self) -> dict[str, dict[str, Any]]:
        """The latest reading; raises the poll error if the latest poll failed."""
        error = self._poll_error
        if error is not None:
            raise error
        return super().read()

    # -- lifecycle --------------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop the poller, fail anything pending and close the driver if the stage opened it."""
        self._stopping.set()
        self._poke.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join()
        ended = LinkamMoveInterrupted(f"{self.name}: the device is destroyed")
        self._interrupt_move("the device is destroyed")
        for _, status in self._take_triggers(None):
            _finish(status, ended)
        try:
            if self._owns_driver:
                self.driver.close()
        finally:
            super().destroy()

    close = destroy

    # -- poller -----------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while True:
            period = clock.wall_period(self._poll_period, floor=_POLL_FLOOR_S)
            due = self._pinned_due()
            if due is None:
                self._poke.wait(period)
                self._poke.clear()
            else:  # virtual time: poll the moment time stands at the pinned instant
                clock.wait_until(due, wall_timeout=period, cancel=self._stopping)
            if self._stopping.is_set():
                return
            self._poll_once()

    def _pinned_due(self) -> float | None:
        """The earliest pinned instant a poll must answer (a trigger's, a move's), or None."""
        with self._move_lock:
            dues = [getattr(status, "insitu_pin", None) for _, status in self._triggers]
            if self._move is not None:
                dues.append(self._move.pin)
        instants = [pinned.at for pinned in dues if pinned is not None and pinned.active]
        return min(instants) if instants else None

    def _poll_once(self) -> None:
        requested_at = clock.now()
        try:
            reading = self.driver.status(check_errors=False)
        except Exception as exc:  # the poller lives on; the watchdog sees every failed poll
            failed_at = clock.now()
            self._poll_failures += 1
            # One garbled or lost reply (a serial glitch) must not end a ramp: the next poll
            # usually answers. Only a failure that persists reaches whoever waits.
            persistent = self._poll_failures >= _MAX_POLL_FAILURES
            if persistent:
                self.connected.update(0, failed_at)
            self._publish_poll(StagePoll(None, exc, requested_at, failed_at, time.monotonic()))
            if persistent:
                self._poll_failed(exc, requested_at)
            return
        self._poll_failures = 0
        received_at = clock.now()
        self._poll_error = None
        triggers = self._take_triggers(requested_at)
        judged = self._judged_move(requested_at)
        # On virtual time only readings at pinned instants are kept (a trigger's, a move's
        # grid): what a plan reads is then the same in every run. The others reach the
        # watchdog only.
        if not clock.is_virtual() or triggers or judged is not None:
            self._store_reading(reading, received_at)
        self.connected.update(1, received_at)
        self._publish_poll(StagePoll(reading, None, requested_at, received_at, time.monotonic()))
        for _, status in triggers:
            _finish(status)
        if judged is not None and judged.pin is None:
            self._judge_move(reading, requested_at, received_at)
        elif judged is not None:
            judged.near = judged.near or abs(reading.temperature - judged.tracker.target) <= _NEAR_C
            judged.judging = True
            try:
                self._judge_move(reading, requested_at, received_at)
            finally:
                judged.judging = False
                if judged.status.done:  # after the Status: a plan waiting for it held time
                    judged.pin.release()
                else:
                    judged.pin.move(self._grid_after(judged, requested_at))

    def _judged_move(self, requested_at: float) -> _Move | None:
        """The pending move if this poll judges it: every poll, or on virtual time only those
        at its pinned grid instant."""
        with self._move_lock:
            move = self._move
        if move is None or (move.pin is not None and requested_at < move.pin.at):
            return None
        return move

    def _grid_after(self, move: _Move, t: float) -> float:
        """The next instant after ``t`` a poll judges ``move`` on virtual time: a function of
        the move's start and its readings only, so it is the same in every run."""
        coarse = max(self._poll_period, clock.to_experiment(_POLL_FLOOR_S))
        step = max(self._poll_period, _FINE_GRID_S) if move.near else coarse
        k = math.floor((t - move.started_at) / step + 1e-9) + 1
        return move.started_at + k * step

    def _store_reading(self, reading: LinkamReading, t: float, *, force: bool = False) -> None:
        self.temperature.update(reading.temperature, t, force=force)
        self.status.update(reading.status.name, t, force=force)
        self.errors.update("|".join(reading.errors.names), t, force=force)
        pump = -1 if reading.pump_speed is None else reading.pump_speed
        self.pump.update(pump, t, force=force)
        self._set_position(reading.temperature, timestamp=t)

    def _judge_move(self, reading: LinkamReading, requested_at: float, t: float) -> None:
        error: LinkamError | None = None
        with self._move_lock:
            move = self._move
            # A reading asked for before the move's commands went out says nothing about it.
            if move is None or requested_at < move.started_at:
                return
            if reading.errors:
                error = LinkamStageError.from_reading(
                    reading, f"{self.name} at {self.driver.address}"
                )
            else:
                verdict = move.tracker.update(t, reading.temperature, requested_at=requested_at)
                if verdict is None:
                    return
                if verdict == "timed out":
                    error = LinkamMoveTimeout(
                        f"{self.name}: not settled within {move.tracker.tolerance} C of "
                        f"{move.tracker.target} C for {move.tracker.settle_time} s by the "
                        f"deadline ({move.tracker.deadline - move.started_at:.0f} s after the "
                        f"start); now {reading.temperature} C, {reading.status.name}"
                    )
            self._move = None
        if error is None:
            # The criterion was met settle_time after the stay in the band began; the poll that
            # saw it came up to a poll period later (seconds of a fast simulation).
            self.settled_at = min(t, move.tracker.in_band_since + move.tracker.settle_time)
            tracker = move.tracker
            self._arrival.observe(
                move.start_temperature,
                tracker.target,
                move.rate,
                tracker.settle_time,
                tracker.tolerance,
                took=self.settled_at - move.started_at,
            )
            # SUB_DONE first, as ophyd positioners do: a waiter woken by the Status sees it run.
            self._run_subs(sub_type=self.SUB_DONE, timestamp=t, value=reading.temperature)
            move.status.set_finished()
        else:
            move.status.set_exception(error)

    def _poll_failed(self, exc: Exception, requested_at: float) -> None:
        self._poll_error = exc
        for _, status in self._take_triggers(requested_at):
            _finish(status, exc)
        with self._move_lock:
            move = self._move
            if move is None or requested_at < move.started_at:
                return
            self._move = None
        move.status.set_exception(exc)

    # -- helpers ----------------------------------------------------------------------------

    def _take_move(self) -> _Move | None:
        with self._move_lock:
            move, self._move = self._move, None
        return move

    def _take_triggers(self, requested_at: float | None) -> list[tuple[float, DeviceStatus]]:
        """Remove and return the triggers a reading requested at ``requested_at`` answers."""
        with self._move_lock:
            if requested_at is None:
                taken, self._triggers = self._triggers, []
            else:
                taken = [item for item in self._triggers if item[0] <= requested_at]
                self._triggers = [item for item in self._triggers if item[0] > requested_at]
        return taken

    def _interrupt_move(self, why: str) -> None:
        move = self._take_move()
        if move is not None:
            move.status.set_exception(
                LinkamMoveInterrupted(f"{self.name}: move to {move.tracker.target} C {why}")
            )

    def _default_timeout(self, target: float, rate: float) -> float:
        ramp_seconds = abs(target - self.position) / rate * 60.0
        expected = ramp_seconds * _RAMP_TIME_FACTOR + self.settle_time.get() + _TIMEOUT_MARGIN_S
        return max(expected, _MIN_WALL_TIMEOUT_S * clock.speedup())

    def apply_rate(self, rate: float) -> None:
        """Send a new rate; a pending move gets a deadline recomputed for the new rate.

        The hook of the ``rate`` Signal, which calls it with a checked value: set ``rate``
        rather than calling this.
        """
        self.driver.set_rate(rate)
        with self._move_lock:
            move = self._move
            if move is not None:
                move.tracker.deadline = max(
                    move.tracker.deadline,
                    clock.now() + self._default_timeout(move.tracker.target, rate),
                )
