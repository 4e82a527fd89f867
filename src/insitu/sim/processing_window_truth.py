"""The processing window a virtual film really has, from its model alone (no beamline).

Issue 18's truth: for an anneal of ``dwell`` minutes (ramp 5 C/min from room temperature, dwell,
cool at the same rate), the anneal temperatures at which the film's crystalline fraction after the
anneal reaches 1 % (``t1_C``) and 5 % (``t5_C``); an autonomous campaign's boundary is right when
it lies between them (with a margin), and a sample it calls crystallized must be above ``t1_C``,
one it calls amorphous below ``t5_C``. And the best sigma(30 C) a film can reach while it stays
below 5 % crystalline. Only ``insitu optimize --truth`` and the tests read this: the agent that
maps the window never does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

__all__ = ["BoundaryTruth", "WindowTruth", "annealed_state", "window_truth"]

#: Anneal temperatures the truth is searched over (C): the issue's 500-800 C and beyond.
SEARCH_RANGE_C = (400.0, 900.0)
#: Dwells the boundary is reported at (min), as ``insitu optimize --json`` reports its own.
REPORTED_DWELLS_MIN = (5.0, 15.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True)
class BoundaryTruth:
    """Where the film crosses 1 % and 5 % crystalline for one dwell."""

    dwell_min: float
    t1_C: float
    t5_C: float


@dataclass(frozen=True)
class WindowTruth:
    """The film's processing window: the boundary per dwell and the best amorphous film."""

    boundary: tuple[BoundaryTruth, ...]
    best_amorphous_sigma_30C_S_cm: float
    best_amorphous_anneal_C: float
    best_amorphous_dwell_min: float

    def as_dict(self) -> dict:
        """The ``truth`` object of ``insitu optimize --json``."""
        return {
            "boundary": [
                {"dwell_min": b.dwell_min, "t1_C": round(b.t1_C, 2), "t5_C": round(b.t5_C, 2)}
                for b in self.boundary
            ],
            "best_amorphous_sigma_30C_S_cm": self.best_amorphous_sigma_30C_S_cm,
            "best_amorphous_anneal_C": round(self.best_amorphous_anneal_C, 2),
            "best_amorphous_dwell_min": self.best_amorphous_dwell_min,
        }


def annealed_state(
    anneal_C: float,
    dwell_min: float,
    *,
    crystallization_shift_C: float = 0.0,
    conductivity_scale: float = 1.0,
    rate_C_per_min: float = 5.0,
):
    """The film after one anneal program, cooled to room temperature: (film, state)."""
    profile = ThermalProfile.ramp_dwell_cool(
        anneal_C, rate_C_per_min=rate_C_per_min, dwell_min=dwell_min
    )
    film = GarnetFilm(
        profile,
        start_time=0.0,
        max_step_s=5.0,
        crystallization_shift_C=crystallization_shift_C,
        conductivity_scale=conductivity_scale,
    )
    return film, film.state(profile.end_time)


def _crossing(level: float, dwell_min: float, **film) -> float:
    """The anneal temperature at which the crystalline fraction after the anneal is ``level``."""
    low, high = SEARCH_RANGE_C
    for _ in range(30):  # bisection to ~5e-7 C: the fraction rises monotonically with T
        middle = 0.5 * (low + high)
        if annealed_state(middle, dwell_min, **film)[1].crystalline_fraction < level:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def window_truth(
    *,
    crystallization_shift_C: float = 0.0,
    conductivity_scale: float = 1.0,
    dwells_min=REPORTED_DWELLS_MIN,
    rate_C_per_min: float = 5.0,
) -> WindowTruth:
    """The processing window of a film with this variation (see the module docstring).

    The best amorphous film is searched along the 5 % boundary and below it, on a grid of
    dwells from 5 to 120 min (log-spaced) and anneal temperatures from 500 C to ``t5_C``.
    """
    film = {
        "crystallization_shift_C": crystallization_shift_C,
        "conductivity_scale": conductivity_scale,
        "rate_C_per_min": rate_C_per_min,
    }
    boundary = tuple(
        BoundaryTruth(float(d), _crossing(0.01, d, **film), _crossing(0.05, d, **film))
        for d in dwells_min
    )
    best = (-np.inf, np.nan, np.nan)
    for dwell in np.geomspace(5.0, 120.0, 9):
        top = _crossing(0.05, dwell, **film) - 0.01
        for anneal_C in np.linspace(500.0, top, 12):
            model, state = annealed_state(anneal_C, dwell, **film)
            if state.crystalline_fraction >= 0.05:
                continue
            sigma = 10.0 ** model.conductivity_law(state).log10_sigma_30
            if sigma > best[0]:
                best = (sigma, float(anneal_C), float(dwell))
    return WindowTruth(boundary, float(best[0]), best[1], best[2])
