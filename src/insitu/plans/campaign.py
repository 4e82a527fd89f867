"""``anneal_and_measure``: the paper's campaign, one run per measurement, one campaign id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable

import bluesky.plan_stubs as bps
import bluesky.plans as bp

from insitu.plans.anneal import anneal
from insitu.plans.arguments import as_count, as_positive, as_temperatures, check_readable
from insitu.plans.heat_ramp import check_stage_rate
from insitu.plans.step_eis import step_eis

__all__ = ["anneal_and_measure", "pause_for_sample_change", "PAPER_ANNEAL_TEMPERATURES"]

logger = logging.getLogger(__name__)

#: Post-anneal temperatures of Zhu et al. (2024), Table S5.
PAPER_ANNEAL_TEMPERATURES = (500.0, 600.0, 650.0, 750.0)
#: The paper's EIS set temperatures: 100 to 500 C every 50 C.
PAPER_EIS_TEMPERATURES = tuple(float(t) for t in range(100, 501, 50))


def pause_for_sample_change(index: int, anneal_temperature: float):
    """Ask a person for the next sample: log it and pause the RunEngine until ``RE.resume()``."""
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

    Parameters
    ----------
    stage, raman, eis : devices
    anneal_temperatures : list of float
        One sample per temperature (default 500, 600, 650, 750 C).
    skip : iterable of (sample_index, measurement)
        Measurements already stored (to resume a campaign); a skipped ``eis`` may instead be
        given as ``(sample_index, "eis", [(cycle, direction, temperature), ...])``.
    campaign_id : str, optional
        Default: a new uuid. Pass the old one to resume.

    Returns
    -------
    str
        The campaign id.
    """
    temperatures = as_temperatures(anneal_temperatures, "anneal_and_measure anneal_temperatures")
    eis_temperatures = as_temperatures(eis_temperatures, "anneal_and_measure eis_temperatures")
    for temperature in (*temperatures, *eis_temperatures, room_temperature):
        stage.check_value(temperature)
    rate = check_stage_rate(stage, rate)
    eis_rate = check_stage_rate(stage, eis_rate)
    dwell_s = as_positive(dwell_s, "anneal_and_measure dwell_s", "s", allow_zero=True)
    stabilize_s = as_positive(stabilize_s, "anneal_and_measure stabilize_s", "s", allow_zero=True)
    raman_every_C = as_positive(raman_every_C, "anneal_and_measure raman_every_C", "C")
    cycles = as_count(cycles, "anneal_and_measure cycles", minimum=1, maximum=100)
    check_readable([raman, eis], "anneal_and_measure detectors")
    names = list(sample_names) if sample_names is not None else None
    if names is not None and len(names) != len(temperatures):
        raise ValueError(
            f"anneal_and_measure sample_names has {len(names)} names for "
            f"{len(temperatures)} anneal temperatures"
        )
    if room_temperature >= min(temperatures):
        raise ValueError(
            f"anneal_and_measure room_temperature {room_temperature} C must be below the "
            f"lowest anneal temperature {min(temperatures)} C"
        )
    campaign_id = campaign_id or str(uuid.uuid4())
    done_runs: set[tuple[int, str]] = set()
    done_eis: dict[int, list] = {}
    for entry in skip:
        if len(entry) == 3:
            done_eis[int(entry[0])] = list(entry[2])
        else:
            done_runs.add((int(entry[0]), str(entry[1])))

    for index, temperature in enumerate(temperatures):
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
                md={**common, "measurement": "eis"},
            )
            yield from bps.mv(stage, room_temperature)
    return campaign_id
