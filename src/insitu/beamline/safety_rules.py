"""The stage's hard thermal limits as pure rules: readings in, an alarm (or None) out.

No thread, no device, no wall clock: :class:`StageLimits` is fed ``(time, temperature, error
flags)`` readings and says which limit the latest one breaches. The watchdog
(:mod:`insitu.beamline.safety`) feeds it every poll of the stage and acts on what it returns;
tests feed it synthetic readings.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from insitu.checks import as_finite, as_positive

__all__ = ["SafetyAlarm", "StageLimits"]

#: The heating rate needs this many readings spanning this share of the window.
_RATE_MIN_READINGS = 3
_RATE_MIN_SPAN = 0.5


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


class StageLimits:
    """Judge a stage's readings, one at a time and in time order, against its hard limits.

    - ``max_temperature``: a reading above it breaches at once.
    - ``max_rate``: the heating rate, the least-squares slope of the readings over the last
      ``rate_window`` seconds (once at least three readings span half of it), above it breaches.
      Cooling is not limited.
    - ``time_above = (temperature, seconds)``: staying above ``temperature`` without a break for
      ``seconds`` breaches.
    - a declared dwell (:meth:`declare_dwell`, ``(threshold, deadline)``): still above
      ``threshold`` at experiment time ``deadline`` breaches; falling to ``threshold`` or below
      ends it (a plan declares one for each anneal dwell, so a dwell that nobody ends, a plan
      paused, halted or suspended at 750 C, is ended by the watchdog).
    - any error flag of the controller breaches.

    Parameters
    ----------
    device : str
        The stage's name, for the messages.
    max_temperature : float
        degC.
    max_rate : float
        degC/min (heating).
    rate_window : float, optional
        Seconds over which the rate is measured.
    time_above : (float, float) or None, optional
        (degC, seconds), or None for no dwell limit.
    safe_state : str, optional
        What the stage is told on a breach (recorded in the alarm).
    name : str, optional
        The owner's name (e.g. ``"watchdog"``) for argument errors.
    """

    def __init__(
        self,
        device: str,
        *,
        max_temperature: float,
        max_rate: float,
        rate_window: float = 30.0,
        time_above: tuple[float, float] | None = None,
        safe_state: str = "stop",
        name: str = "watchdog",
    ) -> None:
        self.device = device
        self.max_temperature = as_finite(max_temperature, f"{name}.max_temperature", unit="C")
        self.max_rate = as_positive(max_rate, f"{name}.max_rate", unit="C/min")
        self.rate_window = as_positive(rate_window, f"{name}.rate_window", unit="s")
        if time_above is not None:
            above_temperature, above_seconds = time_above
            time_above = (
                as_finite(above_temperature, f"{name}.time_above temperature", unit="C"),
                as_positive(above_seconds, f"{name}.time_above seconds", unit="s"),
            )
        self.time_above = time_above
        self.safe_state = safe_state
        self._rate_points: deque[tuple[float, float]] = deque()
        self._above_since: float | None = None
        self.dwell: tuple[float, float] | None = None
        """The declared dwell ``(threshold C, deadline in experiment seconds)``, or None."""

    def restart(self) -> None:
        """Forget the rate and dwell history (after an alarm is acknowledged)."""
        self._rate_points.clear()
        self._above_since = None
        self.dwell = None

    @property
    def above_since(self) -> float | None:
        """Experiment time since which the stage is above the ``time_above`` temperature."""
        return self._above_since

    def restore(self, *, above_since: float | None, dwell: tuple[float, float] | None) -> None:
        """Take over the dwell measurements of an earlier watchdog of the same stage."""
        self._above_since = above_since
        self.dwell = dwell

    def declare_dwell(self, threshold: float, deadline: float) -> None:
        """Bound a dwell: above ``threshold`` C at experiment time ``deadline`` breaches."""
        self.dwell = (
            as_finite(threshold, "dwell threshold", unit="C"),
            as_finite(deadline, "dwell deadline", unit="s"),
        )

    def judge(
        self,
        t: float,
        temperature: float,
        error_flags: str = "",
        *,
        min_rate_window: float = 0.0,
    ) -> SafetyAlarm | None:
        """The alarm the reading at time ``t`` raises, or None.

        Parameters
        ----------
        t : float
            Experiment seconds of the reading (non-decreasing from call to call).
        temperature : float
            degC.
        error_flags : str, optional
            The controller's error flags, ``"|"``-joined; empty for none.
        min_rate_window : float, optional
            A floor for the rate window in experiment seconds (the watchdog keeps it at one
            wall second on a sped-up clock, so the rate is not judged from jitter).
        """
        if error_flags:
            return self._alarm(
                "stage_error",
                error_flags,
                "no error flag",
                t,
                f"{self.device} controller reports error flag {error_flags} at {temperature} C",
            )
        if temperature > self.max_temperature:
            return self._alarm(
                "max_temperature_C",
                temperature,
                self.max_temperature,
                t,
                f"{self.device} temperature {temperature} C is above max_temperature_C "
                f"{self.max_temperature} C",
            )
        rate = self._heating_rate(t, temperature, max(self.rate_window, min_rate_window))
        if rate is not None and rate > self.max_rate:
            return self._alarm(
                "max_rate_C_per_min",
                round(rate, 2),
                self.max_rate,
                t,
                f"{self.device} heats at {rate:.1f} C/min over the last "
                f"{len(self._rate_points)} readings, above max_rate_C_per_min "
                f"{self.max_rate} C/min",
            )
        return self._judge_time_above(t, temperature) or self._judge_dwell(t, temperature)

    def _judge_dwell(self, t: float, temperature: float) -> SafetyAlarm | None:
        if self.dwell is None:
            return None
        threshold, deadline = self.dwell
        if temperature <= threshold:
            self.dwell = None  # the dwell is over: the stage cooled
            return None
        if t <= deadline:
            return None
        return self._alarm(
            "dwell",
            round(t - deadline, 1),
            0.0,
            t,
            f"{self.device} is still above {threshold} C {t - deadline:.0f} s after the end of "
            f"its declared dwell (now {temperature} C): nobody ended it (a plan paused, halted "
            "or gone)",
        )

    def _heating_rate(self, t: float, temperature: float, window: float) -> float | None:
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

    def _judge_time_above(self, t: float, temperature: float) -> SafetyAlarm | None:
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
        return self._alarm(
            "time_above",
            round(dwell, 1),
            seconds,
            t,
            f"{self.device} has stayed above {threshold} C for {dwell:.0f} s, longer than "
            f"time_above {seconds:g} s (now {temperature} C)",
        )

    def _alarm(
        self, limit: str, value: float | str, threshold: float | str, t: float, message: str
    ) -> SafetyAlarm:
        return SafetyAlarm(limit, value, threshold, self.device, message, t, self.safe_state)
