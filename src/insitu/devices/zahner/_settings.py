"""The analyzer's setting ranges, checked before anything is sent, and the sweep they describe.

Ranges (a Zahner Zennium driven by Thales; conservative enough for an IM6 too). The instrument
checks again and answers ``ERROR;100`` for what it refuses, so these are a first, early line:

===========================  ===================  ==============================================
setting                      allowed              note
===========================  ===================  ==============================================
f_max, f_min, f_start        10 uHz - 4 MHz       Zennium; the IM6 and Zennium X reach 8 MHz
amplitude                    0 < a <= 1 V         sent to Thales in mV (0 < a <= 1000 mV)
dc_potential                 -4 V ... +4 V        potentiostatic DC bias
points_per_decade_upper      1 - 100 (integer)    steps per decade above 66 Hz (Thales ``dfm``)
points_per_decade_lower      1 - 100 (integer)    steps per decade below 66 Hz (Thales ``dfl``)
periods_upper                1 - 100 (integer)    periods per point above 66 Hz (``Nws``)
periods_lower                1 - 100 (integer)    periods per point below 66 Hz (``Nwl``)
===========================  ===================  ==============================================

Between settings: ``f_min < f_max``, ``f_min <= f_start <= f_max`` (``f_start = 0`` means "start
at f_max"), and ``periods_upper >= periods_lower`` (a Thales rule, see ``thales_remote``'s
``setLowerNumberOfPeriods``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from insitu.checks import as_finite

__all__ = [
    "AMPLITUDE",
    "BAND_EDGE_HZ",
    "DC_POTENTIAL",
    "FREQUENCY",
    "PERIODS",
    "POINTS_PER_DECADE",
    "SettingRange",
    "SweepSettings",
    "check_thales_path",
    "sweep_point_count",
]

#: Thales switches between the upper and lower steps/periods settings at 66 Hz.
BAND_EDGE_HZ = 66.0


@dataclass(frozen=True)
class SettingRange:
    """Allowed values of one setting.

    Attributes
    ----------
    low, high : float
        Limits (``low`` excluded if ``low_exclusive``).
    unit : str
        Unit for messages and ``describe()``.
    integer : bool
        Whether only whole numbers are allowed.
    """

    low: float
    high: float
    unit: str = ""
    integer: bool = False
    low_exclusive: bool = False

    def check(self, label: str, value: Any) -> float | int:
        """Return ``value`` as float (or int) if allowed, else raise ValueError naming it all.

        ``label`` names the setting with its device, e.g. ``"eis.f_max"``.
        """
        unit = f" {self.unit}" if self.unit else ""
        try:
            number = as_finite(value, label, unit=self.unit)
        except TypeError as error:  # a setting is refused with ValueError, as ophyd's are
            raise ValueError(str(error)) from None
        if self.integer and number != int(number):
            raise ValueError(f"{label} {value!r} is not a whole number")
        shown = int(number) if self.integer else number
        if number > self.high:
            raise ValueError(
                f"{label} {shown}{unit} is above the instrument limit {self.high}{unit}"
            )
        if number < self.low or (self.low_exclusive and number == self.low):
            relation = "at or below" if self.low_exclusive else "below"
            raise ValueError(
                f"{label} {shown}{unit} is {relation} the instrument limit {self.low}{unit}"
            )
        return int(number) if self.integer else number


FREQUENCY = SettingRange(1e-5, 4e6, "Hz")
AMPLITUDE = SettingRange(0.0, 1.0, "V", low_exclusive=True)
DC_POTENTIAL = SettingRange(-4.0, 4.0, "V")
POINTS_PER_DECADE = SettingRange(1, 100, "", integer=True)
PERIODS = SettingRange(1, 100, "", integer=True)

_THALES_PATH = re.compile(r"^[a-k]:[/\\0-9a-zA-Z_+-]+$")


def check_thales_path(label: str, path: str) -> str:
    """Return ``path`` lower-cased if Thales accepts it (drive a-k, letters, digits, ``_+-``).

    Thales writes result files to a local disk of its PC and accepts only such paths (the rule
    ``thales_remote.ThalesRemoteScriptWrapper.setEISOutputPath`` enforces).
    """
    lowered = str(path).lower()
    if not _THALES_PATH.match(lowered):
        raise ValueError(
            f"{label} {path!r} is not a Thales data path (drive a-k, then only letters, digits, "
            r"'_', '+', '-' and '\' or '/')"
        )
    return lowered


def _steps(f_high: float, f_low: float, per_decade: int) -> int:
    return max(1, math.floor(per_decade * math.log10(f_high / f_low) + 0.5))


def sweep_point_count(
    f_min: float, f_max: float, per_decade_upper: int, per_decade_lower: int
) -> int:
    """Number of distinct frequencies of a sweep from ``f_max`` to ``f_min``.

    The grid Thales is assumed to use: log-spaced, ``per_decade_upper`` steps per decade above
    66 Hz and ``per_decade_lower`` below, each band's step count rounded (at least 1), 66 Hz
    itself a point when the range spans it. It serves ``describe()`` before the first sweep;
    after a sweep the measured number of points is what counts.
    """
    if not (0 < f_min < f_max):
        return 1
    if f_min >= BAND_EDGE_HZ:
        return _steps(f_max, f_min, per_decade_upper) + 1
    if f_max <= BAND_EDGE_HZ:
        return _steps(f_max, f_min, per_decade_lower) + 1
    return (
        _steps(f_max, BAND_EDGE_HZ, per_decade_upper)
        + _steps(BAND_EDGE_HZ, f_min, per_decade_lower)
        + 1
    )


@dataclass(frozen=True)
class SweepSettings:
    """One EIS sweep's settings, each already within its instrument range."""

    f_max: float
    f_min: float
    f_start: float  # 0: start at f_max
    points_per_decade_upper: int
    points_per_decade_lower: int
    amplitude: float  # V
    dc_potential: float  # V
    periods_upper: int
    periods_lower: int

    @property
    def start_frequency(self) -> float:
        """The frequency the sweep starts at (``f_max`` unless ``f_start`` is set)."""
        return self.f_max if self.f_start == 0 else self.f_start

    def check_consistent(self, owner: str) -> None:
        """Raise ValueError if the settings contradict each other."""
        if not self.f_min < self.f_max:
            raise ValueError(
                f"{owner}.f_min {self.f_min} Hz must be below {owner}.f_max {self.f_max} Hz"
            )
        if not self.f_min <= self.start_frequency <= self.f_max:
            raise ValueError(
                f"{owner}.f_start {self.f_start} Hz is outside the sweep range "
                f"{self.f_min} Hz to {self.f_max} Hz (0 starts at f_max)"
            )
        if self.periods_upper < self.periods_lower:
            raise ValueError(
                f"{owner}.periods_upper {self.periods_upper} is below {owner}.periods_lower "
                f"{self.periods_lower}; Thales needs upper >= lower"
            )

    def point_count(self) -> int:
        """Expected number of frequencies (see :func:`sweep_point_count`)."""
        return sweep_point_count(
            self.f_min, self.f_max, self.points_per_decade_upper, self.points_per_decade_lower
        )

    def shortest_duration_s(self) -> float:
        """A lower bound of the sweep's measuring time (s): every point needs its periods.

        Points log-spaced at the settings' density in each band, ``periods_upper`` of each
        frequency above 66 Hz and ``periods_lower`` below; ranging, settling and the instrument's
        own overheads come on top (they are the instrument's, unknown here).
        """
        total = 0.0
        for low, high, per_decade, periods in (
            (max(self.f_min, BAND_EDGE_HZ), self.f_max, self.points_per_decade_upper,
             self.periods_upper),
            (self.f_min, min(self.f_max, BAND_EDGE_HZ), self.points_per_decade_lower,
             self.periods_lower),
        ):  # fmt: skip
            if high > low:
                count = max(1, round(per_decade * math.log10(high / low)))
                total += periods * float(np.sum(1.0 / np.geomspace(low, high, count + 1)))
        return total
