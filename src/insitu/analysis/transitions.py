"""Streaming transition flags from Raman spectra, from the literature's band positions alone.

Three transitions are flagged, once each per ramp:

=========================  ==============================================================
kind                       evidence
=========================  ==============================================================
``crystallization_onset``  sharp bands grow at the crystalline phases' positions, beyond
                           the noise, against the amorphous state learned from the ramp
``crystallized``           the crystalline band signal has stopped growing
``decomposition``          bands that only the decomposed phase has grow, beyond the noise,
                           against the crystallized state learned from the ramp
=========================  ==============================================================

**What the detector is given**: a :class:`~insitu.analysis.raman_reference.RamanReference` with
each phase's class and band positions (the paper's table for LLZO: positions and assignments; no
widths, no intensities). **What it learns from the ramp**: the amorphous state from its first
``calibration_spectra`` spectra and then from later spectra that show no crystalline growth (a
lagged template: spectra at least ``template_lag_C`` away in temperature and two spectra old, so
that a slow growth is not absorbed into the reference); the crystalline statistic's offset and
scatter from the calibration spectra (each against the others); the crystallized state and the
width of each of its bands from the spectra that completed the crystallization, the state then
following the film as the amorphous one does (spectra that show no decomposition, at least
``CRYSTALLIZED_LAG_C`` away in temperature: a film still converting between polymorphs, or
whose bands go on changing, is read against itself of late, not as it completed).

The onset statistic fits one line shape per band (``ONSET_LINE_WIDTHS``, 14 cm-1): a bias-free
width it cannot be, but its area has about half the variance of the two-width pair's, which
measures the areas everywhere else (completion, decomposition).

Each spectrum is despiked and fitted as learned state + smooth background + band columns at the
literature's positions (:func:`~insitu.analysis.band_growth.fit_growth`), weighted by its own
shot and read noise. The crystalline (decomposed) *signal* is the summed area of the diagnostic
bands of the class: those far from every band of the classes it must be told from (for LLZO the
389, 468 and 651/656 cm-1 bands; the 275 and 491 cm-1 bands of La2Zr2O7). It is divided by its
standard error and standardized by the calibration spectra, ``z = (signal / error - offset) /
scatter``, so the thresholds are in units of noise on any instrument. With a reference calibrated
on a crystalline standard (:mod:`~insitu.analysis.raman_standards`), the crystalline signal is
instead the generalized least-squares amplitude of the band areas the standard showed, weighted
by the inverse of their fitted covariance: a band the fit cannot pin down (389 cm-1 beside the
368/374 cluster) no longer drowns the others, and the onset's z at a few percent crystalline is
2-5 times the plain sum's.

* **Onset** and **decomposition**: a one-sided CUSUM ``S = max(0, S + min(z - drift,
  max_step))``, flag at ``S >= threshold`` (defaults: threshold 6, max_step 4, drift 2: two spectra
  of ``z >= 5`` or three of ``z >= 4``; drift 3 for a calibrated onset). One spectrum alone never
  raises a flag, so one cosmic ray surviving the despiking or one bad fit cannot. For
  decomposition the decomposed bands must also reach ``decomposed_share`` (2 %) of the
  crystalline band area of the crystallized state: a very sensitive instrument does not flag
  trace amounts.
* **Crystallized** (only after the onset): the amorphous state is frozen at the onset, and the
  crystalline area against it is followed on the modes every crystalline phase has (a band of
  each within ``SAME_MODE_CM1``, far from the amorphous bands; for LLZO 368/389 and 651/656
  cm-1), so that one polymorph turning into another does not read as growth, and on every
  isolated crystalline band (for LLZO the same and the cubic 468 cm-1). The film has stopped
  crystallizing when either area has stopped growing (:mod:`~insitu.analysis.completion`): its
  growth over about ``slope_span_C`` has fallen to ``saturation`` (0.4) of the fastest, on two
  consecutive spectra or, where a spectrum comes every few degrees, on one that leaves no doubt,
  the fall and the rise before it standing out of the noise; or, on a heating ramp, when both
  areas' growth curves, fitted with the non-isothermal nucleation-and-growth form
  (:mod:`~insitu.analysis.growth_curve`), put the film at 95 % of its final signal, and two
  standard errors lower still at 90 %. After a one-spectrum completion the crystallized state is
  learned from the two spectra after it.

A film whose crystalline bands are there from the first spectra (crystalline from the start)
raises no onset: the learned state already holds them, so nothing grows.

**Heating, holding, cooling.** The transitions are thermally activated and irreversible, so they
are tested near the hottest temperature the film has seen: completion within
``COOLING_MARGIN_C`` (3 C; a growth that stops because the stage cools is no completion), onset
and decomposition within ``NEW_PHASE_COOLING_C`` (100 C; crystals go on growing early in a
cool-down, and the learned states, taken hotter, stop matching a film far below). Spectra further
down are analysed and stored (``crystalline_z`` NaN: not tested); the statistics resume when the
film is back near its hottest.

**Input**: counts on one intensity scale for the whole ramp, in any unit, with any offset
(dark-subtracted), any dtype, on an increasing or decreasing axis; a later spectrum may come on
another axis (a drifting or recalibrated spectrometer) up to ``AXIS_SHORTFALL_CM1`` short of the
first at either end. Pixels clipped at full scale get no weight (and are logged); spectra
normalized one by one are named in :attr:`RamanTransitionDetector.scale_warning`, an axis that
holds none of the bands a flag is read from in :attr:`RamanTransitionDetector.axis_warning`. A
spectrum whose whole intensity jumps against the last ones (a dark frame, another exposure: see
:mod:`~insitu.analysis.intensity_jumps`) is logged and not tested; a level that stays is scaled
back to the ramp's.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import find_peaks

from insitu.analysis.band_growth import (
    LINE_WIDTHS_CM1,
    BandCluster,
    GrowthFit,
    Template,
    WeightedSpectrum,
    band_clusters,
    crystalline_z_scan,
    fit_growth,
    fit_growth_nested,
    learn_widths,
)
from insitu.analysis.completion import FITTED_FRACTION, CompletionTracker
from insitu.analysis.intensity_jumps import IntensityJumps
from insitu.analysis.raman_preprocess import (
    check_spectrum,
    local_noise,
    median_of_rows,
    noise_sigma,
    remove_spikes,
    saturated_pixels,
)
from insitu.analysis.raman_reference import LLZO, RamanReference
from insitu.analysis.transition_features import TransitionFeatures
from insitu.analysis.transition_flags import TRANSITION_KINDS, TransitionFlag

__all__ = ["TRANSITION_KINDS", "TransitionFlag", "RamanTransitionDetector", "onset_margin"]
logger = logging.getLogger(__name__)

# Diagnostic bands stay this far (cm-1) from the bands of the classes they must be told from.
AMORPHOUS_GUARD_CM1 = 40.0
CRYSTALLINE_GUARD_CM1 = 15.0
# Against the crystallized state a decomposed band must be further from every crystalline band:
# a broad decomposed line shape next to a crystalline band that weakens and broadens as the film
# decomposes trades counts with it (La2Zr2O7's 491 cm-1 band, 23 cm-1 from the garnet's 468, came
# out negative while the film decomposed: 17 of 100 ramps' decomposition flags out of their
# window with 15 cm-1, 9 with 30 cm-1, on `benchmarks/bench_raman.py`'s robustness ramps).
DECOMPOSED_GUARD_CM1 = 30.0
# Line shapes against the crystallized state: each crystalline band gets the width it shows
# there (learn_widths), these are for bands it could not measure; the decomposed bands get one
# broad shape (two widths of a broad band are too collinear with the background to keep).
CRYSTALLIZED_LINE_WIDTHS = {"crystalline": (8.0, 24.0), "decomposed": (45.0,)}
# A crystallized band's width is learned only where its area stands this many standard errors
# out of the noise (about what tells one step of learn_widths' grid from the next); a band too
# weak to show its width (a cubic band of a film still mostly tetragonal at completion, which
# grows as it converts) gets the pair of widths, which follows any width between. On
# foreign_ramps (half the films tetragonal first) 21 of 37 decompositions in their window
# against 17 (missed 16 -> 10), 96 of 100 on raman_ramps as before. Not a plateau: at 15-20 one
# foreign film flagged 32 spectra early, at 40-60 two did; their decomposed z sits 1-4 above
# zero for tens of spectra before anything decomposes, whatever the widths, and the CUSUM tips
# one way or the other (10 and 30 were clean on both suites).
WIDTH_MIN_Z = 10.0
# Accepted into the learned amorphous state: spectra whose crystalline z is below this. With 3
# and the one-width onset columns, one spectrum of the simulated matrix's 400-550 C changes at
# z 3-4 stopped the learned state there, and it fell behind the film until its bias flagged an
# onset at 0 % crystalline (2 of 36 simulated films); none of the robustness ramps changes.
ACCEPT_Z = 4.0
# Completion is tested only within this margin (C) of the hottest temperature the film has seen,
# a new phase (onset, decomposition) within the second (see RamanTransitionDetector._cooled_by).
COOLING_MARGIN_C = 3.0
NEW_PHASE_COOLING_C = 100.0
# A spectrum's axis may fall this short (cm-1) of the ramp's first axis at either end (calibration
# drift); the missing pixels get this many times the spectrum's largest noise (no weight).
AXIS_SHORTFALL_CM1 = 10.0
UNMEASURED_NOISE = 1e3
# Bands of different crystalline phases this close (cm-1) are one mode (e.g. LLZO's O-Zr-O A1g,
# 656 cm-1 tetragonal and 651 cubic; O-Li-O T2g, 389 and 368).
SAME_MODE_CM1 = 25.0
# Onset CUSUM reference values (about half the step it is tuned to see): with the literature's
# reference, and with a calibrated one, whose weighted statistic grows several times faster once
# crystals come (2 there flagged 2 of 100 robustness ramps' onsets below 1 % crystalline).
DRIFT = 2.0
CALIBRATED_DRIFT = 3.0
# The onset's band columns: one line shape (14 cm-1, between the pair's) per cluster. The pair of
# widths (8 and 24 cm-1) that follows any width between gives an area of about twice the
# variance: on the ramps of insitu.testing.foreign_ramps the onset was in its window on 12 of 50
# films with the pair, 22 with one width (and on 100 of 100 robustness ramps, 98 before). The
# two-width area, which follows a band as it broadens, stays the completion signal.
ONSET_LINE_WIDTHS = {"crystalline": (14.0,), "decomposed": (45.0,)}
# Where the crystalline bands are looked for. A table of positions says little about their
# temperature: the paper's gives each phase's bands at the temperature it saw the phase (cubic at
# 750 C), and the detector reads them there first (None: each band softening SOFTENING_PER_C from
# that temperature); a reader, a generator or another paper may give the same numbers as
# room-temperature positions, softening 0.01-0.03 cm-1 per C from 25 C: at 700 C the A1g band
# then sits 7-20 cm-1 below the literature's 651, a line width from where the first reading's
# column looks. So two more readings, from 25 C at 0.0125 and 0.025 cm-1/C (with the first, no
# plausible band more than ~5 cm-1 from a column from 550 to 850 C), each follow their own onset
# CUSUM, and the one whose evidence leads is the detector's (RamanTransitionDetector._onset_fit);
# the decomposed phase's own bands, broad, stay where the literature puts them (clusters with
# bands of both classes, 368/374 cm-1, move with the crystalline ones; moving all: raman_ramps
# 141 -> 140, the third generator 30 -> 28). On insitu.testing.third_ramps
# (written apart, reading the table as room-temperature positions) 11 -> 30 of 50 ramps with
# every flag in its window (onsets in window 12 -> 34 of 45, completions 18 -> 30 of 39); on
# raman_ramps (141 of 150) and foreign_ramps (27 of 60) as many ramps in window (one foreign
# decomposition a spectrum later, out of it). It costs ~0.4 ms per spectrum until the onset.
POSITION_MODELS: tuple[tuple[float, float] | None, ...] = (None, (25.0, 0.0125), (25.0, 0.025))
# At completion the reading is settled on the crystallized film's bands, tens of noise units
# strong (RamanTransitionDetector._settle_model): another reading replaces the literature's only
# where its crystalline z is this many times the literature's. With 1 (the best fit wins),
# raman_ramps 141 -> 139: two decompositions late, on films where a room-temperature reading fit
# the crystalline bands 1.2x better and moved their columns 8 cm-1 beside the 275 cm-1 band's.
SETTLE_GAIN = 1.5
# Spectra kept to measure the completion signal again at an adopted reading: an onset's
# evidence builds over a few spectra, this many cover a slow one.
RECENT_SPECTRA = 40
# What a reading other than the literature's pays in z, for being one of several looked at.
# Without it foreign_ramps 27 -> 28 and the third generator 30 -> 31, but on the wide probe
# (bench_raman_outside.py) 463 -> 460 of 592: onsets early on 10x brighter films and every 2-3 C.
OTHER_MODEL_PENALTY = 1.0
# The onset statistic is already in units of each spectrum's own noise; its scatter over the
# calibration spectra (4 degrees of freedom with the default 5) corrects it where the fit misses
# the film, but it is a noisy estimate: a chance 1.3-1.6 cost a third of the late onsets on
# foreign_ramps 20-50 % of their z. It is shrunk toward 1 as if this many degrees of freedom had
# measured 1 (a moderated variance): foreign onsets in window 22 -> 25 (offline replay), the
# simulator's 24 films and 6 coarse anneal ramps and raman_ramps' 100 unchanged; with the scatter
# fixed at 1, a raman_ramps onset came early. Not for a calibrated reference (see _calibrate).
NULL_PRIOR_DOF = 4.0
# Spectra a learned state is chosen from, besides the calibration spectra.
MAX_POOL = 200
# The crystallized state follows the film as the amorphous one does (see _check_decomposition):
# a spectrum is read against the crystallized spectra at least this far (C) from it in
# temperature. A film still converting from one polymorph to the other after completion, or
# whose bands go on changing with temperature, drifted away from the state it completed in: its
# decomposed z sat at -3 to -10 before anything decomposed (foreign 1034, 1024) and the
# decomposition came late or not at all. foreign_ramps 22 -> 24 of 60 with every flag in window,
# raman_ramps 141 of 150 as before, the wide probe's 296 ramps 280 as before, with lags of 20,
# 30 and 45 C alike; with 15 C a raman_ramps decomposition came late.
CRYSTALLIZED_LAG_C = 30.0


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass
class _Kept:
    index: int
    temperature: float
    counts: np.ndarray
    noise: np.ndarray | None = None
    template: Template | None = None


@dataclass
class _Stage:
    """A learned state (amorphous or crystallized) and the spectra it is learned from."""

    clusters: tuple[BandCluster, ...]
    pool: list[_Kept] = field(default_factory=list)
    frozen: Template | None = None
    cache: dict[tuple[int, ...], Template] = field(default_factory=dict)

    def keep(self, kept: _Kept, first: int) -> None:
        """Add a spectrum; keep the ``first`` (calibration) ones and the latest few dozen, so a
        long unattended run neither grows memory nor slows down."""
        self.pool.append(kept)
        if len(self.pool) > first + MAX_POOL:
            del self.pool[first : len(self.pool) - MAX_POOL]

    def template(
        self, x: np.ndarray, index: int, temperature: float, lag_c: float, size: int, first: int
    ):
        """The learned state for spectrum ``index`` at ``temperature``: the ``size`` spectra
        nearest to it in temperature among those at least ``lag_c`` away (and two spectra old,
        so a slow growth is not absorbed into the reference) and the ``first`` (calibration)
        spectra, which precede anything that can grow. Nearest in temperature because the
        amorphous bands soften and broaden as it rises: on a heating ramp that is the latest
        lagged spectra (as before this rule: the 150-ramp robustness table is unchanged); for
        spectra back at the start's temperature (a film at rest after its anneal, which
        :func:`~insitu.analysis.rest_call.rest_call` compares with its first spectra) it is
        the first spectra, not the dwell's hundreds of degrees away. None if no spectrum is
        far enough (a crystallized state, which has no calibration spectra, just learned)."""
        if self.frozen is not None:
            return self.frozen
        candidates = [
            kept
            for kept in self.pool
            if kept.index < first
            or (kept.index <= index - 2 and abs(temperature - kept.temperature) >= lag_c)
        ]
        if not candidates:
            return None
        nearest = sorted(candidates, key=lambda k: (abs(temperature - k.temperature), -k.index))
        chosen = sorted(nearest[:size], key=lambda k: k.index)
        key = tuple(kept.index for kept in chosen)
        if key not in self.cache:
            self.cache = {
                key: Template.from_spectra(
                    x,
                    [kept.counts for kept in chosen],
                    float(np.mean([kept.temperature for kept in chosen])),
                    key,
                )
            }
        return self.cache[key]


@dataclass
class _Cusum:
    value: float = 0.0
    start: int | None = None

    def add(self, z: float, index: int, drift: float, max_step: float) -> float:
        step = min(z - drift, max_step)
        if self.value <= 0.0 and step > 0:
            self.start = index
        self.value = max(0.0, self.value + step)
        return self.value


def onset_margin(
    crystalline_z: Iterable[float], *, threshold: float, drift: float, max_step: float
) -> float:
    """How far a ramp's crystallization-onset evidence went past the flag's threshold.

    The onset CUSUM of :class:`RamanTransitionDetector` run over the ramp's ``crystalline_z``
    (the ``raman_analysis`` stream's column; NaN entries, the calibration spectra and failed
    spectra, are skipped), *continued* past the flag: its peak minus ``threshold``. The onset is
    flagged exactly when that is >= 0; how far above or below says how clear the call was, in
    units of noise. Past the threshold the peak is that of the same CUSUM without its cap on one
    spectrum's step (``max_step`` keeps one spectrum from raising a flag, but would make a film
    that crystallized early look as clear as one called at its last spectrum): a film called at
    its last spectrum has a margin near 0, a film that crystallized early tens. NaN when no
    spectrum after the calibration was analysed.
    """
    capped, uncapped = _Cusum(), _Cusum()
    peak = peak_uncapped = -math.inf
    for index, z in enumerate(crystalline_z):
        if math.isfinite(z):
            peak = max(peak, capped.add(float(z), index, drift, max_step))
            peak_uncapped = max(peak_uncapped, uncapped.add(float(z), index, drift, math.inf))
    if not math.isfinite(peak):
        return math.nan
    return (peak_uncapped if peak >= threshold else peak) - threshold


class RamanTransitionDetector:
    """Raise transition flags while spectra arrive, one at a time (see the module doc).

    Parameters
    ----------
    reference : RamanReference
        Phases with their class and band positions (LLZO, the paper's table, by default). Widths
        and intensities, if the reference has them, are not used.
    calibration_spectra : int
        First spectra that teach the amorphous state and the statistics' scatter; no flag is
        raised before they are in.
    threshold, drift, max_step : float
        CUSUM decision threshold, reference value (of the onset's CUSUM) and largest step, in
        units of noise; ``max_step`` must be below ``threshold`` (one spectrum alone never raises
        a flag). A CUSUM's reference value is about half the step it is tuned to see; ``drift``
        defaults to :data:`DRIFT`, or :data:`CALIBRATED_DRIFT` with a reference calibrated on a
        crystalline standard (whose weighted statistic grows faster).
    decomposition_drift : float
        Reference value of the decomposition's CUSUM.
    saturation : float
        Completion: the crystalline growth has fallen to this share of the fastest growth seen.
    template_lag_C : float
        Spectra that teach the amorphous state during the ramp are at least this far (C) from the
        spectrum analysed.
    template_spectra : int
        How many spectra make the learned amorphous state.
    slope_span_C : float
        Growth is measured over about this temperature span (at least one spectrum; one
        spectrum when the temperature does not change, as in an isothermal anneal).
    decomposed_share : float
        Decomposed band area, as a share of the crystallized state's crystalline band area,
        below which decomposition is not flagged however significant.

    Attributes
    ----------
    scale_warning : str or None
        Set (and logged) when the calibration spectra look normalized one by one: the flags
        need one intensity scale for the whole ramp (any unit, offset or dtype).
    axis_warning : str or None
        Set (and logged) at the first spectrum when its axis holds none of the bands a flag is
        read from (e.g. an axis from 300 cm-1 and LLZO's decomposition, read at 275 cm-1):
        that flag cannot come on this ramp.

    Examples
    --------
    >>> detector = RamanTransitionDetector()  # doctest: +SKIP
    >>> for temperature, counts in ramp:  # doctest: +SKIP
    ...     for flag in detector.update(axis, counts, temperature):
    ...         print(flag.message())
    """

    def __init__(
        self,
        reference: RamanReference = LLZO,
        *,
        calibration_spectra: int = 5,
        threshold: float = 6.0,
        drift: float | None = None,
        max_step: float = 4.0,
        decomposition_drift: float = 2.0,
        saturation: float = 0.4,
        template_lag_C: float = 15.0,
        template_spectra: int = 4,
        slope_span_C: float = 10.0,
        decomposed_share: float = 0.02,
    ) -> None:
        if (
            isinstance(calibration_spectra, bool)
            or int(calibration_spectra) != calibration_spectra
            or not 3 <= calibration_spectra <= 50
        ):
            raise ValueError(
                f"RamanTransitionDetector.calibration_spectra {calibration_spectra!r} must be an "
                "integer from 3 to 50"
            )
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"RamanTransitionDetector.threshold {threshold} must be > 0")
        if not (math.isfinite(max_step) and 0 < max_step < threshold):
            raise ValueError(
                f"RamanTransitionDetector.max_step {max_step} must be > 0 and below the "
                f"threshold {threshold} (one spectrum alone must not raise a flag)"
            )
        for name, value in (("drift", drift), ("decomposition_drift", decomposition_drift)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RamanTransitionDetector.{name} {value} must be >= 0")
        for name, value in (("slope_span_C", slope_span_C), ("decomposed_share", decomposed_share)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RamanTransitionDetector.{name} {value} must be >= 0")
        if not (math.isfinite(saturation) and 0.0 < saturation < 1.0):
            raise ValueError(f"RamanTransitionDetector.saturation {saturation} is outside (0, 1)")
        if not (math.isfinite(template_lag_C) and 0.0 <= template_lag_C <= 200.0):
            raise ValueError(
                f"RamanTransitionDetector.template_lag_C {template_lag_C} is outside 0 to 200 C"
            )
        if int(template_spectra) != template_spectra or not 1 <= template_spectra <= 50:
            raise ValueError(
                f"RamanTransitionDetector.template_spectra {template_spectra!r} must be an "
                "integer from 1 to 50"
            )
        for phase_class in ("amorphous", "crystalline", "decomposed"):
            if not reference.names_of_class(phase_class):
                raise ValueError(
                    f"the {reference.material} reference has no {phase_class} phase; the "
                    "detector needs amorphous, crystalline and decomposed phases"
                )
        self.reference = reference
        self.calibration_spectra = int(calibration_spectra)
        self.threshold = float(threshold)
        self.decomposition_drift = float(decomposition_drift)
        self.max_step = float(max_step)
        self.saturation = float(saturation)
        self.template_lag_C = float(template_lag_C)
        self.template_spectra = int(template_spectra)
        self.slope_span_C = float(slope_span_C)
        self.decomposed_share = float(decomposed_share)
        (
            self._clusters_amorphous,
            self._clusters_start,
            self._clusters_crystallized,
        ) = self._clusters(reference)
        self._completion_clusters = self._common_modes(reference, self._clusters_amorphous)
        self._standard_bands = _standard_bands(reference, self._clusters_amorphous)
        self._onset_pattern = self._pattern(self._clusters_amorphous)
        self._models = _position_models(
            self._clusters_amorphous,
            self._clusters_start,
            self._clusters_crystallized,
            literature_only=self._onset_pattern is not None,
        )
        if drift is None:
            drift = DRIFT if self._onset_pattern is None else CALIBRATED_DRIFT
        self.drift = float(drift)
        self.reset()

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _common_modes(reference: RamanReference, clusters) -> np.ndarray:
        """Which onset clusters completion is followed on: those (counted in
        ``crystalline_total``) holding a mode every crystalline phase has, a band of each phase
        within :data:`SAME_MODE_CM1`. One polymorph turning into another (tetragonal to cubic)
        changes the other bands long after the film is crystalline; on the robustness ramps the
        growth of every crystalline band put 10 of 100 completions late, of these 5 (LLZO: 371,
        389 and 653.5 cm-1). All isolated clusters when no mode is common."""
        phases = [p for p in reference.phases if p.phase_class == "crystalline"]
        common = np.array(
            [
                c.isolated
                and all(
                    any(abs(b.position - c.position) <= SAME_MODE_CM1 for b in p.bands)
                    for p in phases
                )
                for c in clusters
            ]
        )
        return common if common.any() else np.array([c.isolated for c in clusters])

    @staticmethod
    def _clusters(reference: RamanReference):
        def bands(*classes: str):
            out = []
            for phase in reference.phases:
                if phase.phase_class in classes:
                    out += [
                        (
                            band.position,
                            phase.reference_temperature_C,
                            phase.name,
                            phase.phase_class,
                        )
                        for band in phase.bands
                        if not band.broad
                    ]
            return out

        amorphous = [b[0] for b in bands("amorphous")]
        crystalline = [b[0] for b in bands("crystalline")]
        avoid = {"crystalline": amorphous, "decomposed": amorphous + crystalline}
        guards = {"crystalline": AMORPHOUS_GUARD_CM1, "decomposed": CRYSTALLINE_GUARD_CM1}
        watched = bands("crystalline", "decomposed")
        # The film's bands against its start: every watched band (``decomposed_start_z``, for a
        # call at rest) ...
        start = band_clusters(watched, avoid, guard_cm1=guards)
        # ... and for the onset without the decomposed phase's own: a decomposed column beside a
        # crystalline one (491 cm-1 beside 468) shares its counts and doubles the error of the
        # crystalline signal before anything can have decomposed. Clusters with bands of both
        # stay, as before, out of the crystalline signal (368 beside 374: the amorphous matrix's
        # bands that come and go near it flagged onsets on the simulated anneal ramps). The
        # two-width fit of these (the completion signal, ``crystalline_start_z``) is without them
        # too: with the 275 cm-1 columns in it, 14 of 42 completions on foreign_ramps came in
        # their window against 19.
        before = tuple(c for c in start if c.phase_class != "decomposed")
        # The onset's clusters first: the fit against the start nests the two-width fit of them
        # (fit_growth_nested, one set of normal equations for both).
        start = before + tuple(c for c in start if c.phase_class == "decomposed")
        # Against the crystallized state, the decomposed bands must be told from crystalline ones.
        after = band_clusters(
            watched, {"decomposed": crystalline}, guard_cm1={"decomposed": DECOMPOSED_GUARD_CM1}
        )
        if not any(c.diagnostic and c.phase_class == "crystalline" for c in before):
            raise ValueError(
                f"the {reference.material} reference has no crystalline band at least "
                f"{AMORPHOUS_GUARD_CM1:g} cm-1 from every amorphous band: nothing to watch"
            )
        if not any(c.diagnostic and c.phase_class == "decomposed" for c in after):
            raise ValueError(
                f"the {reference.material} reference has no decomposed band at least "
                f"{DECOMPOSED_GUARD_CM1:g} cm-1 from every crystalline band: nothing to watch"
            )
        return before, start, after

    def reset(self) -> None:
        """Forget everything: the next spectrum is index 0 of a new ramp."""
        self._index = 0
        self.flags: list[TransitionFlag] = []
        self.history: list[TransitionFeatures] = []
        self.temperatures: list[float] = []
        self._axis: np.ndarray | None = None
        self._raised: set[str] = set()
        self._cusum = {kind: _Cusum() for kind in TRANSITION_KINDS}
        # Per position model: offset and scatter of the crystalline z in the calibration, and
        # the onset CUSUM on its z (see _onset_fit); the model in use.
        self._model_nulls = [(0.0, 1.0) for _ in self._models]
        self._model_cusums = [_Cusum() for _ in self._models]
        self._model = self._leader = 0
        # The last tested spectra before the onset, to measure their completion signal again at
        # the model the onset adopts (see _adopt_leader).
        self._recent: collections.deque[_Kept] = collections.deque(maxlen=RECENT_SPECTRA)
        self._band_scatter = 1.0  # of the two-width band statistic, for the decomposed z
        self._calibration: list[tuple[np.ndarray, np.ndarray, float]] = []
        # maximum, sum and saturation of the first spectra
        self._raw_scale: list[tuple[float, float, bool]] = []
        self._saturation_logged = False
        self._hottest = -math.inf
        self._cooling_logged = False
        self._jumps = IntensityJumps()
        self.scale_warning: str | None = None
        self.axis_warning: str | None = None
        self._completion = CompletionTracker(self.saturation, self.slope_span_C)
        self._crystallized_area = math.nan
        self._crystallized_start: Template | None = None
        self._crystallized_spectra: list[np.ndarray] = []
        self._crystallized_widths: dict = {}
        # A one-spectrum completion learns the crystallized state from the spectra after it.
        self._learn_after = False
        self._amorphous = _Stage(self._clusters_amorphous)
        self._crystallized = _Stage(self._clusters_crystallized)
        self._use_model(0)

    @property
    def index(self) -> int:
        """Index the next spectrum will get."""
        return self._index

    @property
    def warnings(self) -> tuple[str, ...]:
        """The standing warnings about this ramp's spectra (``scale_warning``,
        ``axis_warning``), empty when there are none."""
        return tuple(w for w in (self.scale_warning, self.axis_warning) if w)

    @property
    def calibrated(self) -> bool:
        """Whether the calibration spectra are in (flags can be raised)."""
        return self._index >= self.calibration_spectra

    @property
    def position_model(self) -> tuple[float, float] | None:
        """Where the detector reads the crystalline bands (see :data:`POSITION_MODELS`): None
        for the literature's reading (each phase's positions at the temperature it was seen
        at), or ``(from_C, per_C)``, the positions read as at ``from_C`` and softening ``per_C``
        cm-1 per C. Chosen by the onset's evidence, settled on the crystallized film."""
        return POSITION_MODELS[self._model]

    def onset_margin(self) -> float:
        """The peak of the onset CUSUM so far, continued past the flag, minus the threshold
        (noise units; >= 0 once the onset is flagged): :func:`onset_margin` of the history."""
        return onset_margin(
            (f.crystalline_z for f in self.history),
            threshold=self.threshold,
            drift=self.drift,
            max_step=self.max_step,
        )

    @property
    def last_features(self) -> TransitionFeatures | None:
        """Features of the last spectrum, None before the first."""
        return self.history[-1] if self.history else None

    def cusum(self) -> dict[str, float]:
        """Current CUSUM value of each kind."""
        return {kind: c.value for kind, c in self._cusum.items()}

    @staticmethod
    def _checked_temperature(temperature: float) -> float:
        try:
            value = float(temperature)
        except (TypeError, ValueError):
            raise ValueError(f"temperature {temperature!r} is not a number (in C)") from None
        if not (math.isfinite(value) and value > -273.15):
            raise ValueError(f"temperature {temperature!r} C must be a finite number above -273.15")
        return value

    def _on_axis(self, x: np.ndarray, y: np.ndarray, noise: np.ndarray):
        """A despiked spectrum and its noise onto the ramp's first axis.

        Another axis within a ramp (a spectrometer whose calibration drifts, or that was
        recalibrated) is interpolated onto the first one after the noise was measured on the
        spectrum's own pixels: interpolation between pixels averages neighbours, and the noise
        read from second differences afterwards came out up to several times too small. Its ends
        may fall short of the first axis by ``AXIS_SHORTFALL_CM1`` (1 cm-1 of drift failed every
        later spectrum before); those pixels are filled with the nearest measured value and get
        no weight.
        """
        if self._axis is None:
            self._axis = x
        if x.shape == self._axis.shape and np.allclose(x, self._axis, rtol=0, atol=1e-6):
            return self._axis, y, noise
        short = max(x[0] - self._axis[0], self._axis[-1] - x[-1])
        if short > AXIS_SHORTFALL_CM1:
            raise ValueError(
                f"spectrum axis {x[0]:.1f}-{x[-1]:.1f} cm-1 does not cover the ramp's first "
                f"axis {self._axis[0]:.1f}-{self._axis[-1]:.1f} cm-1: {short:.1f} cm-1 short "
                f"at an end (at most {AXIS_SHORTFALL_CM1:g} cm-1 is filled in)"
            )
        y = np.interp(self._axis, x, y)
        noise = np.interp(self._axis, x, noise)
        outside = (self._axis < x[0]) | (self._axis > x[-1])
        noise[outside] = UNMEASURED_NOISE * float(np.max(noise))
        return self._axis, y, noise

    # ------------------------------------------------------------------ the update
    def update(
        self, wavenumber: ArrayLike, counts: ArrayLike, temperature: float
    ) -> list[TransitionFlag]:
        """Analyse the next spectrum; return the flags it raises (usually none).

        Parameters
        ----------
        wavenumber, counts : array_like
            The spectrum as measured (cosmic rays are removed here; no baseline subtraction).
        temperature : float
            Sample temperature during the measurement (C).

        Returns
        -------
        list of TransitionFlag

        Raises
        ------
        ValueError
            On an invalid spectrum or temperature (the detector's state is unchanged).
        """
        temperature = self._checked_temperature(temperature)
        x, y = check_spectrum(wavenumber, counts)
        removal = remove_spikes(y)
        noise = removal.noise if not removal.mask.any() else local_noise(removal.counts)
        if not np.all(noise > 0):
            noise = np.maximum(noise, 1e-12 + float(np.max(np.abs(removal.counts))) * 1e-9)
        clipped = saturated_pixels(y)
        if clipped is not None:
            measured = noise[~clipped] if not clipped.all() else noise
            noise[clipped] = UNMEASURED_NOISE * float(np.max(measured))
        on_axis, despiked, noise = self._on_axis(x, removal.counts, noise)
        if clipped is not None:
            self._warn_saturated(x, y, clipped)
        x = on_axis
        tested = self._level(despiked, noise)
        if self._jumps.scale != 1.0:
            despiked, noise = despiked * self._jumps.scale, noise * self._jumps.scale
        index = self._index
        if index == 0:
            self._check_axis(x)
        if index < self.calibration_spectra:
            brightest = int(np.argmax(y))
            self._raw_scale.append(
                (
                    float(y[brightest]),
                    float(np.sum(y)),
                    clipped is not None,
                    brightest,
                    bool(removal.mask[brightest]),
                )
            )
            if index == self.calibration_spectra - 1:
                self._check_one_scale()
        # The hottest the film has been: of the running median of three readings, so one bogus
        # reading (a thermocouple glitch at 1372 C) does not hold every later test as cooling.
        recent = [*self.temperatures[-2:], temperature]
        self._hottest = max(self._hottest, float(statistics.median(recent)))
        features, raised = self._update_growth(x, despiked, noise, temperature, index, tested)
        features = _with_spikes(features, removal.n_spikes, float(median_of_rows(noise)))
        self._index += 1
        self.history.append(features)
        self.temperatures.append(temperature)
        self.flags.extend(raised)
        return raised

    def _check_axis(self, x: np.ndarray) -> None:
        """Warn when the ramp's axis holds none of the bands a flag is read from: a band gets
        no column closer to an end of the axis than its widest line shape
        (:func:`~insitu.analysis.band_growth.fit_growth`), and a flag without one cannot come
        (measured: an LLZO ramp cut to 300-1118 cm-1 raised onset and completion in their
        windows and no decomposition, which is read at 275 cm-1 alone)."""
        lo, hi = float(x[0]), float(x[-1])
        amorphous, crystallized = self._clusters_amorphous, self._clusters_crystallized
        common = self._completion_clusters
        watched = {
            "crystallization_onset": (
                [c for c in amorphous if c.diagnostic and c.phase_class == "crystalline"],
                max(ONSET_LINE_WIDTHS["crystalline"]),
            ),
            "crystallized": (  # the common modes, or any isolated crystalline band
                [
                    c
                    for c, is_common in zip(amorphous, common, strict=True)
                    if is_common or c.isolated
                ],
                max(LINE_WIDTHS_CM1["crystalline"]),
            ),
            "decomposition": (
                [c for c in crystallized if c.diagnostic and c.phase_class == "decomposed"],
                max(CRYSTALLIZED_LINE_WIDTHS["decomposed"]),
            ),
        }
        missing = []
        for kind, (clusters, widest) in watched.items():
            if not any(lo + widest <= c.position <= hi - widest for c in clusters):
                bands = ", ".join(f"{c.position:.0f}" for c in clusters) or "none"
                missing.append(f"{kind} (bands at {bands} cm-1, {widest:g} cm-1 in from an end)")
        if missing:
            after = (
                "; no flag can come (each needs the onset)"
                if "crystallization_onset" in missing[0]
                else ""
            )
            self.axis_warning = (
                f"the spectra's axis {lo:.1f}-{hi:.1f} cm-1 holds none of the bands these flags "
                f"are read from: {'; '.join(missing)}{after}. Widen the spectrometer's range "
                f"or expect no such flag"
            )
            logger.warning("RamanTransitionDetector: %s", self.axis_warning)

    def _check_one_scale(self) -> None:
        """Warn when the first spectra look normalized one by one (each to the same maximum or
        sum): the growth of band areas from spectrum to spectrum, which completion and
        decomposition are read from, is then lost (measured: flags 10-23 spectra early on
        per-spectrum normalized ramps that raise them in their windows as counts). Any unit,
        offset or dtype is fine, as long as the ramp has one scale."""
        values = np.asarray(self._raw_scale)
        if values[:, 2].any():
            return  # saturated: named by _warn_saturated, the clipped pixels have no weight
        checks = {"maximum": values[:, 0], "sum": values[:, 1]}
        if np.all(values[:, 3] == values[0, 3]) and values[:, 4].all():
            # The maximum is one pixel, a spike in every spectrum: a hot pixel, which made the
            # maxima equal on spectra in counts (a normalization's maximum is the spectrum's).
            del checks["maximum"]
        for name, v in checks.items():
            if np.all(v > 0) and float(np.ptp(v)) <= 1e-9 * float(np.max(v)):
                self.scale_warning = (
                    f"the first {len(v)} spectra all have the same {name} ({v[0]:.6g}): "
                    "normalized one by one (or saturated)? The transition flags need the "
                    "spectra on one intensity scale for the whole ramp (counts, counts/s, any "
                    "offset); completion and decomposition may come early otherwise"
                )
                logger.warning("RamanTransitionDetector: %s", self.scale_warning)
                return

    def _warn_saturated(self, x: np.ndarray, y: np.ndarray, clipped: np.ndarray) -> None:
        """Log the first saturated spectrum of a ramp (its clipped pixels get no weight)."""
        if self._saturation_logged:
            return
        self._saturation_logged = True
        where = x[clipped]
        logger.warning(
            "RamanTransitionDetector: spectrum %d is saturated at %.6g counts on %d pixels "
            "(%.0f-%.0f cm-1); they get no weight in its fits: "
            "shorten the exposure if the bands are there",
            self._index,
            float(np.max(y)),
            int(np.count_nonzero(clipped)),
            float(where.min()),
            float(where.max()),
        )

    def _cooled_by(self, temperature: float) -> float:
        """How far (C) the film is below the hottest it has been this ramp.

        The transitions watched are thermally activated and irreversible: they start and
        progress at the highest temperature, and slow down by orders of magnitude as the film
        cools. A growth that stops because the stage cools is no completion (on ramps of
        ``raman_ramps`` heated to 63 % crystalline and cooled, all 20 raised ``crystallized`` on
        the way down), so completion is tested only within ``COOLING_MARGIN_C`` of the hottest;
        and the learned states, taken hotter, stop matching a film far below it (a false onset
        on 1 of 24 amorphous films at 205 C, false decompositions at 625 and 190 C, all on the
        way down), so a new phase is looked for only within ``NEW_PHASE_COOLING_C`` (crystals go
        on growing early in a cool-down; 100 C below, a rate with an activation energy of
        1.5 eV or more is under a tenth of the top's). Cooling spectra are measured and stored;
        the statistics resume where they were when the film is back near its hottest.
        """
        below = self._hottest - temperature
        cooling = below > COOLING_MARGIN_C
        if cooling and not self._cooling_logged:
            logger.info(
                "RamanTransitionDetector: %.1f C, more than %g C below the hottest so far "
                "(%.1f C): completion is not tested while the film cools, new phases not "
                "more than %g C below it",
                temperature,
                COOLING_MARGIN_C,
                self._hottest,
                NEW_PHASE_COOLING_C,
            )
        self._cooling_logged = cooling
        return below

    def _level(self, y: np.ndarray, noise: np.ndarray) -> bool:
        """Whether the spectrum is to be tested: not when its whole intensity jumped against the
        last spectra (:mod:`~insitu.analysis.intensity_jumps`), which is logged, as is a level
        that changed for good (the spectra are then scaled back to the ramp's level)."""
        before = self._jumps.scale
        _, jump = self._jumps.check(y, noise)
        if jump is not None:
            logger.warning(
                "RamanTransitionDetector: spectrum %d's intensity is %.3g times the last "
                "spectra's (outside 1/%g-%g): not tested (a shutter, exposure or focus glitch?)",
                self._index,
                jump,
                self._jumps.ratio,
                self._jumps.ratio,
            )
        elif self._jumps.scale != before:
            logger.warning(
                "RamanTransitionDetector: the intensity changed for good, to %.3g times its "
                "level, %d spectra ago; spectra from %d on are scaled back to the ramp's level",
                before / self._jumps.scale,
                self._jumps.new_level - 1,
                self._index,
            )
        return jump is None

    def _update_growth(self, x, y, noise, temperature, index, tested=True):
        amorphous = self._amorphous
        if index < self.calibration_spectra:
            amorphous.pool.append(_Kept(index, temperature, y))
            self._calibration.append((y, noise, temperature))
            if index == self.calibration_spectra - 1:
                self._calibrate(x)
            self._completion.record()
            return TransitionFeatures(temperature), []

        spectrum = WeightedSpectrum(x, y, noise)
        template = amorphous.template(
            x,
            index,
            temperature,
            self.template_lag_C,
            self.template_spectra,
            self.calibration_spectra,
        )
        below = self._cooled_by(temperature)
        # Tested while the film is near its hottest (see _cooled_by): a new phase's bands within
        # NEW_PHASE_COOLING_C of it, the growth's end within COOLING_MARGIN_C; and not at all a
        # spectrum whose intensity jumped (see _level).
        new_phases = tested and below <= NEW_PHASE_COOLING_C
        growing = tested and below <= COOLING_MARGIN_C
        searching = "crystallization_onset" not in self._raised
        fit, z_crystal, z_highest = self._onset_fit(
            spectrum, template, temperature, index, scan=searching and new_phases
        )
        raised: list[TransitionFlag] = []
        # The two-width fit: the completion signal, and the crystalline statistic a film at rest
        # is called from (rest_call's level was set on it); nested in the fit against the start.
        start_fit, two_widths = fit_growth_nested(
            spectrum,
            template,
            self._clusters_start,
            len(self._amorphous.clusters),
            temperature,
            leading_sums={"common": self._completion_clusters},
        )
        common, common_error = two_widths.signal["common"], two_widths.signal_error["common"]
        total = (
            two_widths.signal["crystalline_total"],
            two_widths.signal_error["crystalline_total"],
        )
        if tested:
            self._completion.record((common, common_error), total)
        else:
            self._completion.record()
        if not new_phases:
            z_crystal = math.nan  # not tested, and skipped by onset_margin like a calibration
            if not tested and below <= COOLING_MARGIN_C and self._growing():
                self._completion.skip(temperature, self.temperatures, index)
        elif searching:
            if z_highest < ACCEPT_Z:
                amorphous.keep(_Kept(index, temperature, y), self.calibration_spectra)
            cusum = self._cusum["crystallization_onset"]
            cusum.add(z_crystal, index, self.drift, self.max_step)
            self._recent.append(_Kept(index, temperature, y, noise, template))
            if cusum.value >= self.threshold:
                start = cusum.start if cusum.start is not None else index
                if self._leader != self._model:
                    fit = self._adopt_leader(spectrum, template, temperature, start)
                raised.append(
                    self._raise("crystallization_onset", index, temperature, z_crystal, fit)
                )
                amorphous.frozen = template
                # The growth seen while the evidence built up is part of the transition.
                self._completion.begin(start, index)
        elif "crystallized" not in self._raised and growing:
            raised += self._check_completion(index, temperature, fit, (common, common_error), total)
            if raised and not self._learn_after:
                self._learn_crystallized(x, y, noise, temperature, two_widths)

        decomposed = None
        if self._learn_after and not raised:
            if growing:
                self._learn_crystallized(x, y, noise, temperature, two_widths)
                self._learn_after = False
        elif self._crystallized_spectra and len(self._crystallized_spectra) < 2 and not raised:
            if growing:
                # The spectrum after the completion: part of the crystallized state, not tested.
                self._crystallized_spectra.append(y)
                self._crystallized_start = Template.from_spectra(
                    x, self._crystallized_spectra, temperature
                )
        elif "crystallized" in self._raised and not raised and new_phases:
            decomposed = self._check_decomposition(spectrum, temperature, index, self._band_scatter)
            raised += decomposed[1]
        peaks = _new_peaks(x, y - fit.background - fit.template_amplitude * template.shape)
        after = decomposed[0] if decomposed else None
        features = TransitionFeatures(
            temperature,
            crystalline_signal=fit.signal["crystalline"],
            crystalline_signal_err=fit.signal_error["crystalline"],
            crystalline_total=fit.signal["crystalline_total"],
            crystalline_total_err=fit.signal_error["crystalline_total"],
            crystalline_z=float(z_crystal),
            decomposed_signal=after.signal["decomposed"] if after else math.nan,
            decomposed_signal_err=after.signal_error["decomposed"] if after else math.nan,
            decomposed_z=decomposed[2] if decomposed else math.nan,
            # The decomposed bands against the film's learned start, scaled like the crystalline
            # z: rest_call compares a film at rest with its first spectra on it (a film
            # decomposed in its dwell is not amorphous).
            decomposed_start_z=float(start_fit.z("decomposed") / self._band_scatter),
            crystalline_start_z=float(two_widths.z("crystalline") / self._band_scatter),
            template_amplitude=fit.template_amplitude,
            reduced_chi2=fit.reduced_chi2,
            peaks=peaks,
        )
        return features, raised

    def _onset_fit(self, spectrum: WeightedSpectrum, template, temperature, index, *, scan):
        """The onset fit of a spectrum, its crystalline z and the highest z of any position model.

        While the onset is looked for (``scan``), every position model (:data:`POSITION_MODELS`)
        is fitted and follows its own CUSUM; the one whose CUSUM leads gives the spectrum's z
        (the onset's CUSUM runs on it) and, at the onset, becomes the detector's (the bands'
        positions for everything after it, :meth:`_adopt_leader`); until then the features and
        the completion signal are read at the model in use. Otherwise the model in use alone is
        fitted. The literature's reading is the full onset fit, the others
        :func:`~insitu.analysis.band_growth.crystalline_z_scan`'s lighter one: each model's z
        always comes from its own statistic, standardized by its own calibration (after an
        onset at another reading, its z is the lighter fit's and the features the full fit's).
        """
        wanted = range(len(self._models)) if scan else (self._model,)
        zs, nominal = {}, None
        if 0 in wanted:
            nominal = self._onset_growth(spectrum, template, temperature, 0)
            zs[0] = self._standardized(0, nominal.z("crystalline"))
        others = [k for k in wanted if k > 0]
        if others:
            sets = [self._models[k].amorphous for k in others]
            scanned = crystalline_z_scan(spectrum, template, sets, temperature, ONSET_LINE_WIDTHS)
            zs.update((k, self._standardized(k, z)) for k, z in zip(others, scanned, strict=True))
        self._leader = self._model
        if scan and len(self._models) > 1:
            for k, z in zs.items():
                self._model_cusums[k].add(z, index, self.drift, self.max_step)
            values = [cusum.value for cusum in self._model_cusums]
            if max(values) > 0:
                self._leader = int(np.argmax(values))
        fit = nominal if self._model == 0 and nominal is not None else None
        if fit is None:
            fit = self._onset_growth(spectrum, template, temperature, self._model)
        finite = [z for z in zs.values() if math.isfinite(z)]
        return fit, float(zs[self._leader]), max(finite) if finite else math.nan

    def _adopt_leader(self, spectrum: WeightedSpectrum, template, temperature, start) -> GrowthFit:
        """At the onset, read the bands at the leading position model from now on: the flag's
        fit at it, and the completion signals of the spectra since the evidence began (kept in
        ``_recent``) measured again there, so that the growth is measured at one reading."""
        self._use_model(self._leader)
        measured = set()
        for kept in self._recent:
            if kept.index >= start:
                again = WeightedSpectrum(spectrum.x, kept.counts, kept.noise)
                common, error, fit = self._common_area(again, kept.template, kept.temperature)
                total = (fit.signal["crystalline_total"], fit.signal_error["crystalline_total"])
                self._completion.rerecord(kept.index, (common, error), total)
                measured.add(kept.index)
        # A spectrum of the evidence no longer kept (a slow build-up, or one read far below the
        # hottest) is left out of the growth rather than measured at the other reading.
        unmeasured = (math.nan, math.nan)
        for k in range(start, self._index):
            if k not in measured:
                self._completion.rerecord(k, unmeasured, unmeasured)
        return self._onset_growth(spectrum, template, temperature, self._model)

    def _standardized(self, k: int, z: float) -> float:
        """Position model ``k``'s crystalline z in units of its calibration scatter, less what a
        model other than the literature's reading pays (:data:`OTHER_MODEL_PENALTY`)."""
        offset, scatter = self._model_nulls[k]
        return (z - offset) / scatter - (OTHER_MODEL_PENALTY if k > 0 else 0.0)

    def _onset_growth(self, spectrum: WeightedSpectrum, template, temperature, k: int):
        return fit_growth(
            *spectrum.data,
            template,
            self._models[k].amorphous,
            temperature,
            ONSET_LINE_WIDTHS,
            pattern=self._onset_pattern,
            spectrum=spectrum,
        )

    def _use_model(self, k: int) -> None:
        """Read the bands at position model ``k`` from now on (see :data:`POSITION_MODELS`)."""
        self._model = k
        model = self._models[k]
        self._amorphous.clusters = model.amorphous
        self._crystallized.clusters = model.crystallized
        self._clusters_start = model.start

    def _common_area(self, spectrum: WeightedSpectrum, template: Template, temperature):
        """Area of the modes every crystalline phase has (the completion signal), its standard
        error, and the fit: with the two-width line shapes, whose sum follows a band as it
        broadens and as one polymorph turns into another (one width did not: 14 of 100
        completions out of window on the robustness ramps against 6). The same fit's crystalline
        z is ``crystalline_start_z``, what a film at rest is called from."""
        fit = fit_growth(
            *spectrum.data,
            template,
            self._amorphous.clusters,
            temperature,
            sums={"common": self._completion_clusters},
            spectrum=spectrum,
        )
        return fit.signal["common"], fit.signal_error["common"], fit

    def _learn_crystallized(self, x, y, noise, temperature, fit: GrowthFit) -> None:
        """The crystallized state: the spectrum that completed it and the next one (added in
        :meth:`_update_growth`; the one before was still crystallizing, and with only 275 cm-1
        diagnostic its growth beside the 240 cm-1 band read as decomposition on a simulated
        film), and the width of each band as this film shows it (so that the crystalline bands
        follow the crystallized state without taking up a broad decomposed band next to them)."""
        fit = self._settle_model(x, y, noise, temperature, fit)
        stage = self._crystallized
        self._crystallized_spectra = [y]
        self._crystallized_area = max(float(fit.signal["crystalline_total"]), 1e-300)
        widths: dict = dict(CRYSTALLIZED_LINE_WIDTHS)
        learned = learn_widths(x, y, noise, stage.clusters, temperature, min_z=WIDTH_MIN_Z)
        for cluster, width in learned.items():
            if cluster.phase_class == "crystalline":
                widths[cluster] = (width,)
            elif cluster.phase_class == "mixed":
                widths[cluster] = (width, *CRYSTALLIZED_LINE_WIDTHS["decomposed"])
        self._crystallized_widths = widths

    def _settle_model(self, x, y, noise, temperature, fit: GrowthFit) -> GrowthFit:
        """The position model (see :data:`POSITION_MODELS`) the crystallized film's bands fit
        best, in use from now on, and the two-width fit at it (``fit``, at the model in use).

        The onset's leading CUSUM picks a model on faint bands, where a column a few cm-1 off
        still sees much of a band; the crystallized film's bands, tens of noise units strong,
        tell the models apart (on this project's generator an onset led by a room-temperature
        reading had put the decomposed bands 8 cm-1 below where they were)."""
        if len(self._models) == 1:
            return fit
        template = self._amorphous.frozen
        fits = {self._model: fit}
        for k, model in enumerate(self._models):
            if k not in fits:
                fits[k] = fit_growth(x, y, noise, template, model.amorphous, temperature)
        z = {k: fit.z("crystalline") for k, fit in fits.items()}
        z = {k: value if math.isfinite(value) else -math.inf for k, value in z.items()}
        best = max(z, key=z.__getitem__)
        if best != 0 and z[best] < SETTLE_GAIN * max(z[0], 0.0):
            best = 0  # the literature's reading unless another is clearly better
        self._use_model(best)
        return fits[best]

    def _pattern(self, clusters) -> dict | None:
        """Expected growth of each crystalline cluster, from a calibrated reference's crystalline
        standard (clusters it did not see get the median of those it did); None without one."""
        measured = np.full(len(clusters), np.nan)
        for k, cluster in enumerate(clusters):
            areas = [
                band.intensity * self.reference.measured_width(phase, band, 25.0)
                for phase, band in self._standard_bands.get(cluster, ())
                if band.intensity is not None
            ]
            if areas:
                measured[k] = float(np.sum(areas))
        if not np.isfinite(measured).any():
            return None
        return {"crystalline": np.where(np.isfinite(measured), measured, np.nanmedian(measured))}

    def _check_decomposition(self, spectrum: WeightedSpectrum, temperature, index, scatter):
        """The decomposed bands against the crystallized state, which follows the film: the
        spectra the decomposition's CUSUM took no evidence from (z at most its reference value,
        ``decomposition_drift``) join it, and each spectrum is read against the
        ``template_spectra`` of them nearest in temperature at least ``CRYSTALLIZED_LAG_C``
        away (the state the film completed in until there are such spectra)."""
        stage = self._crystallized
        x, y, _ = spectrum.data
        template = stage.template(
            x, index, temperature, CRYSTALLIZED_LAG_C, self.template_spectra, first=0
        )
        if template is None:
            template = self._crystallized_start
        fit = fit_growth(
            *spectrum.data,
            template,
            stage.clusters,
            temperature,
            self._crystallized_widths,
            spectrum=spectrum,
        )
        z = fit.z("decomposed") / scatter
        raised = []
        if "decomposition" not in self._raised:
            # Bands of trace amounts, however significant, are not yet a decomposition: the
            # decomposed bands must reach a share of the crystallized state's band area.
            share = fit.signal["decomposed"] / self._crystallized_area
            cusum = self._cusum["decomposition"]
            step = z if share >= self.decomposed_share else min(z, 0.0)
            cusum.add(step, index, self.decomposition_drift, self.max_step)
            if cusum.value >= self.threshold:
                raised.append(self._raise("decomposition", index, temperature, z, fit))
            elif z <= self.decomposition_drift:
                # Accepting only spectra below 0 or 1 (no evidence either way) picked the
                # template's noise: 1-2 foreign decompositions 7-10 spectra early.
                stage.keep(_Kept(index, temperature, y), 0)
        return fit, raised, float(z)

    def _calibrate(self, x: np.ndarray) -> None:
        """Offset and scatter of the onset statistic over the calibration spectra (leave one out),
        and the scatter of the same band areas fitted with the two-width line shapes: it scales
        the decomposed z, as the onset's scatter did when the onset used those line shapes (the
        decomposition's thresholds were set on it)."""
        spectra = self._calibration
        onset, bands = [[] for _ in self._models], []
        for j, (y, noise, temperature) in enumerate(spectra):
            others = [s[0] for k, s in enumerate(spectra) if k != j]
            template = Template.from_spectra(x, others, temperature)
            spectrum = WeightedSpectrum(x, y, noise)
            onset[0].append(self._onset_growth(spectrum, template, temperature, 0).z("crystalline"))
            if len(self._models) > 1:
                sets = [model.amorphous for model in self._models[1:]]
                scanned = crystalline_z_scan(
                    spectrum, template, sets, temperature, ONSET_LINE_WIDTHS
                )
                for k, z in enumerate(scanned, start=1):
                    onset[k].append(z)
            clusters = self._models[0].amorphous
            bands.append(fit_growth(x, y, noise, template, clusters, temperature).z("crystalline"))
        # The calibrated statistic (GLS over the bands) keeps its measured scatter: with the
        # prior, one of raman_ramps' calibrated onsets came 6 spectra early.
        prior = NULL_PRIOR_DOF if self._onset_pattern is None else 0.0
        for k, zs in enumerate(onset):
            offset, scatter = _null_statistics(zs, prior_dof=prior)
            if scatter is not None:
                self._model_nulls[k] = (offset, scatter)
        band_scatter = _null_statistics(bands)[1]
        if band_scatter is not None:
            self._band_scatter = band_scatter
        self._calibration = []

    def _growing(self) -> bool:
        return "crystallization_onset" in self._raised and "crystallized" not in self._raised

    def _check_completion(
        self,
        index,
        temperature,
        fit: GrowthFit,
        common: tuple[float, float],
        total: tuple[float, float],
    ):
        """Completion evidence (see :mod:`~insitu.analysis.completion`): the flag, if the
        growth has stopped on this spectrum."""
        found = self._completion.check(common, total, temperature, self.temperatures, index)
        # One spectrum's completion ends the growth: the crystallized state is learned from the
        # next two, those a confirmation on two spectra would have used (learned from the film a
        # spectrum less complete, decomposition came 4-6 spectra early on a simulated film and
        # a faint raman_ramps one: the rest of the growth read as new bands).
        self._learn_after = found is not None and found.one_spectrum
        if found is None:
            return []
        return [
            self._raise(
                "crystallized",
                index,
                temperature,
                3.0,
                fit,
                why=found.evidence(self.saturation),
                value=found.fraction if found.fitted else found.slope / found.fastest,
                level=FITTED_FRACTION if found.fitted else self.saturation,
            )
        ]

    def _raise(
        self,
        kind: str,
        index: int,
        temperature: float,
        z: float,
        fit: GrowthFit,
        *,
        why: str | None = None,
        value: float | None = None,
        level: float | None = None,
    ) -> TransitionFlag:
        self._raised.add(kind)
        cusum = self._cusum[kind]
        phase_class = "decomposed" if kind == "decomposition" else "crystalline"
        stage = self._crystallized if kind == "decomposition" else self._amorphous
        bands: dict[str, list[float]] = {}
        for k, cluster in enumerate(stage.clusters):
            if cluster.diagnostic and cluster.phase_class == phase_class and fit.areas[k] > 0:
                for phase in cluster.phases:
                    bands.setdefault(phase, []).append(round(cluster.position, 1))
        carried = "; ".join(
            f"{phase} bands at {', '.join(f'{p:g}' for p in positions)} cm-1"
            for phase, positions in bands.items()
        )
        if why is None:
            start = cusum.start if cusum.start is not None else index
            why = (
                f"{phase_class} band signal z = {z:.1f} (CUSUM {cusum.value:.1f} >= "
                f"{self.threshold:g} over spectra {start}-{index}; area "
                f"{fit.signal[phase_class]:.4g} +/- {fit.signal_error[phase_class]:.2g})"
            )
            if self.position_model is not None and kind == "crystallization_onset":
                start_C, per_C = self.position_model
                why += (
                    f"; bands where the reference's positions read as at {start_C:g} C put them, "
                    f"softening {per_C:g} cm-1/C"
                )
        return TransitionFlag(
            kind=kind,
            index=index,
            temperature=temperature,
            confidence=round(_normal_cdf(z), 6),
            evidence=why + (f"; {carried}" if carried else ""),
            value=z if value is None else value,
            level=self.threshold if level is None else level,
            cusum=cusum.value,
            bands={phase: tuple(p) for phase, p in bands.items()},
        )


class _PositionModel(NamedTuple):
    """The detector's clusters with the bands at one position model (see POSITION_MODELS)."""

    amorphous: tuple[BandCluster, ...]  # against the amorphous state
    start: tuple[BandCluster, ...]  # against the film's start
    crystallized: tuple[BandCluster, ...]  # against the crystallized state


def _position_models(amorphous, start, crystallized, *, literature_only) -> list[_PositionModel]:
    """The clusters at each of :data:`POSITION_MODELS` (the literature's reading alone with a
    calibrated reference, whose standards measured where the bands are)."""
    models = []
    for model in POSITION_MODELS[:1] if literature_only else POSITION_MODELS:
        moved = tuple(
            (
                c if model is None or c.phase_class == "decomposed" else c.softened_from(*model)
                for c in clusters
            )
            for clusters in (amorphous, start, crystallized)
        )
        models.append(_PositionModel(*(tuple(m) for m in moved)))
        # fit_growth_nested fits the onset's clusters as the first of the start's
        assert models[-1].start[: len(models[-1].amorphous)] == models[-1].amorphous
    return models


def _null_statistics(zs, prior_dof: float = 0.0) -> tuple[float, float | None]:
    """Mean and scatter (at least 1) of a statistic over the calibration spectra, each fitted
    against a template of the others; (0, None) with fewer than two finite values. With
    ``prior_dof`` the sample variance is shrunk toward 1 (the statistic's own noise units) as
    if that many degrees of freedom had measured 1 (see :data:`NULL_PRIOR_DOF`)."""
    values = np.asarray([z for z in zs if math.isfinite(z)])
    if values.size < 2:
        return 0.0, None
    # Leaving one out puts that spectrum's noise once more into the template: the scatter of
    # a template of n-1 spectra is (1 + 1/(n-1)) times the variance.
    inflation = math.sqrt(1.0 + 1.0 / max(values.size - 1, 1))
    variance = (float(np.std(values, ddof=1)) / inflation) ** 2
    dof = values.size - 1
    scatter = math.sqrt((prior_dof + dof * variance) / (prior_dof + dof))
    return float(np.mean(values)), max(scatter, 1.0)


def _standard_bands(reference: RamanReference, clusters) -> dict:
    """Cluster -> the (phase, band) pairs in it whose width a standard measured, for clusters of
    one class (a band belongs to the nearest cluster that holds its phase)."""
    found: dict = {}
    for phase in reference.phases:
        if phase.phase_class not in reference.standards:
            continue
        for band in phase.bands:
            if band.broad or reference.measured_width(phase, band, 25.0) is None:
                continue
            holders = [c for c in clusters if phase.name in c.phases]
            if not holders:
                continue
            nearest = min(holders, key=lambda c: abs(c.position - band.position))
            if nearest.phase_class == phase.phase_class:
                found.setdefault(nearest, []).append((phase, band))
    return found


def _with_spikes(features: TransitionFeatures, n_spikes: int, noise: float) -> TransitionFeatures:
    return dataclasses.replace(features, n_spikes=n_spikes, noise=noise)


def _new_peaks(x: np.ndarray, residual: np.ndarray) -> tuple[float, ...]:
    """Positions of peaks standing out of the residual (what the learned state does not have)."""
    sigma = noise_sigma(residual)
    if not sigma > 0:
        return ()
    found, _ = find_peaks(residual, prominence=6.0 * sigma, width=3)
    return tuple(float(x[i]) for i in found)
