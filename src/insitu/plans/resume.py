"""Resume a campaign from the catalog: which measurements of a ``campaign_id`` are already stored.

A campaign (``anneal_and_measure``) or a standalone ``step_eis`` run with ``resume=True`` reads
its earlier runs from the catalog, by ``campaign_id``, and leaves out what is already there:

- a whole measurement (``anneal``, ``raman_rt``, ``eis`` of a sample) counts as done only if
  its run has a stop document with ``exit_status == "success"``; a run cut off by a crash (no
  stop document, or the one :func:`insitu.beamline.recovery.close_interrupted_runs` writes on
  restart) or aborted is redone;
- single impedance measurements count one by one: every event stored in an ``eis`` run of the
  sample, finished or not, is a measurement that is not repeated (the resumed ``step_eis``
  starts a new run with the missing ones; ``insitu.analysis.campaign.summarize`` adds a
  sample's ``eis`` runs up).

Plans cannot import the beamline (layering), so the catalog reaches them in one of two ways:
a ``catalog`` argument (any tiled runs container), or the module default that the beamline or
the IPython/queueserver profile sets once with :func:`use_catalog`. Queued plans then need only
JSON-able arguments: ``anneal_and_measure("stage", "raman", "eis", campaign_id="c1",
resume=True)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from insitu.analysis.stored_stream import read_stream

__all__ = [
    "CampaignProgress",
    "EISPoint",
    "campaign_progress",
    "catalog_for_resume",
    "eis_points_of",
    "forget_catalog",
    "succeeded",
    "use_catalog",
]

#: One impedance measurement of ``step_eis``: (cycle, direction, set temperature in C).
EISPoint = tuple[int, str, float]

_lock = threading.Lock()
_default_catalog: Any = None
_before_read: Callable[[], Any] | None = None


def use_catalog(catalog, *, before_read: Callable[[], Any] | None = None) -> None:
    """Set the catalog that plans read when resuming and no ``catalog`` argument is given
    (``insitu.beamline.load`` sets its own, with its writer's flush).

    Parameters
    ----------
    catalog : tiled runs container or None
        ``beamline.catalog``; None forgets the default.
    before_read : callable, optional
        Called before each read of this catalog (given as ``catalog`` or not), e.g.
        ``beamline.flush`` so that runs of this session that are still in the catalog writer's
        queue are on disk before the plan looks for them.
    """
    global _default_catalog, _before_read
    with _lock:
        _default_catalog = catalog
        _before_read = before_read if catalog is not None else None


def forget_catalog(catalog) -> None:
    """Forget the default catalog if it is ``catalog`` (a beamline closing its own)."""
    global _default_catalog, _before_read
    with _lock:
        if _default_catalog is catalog:
            _default_catalog = None
            _before_read = None


def catalog_for_resume(catalog=None, *, what: str = "resume"):
    """The catalog to read: ``catalog`` if given, else the :func:`use_catalog` default.

    Raises
    ------
    ValueError
        If neither is set.
    """
    with _lock:
        chosen = catalog if catalog is not None else _default_catalog
        # The beamline's own catalog, passed explicitly or not, is flushed first: a campaign
        # resumed in the session that cut it off would otherwise read its last runs while the
        # writer still holds some of their events (an EIS run read with points missing gave
        # another conductivity than the one the cut-off campaign had measured).
        before_read = _before_read if chosen is _default_catalog else None
    if chosen is None:
        raise ValueError(
            f"{what}: no catalog to resume from: pass catalog=... or call "
            "insitu.plans.resume.use_catalog(beamline.catalog) once (the beamline does)"
        )
    if before_read is not None:
        before_read()
    return chosen


@dataclass(frozen=True)
class CampaignProgress:
    """What of a campaign is already in the catalog.

    Attributes
    ----------
    campaign_id : str
    completed : frozenset of (sample_index, measurement)
        Runs that ended with ``exit_status == "success"``.
    eis_points : dict of sample_index (None for runs without one) -> frozenset of EISPoint
        Impedance measurements stored per sample, from finished and cut-off ``step_eis`` runs
        alike.
    anneal_temperatures : dict of sample_index -> float
        The anneal temperature each stored sample was started with.
    interrupted : list of str
        Uids of runs without a success stop (cut off, failed or aborted): their measurements
        are redone, except single impedance points that were stored.
    """

    campaign_id: str
    completed: frozenset[tuple[int, str]] = frozenset()
    eis_points: dict[int | None, frozenset[EISPoint]] = field(default_factory=dict)
    anneal_temperatures: dict[int, float] = field(default_factory=dict)
    interrupted: list[str] = field(default_factory=list)

    def is_done(self, sample_index: int, measurement: str) -> bool:
        """True if that sample's ``measurement`` run finished successfully."""
        return (int(sample_index), str(measurement)) in self.completed

    def skip(self) -> list[tuple]:
        """The same progress in ``anneal_and_measure(skip=...)`` form."""
        entries: list[tuple] = sorted(self.completed)
        for index, points in sorted((i, p) for i, p in self.eis_points.items() if i is not None):
            if (index, "eis") not in self.completed:
                entries.append((index, "eis", sorted(points)))
        return entries

    def check_anneal_temperatures(self, temperatures: Iterable[float], what: str) -> None:
        """Raise ValueError if a stored sample was started at another anneal temperature."""
        asked = list(temperatures)
        for index, stored in sorted(self.anneal_temperatures.items()):
            if index >= len(asked) or abs(asked[index] - stored) > 1e-6:
                wanted = f"{asked[index]} C" if index < len(asked) else "no sample"
                raise ValueError(
                    f"{what}: campaign {self.campaign_id!r} sample {index} was annealed at "
                    f"{stored} C in the catalog but the plan now asks for {wanted}: resume "
                    "with the campaign's original anneal_temperatures"
                )


def succeeded(run) -> bool:
    """Whether ``run`` has a stop document that says ``success``."""
    stop = run.metadata.get("stop") or {}
    return stop.get("exit_status") == "success"


def eis_points_of(run, stage_name: str = "stage") -> set[EISPoint]:
    """The (cycle, direction, set temperature) of every complete impedance event in ``run``."""
    if "primary" not in run:
        return set()
    stream = run["primary"]
    setpoint_key = f"{stage_name}_setpoint"
    keys = ("cycle", "direction", setpoint_key)
    if not set(keys) <= set(stream):
        return set()
    columns = read_stream(stream, keys)  # a crash-cut run: the complete events
    cycles = columns["cycle"].astype(int)
    directions = columns["direction"].astype(str)
    setpoints = columns[setpoint_key].astype(float)
    return {
        (int(c), str(d), round(float(t), 1))
        for c, d, t in zip(cycles, directions, setpoints, strict=True)
    }


def campaign_progress(catalog, campaign_id: str, *, stage_name: str = "stage") -> CampaignProgress:
    """Read a campaign's runs from ``catalog`` and say what is done (see the module doc).

    Parameters
    ----------
    catalog : tiled runs container
    campaign_id : str
    stage_name : str
        The stage device's name (its ``<name>_setpoint`` gives an impedance point's set
        temperature).

    Returns
    -------
    CampaignProgress
        Empty if the catalog has no run of that campaign.
    """
    from tiled.queries import Key  # tiled is the catalog's own query language

    if not isinstance(campaign_id, str) or not campaign_id:
        raise TypeError(f"campaign_id {campaign_id!r} must be a non-empty string")
    runs = catalog.search(Key("campaign_id") == campaign_id)
    completed: set[tuple[int, str]] = set()
    points: dict[int | None, set[EISPoint]] = {}
    temperatures: dict[int, float] = {}
    interrupted: list[str] = []
    for uid in runs:
        run = runs[uid]
        start = run.metadata["start"]
        index = int(start["sample_index"]) if "sample_index" in start else None
        ok = succeeded(run)
        if not ok:
            interrupted.append(uid)
        if start.get("plan_name") == "step_eis":
            points.setdefault(index, set()).update(eis_points_of(run, stage_name))
        if index is None:
            continue
        if "anneal_temperature_C" in start:
            temperatures.setdefault(index, float(start["anneal_temperature_C"]))
        if ok:
            completed.add((index, str(start.get("measurement", ""))))
    return CampaignProgress(
        campaign_id=campaign_id,
        completed=frozenset(completed),
        eis_points={i: frozenset(p) for i, p in points.items()},
        anneal_temperatures=temperatures,
        interrupted=interrupted,
    )
