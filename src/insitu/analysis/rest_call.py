"""Crystals in a film at rest: its spectra after an anneal against its own first spectra.

A processing-window campaign (issue 18) asks of each film one thing: did the anneal leave it
crystalline? The live onset flag answers a different question (did sharp bands grow *while*
the film was heated?), and on the way up it can be raised by what is not crystals: on a film
0.3 % crystalline at the end of its anneal, a stretch of spectra at 330-470 C standing 2-4 units
of noise above the film's first spectra (where its amorphous state changed: the learned state's
fitted amplitude rose to 1.9; and its calibration offset was drawn one unit low) summed to an
onset (``bench_optimize.py``, seed 0, -40 C). Crystals do
not vanish on cooling, so the film back at room temperature says what the anneal left.

The statistic is a two-sample comparison of a per-spectrum crystalline statistic of the spectra
after the anneal against the first spectra analysed after the detector's calibration (the same
film near room temperature, before anything could grow): Welch's t, so the film's own scatter
sets the unit and a calibration offset common to both groups cancels. The film is called
crystallized at ``t >= level``. The per-spectrum statistic is ``crystalline_start_z`` of
:class:`~insitu.analysis.transitions.RamanTransitionDetector`: the crystalline diagnostic bands
against the learned amorphous state fitted with two line widths per band (the onset's statistic
until 2026-12-06), in units of each spectrum's noise. Not the onset's ``crystalline_z``, now
fitted with one line width per band for the onset's sake: it has about twice the t for the same
film, and a film amorphous at rest moves it too (an amorphous film relaxed by a 120 min anneal at
565 C, 0.02 % crystalline, t 7.6; 0.34 % t 7.8, ``bench_optimize.py`` seed 1), so no level lay
between the 1 % and 5 % films. On the simulated beamline (-40 C film, 120 min dwells, 12 spectra
after, 8 before), with the two-width statistic (then with the decomposed phase's columns in the
fit too): 0.3 % crystalline films t 0.1-0.7, 1.0 % t 1.8, 2.4 % t 6.1, 5.0 % t 12.3, 11 % t
17.5; the default level 4 lies between 1 and 5 %, the window a processing-window truth is stated
in. What the statistic needs is the literature's
band positions (through the detector) and the film's own spectra, nothing else.

A film that crystallized and then decomposed in its dwell has lost its garnet bands: at rest
its crystalline statistic is back at its start (a -40 C film, 750 C for 120 min, t -0.1, called
amorphous). So the decomposed phase's own bands against the film's start
(``decomposed_start_z``) are compared the same way, at a higher level (:data:`DECOMPOSED_LEVEL`,
20): an amorphous film relaxed by its anneal moves counts in those broad columns by one to two
units of noise per spectrum (t 3-4 on films 0.3-1 % crystalline; on ``bench_optimize.py`` seed
1, -40 C, films below 0.5 % t 0.0-7.4 and one, 553.5 C for 5 min, 0.28 %, t 11.8, which the
former level 10 called crystallized), a decomposed film by tens (t 29.9 on the least decomposed
measured, 750 C for 120 min at -40 C, 96 % pyrochlore; > 50 on others). The film is
crystallized (not amorphous) when either statistic reaches its level; the
margin is the larger of the two distances to their levels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DECOMPOSED_LEVEL",
    "EARLY_SPECTRA",
    "REST_COLUMNS",
    "REST_LEVEL",
    "RestCall",
    "rest_call",
]

#: The ``raman_analysis`` stream's columns a film at rest is called from.
REST_COLUMNS = ("crystalline_start_z", "decomposed_start_z")

#: Spectra after the calibration that stand for the film before its anneal.
EARLY_SPECTRA = 8
#: Welch's t above which the film at rest is called crystallized.
REST_LEVEL = 4.0
#: Welch's t of the decomposed bands at and above which the film at rest is not amorphous.
DECOMPOSED_LEVEL = 20.0
_MIN_GROUP = 3


@dataclass(frozen=True)
class RestCall:
    """What the spectra of a film at rest say of its crystals (see the module docstring)."""

    statistic: float  # Welch's t of the crystalline z, after against before (NaN: too few)
    level: float
    n_before: int
    n_after: int
    decomposed_statistic: float = math.nan  # the same for decomposed_start_z (NaN: not given)
    decomposed_level: float = DECOMPOSED_LEVEL

    @property
    def margin(self) -> float:
        """How far the clearer statistic is past its level (>= 0: crystallized), in units of
        the film's noise."""
        crystalline = self.statistic - self.level
        decomposed = self.decomposed_statistic - self.decomposed_level
        return max(crystalline, decomposed) if math.isfinite(decomposed) else crystalline

    @property
    def crystallized(self) -> bool:
        return bool(self.margin >= 0.0)

    @property
    def usable(self) -> bool:
        return math.isfinite(self.statistic)


def _welch(values: np.ndarray, after_spectra: int, early: int) -> tuple[float, int, int]:
    split = max(values.size - after_spectra, 0)
    before = values[:split][np.isfinite(values[:split])][:early]
    after = values[split:][np.isfinite(values[split:])]
    if before.size < _MIN_GROUP or after.size < _MIN_GROUP:
        return math.nan, int(before.size), int(after.size)
    error = math.sqrt(before.var(ddof=1) / before.size + after.var(ddof=1) / after.size)
    statistic = (after.mean() - before.mean()) / max(error, 1e-12)
    return float(statistic), int(before.size), int(after.size)


def rest_call(
    crystalline_start_z: Iterable[float],
    after_spectra: int,
    *,
    decomposed_start_z: Iterable[float] | None = None,
    early: int = EARLY_SPECTRA,
    level: float = REST_LEVEL,
    decomposed_level: float = DECOMPOSED_LEVEL,
) -> RestCall:
    """Call a film crystallized from its spectra at rest after an anneal.

    Parameters
    ----------
    crystalline_start_z : iterable of float
        The anneal's per-spectrum crystalline statistic in acquisition order, one entry per
        spectrum (NaN for the calibration spectra and spectra that could not be analysed): the
        ``raman_analysis`` stream's ``crystalline_start_z`` column.
    after_spectra : int
        How many of the last entries are the film back at rest after the anneal.
    decomposed_start_z : iterable of float, optional
        The same stream's ``decomposed_start_z`` column (the decomposed bands against the
        film's start); without it only the crystalline statistic calls.
    early : int
        How many of the first analysed spectra stand for the film before the anneal.
    level, decomposed_level : float
        Welch's t at and above which the film is called crystallized, for each statistic.

    Returns
    -------
    RestCall
        With a NaN statistic (not usable) when either group has fewer than 3 analysed spectra.
    """
    after_spectra = int(after_spectra)
    if after_spectra < 0 or early < 1:
        raise ValueError(
            f"rest_call after_spectra {after_spectra} and early {early} must be >= 0 and >= 1"
        )
    z = np.asarray(list(crystalline_start_z), dtype=float)
    statistic, n_before, n_after = _welch(z, after_spectra, early)
    decomposed = math.nan
    if decomposed_start_z is not None:
        decomposed = _welch(
            np.asarray(list(decomposed_start_z), dtype=float), after_spectra, early
        )[0]
    return RestCall(statistic, float(level), n_before, n_after, decomposed, float(decomposed_level))
