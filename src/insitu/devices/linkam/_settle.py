"""When has a temperature move arrived? In band continuously for the settle time, in time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SettleTracker"]


@dataclass
class SettleTracker:
    """Decide from successive (time, temperature) readings whether a move has settled.

    A move is done once the readings have stayed within ``tolerance`` of ``target`` for
    ``settle_time`` without a break: any reading outside the band (an overshoot, say) restarts
    the clock, so crossing the target on the way past does not count. Times are experiment
    seconds.

    Attributes
    ----------
    target, tolerance, settle_time : float
        Target in degC, band half-width in degC, required time in the band in seconds.
    deadline : float
        Experiment time after which an unsettled move has failed.
    in_band_since : float or None
        Time of the first reading of the current unbroken stay in the band.
    """

    target: float
    tolerance: float
    settle_time: float
    deadline: float
    in_band_since: float | None = None

    def in_band(self, temperature: float) -> bool:
        """True if ``temperature`` lies within the band around the target."""
        return abs(temperature - self.target) <= self.tolerance

    def update(
        self, t: float, temperature: float, *, requested_at: float | None = None
    ) -> Literal["settled", "timed out"] | None:
        """Feed one reading received at experiment time ``t``.

        Parameters
        ----------
        t : float
            When the reply arrived (the latest the temperature can have been sampled).
        temperature : float
            The reading, degC.
        requested_at : float, optional
            When the poll was sent (the earliest it can have been sampled); default ``t``.
            A stay in the band is timed from the latest possible sample of its first reading to
            the earliest possible sample of the latest one, so a slow reply (a loaded machine,
            where milliseconds of wall time are seconds of a fast simulation) can never make a
            move look settled sooner than it was.

        Returns
        -------
        "settled", "timed out" or None
            None while the move is still in progress.
        """
        earliest = t if requested_at is None else min(requested_at, t)
        if self.in_band(temperature):
            if self.in_band_since is None:
                self.in_band_since = t
            if earliest - self.in_band_since >= self.settle_time:
                return "settled"
        else:
            self.in_band_since = None
        if t > self.deadline:
            return "timed out"
        return None
