"""Soft ophyd signals that check their values: numeric ranges, choices, and 1-D arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
from ophyd import Signal

from insitu.checks import as_finite

__all__ = ["RangeSignal", "ChoiceSignal", "ArraySignal"]


class RangeSignal(Signal):
    """A number in ``[low, high]`` (``low`` exclusive if ``low_exclusive``), optionally integer.

    ``put`` and ``set`` raise ``ValueError`` naming the signal, the value and the allowed range
    before anything is stored, so a bad setting never reaches an instrument.
    """

    def __init__(
        self,
        *,
        low: float,
        high: float,
        units: str = "",
        integer: bool = False,
        low_exclusive: bool = False,
        **kwargs: Any,
    ) -> None:
        self.low = low
        self.high = high
        self.units = units
        self.integer = integer
        self.low_exclusive = low_exclusive
        super().__init__(**kwargs)

    def allowed_range(self) -> str:
        """The allowed range as text, e.g. ``0 < value <= 3600 s``."""
        left = "<" if self.low_exclusive else "<="
        units = f" {self.units}" if self.units else ""
        kind = "integer" if self.integer else "value"
        return f"{self.low:g} {left} {kind} <= {self.high:g}{units}"

    def check_value(self, value: Any) -> None:
        """Raise ``ValueError`` unless ``value`` is a number in the allowed range."""
        units = f" {self.units}" if self.units else ""
        try:
            number = as_finite(value, self.name, unit=self.units)
        except (TypeError, ValueError) as error:  # ophyd's check_value raises ValueError
            raise ValueError(f"{error} (allowed: {self.allowed_range()})") from None
        if self.integer and number != int(number):
            raise ValueError(
                f"{self.name} {value}{units} is not an integer ({self.allowed_range()})"
            )
        too_low = number <= self.low if self.low_exclusive else number < self.low
        if too_low or number > self.high:
            raise ValueError(
                f"{self.name} {value}{units} is outside the allowed range {self.allowed_range()}"
            )

    def put(self, value: Any, **kwargs: Any) -> None:
        """Store ``value`` (as int for integer signals) after checking it."""
        self.check_value(value)
        super().put(int(value) if self.integer else float(value), **kwargs)

    def set(self, value: Any, **kwargs: Any):  # noqa: ANN201 (ophyd Status)
        """Check ``value`` at once (raising here, not in the Status), then set it."""
        self.check_value(value)
        return super().set(value, **kwargs)

    def describe(self) -> dict[str, dict[str, Any]]:
        """ophyd description with units and limits."""
        desc = super().describe()
        desc[self.name].update(
            units=self.units,
            limits={"control": {"low": float(self.low), "high": float(self.high)}},
        )
        return desc


class ChoiceSignal(Signal):
    """A string from a fixed set of choices."""

    def __init__(self, *, choices: tuple[str, ...], **kwargs: Any) -> None:
        self.choices = tuple(choices)
        super().__init__(**kwargs)

    def check_value(self, value: Any) -> None:
        """Raise ``ValueError`` unless ``value`` is one of the choices."""
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError(f"{self.name} {value!r} is not one of {', '.join(self.choices)}")

    def set(self, value: Any, **kwargs: Any):  # noqa: ANN201 (ophyd Status)
        """Check ``value`` at once, then set it."""
        self.check_value(value)
        return super().set(value, **kwargs)


class ArraySignal(Signal):
    """A read-only-by-convention 1-D float array with units, described with its shape."""

    def __init__(self, *, units: str = "", **kwargs: Any) -> None:
        self.units = units
        kwargs.setdefault("value", np.zeros(0))
        super().__init__(**kwargs)

    def check_value(self, value: Any) -> None:
        """Raise ``ValueError`` unless ``value`` is a finite 1-D array."""
        array = np.asarray(value)
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{self.name} must be a 1-D numeric array, got shape {array.shape}")

    def put(self, value: Any, **kwargs: Any) -> None:
        """Store a float64 copy of the array after checking it."""
        self.check_value(value)
        super().put(np.array(value, dtype=float), **kwargs)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Array description: dtype ``array``, shape ``[N]``, numpy dtype and units."""
        value = np.asarray(self.get())
        return {
            self.name: {
                "source": self.source_name,
                "dtype": "array",
                "shape": [int(value.size)],
                "dtype_numpy": np.dtype(float).str,
                "units": self.units,
            }
        }
