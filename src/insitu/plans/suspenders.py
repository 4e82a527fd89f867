"""Suspenders for campaign plans: hold an isothermal measurement to its temperature band, and
pause while an instrument connection is down.

Both are bluesky's own suspenders (``SuspendWhenOutsideBand``, ``SuspendBoolLow``): when one trips,
the RunEngine stops where it is, calls ``pause()`` on the devices it has used (an in-flight
acquisition is abandoned, see the Raman and Zahner devices), waits, and on resume rewinds to the
last checkpoint and replays the messages since (the trigger is sent again). Two things are added
here:

* Resume delays in *experiment* seconds. bluesky waits ``sleep`` wall seconds after the resume
  condition is met; the value is converted through :mod:`insitu.clock` at the moment it is used,
  so a suspender built before a simulated beamline sets its speed-up is still right.
* A connection that never comes back ends the run with a clear error instead of a suspension
  that never ends: when the device's reconnector gives up, the suspender releases the
  RunEngine and its ``post_plan`` raises ``ConnectionError`` with the reason (before anything is
  replayed).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import bluesky.plan_stubs as bps
from bluesky.preprocessors import suspend_wrapper
from bluesky.suspenders import SuspendBoolLow, SuspendWhenOutsideBand
from bluesky.utils import Msg

from insitu import clock
from insitu.checks import as_finite, as_positive
from insitu.devices.reconnect import LinkState

__all__ = [
    "temperature_band_suspender",
    "connection_suspenders",
    "isothermal",
    "release_temperature_bands",
]


class _SettleInExperimentTime:
    """Gives a bluesky suspender its resume delay (``_sleep``) in experiment seconds.

    bluesky reads ``self._sleep`` (wall seconds) when the resume condition is met and assigns
    it once in ``SuspenderBase.__init__``; this property stores experiment seconds and converts
    at the moment of use.
    """

    _settle_time: float = 0.0

    @property
    def _sleep(self) -> float:
        return clock.to_wall(self._settle_time)

    @_sleep.setter
    def _sleep(self, seconds: float) -> None:
        self._settle_time = float(seconds)


#: RunEngine states in which a plan's cleanup runs on purpose (see _TemperatureBand).
_WINDING_DOWN = frozenset({"aborting", "stopping", "halting"})


class _TemperatureBand(_SettleInExperimentTime, SuspendWhenOutsideBand):
    """``SuspendWhenOutsideBand`` on ``stage.temperature`` with a justification in degC."""

    def __init__(self, stage: Any, target: float, band: float, settle_time: float) -> None:
        self.stage_name = getattr(stage, "name", "stage")
        self.target = target
        self.band = band
        super().__init__(stage.temperature, target - band, target + band, sleep=settle_time)

    def install(self, RE: Any, *, event_type: Any = None) -> None:
        super().install(RE, event_type=event_type)
        _INSTALLED_BANDS.add(self)

    def remove(self) -> None:
        _INSTALLED_BANDS.discard(self)
        super().remove()

    def _should_suspend(self, value: Any) -> bool:
        # A plan being aborted or stopped runs its cleanup, which parks the stage: it leaves the
        # band on purpose. Suspending then would wait for a temperature that never comes back,
        # and the RunEngine would hang in the abort (found by stopping a campaign at every one
        # of its messages: tests/faults/test_plans_park_at_every_message.py).
        if self.RE is not None and str(self.RE.state) in _WINDING_DOWN:
            return False
        return super()._should_suspend(value)

    def _get_justification(self) -> str:
        if not self.tripped:
            return ""
        return (
            f"{self.stage_name}.temperature = {self._sig.get()!r} C is outside the band "
            f"{self.target:g} +/- {self.band:g} C ({self._bot:g} to {self._top:g} C); the "
            f"measurement resumes {self._settle_time:g} s (experiment time) after the "
            f"temperature is back in the band"
        )


#: Band suspenders installed on a RunEngine now (they remove themselves when removed).
_INSTALLED_BANDS: weakref.WeakSet[_TemperatureBand] = weakref.WeakSet()


def release_temperature_bands(stage: Any):
    """Plan stub: remove every temperature-band suspender on ``stage`` from the RunEngine.

    A park leaves the band on purpose. With a band still installed (an error or a pause that
    came between a measurement's last message and the suspender's removal, then an abort) the
    RunEngine would suspend the park and wait for a temperature that never comes back.
    """
    name = getattr(stage, "name", None)
    for band in list(_INSTALLED_BANDS):
        if band.RE is not None and band.stage_name == name:
            yield Msg("remove_suspender", None, band)


def _gave_up(device: Any) -> bool:
    reconnector = getattr(device, "reconnector", None)
    return getattr(reconnector, "state", None) == LinkState.GAVE_UP


def _fail_if_gave_up(device: Any):
    """post_plan, run after the wait: a given-up reconnect ends the run with its reason."""
    if _gave_up(device):
        raise ConnectionError(device.reconnector.failure)
    yield from bps.null()


class _ConnectionLost(_SettleInExperimentTime, SuspendBoolLow):
    """``SuspendBoolLow`` on ``device.connected`` that ends the run if the reconnect gives up."""

    def __init__(self, device: Any, settle_time: float) -> None:
        self.device = device
        # (a plain function, not a bound method: bluesky prints repr(post_plan) inside repr(self))
        post_plan = functools.partial(_fail_if_gave_up, device)
        super().__init__(device.connected, sleep=settle_time, post_plan=post_plan)

    def _gave_up(self) -> bool:
        return _gave_up(self.device)

    def _should_suspend(self, value: Any) -> bool:
        return not value and not self._gave_up()

    def _should_resume(self, value: Any) -> bool:
        return bool(value) or self._gave_up()

    @property
    def _sleep(self) -> float:
        return 0.0 if self._gave_up() else clock.to_wall(self._settle_time)

    @_sleep.setter
    def _sleep(self, seconds: float) -> None:
        self._settle_time = float(seconds)

    def _get_justification(self) -> str:
        if not self.tripped:
            return ""
        reconnector = getattr(self.device, "reconnector", None)
        why = getattr(reconnector, "failure", "") or "the link is down"
        return (
            f"{self.device.name}.connected = {self._sig.get()!r}: {why}; reconnecting with "
            f"backoff, the plan resumes {self._settle_time:g} s (experiment time) after it is back"
        )


def temperature_band_suspender(
    stage: Any, target: float, *, band: float = 5.0, settle_time: float = 60.0
) -> SuspendWhenOutsideBand:
    """A bluesky suspender: pauses when ``stage.temperature`` leaves ``[target-band, target+band]``,
    resumes after it has been back inside for ``settle_time`` experiment seconds.

    Parameters
    ----------
    stage : Device
        Has a ``temperature`` Signal (degC); its ``limits`` (low, high), if it states them,
        bound ``target``.
    target : float
        Temperature of the isothermal measurement (degC).
    band : float
        Half-width of the allowed band (degC), > 0.
    settle_time : float
        Experiment seconds the temperature must be back in the band before the plan resumes
        (bluesky's ``sleep``, converted to wall seconds through :mod:`insitu.clock`), >= 0.

    Returns
    -------
    bluesky.suspenders.SuspendWhenOutsideBand
        Install with ``RE.install_suspender`` or use :func:`isothermal`.

    Raises
    ------
    TypeError
        If ``stage`` has no ``temperature`` Signal or a number is not a number.
    ValueError
        If ``target`` is not finite or outside the stage limits, ``band`` <= 0, or
        ``settle_time`` < 0.
    """
    name = getattr(stage, "name", repr(stage))
    temperature = getattr(stage, "temperature", None)
    if not (callable(getattr(temperature, "subscribe", None)) and callable(temperature.get)):
        raise TypeError(f"temperature_band_suspender: {name} has no temperature Signal")
    target_C = as_finite(target, f"{name} isothermal target", unit="C")
    limits = getattr(stage, "limits", None)
    if isinstance(limits, tuple) and len(limits) == 2 and limits[0] < limits[1]:
        low, high = limits
        if not low <= target_C <= high:
            raise ValueError(
                f"{name} isothermal target {target_C} C is outside the stage limits "
                f"{low} to {high} C"
            )
    band_C = as_finite(band, f"{name} isothermal band", unit="C")
    if band_C <= 0:
        raise ValueError(f"{name} isothermal band {band!r} C is outside the allowed range: > 0 C")
    settle = as_positive(settle_time, f"{name} isothermal settle_time", unit="s", allow_zero=True)
    return _TemperatureBand(stage, target_C, band_C, settle)


def connection_suspenders(*devices: Any, settle_time: float = 5.0) -> list:
    """One suspender per device on its ``connected`` Signal (1 = up): pause when it drops to 0,
    resume ``settle_time`` experiment seconds after it is back.

    If a device's reconnector gives up (``device.reconnector.state == "gave up"``), the suspension
    ends and the run fails with ``ConnectionError`` giving the reason, rather than waiting forever.

    Parameters
    ----------
    *devices : Device
        Each has a ``connected`` Signal.
    settle_time : float
        Experiment seconds to wait after the reconnection before resuming, >= 0.

    Returns
    -------
    list of bluesky.suspenders.SuspendBoolLow
        In the order of ``devices`` (empty if none are given).

    Raises
    ------
    TypeError
        If a device has no ``connected`` Signal.
    ValueError
        If ``settle_time`` is negative or not finite.
    """
    settle = as_positive(
        settle_time, "connection_suspenders settle_time", unit="s", allow_zero=True
    )
    suspenders = []
    for device in devices:
        connected = getattr(device, "connected", None)
        if not (callable(getattr(connected, "subscribe", None)) and callable(connected.get)):
            raise TypeError(
                f"connection_suspenders: {getattr(device, 'name', repr(device))} has no "
                f"'connected' Signal"
            )
        suspenders.append(_ConnectionLost(device, settle))
    return suspenders


def isothermal(
    plan: Iterable, stage: Any, target: float, *, band: float = 5.0, settle_time: float = 60.0
):
    """Run ``plan`` (a generator) with :func:`temperature_band_suspender` installed.

    The arguments are checked at once (before the plan is iterated).

    Parameters
    ----------
    plan : generator
        The measurement (a bluesky plan, already called: ``step_eis(...)``, not ``step_eis``).
    stage, target, band, settle_time
        As for :func:`temperature_band_suspender`.

    Returns
    -------
    generator
        ``plan`` wrapped by bluesky's ``suspend_wrapper``; yields its return value.

    Raises
    ------
    TypeError, ValueError
        As :func:`temperature_band_suspender`; ``TypeError`` if ``plan`` is a function.
    """
    if isinstance(plan, Callable) and not isinstance(plan, Iterable):
        raise TypeError(f"isothermal plan {plan!r} is a function: pass the plan called, plan(...)")
    if not isinstance(plan, Iterable):
        raise TypeError(f"isothermal plan {plan!r} is not a plan (a generator of Msg)")
    suspender = temperature_band_suspender(stage, target, band=band, settle_time=settle_time)
    return suspend_wrapper(plan, [suspender])
