"""``heat_ramp``: acquire while the stage ramps continuously, never stopping the ramp."""

from __future__ import annotations

import math
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from ophyd import Signal

from insitu import clock
from insitu.plans import stubs
from insitu.plans.arguments import (
    MAX_DURATION_S,
    as_duration,
    as_metadata,
    as_number,
    as_positive,
    as_temperature_step,
    check_plan_factory,
    check_readable,
    check_stage,
)
from insitu.plans.safe_state import SAFE_TEMPERATURE_C, check_park_at, parked_on_exit

__all__ = ["heat_ramp", "ramp_acquisition", "check_stage_rate", "RampSignals"]


def check_stage_rate(stage: Any, rate: float) -> float:
    """Check a ramp rate (C/min) against the stage's limits without sending anything."""
    rate = as_positive(rate, f"{stage.name}.rate", "C/min")
    driver = getattr(stage, "driver", None)
    if driver is not None and hasattr(driver, "check_rate"):
        driver.check_rate(rate)
    return rate


class RampSignals:
    """Soft signals for the stage temperature at the start and end of each acquisition."""

    def __init__(self, stage_name: str):
        self.start = Signal(name=f"{stage_name}_temperature_start", value=math.nan)
        self.end = Signal(name=f"{stage_name}_temperature_end", value=math.nan)
        self.mean = Signal(name=f"{stage_name}_temperature_mean", value=math.nan)

    def all(self) -> list[Signal]:
        """The three signals, in the order they are read into events."""
        return [self.start, self.end, self.mean]


def _temperature(stage) -> Any:
    reading = yield from bps.rd(stage.temperature)
    return float(reading)


def _fresh_temperature(stage) -> Any:
    """The stage temperature from a reading taken now, not the last one kept: where a ramp
    starts must not depend on what the stage did before (a simulation then repeats itself)."""
    if hasattr(stage, "trigger"):
        yield from bps.trigger(stage, wait=True)
    return (yield from _temperature(stage))


def acquire_with_temperatures(stage, detectors, signals: RampSignals, stream: str = "primary"):
    """Trigger ``detectors`` and save one event with the stage temperature before and after."""
    t_start = yield from _temperature(stage)
    group = f"acquire-{id(signals)}"
    for detector in detectors:
        yield from bps.trigger(detector, group=group)
    yield from bps.wait(group=group)
    t_end = yield from _temperature(stage)
    yield from bps.mv(
        signals.start, t_start, signals.end, t_end, signals.mean, (t_start + t_end) / 2
    )
    yield from bps.create(stream)
    for device in [*detectors, stage, *signals.all()]:
        yield from bps.read(device)
    yield from bps.save()


def ramp_acquisition(
    stage,
    detectors,
    *,
    stop: float,
    rate: float,
    every_C: float | None,
    every_s: float | None,
    signals: RampSignals,
    should_stop=None,
    group: str = "ramp",
):
    """Plan stub: ramp to ``stop`` and acquire at each step; return the ramp's Status.

    The ramp is started once and never waited on while acquiring. ``should_stop`` (an optional
    plan returning True) is asked after each acquisition, for closed-loop plans. The ramp's
    Status is in ``group`` (wait on it with ``bps.wait(group=group)``).

    Raises
    ------
    ValueError, TypeError
        On any bad argument, before anything moves.
    """
    stage = check_stage(stage, "ramp_acquisition stage")
    detectors = check_readable(detectors, "ramp_acquisition detectors", exclude=[stage])
    stop = as_number(stop, "ramp_acquisition stop", "C")
    stage.check_value(stop)
    rate = check_stage_rate(stage, rate)
    if (every_C is None) == (every_s is None):
        raise ValueError("ramp_acquisition: give exactly one of every_C (C) or every_s (s)")
    if every_C is not None:
        every_C = as_temperature_step(every_C, "ramp_acquisition every_C")
    else:
        every_s = as_duration(every_s, "ramp_acquisition every_s", allow_zero=False)
    if not isinstance(signals, RampSignals):
        raise TypeError(f"ramp_acquisition signals {signals!r} is not a RampSignals")
    check_plan_factory(should_stop, "ramp_acquisition should_stop")
    current = yield from _fresh_temperature(stage)
    direction = 1.0 if stop >= current else -1.0
    yield from bps.mv(stage.rate, rate)
    ramp = yield from bps.abs_set(stage, stop, group=group)
    experiment_s_per_C = 60.0 / rate

    def snapped(step: float) -> float:
        # A step that falls past ``stop`` by less than half a step is taken at ``stop``: a ramp
        # from 30.3 C to 90 C every 10 C ends with a spectrum at 90 C, not none after 80.3 C.
        past = direction * (step - stop)
        return stop if 0 < past < every_C / 2 else step

    next_temperature = snapped(current + direction * every_C) if every_C else None
    next_time = None
    if every_s:
        next_time = clock.now() + every_s
    poll_s = max(0.5, getattr(stage, "_poll_period", 0.5))
    while True:
        temperature = yield from _temperature(stage)
        ramp_done = ramp is not None and ramp.done
        if ramp_done and not ramp.success:
            raise RuntimeError(f"{stage.name}: the ramp to {stop} C failed: {ramp.exception()}")
        reached = temperature
        if ramp_done and direction * (stop - temperature) > 0:
            # Done means at ``stop`` within the stage's tolerance (89.95 C of a ramp to 90 C):
            # the step at ``stop`` is reached, not skipped for the last hundredth of a degree.
            reached = stop
        due = False
        if next_temperature is not None:
            due = direction * (reached - next_temperature) >= 0
        elif next_time is not None:
            due = clock.now() >= next_time
        if due:
            yield from acquire_with_temperatures(stage, detectors, signals)
            if next_temperature is not None:
                while direction * (reached - next_temperature) >= 0:
                    next_temperature = snapped(next_temperature + direction * every_C)
            else:
                # The next slot still ahead: an acquisition that overran one is not followed
                # by a burst of back-to-back spectra catching up (as in ``anneal``'s dwell).
                next_time += every_s
                while next_time <= clock.now():
                    next_time += every_s
            if should_stop is not None and (yield from should_stop()):
                return ramp
            continue
        if ramp_done:
            return ramp
        if next_temperature is not None:
            remaining = abs(next_temperature - temperature) * experiment_s_per_C
        else:
            remaining = next_time - clock.now()
        # Sleep most of the way to the next step, then poll: few messages, no overshoot.
        yield from stubs.sleep(max(poll_s, 0.5 * remaining))


def heat_ramp(
    stage,
    detectors,
    *,
    start: float,
    stop: float,
    rate: float,
    every_C: float | None = None,
    every_s: float | None = None,
    end_at: float | None = None,
    park_at: float | None = SAFE_TEMPERATURE_C,
    md: dict | None = None,
):
    """Settle at ``start``, ramp continuously to ``stop`` at ``rate``, acquiring on the way.

    Each time the temperature passes the next step (every ``every_C`` degrees, or every
    ``every_s`` experiment seconds) all ``detectors`` are triggered together, without stopping
    the ramp. Each event records the stage temperature at the start and end of the acquisition
    (``<stage>_temperature_start``, ``_end``) and their mean (``_mean``): a 30 s spectrum at
    5 C/min spans 2.5 C. The run ends at ``stop`` (or after moving to ``end_at``); then, and
    also if the plan fails or is aborted, the stage is parked at ``park_at`` at ``rate`` (see
    :mod:`insitu.plans.safe_state`). The programmed limit is only ever ``start``, ``stop``,
    ``end_at`` or ``park_at``.

    Parameters
    ----------
    stage : LinkamStage
    detectors : list of readable devices
    start, stop : float
        Temperatures in C; ``stop`` below ``start`` makes a cooling ramp.
    rate : float
        C/min, within the stage's limits.
    every_C, every_s : float
        Exactly one: the temperature step or the time step between acquisitions. Steps an
        acquisition took longer than are skipped, not caught up on back to back: the next
        acquisition is at the next step still ahead.
    end_at : float, optional
        Move here (at the same rate) after the ramp, as part of the run.
    park_at : float or None
        Where the stage is left after the plan (C, default room temperature); None leaves it
        holding at ``stop``/``end_at`` (attended use only: it stays there if the process dies).
    md : dict, optional
        Extra run metadata (e.g. ``{"sample": "LLZO-3"}``).

    Raises
    ------
    ValueError, TypeError
        On any bad argument, before anything moves.
    """
    stage = check_stage(stage, "heat_ramp stage")
    detectors = check_readable(detectors, "heat_ramp detectors", exclude=[stage])
    md = as_metadata(md, "heat_ramp md")
    start = as_number(start, "heat_ramp start")
    stop = as_number(stop, "heat_ramp stop")
    if start == stop:
        raise ValueError(f"heat_ramp start {start} C equals stop {stop} C: nothing to ramp")
    for value in (start, stop) + ((end_at,) if end_at is not None else ()):
        stage.check_value(value)
    rate = check_stage_rate(stage, rate)
    park_at = check_park_at(stage, park_at, "heat_ramp")
    if (every_C is None) == (every_s is None):
        raise ValueError("heat_ramp: give exactly one of every_C (C) or every_s (s)")
    span = abs(stop - start)
    if every_C is not None:
        every_C = as_temperature_step(every_C, "heat_ramp every_C", span=span)
    else:
        # A time step longer than the ramp would sleep past its end (ramp_acquisition sleeps
        # half the time to the next step), holding the plan long after the stage arrived.
        ramp_s = span / rate * 60.0
        every_s = as_duration(
            every_s, "heat_ramp every_s", allow_zero=False, maximum=min(MAX_DURATION_S, ramp_s)
        )

    signals = RampSignals(stage.name)
    _md = {
        "plan_name": "heat_ramp",
        "plan_args": {
            "stage": stage.name,
            "detectors": [d.name for d in detectors],
            "start": start,
            "stop": stop,
            "rate": rate,
            "every_C": every_C,
            "every_s": every_s,
            "end_at": end_at,
            "park_at": park_at,
        },
        "ramp_rate_C_per_min": rate,
        "ramp_start_C": start,
        "ramp_stop_C": stop,
        "hints": {"dimensions": [([f"{stage.name}_temperature_mean"], "primary")]},
        **(md or {}),
    }

    @bpp.stage_decorator([*detectors, stage])
    @bpp.run_decorator(md=_md)
    def inner():
        yield from bps.mv(stage, start)
        yield from ramp_acquisition(
            stage,
            detectors,
            stop=stop,
            rate=rate,
            every_C=every_C,
            every_s=every_s,
            signals=signals,
        )
        yield from bps.wait(group="ramp")
        if end_at is not None:
            yield from bps.mv(stage, end_at)

    return (yield from parked_on_exit(inner(), stage, park_at, rate=rate))
