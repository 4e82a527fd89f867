"""Summarize an anneal-and-measure campaign from the catalog alone: transitions, sigma(30 C), Ea."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tiled.queries import Key

from insitu.analysis.arrhenius import ArrheniusFit, fit_arrhenius
from insitu.analysis.eis import FilmGeometry, fit_film
from insitu.analysis.stored_stream import read_stream

__all__ = ["CampaignSummary", "SampleResult", "PAPER_RESULTS", "summarize", "campaign_runs"]

ROOM_TEMPERATURE_K = 303.15  # the paper reports conductivity at 30 C

#: Zhu et al. (2024), Table S5: post-anneal C -> (sigma at 30 C in S/cm, Ea in eV or None).
PAPER_RESULTS: dict[float, tuple[float, float | None]] = {
    500.0: (1.44e-9, None),
    600.0: (1.85e-9, None),
    650.0: (5.59e-9, 0.360),
    750.0: (2.51e-6, 0.343),
}


@dataclass
class SampleResult:
    """What one sample of a campaign gave."""

    index: int
    name: str
    anneal_temperature_C: float
    transitions: dict[str, float] = field(default_factory=dict)
    arrhenius: ArrheniusFit | None = None
    eis_points: pd.DataFrame | None = None
    run_uids: dict[str, str] = field(default_factory=dict)

    @property
    def sigma_30C(self) -> float:
        """Conductivity at 30 C (S/cm) extrapolated from the Arrhenius fit of all cycles."""
        return float(self.arrhenius.sigma_at(ROOM_TEMPERATURE_K)) if self.arrhenius else math.nan

    @property
    def Ea_eV(self) -> float:
        """Activation energy of all cycles together (eV)."""
        return self.arrhenius.Ea_eV if self.arrhenius else math.nan

    def Ea_per_cycle(self) -> dict[Any, float]:
        """Activation energy per cycle label (eV)."""
        if self.arrhenius is None:
            return {}
        return {label: fit.Ea_eV for label, fit in self.arrhenius.per_cycle.items()}


@dataclass
class CampaignSummary:
    """A campaign's results: one :class:`SampleResult` per sample, as a table and as text."""

    campaign_id: str
    samples: list[SampleResult]

    def table(self) -> pd.DataFrame:
        """One row per sample, with the paper's values beside ours."""
        rows = []
        for sample in self.samples:
            paper_sigma, paper_ea = PAPER_RESULTS.get(sample.anneal_temperature_C, (None, None))
            row = {
                "sample": sample.name,
                "anneal_C": sample.anneal_temperature_C,
                "onset_C": sample.transitions.get("crystallization_onset", math.nan),
                "crystallized_C": sample.transitions.get("crystallized", math.nan),
                "decomposition_C": sample.transitions.get("decomposition", math.nan),
                "sigma_30C_S_cm": sample.sigma_30C,
                "paper_sigma_30C_S_cm": paper_sigma,
                "Ea_eV": sample.Ea_eV,
                "Ea_stderr_eV": sample.arrhenius.Ea_stderr_eV if sample.arrhenius else math.nan,
                "paper_Ea_eV": paper_ea,
            }
            for label, energy in sorted(sample.Ea_per_cycle().items(), key=str):
                row[f"Ea_cycle_{label}_eV"] = energy
            rows.append(row)
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            table = self.table().drop(columns=["Ea_stderr_eV"], errors="ignore")
            return f"campaign {self.campaign_id}\n{table.to_string(index=False, float_format=_fmt)}"


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.3f}"


def campaign_runs(catalog, campaign_id: str) -> list:
    """The runs of a campaign, in start order."""
    runs = catalog.search(Key("campaign_id") == campaign_id)
    found = [runs[uid] for uid in runs]
    if not found:
        raise KeyError(f"no runs of campaign {campaign_id!r} in the catalog")
    return sorted(found, key=lambda run: run.start["time"])


def _transitions(run) -> dict[str, float]:
    if "transitions" not in run:
        return {}
    data = read_stream(run["transitions"], ("kind", "temperature"))
    return {str(k): float(t) for k, t in zip(data["kind"], data["temperature"], strict=True)}


_EIS_STATE = ("stage_temperature", "cycle", "direction")
_EIS_SPECTRA = ("eis_frequency", "eis_z_real", "eis_z_imag")


def _eis_points(run, geometry: FilmGeometry) -> pd.DataFrame:
    """Film resistance and conductivity per impedance event, from the ``eis_fit`` stream if the
    live callback wrote one, else fitted here from the raw spectra (read only then: they are
    most of the run's bytes)."""
    if "eis_fit" in run:
        state = read_stream(run["primary"], _EIS_STATE)  # a crash-cut run: complete events
        sigma = read_stream(run["eis_fit"], ["conductivity"])["conductivity"]
        if len(sigma) == len(state["cycle"]):
            return _eis_frame(state, sigma)
    data = read_stream(run["primary"], _EIS_STATE + _EIS_SPECTRA)
    frequency = np.asarray(data["eis_frequency"], dtype=float)
    impedance = np.asarray(data["eis_z_real"]) + 1j * np.asarray(data["eis_z_imag"])
    sigma = [
        fit_film(f, z, geometry).conductivity for f, z in zip(frequency, impedance, strict=True)
    ]
    return _eis_frame(data, sigma)


def _eis_frame(state: dict, sigma) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "temperature_C": np.asarray(state["stage_temperature"], dtype=float),
            "cycle": np.asarray(state["cycle"]),
            "direction": np.asarray(state["direction"]).astype(str),
            "sigma_S_cm": np.asarray(sigma, dtype=float),
        }
    )


def summarize(catalog, campaign_id: str, geometry: FilmGeometry | None = None) -> CampaignSummary:
    """Summarize a campaign written by ``insitu.plans.anneal_and_measure``.

    Parameters
    ----------
    catalog : tiled client of the runs container
    campaign_id : str
    geometry : FilmGeometry, optional
        The electrode geometry (default: the paper's) when spectra have to be fitted here.

    Returns
    -------
    CampaignSummary
        Per sample: anneal temperature, detected transitions (from the ``transitions`` stream
        of the anneal run), conductivity at 30 C and Ea from an Arrhenius fit (sigma*T form) of
        all cycles, and Ea per cycle.
    """
    geometry = geometry or FilmGeometry()
    samples: dict[int, SampleResult] = {}
    for run in campaign_runs(catalog, campaign_id):
        start = run.start
        index = int(start["sample_index"])
        sample = samples.setdefault(
            index,
            SampleResult(index, start["sample_name"], float(start["anneal_temperature_C"])),
        )
        measurement = start.get("measurement")
        sample.run_uids[measurement] = start["uid"]
        if measurement == "anneal":
            sample.transitions = _transitions(run)
        elif measurement == "eis" and "primary" in run:
            points = _eis_points(run, geometry)
            if sample.eis_points is not None:  # a resumed campaign: the runs add up
                points = pd.concat([sample.eis_points, points], ignore_index=True)
            sample.eis_points = points
            good = points[np.isfinite(points["sigma_S_cm"]) & (points["sigma_S_cm"] > 0)]
            if good["temperature_C"].nunique() >= 2:
                sample.arrhenius = fit_arrhenius(
                    good["temperature_C"].to_numpy() + 273.15,
                    good["sigma_S_cm"].to_numpy(),
                    cycle=list(good["cycle"]),
                )
    return CampaignSummary(campaign_id, [samples[i] for i in sorted(samples)])
