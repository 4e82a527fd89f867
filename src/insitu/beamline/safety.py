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
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from insitu import clock
from insitu.checks import as_finite, as_positive
from insitu.devices.linkam import LinkamStatus

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
#: Fewest readings, and fraction of the window they must span, for a rate measurement.
_RATE_MIN_READINGS = 3
_RATE_MIN_SPAN = 0.5
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
#: Wall seconds RunAborter.abort waits for a transient RunEngine state to settle.
_ABORT_WAIT_S = 30.0


class AlarmStillActiveError(RuntimeError):
    """An alarm cannot be acknowledged yet: the condition that caused it is still present."""


@dataclass(frozen=True)
class SafetyAlarm:
    """One breach of a hard limit, as recorded by the watchdog.

    Attributes
    ----------
    limit : str
        Which limit: ``"max_temperature_C"``, ``"max_rate_C_per_min"``, ``"time_above"``,
        ``"stage_error"`` (an EB1 error flag) or ``"stall_timeout_s"`` (no valid reading).
    value, threshold : float or str
        What was measured and what was allowed (same units; flag names for ``stage_error``).
    device : str
        The stage's name.
    message : str
        One sentence naming limit, value, threshold and device.
    time : float
        Experiment time (``insitu.clock``) of the breaching reading or of the stall check.
    safe_state : str
        ``"stop"`` or ``"hold"``: what the stage was told.
    """

    limit: str
    value: float | str
    threshold: float | str
    device: str
    message: str
    time: float
    safe_state: str

    @property
    def reason(self) -> str:
        """The text that goes into the stop document and the interlock refusals."""
        what = "heater off (E)" if self.safe_state == "stop" else "hold (O)"
        return (
            f"safety watchdog: {self.message}; {self.device} put in its safe state "
            f"'{self.safe_state}' ({what})"
        )


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
    ) -> None:
        for label, value, unit in (
            ("max_rate", max_rate, "C/min"),
            ("rate_window", rate_window, "s"),
            ("stall_timeout", stall_timeout, "s"),
        ):
            as_positive(value, f"{name}.{label}", unit=unit)
        max_temperature = as_finite(max_temperature, f"{name}.max_temperature", unit="C")
        if time_above is not None:
            above_temperature, above_seconds = time_above
            time_above = (
                as_finite(above_temperature, f"{name}.time_above temperature", unit="C"),
                as_positive(above_seconds, f"{name}.time_above seconds", unit="s"),
            )
        if safe_state not in _SAFE_STATUSES:
            raise ValueError(f"{name}.safe_state {safe_state!r} is neither 'hold' nor 'stop'")
        self.name = name
        self.stage = stage
        self.max_temperature = float(max_temperature)
        self.max_rate = float(max_rate)
        self.rate_window = float(rate_window)
        self.time_above = time_above
        self.stall_timeout = float(stall_timeout)
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
        self._rate_points: deque[tuple[float, float]] = deque()
        self._above_since: float | None = None
        self._last_good_wall = time.monotonic()
        self._last_error: Exception | None = None

    @classmethod
    def from_config(cls, stage: LinkamStage, safety: SafetyConfig) -> Watchdog:
        """Build a watchdog from the beamline config's resolved ``safety`` section."""
        above = safety.time_above
        return cls(
            stage,
            max_temperature=safety.max_temperature_C,
            max_rate=safety.max_rate_C_per_min,
            rate_window=safety.rate_window_s,
            time_above=None if above is None else (above.temperature_C, above.seconds),
            stall_timeout=safety.stall_timeout_s,
            safe_state=safety.safe_state,
        )

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
        last = self.stage.last_poll
        self._last_good_wall = last.wall_time if last is not None and last.ok else time.monotonic()
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
            self._rate_points.clear()
            self._above_since = None
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
        if reading.errors:
            flags = "|".join(reading.errors.names)
            return self._make_alarm(
                "stage_error",
                flags,
                "no error flag",
                t,
                f"{self.stage.name} controller reports error flag {flags} at "
                f"{reading.temperature} C",
            )
        if reading.temperature > self.max_temperature:
            return self._make_alarm(
                "max_temperature_C",
                reading.temperature,
                self.max_temperature,
                t,
                f"{self.stage.name} temperature {reading.temperature} C is above "
                f"max_temperature_C {self.max_temperature} C",
            )
        rate = self._heating_rate(t, reading.temperature)
        if rate is not None and rate > self.max_rate:
            return self._make_alarm(
                "max_rate_C_per_min",
                round(rate, 2),
                self.max_rate,
                t,
                f"{self.stage.name} heats at {rate:.1f} C/min over the last "
                f"{len(self._rate_points)} readings, above max_rate_C_per_min "
                f"{self.max_rate} C/min",
            )
        return self._check_time_above(t, reading.temperature)

    def _heating_rate(self, t: float, temperature: float) -> float | None:
        window = max(self.rate_window, _RATE_WINDOW_WALL_FLOOR_S * clock.speedup())
        points = self._rate_points
        points.append((t, temperature))
        while points and points[0][0] < t - window:
            points.popleft()
        if len(points) < _RATE_MIN_READINGS:
            return None
        span = points[-1][0] - points[0][0]
        if span < _RATE_MIN_SPAN * window:
            return None
        # Least-squares slope: the regulation ripple (+/-0.1 C) averages out over the window.
        mean_t = sum(p[0] for p in points) / len(points)
        mean_T = sum(p[1] for p in points) / len(points)  # noqa: N806 - T is temperature
        covariance = sum((p[0] - mean_t) * (p[1] - mean_T) for p in points)
        variance = sum((p[0] - mean_t) ** 2 for p in points)
        return covariance / variance * 60.0 if variance > 0 else None

    def _check_time_above(self, t: float, temperature: float) -> SafetyAlarm | None:
        if self.time_above is None:
            return None
        threshold, seconds = self.time_above
        if temperature <= threshold:
            self._above_since = None
            return None
        if self._above_since is None:
            self._above_since = t
        dwell = t - self._above_since
        if dwell < seconds:
            return None
        return self._make_alarm(
            "time_above",
            round(dwell, 1),
            seconds,
            t,
            f"{self.stage.name} has stayed above {threshold} C for {dwell:.0f} s, longer than "
            f"time_above {seconds:g} s (now {temperature} C)",
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


class RunAborter:
    """Abort the RunEngine's current plan from any thread, with the reason in the stop document.

    ``RE.abort(reason)`` (bluesky's public API, callable from another thread) ends the plan
    with its cleanup and every open run with ``exit_status='abort'``; the caller of
    ``RE(plan)`` gets ``RunEngineInterrupted``. But a plan that closes its own run (every
    ``run_decorator``/``run_wrapper`` plan) closes it without the reason (the RunEngine only
    uses it for runs it closes itself; blueapi issue #1306 reports the same). So the aborter
    also installs a RunEngine preprocessor that puts the reason into the ``close_run`` of an
    abort it requested.

    Parameters
    ----------
    run_engine : bluesky.RunEngine
        Its ``preprocessors`` list gets the reason filler (applies to plans started later).
    """

    def __init__(self, run_engine: Any) -> None:
        self.run_engine = run_engine
        self._reason: str | None = None
        run_engine.preprocessors.append(self._fill_reason)

    def abort(self, reason: str, *, wait: float = _ABORT_WAIT_S) -> bool:
        """Abort the running, suspended or paused plan for ``reason``; nothing if idle.

        A transient state (pausing, suspending) is waited out for up to ``wait`` wall
        seconds. Aborting a *paused* plan from a thread other than the main one needs a
        RunEngine whose Ctrl-C handler is installed only on the main thread (the beamline's
        is: see ``insitu.beamline.assembly``); the cleanup then runs on the calling thread.

        Returns
        -------
        bool
            True if an abort was requested.
        """
        from bluesky.utils import TransitionError

        deadline = time.monotonic() + wait
        while True:
            state = str(self.run_engine.state)
            if state in ("running", "paused"):
                self._reason = reason  # before the abort: the run may close before it returns
                try:
                    self.run_engine.abort(reason=reason)
                except TransitionError:  # it went idle meanwhile: nothing left to abort
                    return False
                return True
            if state in ("idle", "panicked", "aborting", "halting", "stopping"):
                return False
            if time.monotonic() > deadline:
                logger.error("RunEngine stayed %r for %s s: not aborted (%s)", state, wait, reason)
                return False
            time.sleep(0.02)  # wall time on purpose: waiting for a RunEngine state transition

    def on_alarm(self, alarm: SafetyAlarm) -> bool:
        """Watchdog alarm callback: ``abort(alarm.reason)``."""
        return self.abort(alarm.reason)

    def _fill_reason(self, plan: Any) -> Any:
        from bluesky.preprocessors import msg_mutator

        def fill(msg: Any) -> Any:
            if msg.command == "open_run":
                self._reason = None  # a new run: an earlier abort's reason is not its own
            elif (
                msg.command == "close_run"
                and self._reason is not None
                and msg.kwargs.get("exit_status") == "abort"
                and not msg.kwargs.get("reason")
            ):
                return msg._replace(kwargs={**msg.kwargs, "reason": self._reason})
            return msg

        return msg_mutator(plan, fill)
