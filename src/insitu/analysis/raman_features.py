"""Per-spectrum Raman features: peaks, phase fractions by linear unmixing, crystallinity, noise.

:func:`describe_spectrum` turns one spectrum into a :class:`SpectrumFeatures`:

* **Peaks** (:func:`find_peaks`): on the despiked, baseline-removed spectrum (pybaselines, see
  :mod:`insitu.analysis.raman_preprocess`), every local maximum at least 3 pixels wide whose
  prominence is at least ``min_snr`` times the local noise; position (parabolic vertex),
  height, FWHM and prominence relative to the noise. Each peak is matched to the nearest band of
  the reference (:func:`match_peaks`) within ``max(8 cm-1, 0.3 FWHM)``, preferring phases the
  unmixing found.
* **Phase fractions** (:func:`unmix_phases`): weighted linear least squares of the despiked
  counts on the reference shape of each phase (its bands at the measurement temperature, for a
  unit fraction) plus a smooth background (cubic B-splines every 250 cm-1 and four exponential
  tails of the laser-line edge filter), fitted jointly: a baseline removed beforehand would eat
  part of the broad bands (the 143 cm-1 band, the pyrochlore bands). Weights assume shot noise
  (variance proportional to counts). One Gauss-Newton step first fits, per size-broadened phase,
  a common band shift and an extra width (phonon confinement in nanocrystals). Phases whose amount
  is not significant (t < ``significance``, default 3) are dropped one at a time and the fit is
  redone, so absent phases neither take negative amounts nor add their degeneracy to the others'
  noise. The fraction of a phase is its amount over the sum; the uncertainty comes from the fit's
  covariance (scaled by the reduced chi-square). A class found absent is not taken as an exact 0:
  its error is a detection limit (each of its phases put back alone into the final fit bounds
  what could hide there by its estimate plus one standard error; the tightest bound counts), and
  the other classes' errors grow accordingly.
* **Crystallinity index**: the Raman area of the crystalline and decomposed (sharp-banded) phases
  over the total, from the fitted amounts and each phase's integrated reference intensity
  (broad amorphous hump included).
* **Noise**: robust standard deviation of the counts in 150-550 cm-1 (where the rearranging
  amorphous film is noisy), from the median absolute second difference.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import find_peaks as scipy_find_peaks

from insitu.analysis.band_growth import background_rows
from insitu.analysis.raman_preprocess import (
    DEFAULT_BASELINE_METHOD,
    check_spectrum,
    estimate_baseline,
    local_noise,
    noise_sigma,
    remove_spikes,
)
from insitu.analysis.raman_reference import LLZO, PHASE_CLASSES, RamanReference
from insitu.checks import as_positive, in_range

__all__ = [
    "Peak",
    "PhaseUnmixing",
    "SpectrumFeatures",
    "NOISE_BAND_CM1",
    "crystallinity_index",
    "describe_spectrum",
    "find_peaks",
    "match_peaks",
    "noise_in_band",
    "unmix_phases",
]

NOISE_BAND_CM1 = (150.0, 550.0)
BACKGROUND_KNOT_SPACING_CM1 = 250.0
MAX_SHIFT_CM1 = 6.0
MAX_EXTRA_BROADENING_CM1 = 40.0
MATCH_TOLERANCE_CM1 = 8.0


# --- peaks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peak:
    """A peak found in a baseline-removed spectrum.

    Attributes
    ----------
    position : float
        Raman shift of the maximum (cm-1, parabolic vertex).
    height : float
        Baseline-removed counts at the maximum.
    fwhm : float
        Full width at half prominence (cm-1).
    prominence : float
        Prominence (counts).
    snr : float
        Prominence over the spectrum's noise.
    phase : str or None
        Reference phase of the matched band, None when no band is close enough.
    reference_position : float or None
        Expected position of the matched band at the measurement temperature (cm-1).
    band : float or None
        Position of the matched band in the reference table (at its reference temperature).
    assignment : str
        Mode assignment of the matched band.
    """

    position: float
    height: float
    fwhm: float
    prominence: float
    snr: float
    phase: str | None = None
    reference_position: float | None = None
    band: float | None = None
    assignment: str = ""


def find_peaks(
    wavenumber: np.ndarray,
    corrected: np.ndarray,
    noise: float | np.ndarray,
    *,
    min_snr: float = 5.0,
    min_width_points: float = 3.0,
) -> tuple[Peak, ...]:
    """Peaks of a baseline-removed spectrum (see the module doc).

    Parameters
    ----------
    wavenumber : ndarray
        Increasing axis (cm-1).
    corrected : ndarray
        Despiked counts minus the baseline.
    noise : float or ndarray
        Noise standard deviation (counts), > 0: one value, or one per pixel (the spectrum's
        noise varies, e.g. in the noisy 150-550 cm-1 band of a rearranging film).
    min_snr : float
        Smallest prominence, in units of ``noise``.
    min_width_points : float
        Smallest width at half prominence, in pixels (spikes are narrower).

    Returns
    -------
    tuple of Peak
        Unmatched (``phase`` None), in increasing position.
    """
    x = np.asarray(wavenumber, dtype=float)
    y = np.asarray(corrected, dtype=float)
    sigma = np.broadcast_to(np.asarray(noise, dtype=float), y.shape)
    if not (np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
        raise ValueError("find_peaks noise must be positive finite numbers")
    indices, properties = scipy_find_peaks(
        y, prominence=min_snr * sigma, width=min_width_points, rel_height=0.5
    )
    peaks = []
    step = np.gradient(x)
    for i, index in enumerate(indices):
        position = float(x[index])
        if 0 < index < y.size - 1:
            left, centre, right = y[index - 1], y[index], y[index + 1]
            curvature = left - 2.0 * centre + right
            if curvature < 0:
                offset = 0.5 * (left - right) / curvature
                position = float(x[index] + offset * step[index])
        peaks.append(
            Peak(
                position=position,
                height=float(y[index]),
                fwhm=float(properties["widths"][i] * step[index]),
                prominence=float(properties["prominences"][i]),
                snr=float(properties["prominences"][i] / sigma[index]),
            )
        )
    return tuple(peaks)


def match_peaks(
    peaks: tuple[Peak, ...],
    reference: RamanReference,
    temperature: float | None,
    *,
    present: Mapping[str, float] | None = None,
    tolerance_cm1: float = MATCH_TOLERANCE_CM1,
) -> tuple[Peak, ...]:
    """Attach to each peak the reference band it most likely is.

    Parameters
    ----------
    peaks : tuple of Peak
        Found peaks.
    reference : RamanReference
        Material reference.
    temperature : float or None
        Measurement temperature (C); None puts each band at its reference temperature.
    present : mapping, optional
        Phase fractions from the unmixing: bands of phases with a fraction > 0 win ties.
    tolerance_cm1 : float
        Largest distance to a band (cm-1), widened to 0.3 FWHM for broad bands.

    Returns
    -------
    tuple of Peak
        The same peaks, with ``phase``, ``reference_position``, ``band`` and ``assignment`` set
        where a band is close enough.
    """
    candidates = []  # (expected position, fwhm, phase, band)
    for phase in reference.phases:
        t = phase.reference_temperature_C if temperature is None else temperature
        positions = reference.band_positions(phase.name, t)
        widths = reference.band_widths(phase.name, t)
        for band, position, width in zip(phase.sharp_bands, positions, widths, strict=True):
            candidates.append((float(position), float(width), phase.name, band))
    present = present or {}
    matched = []
    for peak in peaks:
        best = None
        best_key = None
        for position, width, name, band in candidates:
            distance = abs(peak.position - position)
            if distance > max(tolerance_cm1, 0.3 * width):
                continue
            key = (0 if present.get(name, 0.0) > 0 else 1, distance / width)
            if best_key is None or key < best_key:
                best, best_key = (position, name, band), key
        if best is None:
            matched.append(peak)
        else:
            position, name, band = best
            matched.append(
                dataclasses.replace(
                    peak,
                    phase=name,
                    reference_position=position,
                    band=band.position,
                    assignment=band.assignment,
                )
            )
    return tuple(matched)


def noise_in_band(
    wavenumber: np.ndarray, counts: np.ndarray, band: tuple[float, float] = NOISE_BAND_CM1
) -> float:
    """Robust noise standard deviation (counts) of the spectrum inside ``band`` (cm-1).

    Returns NaN when fewer than 8 points of the axis fall inside the band.
    """
    x = np.asarray(wavenumber, dtype=float)
    inside = (x >= band[0]) & (x <= band[1])
    if np.count_nonzero(inside) < 8:
        return math.nan
    return noise_sigma(np.asarray(counts, dtype=float)[inside])


# --- linear unmixing -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseUnmixing:
    """Result of :func:`unmix_phases`.

    Attributes
    ----------
    amounts : dict
        Fitted amount of each phase (counts per unit of the reference intensity); 0 if dropped.
    fractions, fraction_errors : dict
        Phase fractions (amount over the sum) and their standard errors; NaN when no phase is
        significant.
    class_fractions, class_fraction_errors : dict
        The same summed by phase class (``amorphous``, ``crystalline``, ``decomposed``).
    shifts, broadenings : dict
        Fitted band shift (cm-1) and extra width (cm-1) of each size-broadened phase.
    significant : tuple of str
        Phases kept in the final fit.
    reduced_chi2 : float
        Weighted residual sum of squares per degree of freedom.
    model, background : ndarray
        Fitted spectrum and its smooth-background part.
    """

    amounts: dict[str, float]
    fractions: dict[str, float]
    fraction_errors: dict[str, float]
    class_fractions: dict[str, float]
    class_fraction_errors: dict[str, float]
    shifts: dict[str, float]
    broadenings: dict[str, float]
    significant: tuple[str, ...]
    reduced_chi2: float
    model: np.ndarray = field(repr=False)
    background: np.ndarray = field(repr=False)


@dataclass
class _Fit:
    coefficients: np.ndarray  # for every column (0 where dropped)
    covariance: np.ndarray  # of every column (0 rows/cols where dropped)
    kept: np.ndarray
    s2: float
    # dropped phase -> (amount, standard error) when put back alone into the final model
    readded: dict[int, tuple[float, float]]


def _pruned_least_squares(
    columns: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    owners: list[int],
    n_phases: int,
    significance: float,
    *,
    bounds: bool = True,
) -> _Fit:
    """Weighted least squares, dropping the least significant phase until all have t >= level.

    ``owners[j]`` is the phase index a column belongs to (``-1`` for background columns, never
    dropped); a phase's significance is the t-value of its first (amount) column. With
    ``bounds``, each dropped phase is also put back alone to see what it could still hold.
    """
    a = columns * weights[:, None]
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    a /= scale
    b = y * weights
    gram = a.T @ a
    rhs = a.T @ b
    total_ss = float(b @ b)
    owners_arr = np.asarray(owners)
    amount_column = {p: owners.index(p) for p in range(n_phases) if p in owners}
    kept = np.ones(columns.shape[1], dtype=bool)

    def solve(columns_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        sub = gram[np.ix_(columns_in, columns_in)]
        try:
            inverse = np.linalg.inv(sub)
        except np.linalg.LinAlgError:
            inverse = np.linalg.pinv(sub)
        coef = inverse @ rhs[columns_in]
        rss = max(total_ss - 2.0 * coef @ rhs[columns_in] + coef @ sub @ coef, 0.0)
        return coef, inverse, rss / max(y.size - columns_in.size, 1)

    while True:
        idx = np.flatnonzero(kept)
        coef, inverse, s2 = solve(idx)
        position = {j: k for k, j in enumerate(idx)}
        worst, worst_t = None, math.inf
        for phase, column in amount_column.items():
            if not kept[column]:
                continue
            k = position[column]
            se = math.sqrt(max(inverse[k, k] * s2, 1e-300))
            t = coef[k] / se
            if t < worst_t:
                worst, worst_t = phase, t
        if worst is None or worst_t >= significance:
            break
        kept &= owners_arr != worst
    # Each dropped phase put back alone into the final model: what it could still hold.
    readded: dict[int, tuple[float, float]] = {}
    for phase, column in amount_column.items():
        if kept[column] or not bounds:
            continue
        trial = np.flatnonzero(kept | (owners_arr == phase))
        trial_coef, trial_inverse, trial_s2 = solve(trial)
        k = int(np.flatnonzero(trial == column)[0])
        se = math.sqrt(max(trial_inverse[k, k] * trial_s2, 0.0))
        readded[phase] = (trial_coef[k] / scale[column], se / scale[column])
    full = np.zeros(columns.shape[1])
    full[idx] = coef / scale[idx]
    covariance = np.zeros((columns.shape[1], columns.shape[1]))
    covariance[np.ix_(idx, idx)] = inverse * s2 / np.outer(scale[idx], scale[idx])
    return _Fit(full, covariance, kept, s2, readded)


def _shot_noise_weights(y: np.ndarray) -> np.ndarray:
    floor = max(0.05 * float(np.median(np.abs(y))), 1e-12 * float(np.max(np.abs(y))), 1e-300)
    return 1.0 / np.sqrt(np.maximum(y, floor))


def unmix_phases(
    wavenumber: ArrayLike,
    counts: ArrayLike,
    reference: RamanReference = LLZO,
    *,
    temperature: float | None = None,
    significance: float = 3.0,
    fit_band_shapes: bool = True,
) -> PhaseUnmixing:
    """Phase fractions of one spectrum by weighted linear unmixing (see the module doc).

    Parameters
    ----------
    wavenumber, counts : array_like
        The spectrum: raw (despiked) counts, *not* baseline-subtracted (the fit models the
        background and weights by shot noise).
    reference : RamanReference
        Phases and their bands; :data:`~insitu.analysis.raman_reference.LLZO` by default.
    temperature : float, optional
        Measurement temperature (C), for the anharmonic shift and broadening of the bands; None
        renders each phase at its own reference temperature.
    significance : float
        Smallest t-value of a phase's amount for the phase to be kept.
    fit_band_shapes : bool
        Fit a shift and an extra width per size-broadened phase (one Gauss-Newton step).

    Returns
    -------
    PhaseUnmixing

    Raises
    ------
    ValueError
        On an invalid spectrum, temperature or significance.
    """
    x, y = check_spectrum(wavenumber, counts)
    if temperature is not None:
        temperature = in_range(
            temperature, -273.15, math.inf, "unmix_phases temperature", unit="C", include_low=False
        )
    significance = as_positive(significance, "unmix_phases significance", allow_zero=True)
    names = reference.phase_names
    n = len(names)
    classes = {phase.name: phase.phase_class for phase in reference.phases}

    def at(name: str) -> float:
        phase = reference.phase(name)
        return phase.reference_temperature_C if temperature is None else float(temperature)

    background = background_rows(x.tobytes(), BACKGROUND_KNOT_SPACING_CM1).T
    weights = _shot_noise_weights(y)
    shifts = dict.fromkeys(names, 0.0)
    broadenings = dict.fromkeys(names, 0.0)
    adaptable = [i for i, name in enumerate(names) if reference.phase(name).size_broadened]

    shapes: list[np.ndarray] = []
    if fit_band_shapes and adaptable:
        columns, owners = [], []
        for i, name in enumerate(names):
            rendered = reference.render(name, x, at(name), derivatives=i in adaptable)
            shapes.append(rendered.shape)
            columns.append(rendered.shape)
            owners.append(i)
            if i in adaptable:
                columns += [rendered.d_shift, rendered.d_broadening]
                owners += [i, i]
        design = np.column_stack(columns + [background])
        owners += [-1] * background.shape[1]
        fit = _pruned_least_squares(design, y, weights, owners, n, significance, bounds=False)
        for i in adaptable:
            amount = fit.coefficients[owners.index(i)]
            if amount <= 0:
                continue
            name = names[i]
            j = owners.index(i)
            shift = fit.coefficients[j + 1] / amount
            extra = fit.coefficients[j + 2] / amount
            shifts[name] = float(np.clip(shift, -MAX_SHIFT_CM1, MAX_SHIFT_CM1))
            broadenings[name] = float(
                np.clip(extra, -MAX_EXTRA_BROADENING_CM1, MAX_EXTRA_BROADENING_CM1)
            )

    if not shapes:
        shapes = [reference.render(name, x, at(name)).shape for name in names]
    for i in adaptable:
        name = names[i]
        if shifts[name] != 0.0 or broadenings[name] != 0.0:
            shapes[i] = reference.render(
                name, x, at(name), shift=shifts[name], broadening=broadenings[name]
            ).shape
    design = np.column_stack(shapes + [background])
    owners = list(range(n)) + [-1] * background.shape[1]
    fit = _pruned_least_squares(design, y, weights, owners, n, significance)
    amounts_arr = fit.coefficients[:n].copy()
    covariance = fit.covariance[:n, :n]
    total = float(amounts_arr.sum())
    amounts = {name: float(a) for name, a in zip(names, amounts_arr, strict=True)}
    fractions: dict[str, float] = {}
    errors: dict[str, float] = {}
    class_fractions: dict[str, float] = {}
    class_errors: dict[str, float] = {}

    def detection_limit(members: list[int]) -> float:
        """How much of a class found absent could hide in the spectrum, as a fraction.

        Each dropped member is put back alone into the final model and bounds what the class
        could hold by its estimate (if positive) plus one standard error; the tightest bound
        counts (members share bands, so each put back alone picks up a hidden remainder).
        """
        bounds = [
            max(fit.readded[i][0], 0.0) + fit.readded[i][1] for i in members if i in fit.readded
        ]
        if not bounds or not total > 0:  # nothing fitted (a blank early spectrum): no limit
            return 0.0 if not bounds else math.nan
        return min(bounds) / total

    def share(members: list[int], absent_limits: list[float]) -> tuple[float, float]:
        if not total > 0:
            return math.nan, math.nan
        indicator = np.zeros(n)
        indicator[members] = 1.0
        value = float(indicator @ amounts_arr) / total
        gradient = (indicator - value) / total
        variance = max(float(gradient @ covariance @ gradient), 0.0)
        if not any(fit.kept[i] for i in members):
            # Found absent: not an exact 0 but below a detection limit.
            variance = max(variance, detection_limit(members) ** 2)
        else:
            # Phases found absent could still be there at their detection limit, which would
            # lower this share in proportion.
            variance += sum((value * limit) ** 2 for limit in absent_limits)
        return value, math.sqrt(variance)

    groups = {
        phase_class: [i for i, name in enumerate(names) if classes[name] == phase_class]
        for phase_class in PHASE_CLASSES
    }
    absent = {
        phase_class: detection_limit(members)
        for phase_class, members in groups.items()
        if members and not any(fit.kept[i] for i in members)
    }
    for i, name in enumerate(names):
        fractions[name], errors[name] = share([i], [])
    for phase_class, members in groups.items():
        others = [limit for other, limit in absent.items() if other != phase_class]
        class_fractions[phase_class], class_errors[phase_class] = share(members, others)
    model = design @ fit.coefficients
    return PhaseUnmixing(
        amounts=amounts,
        fractions=fractions,
        fraction_errors=errors,
        class_fractions=class_fractions,
        class_fraction_errors=class_errors,
        shifts={names[i]: shifts[names[i]] for i in adaptable},
        broadenings={names[i]: broadenings[names[i]] for i in adaptable},
        significant=tuple(name for i, name in enumerate(names) if fit.kept[i]),
        reduced_chi2=float(fit.s2),
        model=model,
        background=background @ fit.coefficients[n:],
    )


def crystallinity_index(
    unmixing: PhaseUnmixing, reference: RamanReference, temperature: float | None
) -> float:
    """Raman area of the sharp-banded (crystalline and decomposed) phases over the total.

    Areas are each phase's fitted amount times its integrated reference intensity (broad bands,
    such as the amorphous hump, included). NaN when nothing was fitted.
    """
    sharp = total = 0.0
    for name, amount in unmixing.amounts.items():
        if amount <= 0:
            continue
        phase = reference.phase(name)
        t = phase.reference_temperature_C if temperature is None else temperature
        area = amount * reference.phase_area(name, t, unmixing.broadenings.get(name, 0.0))
        total += area
        if phase.phase_class != "amorphous":
            sharp += area
    return sharp / total if total > 0 else math.nan


# --- the whole description -----------------------------------------------------------------------
@dataclass(frozen=True)
class SpectrumFeatures:
    """What one Raman spectrum says about the film (see :func:`describe_spectrum`).

    Attributes
    ----------
    temperature : float or None
        Measurement temperature used for the band positions (C).
    peaks : tuple of Peak
        Peaks found, matched to reference bands where possible.
    phase_fractions, phase_fraction_errors : dict
        Fraction of each reference phase and its standard error.
    class_fractions, class_fraction_errors : dict
        Fractions summed per class: ``amorphous``, ``crystalline``, ``decomposed``.
    crystallinity_index : float
        Sharp-band Raman area over the total (0 amorphous, 1 crystalline).
    noise : float
        Noise standard deviation in 150-550 cm-1 (counts).
    n_spikes : int
        Cosmic-ray spikes removed.
    shifts, broadenings : dict
        Fitted band shift and extra width (cm-1) of the size-broadened phases.
    reduced_chi2 : float
        Quality of the unmixing fit (about 1 for shot-noise-limited counts).
    """

    temperature: float | None
    peaks: tuple[Peak, ...]
    phase_fractions: dict[str, float]
    phase_fraction_errors: dict[str, float]
    class_fractions: dict[str, float]
    class_fraction_errors: dict[str, float]
    crystallinity_index: float
    noise: float
    n_spikes: int
    shifts: dict[str, float]
    broadenings: dict[str, float]
    reduced_chi2: float

    @property
    def n_peaks(self) -> int:
        """Number of peaks found."""
        return len(self.peaks)

    @property
    def crystalline_fraction(self) -> float:
        """Fraction of the crystalline-class phases (tetragonal + cubic for LLZO)."""
        return self.class_fractions["crystalline"]

    @property
    def amorphous_fraction(self) -> float:
        """Fraction of the amorphous-class phases."""
        return self.class_fractions["amorphous"]

    @property
    def decomposed_fraction(self) -> float:
        """Fraction of the decomposed-class phases (pyrochlore for LLZO)."""
        return self.class_fractions["decomposed"]

    def matched_bands(self, phases: tuple[str, ...] | None = None) -> dict[str, tuple[float, ...]]:
        """Table positions of the bands found as peaks, per phase (optionally only some)."""
        found: dict[str, list[float]] = {}
        for peak in self.peaks:
            if peak.phase is None or (phases is not None and peak.phase not in phases):
                continue
            found.setdefault(peak.phase, []).append(float(peak.band))
        return {phase: tuple(sorted(set(positions))) for phase, positions in found.items()}

    def as_record(self) -> dict[str, Any]:
        """Flat JSON-ready mapping (numbers and strings) for documents and tables."""
        record: dict[str, Any] = {
            "crystallinity_index": float(self.crystallinity_index),
            "crystalline_fraction": float(self.crystalline_fraction),
            "crystalline_fraction_err": float(self.class_fraction_errors["crystalline"]),
            "amorphous_fraction": float(self.amorphous_fraction),
            "amorphous_fraction_err": float(self.class_fraction_errors["amorphous"]),
            "decomposed_fraction": float(self.decomposed_fraction),
            "decomposed_fraction_err": float(self.class_fraction_errors["decomposed"]),
            "noise": float(self.noise),
            "n_peaks": int(self.n_peaks),
            "n_spikes": int(self.n_spikes),
            "reduced_chi2": float(self.reduced_chi2),
            "peak_positions": " ".join(f"{peak.position:.1f}" for peak in self.peaks),
        }
        for name, value in self.phase_fractions.items():
            record[f"fraction_{name}"] = float(value)
        return record


def describe_spectrum(
    wavenumber: ArrayLike,
    counts: ArrayLike,
    reference: RamanReference = LLZO,
    *,
    temperature: float | None = None,
    baseline_method: str = DEFAULT_BASELINE_METHOD,
    min_snr: float = 5.0,
    significance: float = 3.0,
) -> SpectrumFeatures:
    """Features of one Raman spectrum: peaks, phase fractions, crystallinity index, noise.

    Parameters
    ----------
    wavenumber, counts : array_like
        The spectrum as measured (cosmic rays are removed here; do not subtract a baseline).
    reference : RamanReference
        Material reference; :data:`~insitu.analysis.raman_reference.LLZO` by default.
    temperature : float, optional
        Measurement temperature (C) for the thermal shift of the bands; None uses each phase's
        reference temperature.
    baseline_method : str
        pybaselines method for peak finding (see
        :func:`~insitu.analysis.raman_preprocess.estimate_baseline`).
    min_snr : float
        Smallest peak prominence in units of the noise.
    significance : float
        See :func:`unmix_phases`.

    Returns
    -------
    SpectrumFeatures

    Raises
    ------
    ValueError
        On mismatched lengths, NaN, too few points, a non-monotonic axis or a bad option.

    Examples
    --------
    >>> features = describe_spectrum(axis, counts, temperature=700.0)  # doctest: +SKIP
    >>> features.crystalline_fraction, features.n_peaks  # doctest: +SKIP
    (0.71, 9)
    """
    x, y = check_spectrum(wavenumber, counts)
    removal = remove_spikes(y)
    despiked = removal.counts
    unmixing = unmix_phases(
        x, despiked, reference, temperature=temperature, significance=significance
    )
    corrected = despiked - estimate_baseline(x, despiked, baseline_method)
    peaks: tuple[Peak, ...] = ()
    if noise_sigma(despiked) > 0:
        peaks = find_peaks(x, corrected, local_noise(despiked), min_snr=min_snr)
        present = {name: unmixing.amounts[name] for name in unmixing.significant}
        peaks = match_peaks(peaks, reference, temperature, present=present)
    return SpectrumFeatures(
        temperature=None if temperature is None else float(temperature),
        peaks=peaks,
        phase_fractions=unmixing.fractions,
        phase_fraction_errors=unmixing.fraction_errors,
        class_fractions=unmixing.class_fractions,
        class_fraction_errors=unmixing.class_fraction_errors,
        crystallinity_index=crystallinity_index(unmixing, reference, temperature),
        noise=noise_in_band(x, despiked),
        n_spikes=removal.n_spikes,
        shifts=unmixing.shifts,
        broadenings=unmixing.broadenings,
        reduced_chi2=unmixing.reduced_chi2,
    )
