"""Plan stubs (no run of their own) that keep experiment time on the insitu clock."""

from __future__ import annotations

import math

import bluesky.plan_stubs as bps

from insitu import clock

__all__ = ["sleep"]


def sleep(seconds: float):
    """Wait ``seconds`` of experiment time (sped up on a simulated beamline).

    The RunEngine stays responsive (pause, abort) while waiting: this yields bluesky's own
    ``sleep`` message with the wall-time equivalent, never calls ``time.sleep``.

    Raises
    ------
    ValueError
        If ``seconds`` is negative or not finite.
    """
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"plans.sleep {seconds} s is not allowed: give a finite time >= 0 s")
    yield from bps.sleep(clock.to_wall(seconds))
