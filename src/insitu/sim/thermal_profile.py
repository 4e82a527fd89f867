"""Piecewise-linear temperature programs (ramp, dwell, cool) usable as ``temperature_at(t)``.

A :class:`ThermalProfile` is the simplest possible "stage": the true sample temperature as a
function of experiment time, given by break points joined by straight lines and held constant
before the first and after the last point. It is what tests and the post-anneal helpers feed to
:class:`insitu.sim.sample.GarnetFilm`; on a simulated beamline the Linkam emulator's
``temperature_at`` plays the same role.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ThermalProfile", "ROOM_TEMPERATURE_C"]

ROOM_TEMPERATURE_C = 25.0


@dataclass(frozen=True)
class ThermalProfile:
    """Temperature (C) against experiment time (s), linear between break points.

    Parameters
    ----------
    times : sequence of float
        Break-point times in experiment seconds, non-decreasing.
    temperatures_C : sequence of float
        Temperature at each break point, in C.

    Examples
    --------
    >>> profile = ThermalProfile.ramp_dwell_cool(650.0, rate_C_per_min=5.0, dwell_min=15.0)
    >>> float(profile(profile.times[1]))
    650.0
    """

    times: tuple[float, ...]
    temperatures_C: tuple[float, ...]

    def __post_init__(self) -> None:
        times = tuple(float(t) for t in self.times)
        temps = tuple(float(t) for t in self.temperatures_C)
        if len(times) == 0 or len(times) != len(temps):
            raise ValueError(
                f"ThermalProfile needs as many times as temperatures (at least one), "
                f"got {len(times)} times and {len(temps)} temperatures"
            )
        if not all(np.isfinite(times)) or not all(np.isfinite(temps)):
            raise ValueError("ThermalProfile times and temperatures must be finite numbers")
        if any(b < a for a, b in zip(times, times[1:], strict=False)):
            raise ValueError(f"ThermalProfile times {times} must be non-decreasing")
        if min(temps) < -273.15:
            raise ValueError(f"ThermalProfile temperature {min(temps)} C is below absolute zero")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "temperatures_C", temps)

    # --- evaluation -------------------------------------------------------------------------
    def __call__(self, t: ArrayLike) -> np.ndarray | float:
        """Return the temperature (C) at experiment time(s) ``t``; arrays are accepted."""
        return self.temperature_at(t)

    def temperature_at(self, t: ArrayLike) -> np.ndarray | float:
        """Return the temperature (C) at experiment time(s) ``t``; arrays are accepted."""
        values = np.interp(t, self.times, self.temperatures_C)
        return float(values) if np.ndim(values) == 0 else values

    @property
    def start_time(self) -> float:
        """Time of the first break point (s)."""
        return self.times[0]

    @property
    def end_time(self) -> float:
        """Time of the last break point (s); the temperature is held after it."""
        return self.times[-1]

    @property
    def peak_C(self) -> float:
        """Highest temperature of the program (C)."""
        return max(self.temperatures_C)

    def time_at_temperature(self, temperature_C: float) -> float:
        """Return the first time the program reaches ``temperature_C``.

        Raises
        ------
        ValueError
            If the program never reaches that temperature.
        """
        target = float(temperature_C)
        points = list(zip(self.times, self.temperatures_C, strict=True))
        if points[0][1] == target:
            return points[0][0]
        for (t0, y0), (t1, y1) in zip(points, points[1:], strict=False):
            if (y0 - target) * (y1 - target) <= 0 and y1 != y0:
                return t0 + (target - y0) / (y1 - y0) * (t1 - t0)
        raise ValueError(
            f"ThermalProfile never reaches {target} C (range {min(self.temperatures_C)} to "
            f"{max(self.temperatures_C)} C)"
        )

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def constant(cls, temperature_C: float, start_time: float = 0.0) -> ThermalProfile:
        """A stage held at one temperature."""
        return cls((start_time,), (temperature_C,))

    @classmethod
    def from_segments(
        cls,
        start_C: float,
        segments: Sequence[tuple[float, float, float]],
        *,
        start_time: float = 0.0,
    ) -> ThermalProfile:
        """Build a program from ``(target_C, rate_C_per_min, dwell_min)`` segments.

        Each segment ramps from the previous temperature to ``target_C`` at ``rate_C_per_min``
        (sign taken from the direction), then dwells ``dwell_min`` minutes there.

        Raises
        ------
        ValueError
            If a rate is not positive or a dwell is negative.
        """
        times = [float(start_time)]
        temps = [float(start_C)]
        for target, rate, dwell in segments:
            if not rate > 0:
                raise ValueError(f"ThermalProfile ramp rate {rate} C/min must be positive")
            if dwell < 0:
                raise ValueError(f"ThermalProfile dwell {dwell} min must not be negative")
            duration = abs(float(target) - temps[-1]) / float(rate) * 60.0
            times.append(times[-1] + duration)
            temps.append(float(target))
            if dwell > 0:
                times.append(times[-1] + float(dwell) * 60.0)
                temps.append(float(target))
        return cls(tuple(times), tuple(temps))

    @classmethod
    def ramp(
        cls,
        start_C: float,
        end_C: float,
        rate_C_per_min: float,
        *,
        start_time: float = 0.0,
    ) -> ThermalProfile:
        """A single linear ramp, holding ``end_C`` afterwards."""
        return cls.from_segments(start_C, [(end_C, rate_C_per_min, 0.0)], start_time=start_time)

    @classmethod
    def ramp_dwell_cool(
        cls,
        peak_C: float,
        *,
        rate_C_per_min: float = 5.0,
        dwell_min: float = 15.0,
        cool_rate_C_per_min: float | None = None,
        start_C: float = ROOM_TEMPERATURE_C,
        end_C: float = ROOM_TEMPERATURE_C,
        start_time: float = 0.0,
    ) -> ThermalProfile:
        """The paper's post-anneal: ramp to ``peak_C``, dwell, cool back down.

        Parameters
        ----------
        peak_C : float
            Anneal temperature (C).
        rate_C_per_min : float
            Heating rate, 5 C/min in the paper.
        dwell_min : float
            Dwell at the top, 15 min in the paper.
        cool_rate_C_per_min : float, optional
            Cooling rate; defaults to the heating rate.
        start_C, end_C : float
            Temperatures before and after (room temperature by default).
        start_time : float
            Experiment time at which the ramp starts (s).
        """
        cool = rate_C_per_min if cool_rate_C_per_min is None else cool_rate_C_per_min
        return cls.from_segments(
            start_C,
            [(peak_C, rate_C_per_min, dwell_min), (end_C, cool, 0.0)],
            start_time=start_time,
        )
