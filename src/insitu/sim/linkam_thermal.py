"""Analytic thermal model of a Linkam stage: piecewise segments, each a closed-form solution.

Nothing here steps a simulation loop. Every command starts a new segment whose temperature is a
closed-form function of time (a first-order lag following a piecewise-linear controller
program), and the history of segments is kept, so the stage temperature at any experiment time
since the start is exact at any clock speed-up.
"""

from __future__ import annotations

import bisect
import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

__all__ = [
    "STAGE_MODELS",
    "HeaterOff",
    "Holding",
    "Ramping",
    "RegulationNoise",
    "Segment",
    "StageModel",
    "ThermalHistory",
]

# SB1 values the segments report (the same numbers as the real controller).
STOPPED, HEATING, COOLING, HOLDING_LIMIT, HOLDING_CURRENT = 0x01, 0x10, 0x20, 0x30, 0x50
COOLING_RATE_TOO_FAST = 0x01


@dataclass(frozen=True)
class StageModel:
    """Ranges and thermal constants of one stage model.

    Attributes
    ----------
    name : str
    min_limit, max_limit : float
        Limits (degC) the firmware accepts; other L1 values are ignored.
    min_rate, max_rate : float
        Rates (degC/min) the firmware accepts; other R1 values are ignored.
    pump_cooling : bool
        Whether a liquid-nitrogen pump can take the stage below ambient (down to min_limit).
    max_cooling_rate, max_cooling_rate_pump : float
        Fastest cooling (degC/min) without / with the pump at full speed; asking for more sets
        EB1 0x01 and the stage cools at this rate.
    heating_lag, cooling_lag : float
        First-order lag (s) of the stage behind the controller program.
    passive_lag : float
        Time constant (s) of free cooling toward ambient with the heater off.
    """

    name: str
    min_limit: float
    max_limit: float
    min_rate: float = 0.01
    max_rate: float = 150.0
    pump_cooling: bool = False
    max_cooling_rate: float = 50.0
    max_cooling_rate_pump: float = 50.0
    heating_lag: float = 3.0
    cooling_lag: float = 8.0
    passive_lag: float = 90.0


# TS1500: the firmware takes limits from 0 C, but without liquid-nitrogen cooling the stage
# cannot go below ambient, so what it reaches is ambient to 1500 C.
STAGE_MODELS: dict[str, StageModel] = {
    "TS1500": StageModel("TS1500", min_limit=0.0, max_limit=1500.0),
    "HFS600E": StageModel(
        "HFS600E",
        min_limit=-196.0,
        max_limit=600.0,
        pump_cooling=True,
        max_cooling_rate=20.0,
        max_cooling_rate_pump=100.0,
        heating_lag=2.0,
        cooling_lag=6.0,
        passive_lag=120.0,
    ),
}


class RegulationNoise:
    """Deterministic regulation ripple: a sum of three sines, never beyond +/- amplitude.

    A function of time (not a random draw per request), so the history stays reproducible and
    ``temperature_at(t)`` gives the same answer however often it is asked.
    """

    def __init__(self, seed: int | None, amplitude: float = 0.1, origin: float = 0.0) -> None:
        rng = random.Random(seed)
        weights = (0.5, 0.3, 0.2)
        periods = (rng.uniform(6.0, 9.0), rng.uniform(2.0, 3.5), rng.uniform(0.8, 1.5))
        self._terms = [
            (amplitude * w, 2 * math.pi / p, rng.uniform(0, 2 * math.pi))
            for w, p in zip(weights, periods, strict=True)
        ]
        self._origin = origin

    def __call__(self, t: float) -> float:
        s = t - self._origin
        return sum(a * math.sin(w * s + phase) for a, w, phase in self._terms)


@dataclass(frozen=True)
class _Piece:
    """Controller program on [start, next piece): u(s) = u0 + slope * (s - start)."""

    start: float
    u0: float
    slope: float


def _clip_below(pieces: list[_Piece], floor: float) -> list[_Piece]:
    """The program max(u, floor): what the stage can follow when it cannot go below ``floor``."""
    clipped: list[_Piece] = []
    for index, piece in enumerate(pieces):
        end = pieces[index + 1].start if index + 1 < len(pieces) else math.inf
        if piece.slope == 0:
            clipped.append(_Piece(piece.start, max(piece.u0, floor), 0.0))
            continue
        crossing = piece.start + (floor - piece.u0) / piece.slope
        above_at_start = piece.u0 >= floor
        if not piece.start < crossing < end:
            if above_at_start:
                clipped.append(piece)
            else:
                clipped.append(_Piece(piece.start, floor, 0.0))
        elif above_at_start:  # falls through the floor
            clipped += [piece, _Piece(crossing, floor, 0.0)]
        else:  # rises through the floor
            clipped += [_Piece(piece.start, floor, 0.0), _Piece(crossing, floor, piece.slope)]
    return clipped


class _LaggedResponse:
    """Closed-form first-order lag T' = (u - T) / tau of a piecewise-linear program u."""

    def __init__(self, pieces: list[_Piece], theta0: float, tau: float) -> None:
        self._pieces = pieces
        self._starts = [p.start for p in pieces]
        self._tau = tau
        self._theta_at_start = [theta0]
        for index in range(len(pieces) - 1):
            length = pieces[index + 1].start - pieces[index].start
            self._theta_at_start.append(self._along(index, length))

    def _along(self, index: int, sigma: float) -> float:
        piece, tau = self._pieces[index], self._tau
        start_value = self._theta_at_start[index]
        m = piece.slope
        return (
            piece.u0
            + m * sigma
            - m * tau
            + (start_value - piece.u0 + m * tau) * math.exp(-sigma / tau)
        )

    def __call__(self, s: float) -> float:
        index = max(0, bisect.bisect_right(self._starts, s) - 1)
        return self._along(index, s - self._pieces[index].start)

    @property
    def final_value(self) -> float:
        return self._pieces[-1].u0


class Segment(ABC):
    """Stage behaviour from ``t0`` until the next command; times are experiment seconds."""

    t0: float
    regulated: bool = False

    @abstractmethod
    def temperature(self, t: float) -> float:
        """Smooth (noise-free) stage temperature at ``t`` >= t0."""

    @abstractmethod
    def status(self, t: float) -> int:
        """SB1 status byte at ``t``."""

    def errors(self, t: float) -> int:
        """EB1 error bits (without bit 7) at ``t``."""
        return 0

    def program(self, t: float) -> float | None:
        """The controller's setpoint at ``t``, or None when it is not controlling."""
        return None


@dataclass(frozen=True)
class HeaterOff(Segment):
    """Heater off (stopped, or the stage unplugged): free exponential approach to ambient."""

    t0: float
    theta0: float
    ambient: float
    tau: float

    def temperature(self, t: float) -> float:
        return self.ambient + (self.theta0 - self.ambient) * math.exp(-(t - self.t0) / self.tau)

    def status(self, t: float) -> int:
        return STOPPED


@dataclass(frozen=True)
class Holding(Segment):
    """Holding the temperature it had when told to hold (O)."""

    t0: float
    theta0: float
    regulated: bool = True

    def temperature(self, t: float) -> float:
        return self.theta0

    def status(self, t: float) -> int:
        return HOLDING_CURRENT

    def program(self, t: float) -> float | None:
        return self.theta0


@dataclass(frozen=True)
class Ramping(Segment):
    """Ramping toward ``limit`` at ``rate`` and then regulating there.

    The controller program starts at ``program0`` and moves linearly to the limit; the stage
    follows it with a first-order lag, cannot go below ``floor`` (ambient without the pump),
    and cools no faster than ``max_cooling_rate``. An ``overshoot`` of N degC adds a bump of
    height N past the limit, peaking ``overshoot_time`` seconds after the program arrives.
    """

    t0: float
    theta0: float
    program0: float
    limit: float
    rate: float
    floor: float
    max_cooling_rate: float
    heating_lag: float
    cooling_lag: float
    overshoot: float = 0.0
    overshoot_time: float = 20.0
    regulated: bool = True
    _response: _LaggedResponse = field(init=False, repr=False, compare=False)
    _program_end: float = field(init=False, repr=False, compare=False)
    _direction: int = field(init=False, repr=False, compare=False)
    _too_fast: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        distance = self.limit - self.program0
        direction = (distance > 0) - (distance < 0)
        too_fast = direction < 0 and self.rate > self.max_cooling_rate
        speed = (min(self.rate, self.max_cooling_rate) if direction < 0 else self.rate) / 60.0
        program_end = abs(distance) / speed
        pieces = [_Piece(0.0, self.program0, direction * speed)]
        if program_end > 0:
            pieces.append(_Piece(program_end, self.limit, 0.0))
        else:
            pieces = [_Piece(0.0, self.limit, 0.0)]
        lag = self.heating_lag if direction >= 0 else self.cooling_lag
        response = _LaggedResponse(_clip_below(pieces, self.floor), self.theta0, lag)
        # Derived once at creation; the segment itself stays immutable.
        object.__setattr__(self, "_response", response)
        object.__setattr__(self, "_program_end", program_end)
        object.__setattr__(self, "_direction", direction)
        object.__setattr__(self, "_too_fast", too_fast)

    @property
    def reaches_limit(self) -> bool:
        """False when the floor keeps the stage from getting down to the limit."""
        return self._response.final_value == self.limit

    def temperature(self, t: float) -> float:
        s = t - self.t0
        value = self._response(s)
        if self.overshoot and self.reaches_limit and s > self._program_end:
            x = (s - self._program_end) / self.overshoot_time
            value += (self._direction or 1) * self.overshoot * x * math.exp(1.0 - x)
        return value

    def status(self, t: float) -> int:
        if t - self.t0 < self._program_end:
            return HEATING if self._direction > 0 else COOLING
        if self.reaches_limit:
            return HOLDING_LIMIT
        return COOLING if self._response.final_value > self.limit else HEATING

    def errors(self, t: float) -> int:
        if self._too_fast and t - self.t0 < self._program_end:
            return COOLING_RATE_TOO_FAST
        return 0

    def program(self, t: float) -> float | None:
        s = t - self.t0
        if s >= self._program_end:
            return self.limit
        return self.program0 + (self.limit - self.program0) * s / self._program_end


class ThermalHistory:
    """Every segment since the start, so the temperature at any past time can be recomputed.

    Parameters
    ----------
    first : Segment
        The state at creation (usually the heater off at ambient).
    noise : RegulationNoise
        Added to the temperature while a segment regulates.
    """

    def __init__(self, first: Segment, noise: RegulationNoise) -> None:
        self._segments: list[Segment] = [first]
        self._starts: list[float] = [first.t0]
        self._noise = noise

    @property
    def start(self) -> float:
        """Experiment time of the first segment."""
        return self._starts[0]

    @property
    def current(self) -> Segment:
        """The latest segment."""
        return self._segments[-1]

    def append(self, segment: Segment) -> None:
        """Start a new segment; it must not begin before the latest one."""
        if segment.t0 < self._starts[-1]:
            raise ValueError(
                f"thermal segment at t={segment.t0} starts before the latest at {self._starts[-1]}"
            )
        self._segments.append(segment)
        self._starts.append(segment.t0)

    def segment_at(self, t: float) -> Segment:
        """The segment in force at experiment time ``t``."""
        if t < self._starts[0]:
            raise ValueError(
                f"experiment time {t} is before the stage history starts ({self._starts[0]})"
            )
        return self._segments[bisect.bisect_right(self._starts, t) - 1]

    def smooth_temperature(self, t: float) -> float:
        """Temperature at ``t`` without regulation noise (continuous across segments)."""
        return self.segment_at(t).temperature(t)

    def temperature(self, t: float) -> float:
        """True stage temperature at ``t``: the smooth value plus regulation noise if regulated."""
        segment = self.segment_at(t)
        value = segment.temperature(t)
        if segment.regulated:
            value += self._noise(t)
        return value
