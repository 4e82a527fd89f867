"""ophyd device doubles: a stage that arrives at once, a counting detector, a soft stage.

They are enough for the plans' message flow, the suspenders and the live-analysis callbacks on
a real RunEngine, with no wire, emulator or clock behind them.
"""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import StatusBase

__all__ = ["FakeDetector", "FakeStage", "SoftStage"]


class FakeStage(Device):
    """A heating stage that arrives at once: enough for the plans and the suspenders.

    ``set(value)`` puts ``value`` in both ``setpoint`` and ``temperature`` and returns a
    finished Status; ``stop()`` does nothing.

    Parameters
    ----------
    *args, **kwargs
        As for ``ophyd.Device`` (``name`` is required).
    temperature : float, optional
        The starting temperature and setpoint, degC (25 by default).
    limits : tuple of float, optional
        The (low, high) setpoints accepted by ``check_value``, degC (0 to 1000 by default).
    """

    temperature = Cpt(Signal, value=25.0, kind="hinted")
    setpoint = Cpt(Signal, value=25.0)
    rate = Cpt(Signal, value=10.0, kind="config")
    connected = Cpt(Signal, value=1, kind="omitted")

    def __init__(
        self,
        *args: Any,
        temperature: float = 25.0,
        limits: tuple[float, float] = (0.0, 1000.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = (float(limits[0]), float(limits[1]))
        self.temperature.put(float(temperature))
        self.setpoint.put(float(temperature))

    def check_value(self, value: float) -> None:
        """Raise ValueError naming ``value`` and the limits if ``value`` is outside them."""
        low, high = self.limits
        if not low <= float(value) <= high:
            raise ValueError(f"{self.name}.setpoint {value} C is outside {low:g} to {high:g} C")

    def set(self, value: float) -> StatusBase:
        """Arrive at ``value`` at once; return a finished Status."""
        self.setpoint.put(float(value))
        self.temperature.put(float(value))
        status = StatusBase()
        status.set_finished()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Nothing to stop: the stage is always where it was sent."""


class FakeDetector(Device):
    """A detector that counts its triggers; fails on trigger number ``fail_at`` (1-based) if set.

    Its ``value`` reads the trigger count; set ``fail_at`` to make that trigger raise
    RuntimeError ("injected failure"), and back to None to let it succeed.
    """

    value = Cpt(Signal, value=0.0, kind="hinted")
    connected = Cpt(Signal, value=1, kind="omitted")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.triggers = 0
        self.fail_at: int | None = None

    def trigger(self) -> StatusBase:
        """Count the trigger; raise if it is number ``fail_at``, else read the count."""
        self.triggers += 1
        if self.fail_at is not None and self.triggers == self.fail_at:
            raise RuntimeError(f"{self.name}: injected failure at trigger {self.triggers}")
        self.value.put(float(self.triggers))
        return super().trigger()


class SoftStage(Device):
    """A heating stage whose temperature (degC) is a settable soft Signal.

    Move it through its Signals (``bps.mv(stage.temperature, 300)``, ``bp.list_scan`` over
    ``stage.temperature``). ``temperature_mean`` (the mean over an exposure) is omitted from
    readings until a test sets its kind to ``"normal"``.
    """

    temperature = Cpt(Signal, value=25.0, kind="hinted")
    temperature_mean = Cpt(Signal, value=float("nan"), kind="omitted")
