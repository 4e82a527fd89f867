"""Checks of numeric arguments shared by every layer: a finite number, in a range, positive.

Each check returns the value as a float or raises ``TypeError`` (not a single real number: a
bool, a string, bytes, a complex number, None, a list, an array) or ``ValueError`` (a number
that is not allowed: NaN, infinite, too large for a float, outside the range), with a message
that names what is checked (``what``, e.g. ``"linkam.setpoint"``), the value and the allowed
kind or range, e.g. ``"linkam_tolerance -1.0 C is outside the allowed range 0 < value <= 100 C"``.

Accepted: ints, floats, numpy integer and floating scalars (and 0-d arrays), Fractions and
other real numbers that convert to a float.

This module imports nothing from :mod:`insitu`: every layer may use it.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

import numpy as np

__all__ = ["as_finite", "as_positive", "in_range"]

#: Never numbers, although ``float()`` takes them (``float("5")``, ``float(True)``, and
#: ``float(np.complex64(1j))`` which drops the imaginary part).
_NOT_NUMBERS = (bool, np.bool_, str, bytes, bytearray, complex, np.complexfloating)

_REPR = reprlib.Repr()
_REPR.maxlong = 40
_REPR.maxstring = 60
_REPR.maxother = 60


def _shown(value: Any) -> str:
    """``repr(value)``, shortened for huge ints, long strings and arrays."""
    return _REPR.repr(value)


def _bound(number: float) -> str:
    """A range bound as text: ``100`` for 100.0, ``0.01``, ``1e-05``; exact if ``g`` is not."""
    text = f"{number:g}"
    return text if float(text) == number else repr(float(number))


def _allowed(low: float, high: float, unit: str, include_low: bool, include_high: bool) -> str:
    left = "<=" if include_low else "<"
    right = "<=" if include_high else "<"
    suffix = f" {unit}" if unit else ""
    if low == -math.inf and high == math.inf:
        return f"any finite value{suffix}"
    if high == math.inf:
        return f"value {'>=' if include_low else '>'} {_bound(low)}{suffix}"
    if low == -math.inf:
        return f"value {right} {_bound(high)}{suffix}"
    return f"{_bound(low)} {left} value {right} {_bound(high)}{suffix}"


def as_finite(value: Any, what: str, *, unit: str = "") -> float:
    """Return ``value`` as a finite float.

    Parameters
    ----------
    value : Any
        The number to check: an int, a float, a numpy scalar (or 0-d array), a Fraction.
    what : str
        What the value is, for the message: the device or argument (``"linkam.setpoint"``).
    unit : str, optional
        Unit shown after the value in the message (``"C"``, ``"s"``).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``value`` is not a single real number: a bool (numpy bools too), a string, bytes, a
        complex number, None, a list, an array (other than a 0-d one of numbers)...
    ValueError
        If it is NaN, infinite, or too large for a float.
    """
    if isinstance(value, _NOT_NUMBERS) or value is None:
        raise TypeError(f"{what} {_shown(value)} is not a number")
    if getattr(value, "ndim", 0) != 0 or (
        not isinstance(value, np.ndarray) and hasattr(value, "__iter__")
    ):
        raise TypeError(f"{what} {_shown(value)} is not a single number")
    if isinstance(value, (np.generic, np.ndarray)) and value.dtype.kind not in "iuf":
        raise TypeError(f"{what} {_shown(value)} is not a number")  # datetime64, object, ...
    suffix = f" {unit}" if unit else ""
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(
            f"{what} {_shown(value)}{suffix} is not a finite number (too large for a float)"
        ) from None
    except (TypeError, ValueError):
        raise TypeError(f"{what} {_shown(value)} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} {number}{suffix} is not a finite number")
    return number


def in_range(
    value: Any,
    low: float,
    high: float,
    what: str,
    *,
    unit: str = "",
    include_low: bool = True,
    include_high: bool = True,
) -> float:
    """Return ``value`` as a finite float between ``low`` and ``high``.

    Parameters
    ----------
    value : Any
        The number to check (see :func:`as_finite` for what is a number).
    low, high : float
        The bounds; ``-math.inf`` or ``math.inf`` for none.
    what : str
        What the value is, for the message: the device or argument (``"raman.exposure"``).
    unit : str, optional
        Unit of the value and the bounds, for the message.
    include_low, include_high : bool, optional
        Whether ``low`` and ``high`` themselves are allowed (both by default).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``value`` is not a single real number.
    ValueError
        If it is not finite or lies outside the range; the message gives the range, e.g.
        ``"raman.exposure 0.0 s is outside the allowed range 0 < value <= 3600 s"``.
    """
    number = as_finite(value, what, unit=unit)
    above_low = number >= low if include_low else number > low
    below_high = number <= high if include_high else number < high
    if not (above_low and below_high):
        suffix = f" {unit}" if unit else ""
        allowed = _allowed(low, high, unit, include_low, include_high)
        raise ValueError(f"{what} {number}{suffix} is outside the allowed range {allowed}")
    return number


def as_positive(
    value: Any,
    what: str,
    *,
    unit: str = "",
    allow_zero: bool = False,
    maximum: float = math.inf,
) -> float:
    """Return ``value`` as a finite float > 0 (>= 0 with ``allow_zero``), at most ``maximum``.

    Parameters
    ----------
    value : Any
        The number to check (see :func:`as_finite` for what is a number).
    what : str
        What the value is, for the message: the device or argument (``"watchdog.max_rate"``).
    unit : str, optional
        Unit of the value, for the message.
    allow_zero : bool, optional
        Whether 0 is allowed.
    maximum : float, optional
        Largest value allowed (none by default).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``value`` is not a single real number.
    ValueError
        If it is not finite, is negative (or zero), or is above ``maximum``; the message gives
        the range, e.g. ``"watchdog.max_rate 0.0 C/min is outside the allowed range value > 0
        C/min"``.
    """
    return in_range(value, 0.0, maximum, what, unit=unit, include_low=allow_zero)
