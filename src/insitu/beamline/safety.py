"""The stage watchdog: hard thermal limits enforced from its own thread, whatever plans do.

The watchdog lives beside the RunEngine, not inside it: the stage's poller hands it every
reading, good or failed, and it judges each one at once; its own thread catches what no reading
shows (a silent controller, a stalled poller) and retries the safe command until it gets
through. So it keeps guarding the stage while a plan runs, while the RunEngine is paused,
suspended or idle, and between runs. On a breach it

1. latches the stage's safety interlock and sends the safe command (``E``, heater off, or
   ``O``, hold the current temperature) through the driver's lock: nothing can restart heating
   until a person acknowledges the alarm with :meth:`Watchdog.reset`;
2. records a :class:`SafetyAlarm` naming the limit, the value and the device;
3. calls the alarm callbacks on threads of their own; the beamline registers
   :meth:`RunAborter.on_alarm`, which turns the alarm into ``RE.abort(reason)``, so the run's
   stop document says ``exit_status='abort'`` with the alarm as its ``reason``.

Why not a bluesky suspender: a suspender pauses and later *resumes* the plan, and it only acts
while a plan runs; a safety trip must act at once in every RunEngine state, end the run, and
stay latched until a person clears it.

The limits themselves are pure rules (:mod:`insitu.beamline.safety_rules`); turning an alarm
into the run's abort is :mod:`insitu.beamline.run_aborter`. Both are re-exported here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from insitu import clock
from insitu.beamline.run_aborter import RunAborter
from insitu.beamline.safety_rules import SafetyAlarm, StageLimits
from insitu.checks import as_positive
from insitu.devices.linkam import DWELL_MARGIN_C, LinkamStatus

if TYPE_CHECKING:
    from insitu.beamline.config import SafetyConfig
    from insitu.devices.linkam import LinkamStage, StagePoll

__all__ = ["RunAborter", "SafetyAlarm", "AlarmStillActiveError", "Watchdog"]

logger = logging.getLogger(__name__)

#: Statuses that count as "in the safe state" once the safe command was sent. A person may
#: switch a holding stage off (``stage.driver.stop()``) to cool it before a reset.
_SAFE_STATUSES = {
    "stop": {LinkamStatus.STOPPED},
    "hold": {LinkamStatus.HOLDING_CURRENT, LinkamStatus.STOPPED},
}
#: Wall seconds between re-sends of the safe command when the controller is not in its safe
#: state after it (a front-panel restart, a lost command): often enough, but no flood.
_RESEND_INTERVAL_S = 2.0
#: Wall-second floor of the rate window. A reading's time is known to a few wall milliseconds
#: (the round trip), which a sped-up clock multiplies: at 400x, 30 experiment seconds are 75 ms
#: of wall time and a 10 ms jitter reads a 50 C/min ramp as ~90 C/min. On real hardware
#: (speed-up 1) the configured window applies unchanged.
_RATE_WINDOW_WALL_FLOOR_S = 1.0
#: Wall floor of the watchdog's own check period (it also wakes at every poll).
_CHECK_FLOOR_S = 0.05
#: Wall seconds a trip waits for its alarm callbacks before it ends the stage's pending move.
_CALLBACK_GRACE_S = 2.0
#: Wall seconds an aborted plan gets to stop the stage's pending move before the watchdog ends it.
_MOVE_GRACE_S = 1.0


class AlarmStillActiveError(RuntimeError):
    """An alarm cannot be acknowledged yet: the condition that caused it is still present."""


class Watchdog:
    """Guard a Linkam stage against over-temperature, runaway heating, long dwells and silence.

    Limits (checked at every poll of the stage, as the poller delivers it; stalls on the
    watchdog's own thread):

    - ``max_temperature``: a reading above it trips at once.
    - ``max_rate``: the heating rate, the least-squares slope of the readings over the last
      ``rate_window`` experiment seconds (at least 1 wall second on a sped-up clock; once they
      span half of it), above it trips. Cooling
      is not limited here: a stopped stage cools fast, and the controller flags too fast a
      commanded cooling itself (EB1), which trips as an error flag.
    - ``time_above = (temperature, seconds)``: staying above ``temperature`` without a break
      for ``seconds`` (experiment time) trips.
    - any EB1 error flag the controller reports (open circuit, power surge, ...) trips.
    - ``stall_timeout``: no valid reading for that many *wall* seconds (the controller is
      silent, the link is gone, or the stage's poller has stalled) trips. Wall time, like the
      driver's reply timeout: communication does not speed up with a simulated clock.

    A breach is acted on as soon as the breaching reading arrives, before the next poll: so
    within one poll period of the breach becoming visible and within two of the breach itself;
    a stall is acted on within one check period (one poll period, at least 0.05 wall s) of the
    timeout. If the safe command cannot be sent (controller silent), it is
    retried at every check until it gets through.

    Parameters
    ----------
    stage : LinkamStage
    max_temperature : float
        degC.
    max_rate : float
        degC/min (heating).
    rate_window : float, optional
        Experiment seconds over which the rate is measured.
    time_above : (float, float) or None, optional
        (degC, experiment seconds), or None for no dwell limit.
    stall_timeout : float, optional
        Wall seconds without a valid reading.
    safe_state : "stop" or "hold", optional
        ``"stop"`` sends ``E`` (heater off: the stage cools to ambient); ``"hold"`` sends ``O``
        (regulate at the current temperature; this does not cure an over-temperature or a
        dwell breach, so ``"stop"`` is the default).
    name : str, optional
        Used in log messages and errors.

    Notes
    -----
    Acknowledge an alarm with :meth:`reset` once the cause is gone (temperature back below
    the limit, controller answering without error flags); until then every move of the stage,
    and every driver command that could heat, is refused with LinkamInterlockError.
    """

    def __init__(
        self,
        stage: LinkamStage,
        *,
        max_temperature: float,
        max_rate: float,
        rate_window: float = 30.0,
        time_above: tuple[float, float] | None = None,
        stall_timeout: float = 10.0,
        safe_state: Literal["hold", "stop"] = "stop",
        name: str = "watchdog",
        state_file: str | os.PathLike | None = None,
    ) -> None:
        self.state_file = Path(state_file) if state_file is not None else None
        self._saved_state: tuple | None = None
        self._dwell_subscription: int | None = None
        self.stall_timeout = as_positive(stall_timeout, f"{name}.stall_timeout", unit="s")
        if safe_state not in _SAFE_STATUSES:
            raise ValueError(f"{name}.safe_state {safe_state!r} is neither 'hold' nor 'stop'")
        self.limits = StageLimits(
            stage.name,
            max_temperature=max_temperature,
            max_rate=max_rate,
            rate_window=rate_window,
            time_above=time_above,
            safe_state=safe_state,
            name=name,
        )
        """The pure limit rules every reading is judged by."""
        self.name = name
        self.stage = stage
        self.safe_state = safe_state
        self.alarms: list[SafetyAlarm] = []
        """Every alarm since the watchdog started, oldest first."""
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscription: int | None = None
        self._callbacks: list[Callable[[SafetyAlarm], Any]] = []
        self._alarm: SafetyAlarm | None = None
        self._safe_pending = False
        self._safe_sent_at: float | None = None  # experiment time the safe command went out
        self._safe_sent_wall = -math.inf
        self._last_good_wall = time.monotonic()
        self._last_error: Exception | None = None

    @classmethod
    def from_config(
        cls,
        stage: LinkamStage,
        safety: SafetyConfig,
        *,
        state_file: str | os.PathLike | None = None,
    ) -> Watchdog:
        """Build a watchdog from the beamline config's resolved ``safety`` section."""
        above = safety.time_above
        return cls(
            stage,
            state_file=state_file,
            max_temperature=safety.max_temperature_C,
            max_rate=safety.max_rate_C_per_min,
            rate_window=safety.rate_window_s,
            time_above=None if above is None else (above.temperature_C, above.seconds),
            stall_timeout=safety.stall_timeout_s,
            safe_state=safety.safe_state,
        )

    @property
    def max_temperature(self) -> float:
        """degC: a reading above it trips."""
        return self.limits.max_temperature

    @property
    def max_rate(self) -> float:
        """degC/min: heating faster trips."""
        return self.limits.max_rate

    @property
    def rate_window(self) -> float:
        """Experiment seconds over which the heating rate is measured."""
        return self.limits.rate_window

    @property
    def time_above(self) -> tuple[float, float] | None:
        """(degC, experiment seconds): a longer dwell above the temperature trips."""
        return self.limits.time_above

    def __repr__(self) -> str:
        state = "tripped" if self._alarm is not None else "armed" if self.running else "stopped"
        return f"<Watchdog {self.name} on {self.stage.name}: {state}>"

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the watchdog thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Subscribe to the stage's polls and start the watchdog thread (again: no effect)."""
        if self.running:
            return
        self._stopping.clear()
        self._restore_state()
        last = self.stage.last_poll
        self._last_good_wall = last.wall_time if last is not None and last.ok else time.monotonic()
        if hasattr(self.stage, "dwell_end"):
            self._dwell_subscription = self.stage.dwell_end.subscribe(self._on_dwell_end, run=False)
        self._subscription = self.stage.subscribe_polls(self._receive)
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-thread", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the stage and any latched interlock are left as they are)."""
        self._stopping.set()
        self._wake.set()
        if self._subscription is not None:
            self.stage.unsubscribe_polls(self._subscription)
            self._subscription = None
        if self._dwell_subscription is not None:
            self.stage.dwell_end.unsubscribe(self._dwell_subscription)
            self._dwell_subscription = None
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None

    close = stop

    # -- alarms -----------------------------------------------------------------------------

    @property
    def alarm(self) -> SafetyAlarm | None:
        """The active (not yet acknowledged) alarm, or None."""
        return self._alarm

    @property
    def tripped(self) -> bool:
        """True while an alarm is active."""
        return self._alarm is not None

    @property
    def safe_state_applied(self) -> bool:
        """True once the safe command of the active alarm has reached the controller."""
        return self._alarm is not None and not self._safe_pending

    def add_alarm_callback(self, callback: Callable[[SafetyAlarm], Any]) -> None:
        """Call ``callback(alarm)`` at every trip, on a thread of its own (it may block)."""
        if not callable(callback):
            raise TypeError(f"{self.name}: alarm callback {callback!r} is not callable")
        self._callbacks.append(callback)

    def reset(self) -> None:
        """Acknowledge the active alarm: release the stage's interlock, re-arm every limit.

        Refused while the cause is still present, judged on the latest poll: the controller
        must answer (within ``stall_timeout``), without an error flag, at or below
        ``max_temperature``. A stage held above the limit must be cooled first, e.g. with
        ``stage.driver.stop()`` (heater off is always allowed). Dwell and rate measurements
        start afresh.

        Raises
        ------
        AlarmStillActiveError
            Naming the alarm and what still stands in the way.
        """
        with self._lock:
            alarm = self._alarm
            if alarm is None:
                return
            problem = self._reset_blocker()
            if problem is not None:
                raise AlarmStillActiveError(
                    f"{self.name}: cannot acknowledge the alarm ({alarm.message}): {problem}"
                )
            self._alarm = None
            self._safe_pending = False
            self._safe_sent_at = None
            self.limits.restart()
            self.stage.release_safe_state()
        logger.warning("%s: alarm acknowledged (%s)", self.name, alarm.message)

    def _reset_blocker(self) -> str | None:
        poll = self.stage.last_poll
        if poll is None or not poll.ok:
            return f"the controller does not answer ({poll.error if poll else 'no reading yet'})"
        age = time.monotonic() - poll.wall_time
        if age > self.stall_timeout:
            return f"the latest reading is {age:.1f} s old (stall_timeout {self.stall_timeout} s)"
        reading = poll.reading
        if reading.errors:
            return f"the controller reports {'|'.join(reading.errors.names)}"
        if reading.temperature > self.max_temperature:
            return (
                f"{self.stage.name} is at {reading.temperature} C, above max_temperature "
                f"{self.max_temperature} C; cool it first (stage.driver.stop())"
            )
        return None

    # -- declared dwells and what outlives this process ------------------------------------

    def _on_dwell_end(self, value=None, **_) -> None:
        """A plan declared (or withdrew, nan) the end of the dwell the stage is in."""
        with self._lock:
            if value is None or math.isnan(value):
                self.limits.dwell = None
            else:
                setpoint = self.stage.setpoint.get()
                if math.isnan(setpoint):
                    setpoint = self.stage.temperature.get()
                self.limits.declare_dwell(setpoint - DWELL_MARGIN_C, float(value))
                logger.info(
                    "%s: dwell declared: %s must be below %.1f C by %.0f s from now",
                    self.name,
                    self.stage.name,
                    setpoint - DWELL_MARGIN_C,
                    float(value) - clock.now(),
                )
            self._save_state()

    def _restore_state(self) -> None:
        """Take over the dwell measurements an earlier watchdog of this stage left on disk.

        A process that ends (or dies) while the stage is hot leaves the time since it is above
        ``time_above`` and any declared dwell in ``state_file``: the next ``load()`` goes on
        counting instead of starting afresh. Both end at the first reading below their
        temperature, so a stale record costs nothing once the stage is cold.
        """
        if self.state_file is None or not self.state_file.is_file():
            return
        try:
            state = json.loads(self.state_file.read_text())
            dwell = state.get("dwell")
            self.limits.restore(
                above_since=state.get("above_since"),
                dwell=None if dwell is None else (float(dwell[0]), float(dwell[1])),
            )
        except (OSError, ValueError, TypeError, IndexError) as error:
            logger.warning(
                "%s: ignoring unreadable state %s (%s)", self.name, self.state_file, error
            )
            return
        self._saved_state = (self.limits.above_since, self.limits.dwell)
        if any(self._saved_state):
            logger.warning(
                "%s: taking over from an earlier process: above %s since %s, declared dwell %s",
                self.name,
                self.limits.time_above,
                self.limits.above_since,
                self.limits.dwell,
            )

    def _save_state(self) -> None:
        """Write the dwell measurements if they changed (caller holds the lock)."""
        if self.state_file is None:
            return
        state = (self.limits.above_since, self.limits.dwell)
        if state == self._saved_state:
            return
        self._saved_state = state
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = self.state_file.with_suffix(".tmp")
            temporary.write_text(
                json.dumps({"above_since": state[0], "dwell": state[1], "stage": self.stage.name})
            )
            os.replace(temporary, self.state_file)
        except OSError as error:  # the limits still act in this process
            logger.warning("%s: could not save %s (%s)", self.name, self.state_file, error)

    # -- checks ---------------------------------------------------------------------------------

    def _receive(self, poll: StagePoll) -> None:
        """Poller thread, at every poll: judge it at once; on a breach, act before returning.

        Acting here, before the stage judges its pending move on the same reading, lets the
        RunEngine abort for the alarm before the move could fail for the same cause (a run
        failed by a failed move would carry no reason naming the limit).
        """
        if self._stopping.is_set():
            return
        with self._lock:
            alarm = self._record(self._evaluate(poll))
            self._save_state()
        if alarm is not None:
            self._trip(alarm)
        self._wake.set()

    def _check_period(self) -> float:
        return clock.wall_period(self.stage.poll_period, floor=_CHECK_FLOOR_S)

    def _run(self) -> None:
        """The watchdog thread: stalls, and (re)sending the safe command until it gets through."""
        while not self._stopping.is_set():
            self._wake.wait(self._check_period())
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self._check_once()
            except Exception:  # the guard must outlive its own bugs; each one is reported
                logger.exception("%s: check failed", self.name)

    def _check_once(self) -> None:
        with self._lock:
            alarm = self._record(self._check_stall())
            resend = alarm is None and self._safe_pending and self._may_resend()
        if alarm is not None:
            self._trip(alarm)
        elif resend:
            self._send_safe_state()

    def _record(self, alarm: SafetyAlarm | None) -> SafetyAlarm | None:
        """Make ``alarm`` the active one unless one is active already. Caller holds the lock."""
        if alarm is None or self._alarm is not None:
            return None
        self._alarm = alarm
        self.alarms.append(alarm)
        self._safe_pending = True
        return alarm

    def _trip(self, alarm: SafetyAlarm) -> None:
        """Safe state first, then the alarm callbacks (RunEngine abort), then the pending move."""
        logger.critical("%s", alarm.reason)
        self._send_safe_state()
        callers = [
            threading.Thread(target=self._call_back, args=(callback, alarm), daemon=True)
            for callback in list(self._callbacks)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            # An abort of a running plan returns at once; one of a paused plan does its cleanup
            # on the caller's thread: give it a moment, never the whole cleanup.
            caller.join(_CALLBACK_GRACE_S)
        threading.Thread(
            target=self._end_move, args=(alarm.reason,), name=f"{self.name}-end-move", daemon=True
        ).start()

    def _end_move(self, reason: str) -> None:
        """End a move nobody else ended: an aborted plan's cleanup stops the stage itself (its
        move then ends as interrupted, which the RunEngine pardons); a move started outside a
        plan is failed here, with the alarm as its error, after a short grace."""
        deadline = time.monotonic() + _MOVE_GRACE_S
        while self.stage.moving and time.monotonic() < deadline:
            time.sleep(0.02)  # wall time on purpose: waiting for the RunEngine's cleanup
        self.stage.end_move_by_interlock(reason)

    def _evaluate(self, poll: StagePoll) -> SafetyAlarm | None:
        """Judge one poll; return a new alarm if it breaches a limit. Caller holds the lock."""
        if not poll.ok:
            self._last_error = poll.error
            return None
        self._last_good_wall = max(self._last_good_wall, poll.wall_time)
        self._last_error = None
        # The controller measured somewhere between request and reply: take the midpoint.
        reading, t = poll.reading, 0.5 * (poll.requested_at + poll.received_at)
        if self._alarm is not None:
            self._watch_safe_state(poll)
            return None
        return self.limits.judge(
            t,
            reading.temperature,
            "|".join(reading.errors.names) if reading.errors else "",
            min_rate_window=_RATE_WINDOW_WALL_FLOOR_S * clock.speedup(),
        )

    def _check_stall(self) -> SafetyAlarm | None:
        if self._alarm is not None:
            return None
        silent = time.monotonic() - self._last_good_wall
        if silent <= self.stall_timeout:
            return None
        if self._last_error is not None:
            why = f"last error: {self._last_error}"
        else:
            why = "its poller delivered no reading"
        return self._make_alarm(
            "stall_timeout_s",
            round(silent, 1),
            self.stall_timeout,
            clock.now(),
            f"{self.stage.name} gave no valid reading for {silent:.1f} s (wall), longer than "
            f"stall_timeout_s {self.stall_timeout:g} s ({why})",
        )

    def _make_alarm(
        self, limit: str, value: float | str, threshold: float | str, t: float, message: str
    ) -> SafetyAlarm:
        return SafetyAlarm(limit, value, threshold, self.stage.name, message, t, self.safe_state)

    def _watch_safe_state(self, poll: StagePoll) -> None:
        """After the safe command: a controller seen out of its safe state is told again."""
        sent_at = self._safe_sent_at
        if self._safe_pending or sent_at is None or poll.requested_at <= sent_at:
            return
        if poll.reading.status not in _SAFE_STATUSES[self.safe_state]:
            logger.error(
                "%s: %s reports %s after the safe command; sending it again",
                self.name,
                self.stage.name,
                poll.reading.status.name,
            )
            self._safe_pending = True

    def _may_resend(self) -> bool:
        return time.monotonic() - self._safe_sent_wall >= _RESEND_INTERVAL_S

    def _send_safe_state(self) -> None:
        alarm = self._alarm
        if alarm is None:
            return
        self._safe_sent_wall = time.monotonic()
        try:
            self.stage.enter_safe_state(self.safe_state, alarm.reason, end_move=False)
        except Exception as exc:  # controller silent or link down: retried at every check
            self._safe_sent_wall = -math.inf
            logger.error(
                "%s: could not put %s in its safe state (will retry): %s",
                self.name,
                self.stage.name,
                exc,
            )
            return
        with self._lock:
            if self._alarm is alarm:
                self._safe_pending = False
                # Polls asked for after this reflect the command (the driver serialises them).
                self._safe_sent_at = clock.now()

    def _call_back(self, callback: Callable[[SafetyAlarm], Any], alarm: SafetyAlarm) -> None:
        try:
            callback(alarm)
        except Exception:  # reported; the stage is already safe whatever the callback does
            logger.exception("%s: alarm callback %r failed", self.name, callback)
