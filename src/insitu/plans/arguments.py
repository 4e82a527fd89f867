"""Argument checks shared by the plans: every plan validates before anything moves."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["as_number", "as_positive", "as_count", "as_temperatures", "check_readable"]


def as_number(value: Any, what: str) -> float:
    """``value`` as a finite float, or a TypeError/ValueError naming ``what``."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"{what} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} {number} is not allowed: give a finite number")
    return number


def as_positive(value: Any, what: str, unit: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    number = as_number(value, what)
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{what} {number} {unit} is not allowed: it must be {bound} {unit}")
    return number


def as_count(value: Any, what: str, *, minimum: int = 1, maximum: int = 1000) -> int:
    """``value`` as an int in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise TypeError(f"{what} {value!r} is not a whole number")
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError(f"{what} {number} is outside the allowed range {minimum} to {maximum}")
    return number


def as_temperatures(values: Iterable[Any], what: str) -> list[float]:
    """A non-empty list of finite temperatures without repeats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, Iterable)):
        raise TypeError(f"{what} {values!r} is not a list of temperatures")
    temperatures = [as_number(v, f"{what} entry") for v in values]
    if not temperatures:
        raise ValueError(f"{what} is empty: give at least one temperature")
    if len(set(temperatures)) != len(temperatures):
        raise ValueError(f"{what} {temperatures} repeats a temperature")
    return temperatures


def check_readable(devices: Iterable[Any], what: str) -> list[Any]:
    """A list of bluesky-readable devices (objects with ``read`` and ``describe``)."""
    if isinstance(devices, (str, bytes)):
        raise TypeError(f"{what} {devices!r} must be a list of devices, not a string")
    result = list(devices)
    for device in result:
        if not (hasattr(device, "read") and hasattr(device, "describe")):
            raise TypeError(f"{what}: {device!r} is not a readable device")
    return result
