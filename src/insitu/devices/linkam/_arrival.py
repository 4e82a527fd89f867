"""When should a move settle? The ramp, the settle time, and the least lag the stage has shown.

Held time (``insitu.beamline.virtual_time``) runs a simulated beamline's clock at full speed
only up to the time a Status said it would end, then slowly until the RunEngine hears of it;
without that, the wall latency of the poll that sees a move settled is minutes of a 2000x
anneal at its top temperature. A move's end is known only roughly beforehand: the ramp
(|distance| / rate) and the settle time are the plan's, but a real stage lags its ramp (thermal
lag, a cooling rate it cannot keep near room temperature). That lag is learned from the moves
this stage has made: the least excess seen for the same direction, target band and rate, so the
expectation stays a lower bound (time never runs free past a real settle). A move of a kind not
seen yet expects no lag at all: borrowing another kind's (a slow cooling's, a faster ramp's)
could put the expectation after the real settle, and the time past it would run at full speed.
"""

from __future__ import annotations

import math

__all__ = ["ArrivalEstimate"]

# Targets are grouped into bands this wide (C): a cooling move to 40 C lags far more than one to
# 600 C (Newton cooling), one to 45 C about as much as one to 40 C.
_BAND_C = 50.0


class ArrivalEstimate:
    """Expected settle time of a stage move, from its ramp and the lag of earlier moves.

    All times are experiment seconds.
    """

    def __init__(self) -> None:
        self._least_excess: dict[tuple[int, int, float], float] = {}

    @staticmethod
    def _key(start: float, target: float, rate: float) -> tuple[int, int, float]:
        way = 1 if target >= start else -1
        return (way, int(math.floor(target / _BAND_C)), round(float(rate), 3))

    @staticmethod
    def nominal_duration(start: float, target: float, rate: float, settle_time: float) -> float:
        """Seconds a move takes on a stage that keeps its ramp exactly: ramp plus settle time."""
        return abs(target - start) / rate * 60.0 + settle_time

    def expected_duration(
        self, start: float, target: float, rate: float, settle_time: float, tolerance: float
    ) -> float:
        """Seconds from the start until the move should settle: the least seen for moves of the
        same direction, target band and rate (nominal duration plus least excess); for a kind not
        seen yet, the earliest it can settle (in the band ``tolerance`` before the target, then
        the settle time)."""
        nominal = self.nominal_duration(start, target, rate, settle_time)
        excess = self._least_excess.get(self._key(start, target, rate))
        if excess is None:
            excess = -min(abs(target - start), tolerance) / rate * 60.0
        return max(settle_time, nominal + excess)

    def observe(
        self,
        start: float,
        target: float,
        rate: float,
        settle_time: float,
        tolerance: float,
        took: float,
    ) -> None:
        """Learn from a move from ``start`` to ``target`` that settled ``took`` seconds after it
        started. A move that began inside the band says nothing about the lag and is ignored."""
        if abs(target - start) <= 2.0 * tolerance or not math.isfinite(took):
            return
        excess = took - self.nominal_duration(start, target, rate, settle_time)
        key = self._key(start, target, rate)
        self._least_excess[key] = min(excess, self._least_excess.get(key, math.inf))
