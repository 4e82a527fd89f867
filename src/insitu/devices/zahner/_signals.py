"""ophyd Signals of the analyzer: range-checked settings and read-only spectrum arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ophyd import Signal, SignalRO
from ophyd.status import StatusBase

from insitu import clock

__all__ = ["MeasuredSignal", "SettingSignal", "SpectrumSignal"]


def _source(signal: Signal) -> str:
    prefix = getattr(signal.parent, "source_prefix", None)
    return f"{prefix}/{signal.attr_name}" if prefix else f"SIM:{signal.name}"


def dotted_name(signal: Signal) -> str:
    """``"eis.f_max"``: the device name and the attribute, as users type them."""
    parent = signal.parent
    if parent is not None and signal.attr_name:
        return f"{parent.name}.{signal.attr_name}"
    return signal.name


class SettingSignal(Signal):
    """A setting checked against the instrument's range before it is stored.

    Parameters
    ----------
    check : callable(label, value) -> value
        Returns the value as stored (float or int) or raises ValueError naming label, value and
        the allowed range.
    units : str
        Units for ``describe()``.
    limits : (low, high)
        Range reported by ``describe()``.
    """

    def __init__(
        self,
        *,
        check: Callable[[str, Any], float | int],
        units: str = "",
        limits: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._check = check
        self.units = units
        self.allowed_limits = limits

    @property
    def source_name(self) -> str:
        """Where the value goes: ``thales://host:port/<setting>``."""
        return _source(self)

    def checked(self, value: Any) -> float | int:
        """``value`` as it would be stored; raises ValueError if it is out of range."""
        return self._check(dotted_name(self), value)

    def check_value(self, value: Any) -> None:
        """Raise ValueError if ``value`` is out of range."""
        self.checked(value)

    def put(self, value: Any, *, force: bool = False, **kwargs: Any) -> None:
        """Check (unless ``force``), then store with an experiment-time timestamp."""
        if not force:
            value = self.checked(value)
        kwargs.setdefault("timestamp", clock.now())
        super().put(value, force=True, **kwargs)

    def set(self, value: Any, **kwargs: Any) -> StatusBase:
        """Check at once (raising here, not in the Status), then store."""
        self.checked(value)
        return super().set(value, **kwargs)

    def describe(self) -> dict[str, dict[str, Any]]:
        """ophyd description with units and the allowed range."""
        description = super().describe()
        entry = description[self.name]
        entry["units"] = self.units
        if self.allowed_limits is not None:
            entry["lower_ctrl_limit"], entry["upper_ctrl_limit"] = self.allowed_limits
        return description


class MeasuredSignal(SignalRO):
    """A read-only scalar result that the device updates after each measurement."""

    def __init__(self, *, units: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units

    @property
    def source_name(self) -> str:
        """Where the value comes from: ``thales://host:port/<reading>``."""
        return _source(self)

    def update(self, value: Any, timestamp: float) -> None:
        """Store a new result (device use only)."""
        Signal.put(self, value, timestamp=timestamp, force=True)

    def describe(self) -> dict[str, dict[str, Any]]:
        """ophyd description with units."""
        description = super().describe()
        description[self.name]["units"] = self.units
        return description


class SpectrumSignal(MeasuredSignal):
    """A read-only 1-D float array, one value per frequency.

    Its length for ``describe()`` comes from the parent's ``expected_point_count()`` (computed
    from the settings before the first sweep), else from the value held.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("value", np.zeros(0))
        super().__init__(**kwargs)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Array description: shape from the settings (or the last sweep), dtype float64."""
        expected = getattr(self.parent, "expected_point_count", None)
        count = expected() if callable(expected) else len(self.get())
        return {
            self.name: {
                "source": self.source_name,
                "dtype": "array",
                "dtype_numpy": np.dtype(np.float64).str,
                "shape": [int(count)],
                "units": self.units,
            }
        }
