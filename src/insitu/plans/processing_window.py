"""``map_processing_window``: anneal one fresh film at a time where an agent says, and learn.

Issue 18: the closed-loop campaign that maps a film's processing window (for each dwell, the
highest anneal temperature at which the film stays amorphous). Per sample: the agent chooses
(anneal temperature, dwell); a fresh film is annealed with in-situ Raman through the ramp, the
dwell and back at room temperature (live flags throughout), and its spectra at rest against its
first ones say whether it crystallized (``after_spectra``); a short step-EIS gives sigma(30 C);
the agent is told and chooses the next. Every decision is data: it is in the metadata of the
sample's anneal run (``decision``: the point, the model's prediction, the boundary's band at
that dwell, why), and the campaign ends with a ``window_map`` run holding the agent's report
(boundary, best amorphous film, samples, why it stopped).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np

from insitu.analysis.arrhenius import fit_arrhenius
from insitu.analysis.eis import fit_film
from insitu.analysis.processing_window import (
    ANNEAL_RANGE_C,
    DWELL_RANGE_MIN,
    GridAgent,
    ProcessingWindowAgent,
)
from insitu.analysis.rest_call import REST_COLUMNS, rest_call
from insitu.analysis.stored_stream import read_stream
from insitu.analysis.transitions import onset_margin
from insitu.plans.anneal import anneal
from insitu.plans.arguments import (
    as_count,
    as_flag,
    as_identifier,
    as_metadata,
    as_number,
    as_positive,
    as_temperature_step,
    as_temperatures,
    check_plan_factory,
    check_readable,
    check_stage,
)
from insitu.plans.campaign import pause_for_sample_change
from insitu.plans.heat_ramp import check_stage_rate
from insitu.plans.resume import catalog_for_resume, succeeded
from insitu.plans.safe_state import parked_on_exit
from insitu.plans.step_eis import step_eis

__all__ = [
    "AFTER_SPECTRA",
    "DWELL_SPECTRA",
    "map_processing_window",
    "STRATEGIES",
    "StoredFilm",
    "make_agent",
    "stored_films",
]

STRATEGIES = ("agent", "grid")
ROOM_TEMPERATURE_K = 303.15
_CRYSTALS_SEEN = ("crystallization_onset", "crystallized")
#: Raman spectra through each anneal's dwell (by default; see ``dwell_every_s``).
DWELL_SPECTRA = 4
#: Raman spectra of each film once it is back at room temperature (see ``after_spectra``).
AFTER_SPECTRA = 12


def make_agent(
    strategy: str = "agent",
    *,
    seed: int = 0,
    anneals=(500.0, 600.0, 650.0, 750.0),
    dwells=(15.0,),
):
    """The agent of a strategy: ``"agent"`` (level-set estimation) or ``"grid"`` (the paper's).

    Raises
    ------
    ValueError
        For an unknown strategy, or a grid point outside 500-800 C / 5-120 min.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"map_processing_window strategy {strategy!r}: choose one of {STRATEGIES}")
    if strategy == "agent":
        return ProcessingWindowAgent(seed=int(seed))
    anneals = as_temperatures(anneals, "map_processing_window anneals")
    dwells = [as_number(d, "map_processing_window dwells", "min") for d in dwells]
    for value in anneals:
        _check_range(value, ANNEAL_RANGE_C, "anneal temperature", "C")
    for value in dwells:
        _check_range(value, DWELL_RANGE_MIN, "dwell", "min")
    return GridAgent(seed=int(seed), anneals_C=tuple(anneals), dwells_min=tuple(dwells))


def _check_range(value: float, bounds, what: str, unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(
            f"map_processing_window {what} {value:g} {unit} is outside the allowed range "
            f"{low:g} to {high:g} {unit}"
        )


class _EisCollector:
    """Collects the impedance events of one run (a RunEngine subscriber) for sigma(30 C)."""

    def __init__(self, stage_name: str, eis_name: str):
        self.keys = (
            f"{stage_name}_temperature",
            f"{eis_name}_frequency",
            f"{eis_name}_z_real",
            f"{eis_name}_z_imag",
        )
        self.points: list[tuple] = []

    def __call__(self, name: str, doc: dict) -> None:
        if name == "event" and all(key in doc["data"] for key in self.keys):
            self.points.append(tuple(doc["data"][key] for key in self.keys))

    def sigma_30C(self) -> float:
        """sigma(30 C) from an Arrhenius fit of the film's conductivity (NaN if it cannot)."""
        temperatures, sigmas = [], []
        for temperature, frequency, real, imag in self.points:
            film = fit_film(np.asarray(frequency), np.asarray(real) + 1j * np.asarray(imag))
            if np.isfinite(film.conductivity) and film.conductivity > 0:
                temperatures.append(float(temperature) + 273.15)
                sigmas.append(film.conductivity)
        if len(set(np.round(temperatures))) < 2:
            return math.nan
        return float(fit_arrhenius(temperatures, sigmas).sigma_at(ROOM_TEMPERATURE_K))


@dataclass(frozen=True)
class StoredFilm:
    """A film of a processing-window campaign as the catalog holds it."""

    index: int
    anneal_C: float
    dwell_min: float
    crystallized: bool
    sigma_30C_S_cm: float | None  # None: its impedance run did not succeed
    crystallization_margin: float = math.nan  # from its anneal's raman_analysis stream


def stored_films(
    catalog,
    campaign_id: str,
    *,
    stage_name: str = "stage",
    eis_name: str = "eis",
    onset_parameters: dict[str, float] | None = None,
):
    """The films of ``campaign_id`` whose anneal succeeded, in order (see ``resume``).

    Stops at the first film whose anneal did not succeed: the films after it (if any) were
    chosen from what the catalog no longer says. With ``onset_parameters`` (the live analysis'
    ``onset_parameters()``), each film's onset margin is recomputed from its anneal's stored
    ``crystalline_z``: the number the campaign told its agent.
    """
    from tiled.queries import Key

    runs = catalog.search(Key("campaign_id") == campaign_id)
    by_index: dict[int, dict[str, list]] = {}
    for uid in runs:
        run = runs[uid]
        start = run.start
        if "sample_index" in start:
            kinds = by_index.setdefault(int(start["sample_index"]), {})
            kinds.setdefault(start.get("measurement"), []).append(run)
    films = []
    for index in sorted(by_index):
        if index != len(films):
            break
        anneals = [run for run in by_index[index].get("anneal", []) if succeeded(run)]
        if not anneals:
            break
        start = anneals[-1].start
        kinds = set()
        if "transitions" in anneals[-1] and "kind" in anneals[-1]["transitions"]:
            kinds = {str(k) for k in read_stream(anneals[-1]["transitions"], ["kind"])["kind"]}
        columns = {}
        if "raman_analysis" in anneals[-1]:
            stream = anneals[-1]["raman_analysis"]
            for key in _STORED_COLUMNS:
                if key in stream:
                    columns[key] = np.asarray(read_stream(stream, [key])[key], dtype=float)
        onset = math.nan
        if onset_parameters is not None and "crystalline_z" in columns:
            onset = onset_margin(columns["crystalline_z"], **onset_parameters)
        after = int((start.get("plan_args") or {}).get("after_spectra") or 0)
        crystallized, margin = _call(kinds, columns, after, onset)
        sigma = None
        for run in by_index[index].get("eis", []):
            if succeeded(run):
                collector = _EisCollector(stage_name, eis_name)
                data = read_stream(run["primary"], collector.keys)
                for row in zip(*(data[key] for key in collector.keys), strict=True):
                    collector.points.append(row)
                sigma = collector.sigma_30C()
        films.append(
            StoredFilm(
                index,
                float(start["anneal_temperature_C"]),
                float(start["dwell_min"]),
                crystallized,
                sigma,
                margin,
            )
        )
    return films


# The onset margin is recomputed from crystalline_z; the call at rest from REST_COLUMNS (a
# catalog written before crystalline_start_z was stored has crystalline_z alone: see _call).
_STORED_COLUMNS = ("crystalline_z", *REST_COLUMNS)


def _call(kinds, columns: dict, after_spectra: int, onset: float) -> tuple[bool, float]:
    """A film's call and its margin: from its spectra at rest after the anneal
    (:func:`~insitu.analysis.rest_call.rest_call` of the analysis ``columns``) when it has them,
    else from the live flags (a ``crystallization_onset`` or ``crystallized`` flag) and the onset
    CUSUM's margin."""
    crystalline = columns.get("crystalline_start_z", columns.get("crystalline_z"))
    if crystalline is not None and after_spectra:
        call = rest_call(
            crystalline,
            after_spectra,
            decomposed_start_z=columns.get("decomposed_start_z"),
        )
        if call.usable:
            return call.crystallized, call.margin
    return any(kind in kinds for kind in _CRYSTALS_SEEN), onset


def _onset_parameters(monitor) -> dict[str, float] | None:
    """The live analysis' onset CUSUM parameters (None for a monitor without them)."""
    parameters = getattr(monitor, "onset_parameters", None)
    return parameters() if callable(parameters) else None


def map_processing_window(
    stage,
    raman,
    eis,
    *,
    monitor,
    samples: int = 10,
    strategy: str = "agent",
    anneals=(500.0, 600.0, 650.0, 750.0),
    dwells=(15.0,),
    seed: int = 0,
    agent=None,
    rate: float = 5.0,
    room_temperature: float = 30.0,
    every_C: float = 10.0,
    dwell_every_s: float | None = None,
    after_spectra: int = AFTER_SPECTRA,
    eis_temperatures=(150.0, 250.0, 350.0),
    stabilize_s: float = 60.0,
    eis_rate: float = 10.0,
    change_sample=pause_for_sample_change,
    campaign_id: str | None = None,
    resume: bool = False,
    catalog=None,
    suspenders: bool = True,
    md: dict | None = None,
):
    """Map the processing window of a film, one fresh sample per anneal, chosen by an agent.

    Parameters
    ----------
    stage, raman, eis : devices
    monitor : RamanTransitionCallback
        The live Raman analysis subscribed to the RunEngine (``beamline.raman_flags``): a
        ``crystallization_onset`` (or ``crystallized``) flag in a sample's anneal run marks it
        crystallized.
    samples : int
        How many films to anneal (1-100).
    strategy : {"agent", "grid"}
        Level-set estimation, or every temperature of ``anneals`` at every dwell of ``dwells``.
    seed : int
        Seeds the agent (reproducible choices).
    agent : object, optional
        Any agent with bluesky-adaptive's ``suggest``/``ingest`` and a ``report()``; replaces
        ``strategy``.
    rate : float
        Heating and cooling rate of the anneals (C/min).
    every_C, dwell_every_s : float
        Raman every ``every_C`` on the way up and every ``dwell_every_s`` (experiment s) through
        the dwell. By default :data:`DWELL_SPECTRA` spectra per dwell, whatever its length: the
        onset flag sums evidence over spectra, so a fixed period gave a 120 min dwell 16 times
        the spectra of a 5 min one, and the flag called films at 0.95 % crystalline after long
        dwells but missed 5 % after short ones (``bench_optimize.py``).
    after_spectra : int
        Raman spectra of each film back at ``room_temperature`` after its anneal, before its
        impedance (:data:`AFTER_SPECTRA`; 0: none). They make the call: the film is crystallized
        when its crystalline band signal at rest stands above its first spectra's, or its
        decomposed phase's bands do (a film decomposed in its dwell is not amorphous)
        (:func:`~insitu.analysis.rest_call.rest_call`; Welch's t >= 4 and >= 20). What is
        called is the film as it left the anneal, as a lab calls it and as the truth is defined:
        crystals go on growing through the cool-down (a film 3 % crystalline at the end of a
        5 min dwell is 5 % once cold), and crystals do not vanish on cooling, while a stretch of
        the heating ramp can stand above the film's start without crystals: the live onset flag
        called a film 0.3 % crystalline (``bench_optimize.py``, seed 0, -40 C). With fewer than 3
        spectra at rest the live flags make the call (a ``crystallization_onset`` or
        ``crystallized`` flag during the anneal).
    eis_temperatures, stabilize_s, eis_rate
        The short step-EIS after each anneal (one heating/cooling cycle).
    change_sample : plan factory or None
        ``change_sample(index, anneal_temperature)``: a fresh film on the stage (the default
        pauses for a person; a simulated beamline loads a new virtual film).
    campaign_id : str, optional
        Default: a new uuid. Pass the old one with ``resume=True`` to go on with a campaign.
    resume : bool
        Read what the catalog holds of ``campaign_id`` first: every film whose anneal and
        impedance runs succeeded is told to the agent as it was measured (never annealed again);
        a film whose anneal succeeded but whose impedance did not is measured again (it is the
        film on the stage); a film whose anneal was cut off is lost (its thermal history is
        unknown) and its point is annealed again on a fresh film. The campaign then goes on to
        ``samples`` films in all. The agent is deterministic given its films and seed, so the
        choices that follow are those an uninterrupted campaign would have made.
    catalog : tiled runs container, optional
        Where to read the campaign; default: :func:`insitu.plans.resume.use_catalog`'s.

    Returns
    -------
    str
        The campaign id (every run of the campaign carries it).
    """
    stage = check_stage(stage, "map_processing_window stage")
    md = as_metadata(md, "map_processing_window md")
    samples = as_count(samples, "map_processing_window samples", minimum=1, maximum=100)
    room_temperature = as_number(room_temperature, "map_processing_window room_temperature", "C")
    stage.check_value(room_temperature)
    rate = check_stage_rate(stage, rate)
    eis_rate = check_stage_rate(stage, eis_rate)
    every_C = as_temperature_step(every_C, "map_processing_window every_C")
    if dwell_every_s is not None:
        dwell_every_s = as_positive(dwell_every_s, "map_processing_window dwell_every_s", "s")
    after_spectra = as_count(
        after_spectra, "map_processing_window after_spectra", minimum=0, maximum=100
    )
    eis_temperatures = as_temperatures(eis_temperatures, "map_processing_window eis_temperatures")
    stabilize_s = as_positive(stabilize_s, "map_processing_window stabilize_s", "s")
    check_readable([raman, eis], "map_processing_window detectors", exclude=[stage])
    check_plan_factory(change_sample, "map_processing_window change_sample")
    if not hasattr(monitor, "analysed") or not hasattr(monitor, "flags"):
        raise TypeError(
            f"map_processing_window monitor {monitor!r} is not the live Raman analysis "
            "(beamline.raman_flags)"
        )
    agent = (
        agent
        if agent is not None
        else make_agent(strategy, seed=seed, anneals=anneals, dwells=dwells)
    )
    campaign_id = as_identifier(campaign_id, "map_processing_window campaign_id")
    resume = as_flag(resume, "map_processing_window resume")
    if resume and campaign_id is None:
        raise ValueError("map_processing_window resume=True needs the campaign_id to resume")
    stored = []
    if resume:
        stored = stored_films(
            catalog_for_resume(catalog, what="map_processing_window"),
            campaign_id,
            stage_name=stage.name,
            eis_name=eis.name,
            onset_parameters=_onset_parameters(monitor),
        )
        if len(stored) > samples:
            raise ValueError(
                f"map_processing_window samples {samples}: campaign {campaign_id} already holds "
                f"{len(stored)} films"
            )
    campaign_id = campaign_id or str(uuid.uuid4())
    base_md = {"campaign_id": campaign_id, "campaign_kind": "processing_window", **md}

    def measure_eis(common: dict, crystallized: bool):
        collector = _EisCollector(stage.name, eis.name)
        yield from bpp.subs_wrapper(
            step_eis(
                stage,
                eis,
                temperatures=eis_temperatures,
                stabilize_s=stabilize_s,
                cycles=1,
                rate=eis_rate,
                suspenders=suspenders,
                park_at=room_temperature,
                md={**common, "measurement": "eis", "crystallized": crystallized},
            ),
            collector,
        )
        return collector.sigma_30C()

    def sample_md(index: int, anneal_C: float, dwell_min: float) -> dict:
        name = f"film-{index + 1:02d}"
        return {
            **base_md,
            "sample_index": index,
            "sample_name": name,
            "sample": name,
            "anneal_temperature_C": anneal_C,
            "dwell_min": dwell_min,
        }

    def told_again(film: StoredFilm):
        """A film the catalog holds: told to the agent as measured (its EIS redone if missing)."""
        (decision,) = agent.suggest(1)
        if (decision["anneal_C"], decision["dwell_min"]) != (film.anneal_C, film.dwell_min):
            raise ValueError(
                f"map_processing_window resume: the agent now chooses {decision['anneal_C']} C, "
                f"{decision['dwell_min']} min for film {film.index + 1}, the catalog holds "
                f"{film.anneal_C} C, {film.dwell_min} min: resume with the campaign's own "
                "strategy, seed and grid"
            )
        sigma = film.sigma_30C_S_cm
        if sigma is None:  # annealed, never measured: it is the film on the stage
            common = sample_md(film.index, film.anneal_C, film.dwell_min)
            sigma = yield from measure_eis(common, film.crystallized)
        agent.ingest(
            [
                {
                    **decision,
                    "crystallized": film.crystallized,
                    "sigma_30C_S_cm": sigma,
                    "crystallization_margin": film.crystallization_margin,
                }
            ]
        )

    def one_sample(index: int):
        (decision,) = agent.suggest(1)
        anneal_C = float(decision["anneal_C"])
        dwell_min = float(decision["dwell_min"])
        # The agent's choice is checked like any input before it reaches the stage.
        _check_range(anneal_C, ANNEAL_RANGE_C, "anneal temperature", "C")
        _check_range(dwell_min, DWELL_RANGE_MIN, "dwell", "min")
        stage.check_value(anneal_C)
        common = sample_md(index, anneal_C, dwell_min)
        yield from bps.mv(stage, room_temperature)
        if change_sample is not None:
            yield from change_sample(index, anneal_C)
        yield from anneal(
            stage,
            temperature=anneal_C,
            rate=rate,
            dwell_s=60.0 * dwell_min,
            cool_to=room_temperature,
            detectors=[raman],
            every_C=every_C,
            dwell_every_s=dwell_every_s or 60.0 * dwell_min / DWELL_SPECTRA,
            after_spectra=after_spectra,
            md={**common, "measurement": "anneal", "decision": _json_safe(decision)},
        )
        yield from bps.mv(monitor.analysed, 0)  # every spectrum of the anneal analysed
        crystallized, margin = _call(
            [flag.kind for flag in monitor.flags],
            monitor.rest_columns() if hasattr(monitor, "rest_columns") else {},
            after_spectra,
            monitor.onset_margin() if hasattr(monitor, "onset_margin") else math.nan,
        )
        sigma = yield from measure_eis(common, crystallized)
        agent.ingest(
            [
                {
                    **decision,
                    "crystallized": crystallized,
                    "sigma_30C_S_cm": sigma,
                    "crystallization_margin": margin,
                }
            ]
        )

    def campaign():
        for film in stored:
            yield from told_again(film)
        for index in range(len(stored), samples):
            yield from one_sample(index)
        report = agent.report()
        report["stopped"] = f"the sample budget is used: {samples} films"
        report["campaign_id"] = campaign_id
        yield from bpp.run_wrapper(
            bps.null(),
            md={**base_md, "measurement": "window_map", "window_map": _json_safe(report)},
        )
        return campaign_id

    return (yield from parked_on_exit(campaign(), stage, room_temperature, rate=rate))


def _json_safe(value):
    """NaN and numpy scalars out of metadata (a start document is JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
