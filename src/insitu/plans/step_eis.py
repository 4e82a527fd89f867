"""``step_eis``: the paper's impedance protocol, heating and cooling through set temperatures."""

from __future__ import annotations

import logging

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from ophyd import Signal

from insitu.plans import stubs
from insitu.plans.arguments import (
    as_count,
    as_duration,
    as_flag,
    as_metadata,
    as_positive,
    as_temperatures,
    check_readable,
    check_stage,
)
from insitu.plans.heat_ramp import check_stage_rate
from insitu.plans.resume import campaign_progress, catalog_for_resume
from insitu.plans.safe_state import SAFE_TEMPERATURE_C, check_park_at, parked_on_exit

__all__ = ["step_eis", "step_eis_schedule", "schedule_key"]

logger = logging.getLogger(__name__)


def schedule_key(cycle, direction, temperature) -> tuple[int, str, float]:
    """A measurement's identity for resuming: set temperatures compare at 0.1 C (the
    controller's resolution)."""
    return (int(cycle), str(direction), round(float(temperature), 1))


def step_eis_schedule(temperatures, cycles: int) -> list[tuple[int, str, float]]:
    """The measurement order: per cycle, heating up through the temperatures, then cooling down.

    The top temperature is measured once per cycle (at the end of heating); cooling starts at
    the next one down. Returns ``(cycle, direction, temperature)`` tuples, cycles from 1.

    Raises
    ------
    ValueError, TypeError
        If ``temperatures`` is not a list of distinct numbers or ``cycles`` not 1 to 100.
    """
    temperatures = as_temperatures(temperatures, "step_eis_schedule temperatures")
    cycles = as_count(cycles, "step_eis_schedule cycles", minimum=1, maximum=100)
    ordered = sorted(temperatures)
    schedule = []
    for cycle in range(1, cycles + 1):
        schedule += [(cycle, "heating", t) for t in ordered]
        schedule += [(cycle, "cooling", t) for t in reversed(ordered[:-1])]
    return schedule


def step_eis(
    stage,
    eis,
    *,
    temperatures,
    stabilize_s: float = 120.0,
    cycles: int = 2,
    rate: float | None = None,
    extra_detectors=(),
    skip=(),
    campaign_id: str | None = None,
    resume: bool = False,
    catalog=None,
    suspenders: bool = True,
    temperature_band: float = 5.0,
    band_settle_s: float = 60.0,
    park_at: float | None = SAFE_TEMPERATURE_C,
    md: dict | None = None,
):
    """Measure impedance at each temperature, heating then cooling, for ``cycles`` cycles.

    At each temperature: move and settle (the stage's tolerance and settle time), wait
    ``stabilize_s`` on the experiment clock, then measure. Events carry ``cycle`` (from 1) and
    ``direction`` (``"heating"``/``"cooling"``) with the stage temperature and set point.

    Each measurement is isothermal: with ``suspenders`` on (the default) it runs under
    :func:`insitu.plans.suspenders.isothermal`, so the RunEngine suspends it when the stage
    leaves ``temperature_band`` C around the set temperature and redoes it (from a checkpoint
    just before it) once the stage has been back in the band for ``band_settle_s``.

    When the plan ends, normally or not, the stage is parked at ``park_at`` (see
    :mod:`insitu.plans.safe_state`); the programmed limit is never anything but one of
    ``temperatures`` or ``park_at``.

    Parameters
    ----------
    stage : LinkamStage
    eis : ZahnerEIS (or any triggerable, readable detector)
    temperatures : list of float
        Set temperatures in C (the paper: 100 to 500 C every 50 C).
    stabilize_s : float
        Experiment seconds to wait at each temperature before measuring (the paper: 120 s).
    cycles : int
        Heating-and-cooling cycles (the paper: 2).
    rate : float, optional
        Ramp rate between temperatures in C/min (default: the stage's current rate).
    extra_detectors : list, optional
        Read along with the impedance (e.g. a thermocouple).
    skip : iterable of (cycle, direction, temperature)
        Measurements already stored, to leave out when resuming a campaign.
    campaign_id : str, optional
        Stored in the run metadata; with ``resume`` the plan leaves out every measurement
        already stored by ``step_eis`` runs of this campaign (of the same ``sample_index`` if
        ``md`` gives one), finished or cut off (see :mod:`insitu.plans.resume`).
    resume : bool
        Read the catalog for measurements to leave out (needs ``campaign_id``). If nothing is
        left, no run is opened.
    catalog : tiled runs container, optional
        Where to read them; default: the one set with ``insitu.plans.resume.use_catalog``.
    suspenders : bool
        Suspend each measurement while the stage is outside the band (default on).
    temperature_band, band_settle_s : float
        Half-width of the band in C, and experiment seconds back inside it before resuming.
    park_at : float or None
        Where the stage is left (C, default room temperature); None leaves it at the last
        temperature (attended use only).
    md : dict, optional
        Extra run metadata.

    Returns
    -------
    str or None
        The run's uid (via the RunEngine), or None when resuming found nothing left to do.
    """
    stage = check_stage(stage, "step_eis stage")
    md = as_metadata(md, "step_eis md")
    temperatures = as_temperatures(temperatures, "step_eis temperatures")
    for temperature in temperatures:
        stage.check_value(temperature)
    stabilize_s = as_duration(stabilize_s, "step_eis stabilize_s")
    cycles = as_count(cycles, "step_eis cycles", minimum=1, maximum=100)
    if rate is not None:
        rate = check_stage_rate(stage, rate)
    extra_detectors = check_readable(extra_detectors, "step_eis extra_detectors")
    detectors = check_readable([eis, *extra_detectors], "step_eis detectors", exclude=[stage])
    temperature_band = as_positive(temperature_band, "step_eis temperature_band", "C")
    band_settle_s = as_duration(band_settle_s, "step_eis band_settle_s")
    suspenders = as_flag(suspenders, "step_eis suspenders")
    resume = as_flag(resume, "step_eis resume")
    park_at = check_park_at(stage, park_at, "step_eis")
    if campaign_id is not None and (not isinstance(campaign_id, str) or not campaign_id):
        raise TypeError(f"step_eis campaign_id {campaign_id!r} must be a non-empty string")
    if resume and campaign_id is None:
        raise ValueError("step_eis resume=True needs the campaign_id of the runs to resume")
    if suspenders:
        from insitu.plans.suspenders import isothermal  # only needed with suspenders on
    done = {schedule_key(*item) for item in skip}
    if resume:
        progress = campaign_progress(
            catalog_for_resume(catalog, what="step_eis"), campaign_id, stage_name=stage.name
        )
        done |= progress.eis_points.get((md or {}).get("sample_index"), frozenset())
    schedule = [
        item for item in step_eis_schedule(temperatures, cycles) if schedule_key(*item) not in done
    ]
    if not schedule:
        logger.info("step_eis: every measurement is already stored; nothing to do")
        return None

    cycle_signal = Signal(name="cycle", value=0)
    direction_signal = Signal(name="direction", value="")
    _md = {
        "plan_name": "step_eis",
        "plan_args": {
            "stage": stage.name,
            "eis": eis.name,
            "temperatures": temperatures,
            "stabilize_s": stabilize_s,
            "cycles": cycles,
            "rate": rate,
            "campaign_id": campaign_id,
            "resume": bool(resume),
            "suspenders": bool(suspenders),
            "temperature_band": temperature_band,
            "band_settle_s": band_settle_s,
            "park_at": park_at,
        },
        "eis_temperatures_C": temperatures,
        "eis_cycles": cycles,
        "hints": {"dimensions": [([f"{stage.name}_temperature"], "primary")]},
        **({"campaign_id": campaign_id} if campaign_id is not None else {}),
        **(md or {}),
    }
    if len(schedule) < len(step_eis_schedule(temperatures, cycles)):
        _md["eis_resumed_at"] = list(schedule[0])

    def measure(cycle, direction):
        yield from bps.checkpoint()  # a suspension redoes this measurement, not the move
        yield from bps.mv(cycle_signal, cycle, direction_signal, direction)
        yield from bps.trigger_and_read([*detectors, stage, cycle_signal, direction_signal])

    @bpp.stage_decorator([*detectors, stage])
    @bpp.run_decorator(md=_md)
    def inner():
        if rate is not None:
            yield from bps.mv(stage.rate, rate)
        for cycle, direction, temperature in schedule:
            yield from bps.mv(stage, temperature)
            yield from stubs.sleep(stabilize_s)
            measurement = measure(cycle, direction)
            if suspenders:
                measurement = isothermal(
                    measurement,
                    stage,
                    temperature,
                    band=temperature_band,
                    settle_time=band_settle_s,
                )
            yield from measurement

    return (yield from parked_on_exit(inner(), stage, park_at, rate=rate))
