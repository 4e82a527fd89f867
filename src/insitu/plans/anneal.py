"""``anneal``: a post-anneal in the stage (ramp, dwell, cool), optionally monitored."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from insitu import clock
from insitu.devices.linkam import DWELL_MARGIN_C
from insitu.plans import stubs
from insitu.plans.arguments import (
    as_count,
    as_duration,
    as_metadata,
    as_number,
    as_positive,
    as_temperature_step,
    check_readable,
    check_stage,
)
from insitu.plans.heat_ramp import (
    RampSignals,
    acquire_with_temperatures,
    check_stage_rate,
    ramp_acquisition,
)
from insitu.plans.safe_state import parked_on_exit

__all__ = ["anneal"]


#: Experiment seconds a declared anneal dwell may overrun before the watchdog ends it (on top
#: of the cool-down below the dwell's threshold and the wall-time latency; see dwell_overrun_s).
DWELL_GRACE_S = 600.0
#: Wall seconds of latency (a loaded machine, a slow controller) the overrun also allows.
DWELL_LATENCY_WALL_S = 5.0


def dwell_overrun_s(rate: float) -> float:
    """Experiment seconds after a dwell's end before the watchdog may end it.

    :data:`DWELL_GRACE_S`, plus the cool-down at ``rate`` to :data:`DWELL_MARGIN_C` below the
    setpoint (where the watchdog counts the dwell as over), plus
    :data:`DWELL_LATENCY_WALL_S` of wall time: at a simulation's speed-up a wall second of
    latency is many experiment seconds, and a late cool-down command must not trip it.
    """
    return DWELL_GRACE_S + 60.0 * DWELL_MARGIN_C / rate + clock.to_experiment(DWELL_LATENCY_WALL_S)


def anneal(
    stage,
    *,
    temperature: float,
    rate: float = 5.0,
    dwell_s: float = 900.0,
    cool_to: float = 30.0,
    detectors=(),
    every_C: float = 5.0,
    dwell_every_s: float | None = None,
    after_spectra: int = 0,
    md: dict | None = None,
):
    """Ramp to ``temperature`` at ``rate``, dwell ``dwell_s``, cool to ``cool_to`` at ``rate``.

    With ``detectors`` (e.g. ``[raman]``) they are acquired every ``every_C`` degrees on the
    way up, without stopping the ramp (as in ``heat_ramp``), and once at the start of the dwell
    (inside it: the dwell is timed from arrival).
    With ``dwell_every_s`` the detectors are also acquired through the dwell, every
    ``dwell_every_s`` experiment seconds from its start and once at its end (the last exposure
    runs past the dwell's end by its own length): crystals that appear during the dwell are seen
    live. The times are fixed from the dwell's start, so acquisitions do not drift later; a slot
    that came while an acquisition was still running is taken as soon as it ends (of several
    such slots, only the last).
    With ``after_spectra`` the detectors are acquired that many times more once the stage is
    back at ``cool_to``: the film as it left the anneal. Crystals go on growing through the
    cool-down (a film 3 % crystalline at the end of a 5 min dwell at 590 C is 5 % once cold),
    and at room temperature the bands are as sharp as in the film's first spectra.

    One run; its metadata says ``anneal_temperature_C`` so campaigns can find it.

    The stage is always left with a safe program (see :mod:`insitu.plans.safe_state`): the
    limit is never above ``temperature``; after the dwell it is told to ramp to ``cool_to``, so
    if this process dies during the cool-down the controller still ends cold; and if the plan
    fails or is aborted, the stage is parked at ``cool_to`` (at ``rate``). If the process dies
    *during the dwell* the controller holds ``temperature``: the T95 protocol has no hold
    time that would end an abandoned dwell by itself.
    """
    stage = check_stage(stage, "anneal stage")
    md = as_metadata(md, "anneal md")
    temperature = as_number(temperature, "anneal temperature")
    cool_to = as_number(cool_to, "anneal cool_to")
    stage.check_value(temperature)
    stage.check_value(cool_to)
    if cool_to >= temperature:
        raise ValueError(
            f"anneal cool_to {cool_to} C must be below the anneal temperature {temperature} C"
        )
    rate = check_stage_rate(stage, rate)
    dwell_s = as_duration(dwell_s, "anneal dwell_s")
    every_C = as_temperature_step(every_C, "anneal every_C")
    if dwell_every_s is not None:
        dwell_every_s = as_positive(dwell_every_s, "anneal dwell_every_s", "s")
    detectors = check_readable(detectors, "anneal detectors", exclude=[stage])
    after_spectra = as_count(after_spectra, "anneal after_spectra", minimum=0, maximum=100)
    if after_spectra and not detectors:
        raise ValueError(f"anneal after_spectra {after_spectra} needs detectors to acquire")

    signals = RampSignals(stage.name)
    _md = {
        "plan_name": "anneal",
        "plan_args": {
            "stage": stage.name,
            "temperature": temperature,
            "rate": rate,
            "dwell_s": dwell_s,
            "cool_to": cool_to,
            "detectors": [d.name for d in detectors],
            "every_C": every_C,
            "dwell_every_s": dwell_every_s,
            "after_spectra": after_spectra,
        },
        "anneal_temperature_C": temperature,
        "ramp_rate_C_per_min": rate,
        "dwell_s": dwell_s,
        "hints": {"dimensions": [([f"{stage.name}_temperature_mean"], "primary")]},
        **(md or {}),
    }

    @bpp.stage_decorator([*detectors, stage])
    @bpp.run_decorator(md=_md)
    def inner():
        ramp_started = clock.now()
        if detectors:
            yield from ramp_acquisition(
                stage,
                detectors,
                stop=temperature,
                rate=rate,
                every_C=every_C,
                every_s=None,
                signals=signals,
            )
            yield from bps.wait(group="ramp")
        else:
            yield from bps.mv(stage.rate, rate)
            yield from bps.mv(stage, temperature)
        # The dwell is timed from arrival; a spectrum at the top is taken inside it, so a long
        # exposure does not lengthen the anneal (a 650 C film is sensitive to every minute).
        # From when the stage met its settle criterion in this move (a poll period before the
        # poll that saw it: seconds of a fast simulation), never later than now.
        settled_at = getattr(stage, "settled_at", None)
        dwell_started = clock.now()
        if settled_at is not None and ramp_started <= settled_at < dwell_started:
            dwell_started = settled_at
        if hasattr(stage, "dwell_end"):
            # Declared to the watchdog: a dwell nobody ends (the plan paused, halted or
            # suspended, its process gone) is ended by it once overdue (dwell_overrun_s).
            yield from bps.mv(stage.dwell_end, dwell_started + dwell_s + dwell_overrun_s(rate))
        if detectors:
            yield from acquire_with_temperatures(stage, detectors, signals)
            # On a fixed schedule from the dwell's start (every dwell_every_s, and its end), not
            # dwell_every_s after each acquisition: an acquisition's own time must not push the
            # spectra later and later until one slot (often the dwell's end) is lost.
            # A slot that came during an acquisition is taken as it ends (of several, the last).
            schedule = _dwell_schedule(dwell_s, dwell_every_s)
            for i, due in enumerate(schedule):
                elapsed = clock.now() - dwell_started
                if i + 1 < len(schedule) and elapsed >= schedule[i + 1]:
                    continue  # the next slot is due too: take that one
                yield from stubs.sleep(max(0.0, due - elapsed))
                yield from acquire_with_temperatures(stage, detectors, signals)
        yield from stubs.sleep(max(0.0, dwell_s - (clock.now() - dwell_started)))
        yield from bps.mv(stage, cool_to)
        for _ in range(after_spectra):
            yield from acquire_with_temperatures(stage, detectors, signals)

    return (yield from parked_on_exit(inner(), stage, cool_to, rate=rate, only_on_failure=True))


def _dwell_schedule(dwell_s: float, every_s: float | None) -> list[float]:
    """The times into the dwell (s) of its acquisitions after the first: every ``every_s``
    and the dwell's end (none without ``every_s``)."""
    if not every_s or dwell_s <= 0:
        return []
    times = [every_s * k for k in range(1, int(dwell_s // every_s) + 1)]
    if not times or times[-1] < dwell_s - 1e-9:
        times.append(dwell_s)
    return times
