"""``anneal_and_measure``: the paper's campaign, one run per measurement, one campaign id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp

from insitu.plans.anneal import anneal
from insitu.plans.arguments import (
    as_count,
    as_duration,
    as_flag,
    as_identifier,
    as_metadata,
    as_names,
    as_number,
    as_positive,
    as_temperature_step,
    as_temperatures,
    check_plan_factory,
    check_readable,
    check_stage,
)
from insitu.plans.heat_ramp import check_stage_rate
from insitu.plans.resume import campaign_progress, catalog_for_resume
from insitu.plans.safe_state import parked_on_exit
from insitu.plans.step_eis import schedule_key, step_eis

__all__ = ["anneal_and_measure", "pause_for_sample_change", "PAPER_ANNEAL_TEMPERATURES"]

logger = logging.getLogger(__name__)

#: Post-anneal temperatures of Zhu et al. (2024), Table S5.
PAPER_ANNEAL_TEMPERATURES = (500.0, 600.0, 650.0, 750.0)
#: The paper's EIS set temperatures: 100 to 500 C every 50 C.
PAPER_EIS_TEMPERATURES = tuple(float(t) for t in range(100, 501, 50))


def pause_for_sample_change(index: int, anneal_temperature: float):
    """Ask a person for the next sample: log it and pause the RunEngine until ``RE.resume()``."""
    index = as_count(index, "pause_for_sample_change index", minimum=0, maximum=10**6)
    anneal_temperature = as_number(
        anneal_temperature, "pause_for_sample_change anneal_temperature", "C"
    )
    logger.warning(
        "campaign: load sample %d (to be annealed at %.0f C), then RE.resume()",
        index,
        anneal_temperature,
    )
    yield from bps.checkpoint()
    yield from bps.pause()


def anneal_and_measure(
    stage,
    raman,
    eis,
    *,
    anneal_temperatures: Iterable[float] = PAPER_ANNEAL_TEMPERATURES,
    rate: float = 5.0,
    dwell_s: float = 900.0,
    room_temperature: float = 30.0,
    raman_every_C: float = 5.0,
    eis_temperatures: Iterable[float] = PAPER_EIS_TEMPERATURES,
    stabilize_s: float = 120.0,
    cycles: int = 2,
    eis_rate: float = 10.0,
    change_sample: Callable | None = pause_for_sample_change,
    sample_names: Iterable[str] | None = None,
    campaign_id: str | None = None,
    skip: Iterable[tuple] = (),
    resume: bool = False,
    catalog=None,
    suspenders: bool = True,
    temperature_band: float = 5.0,
    band_settle_s: float = 60.0,
    md: dict | None = None,
):
    """Anneal and measure one film per post-anneal temperature, as in the paper.

    For each temperature: a sample change (``change_sample(index, temperature)``, a plan; the
    default pauses for a person, a simulated beamline loads a fresh film), the anneal monitored by
    Raman every ``raman_every_C`` (run ``anneal``), a Raman spectrum at room temperature (run
    ``raman_rt``), then impedance from 100 to 500 C over two heating/cooling cycles (run
    ``eis``). Every run carries ``campaign_id``, ``sample_index``, ``sample_name`` and
    ``measurement`` in its metadata, so :func:`insitu.analysis.campaign.summarize` can find the
    campaign in the catalog. The per-sample Arrhenius fit comes from the EIS runs.

    Resuming (``resume=True`` with the old ``campaign_id``) reads the campaign's runs from the
    catalog (:mod:`insitu.plans.resume`) and continues at the first missing measurement:

    - a sample whose ``anneal`` run finished successfully is not annealed again (its film is
      on the stage, annealed); the plan re-settles at ``room_temperature`` and goes on with
      ``raman_rt`` and/or the impedance points not stored yet (each of which settles and
      stabilizes at its own temperature before measuring);
    - a sample whose anneal was cut off is redone from the sample change, on a *fresh* film:
      a partly annealed film has an unknown thermal history (after the crash the controller
      held its last limit for an unknown time), which cannot be continued into the paper's
      program;
    - on a simulated beamline the virtual film died with the crashed process; the caller
      restores it before resuming (see ``tests/faults/test_sigkill_resume.py``), as a real film
      would simply still be on the stage.

    Safety (see :mod:`insitu.plans.safe_state`): the programmed limit is never above the
    highest anneal temperature, and the campaign ends (or fails, or is aborted) with the stage
    parked at ``room_temperature``. With ``suspenders`` on (the default) the campaign runs
    under :func:`insitu.plans.suspenders.connection_suspenders` for ``stage``, ``raman`` and
    ``eis`` (each needs a ``connected`` Signal), and every impedance measurement under
    :func:`insitu.plans.suspenders.isothermal`.

    Every argument but ``change_sample`` and ``catalog`` is JSON-able, so the plan can be queued
    by name in bluesky-queueserver (devices given by name): ``anneal_and_measure("stage",
    "raman", "eis", campaign_id="c1", resume=True)``; the catalog then comes from
    ``insitu.plans.resume.use_catalog``, set by the beamline.

    Parameters
    ----------
    stage, raman, eis : devices
    anneal_temperatures : list of float
        One sample per temperature (default 500, 600, 650, 750 C).
    skip : iterable of (sample_index, measurement)
        Measurements already stored (to resume a campaign by hand); a skipped ``eis`` may
        instead be given as ``(sample_index, "eis", [(cycle, direction, temperature), ...])``.
        Added to what ``resume`` finds.
    campaign_id : str, optional
        Default: a new uuid. Pass the old one to resume.
    resume : bool
        Leave out what the catalog already holds for ``campaign_id`` (required then).
    catalog : tiled runs container, optional
        Where to read the campaign's runs; default: ``insitu.plans.resume.use_catalog``'s.
    suspenders : bool
        Install the connection and isothermal suspenders (default True).
    temperature_band, band_settle_s : float
        The isothermal suspender's half-band (C) and settle time (experiment s) for impedance.

    Returns
    -------
    str
        The campaign id.
    """
    stage = check_stage(stage, "anneal_and_measure stage")
    md = as_metadata(md, "anneal_and_measure md")
    temperatures = as_temperatures(anneal_temperatures, "anneal_and_measure anneal_temperatures")
    eis_temperatures = as_temperatures(eis_temperatures, "anneal_and_measure eis_temperatures")
    room_temperature = as_number(room_temperature, "anneal_and_measure room_temperature")
    for temperature in (*temperatures, *eis_temperatures, room_temperature):
        stage.check_value(temperature)
    rate = check_stage_rate(stage, rate)
    eis_rate = check_stage_rate(stage, eis_rate)
    dwell_s = as_duration(dwell_s, "anneal_and_measure dwell_s")
    stabilize_s = as_duration(stabilize_s, "anneal_and_measure stabilize_s")
    raman_every_C = as_temperature_step(raman_every_C, "anneal_and_measure raman_every_C")
    cycles = as_count(cycles, "anneal_and_measure cycles", minimum=1, maximum=100)
    temperature_band = as_positive(temperature_band, "anneal_and_measure temperature_band", "C")
    band_settle_s = as_duration(band_settle_s, "anneal_and_measure band_settle_s")
    suspenders = as_flag(suspenders, "anneal_and_measure suspenders")
    resume = as_flag(resume, "anneal_and_measure resume")
    check_readable([raman, eis], "anneal_and_measure detectors", exclude=[stage])
    check_plan_factory(change_sample, "anneal_and_measure change_sample")
    names = None
    if sample_names is not None:
        names = as_names(sample_names, "anneal_and_measure sample_names", count=len(temperatures))
    if room_temperature >= min(temperatures):
        raise ValueError(
            f"anneal_and_measure room_temperature {room_temperature} C must be below the "
            f"lowest anneal temperature {min(temperatures)} C"
        )
    campaign_id = as_identifier(campaign_id, "anneal_and_measure campaign_id")
    if resume and campaign_id is None:
        raise ValueError("anneal_and_measure resume=True needs the campaign_id to resume")
    watch_connections = []
    if suspenders:
        from insitu.plans.suspenders import connection_suspenders  # only with suspenders on

        try:
            watch_connections = connection_suspenders(stage, raman, eis)
        except TypeError as error:
            raise TypeError(
                f"anneal_and_measure: {error}; give devices that report their connection, or "
                "pass suspenders=False"
            ) from None
    campaign_id = campaign_id or str(uuid.uuid4())
    done_runs: set[tuple[int, str]] = set()
    done_eis: dict[int, set] = {}
    for entry in skip:
        if len(entry) == 3:
            done_eis.setdefault(int(entry[0]), set()).update(
                schedule_key(*point) for point in entry[2]
            )
        else:
            done_runs.add((int(entry[0]), str(entry[1])))
    if resume:
        progress = campaign_progress(
            catalog_for_resume(catalog, what="anneal_and_measure"),
            campaign_id,
            stage_name=stage.name,
        )
        progress.check_anneal_temperatures(temperatures, "anneal_and_measure")
        done_runs |= progress.completed
        for index, points in progress.eis_points.items():
            if index is not None:
                done_eis.setdefault(index, set()).update(points)
        logger.info(
            "campaign %s: resuming; already stored: %s", campaign_id, sorted(progress.completed)
        )

    def sample_plan(index, temperature):
        name = names[index] if names else f"LLZO-{temperature:.0f}C"
        common = {
            "campaign_id": campaign_id,
            "sample_index": index,
            "sample_name": name,
            "sample": name,
            "anneal_temperature_C": temperature,
            **(md or {}),
        }
        if (index, "anneal") not in done_runs:
            # A sample is changed on a cold stage, and each anneal starts from room temperature.
            yield from bps.mv(stage, room_temperature)
            if change_sample is not None:
                yield from change_sample(index, temperature)
            yield from anneal(
                stage,
                temperature=temperature,
                rate=rate,
                dwell_s=dwell_s,
                cool_to=room_temperature,
                detectors=[raman],
                every_C=raman_every_C,
                md={**common, "measurement": "anneal"},
            )
            # A fresh film: whatever an earlier, cut-off attempt stored does not apply to it.
            done_runs.difference_update({(index, "raman_rt"), (index, "eis")})
            done_eis.pop(index, None)
        if (index, "raman_rt") not in done_runs:
            yield from bps.mv(stage, room_temperature)
            yield from bp.count([raman, stage], md={**common, "measurement": "raman_rt"})
        if (index, "eis") not in done_runs:
            yield from step_eis(
                stage,
                eis,
                temperatures=eis_temperatures,
                stabilize_s=stabilize_s,
                cycles=cycles,
                rate=eis_rate,
                skip=done_eis.get(index, ()),
                suspenders=suspenders,
                temperature_band=temperature_band,
                band_settle_s=band_settle_s,
                park_at=room_temperature,
                md={**common, "measurement": "eis"},
            )

    def campaign():
        for index, temperature in enumerate(temperatures):
            yield from sample_plan(index, temperature)
        return campaign_id

    plan = campaign()
    if watch_connections:
        plan = bpp.suspend_wrapper(plan, watch_connections)
    return (yield from parked_on_exit(plan, stage, room_temperature, rate=rate))
