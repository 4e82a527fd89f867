"""Raman preprocessing: input checks, cosmic-ray spike removal, baseline removal, smoothing.

Spike removal (:func:`remove_spikes`) works on a single spectrum. A cosmic ray is one to three
pixels wide and stands far above its neighbours; a Raman band, however strong, rises over many
pixels. Each pixel gets two excesses: over the running median of 9 pixels (which a spike of at most
4 pixels cannot move) and over the mean of its neighbours 6 pixels away. A spike adds the same
height to both; a smooth band top shows as near excess at most ~0.3 of its far excess (for a band
8 pixels wide; less for wider ones), whatever its signal-to-noise ratio. The spike score is the
near excess minus 0.35 times the far excess, and a pixel is a spike when its score exceeds
``threshold`` times the local noise (median absolute second difference, in blocks of 40 pixels).
This catches spikes on the flanks and tops of strong bands and avoids the known failure of a
plain Whitaker-Hayes z-score of the first difference, whose threshold is crossed by the flanks of
strong bands in low-noise spectra. Spike pixels and two pixels on each side are replaced by a
straight line between the clean pixels around them.

Baseline removal (:func:`estimate_baseline`) uses pybaselines on block means of 4 pixels (a
background is smooth on that scale; the fit is ~4x faster) interpolated back. The default is
``"snip"`` (statistics-sensitive non-linear iterative peak clipping, decreasing windows up to
140 cm-1): it had the smallest error of the candidates and runs in well under a millisecond.
``benchmarks/bench_raman.py`` compares them on 160 seeded synthetic spectra (1600 points,
50-1000 cm-1; phase mixtures of a line-shape table on a sloped fluorescence, an amorphous hump,
a laser-edge tail and thermal emission; shot and read noise); the score is the RMS error of the
baseline against the true smooth background, in units of the noise, above 90 cm-1 (the steep
edge tail below is followed by no smoother). One run (2 cores):

=================  ==================  ===========  ==========================================
method (options)   error median / p90  median time  verdict
=================  ==================  ===========  ==========================================
snip (140 cm-1)    2.6 / 4.9           0.6 ms       chosen: most accurate, fast, no iterations
iarpls (lam 1e7)   2.7 / 6.0           1.0 ms       close, slower, a longer tail
asls (1e7, 0.002)  3.9 / 11.4          0.4 ms       needs p tuned to the band density
airpls (lam 1e7)   4.2 / 11.5          0.4 ms       fast, rides up under broad band clusters
arpls (lam 1e6)    4.3 / 11.0          1.4 ms       slower and less accurate here
imodpoly (4)       5.6 / 15.8          0.8 ms       a polynomial cannot follow edge + thermal
=================  ==================  ===========  ==========================================

The errors are several times the noise for all of them because the broad bands (the 143 cm-1
band, the overlapping pyrochlore bands) are partly taken as background. So the baseline serves
peak finding and plots; the unmixing and the transition detector fit their own smooth background
jointly with the bands.

Smoothing (:func:`smooth`) is an optional Savitzky-Golay filter with a window in cm-1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from pybaselines import Baseline
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter

__all__ = [
    "BASELINE_METHODS",
    "DEFAULT_BASELINE_METHOD",
    "MIN_POINTS",
    "PreprocessedSpectrum",
    "SpikeRemoval",
    "check_spectrum",
    "estimate_baseline",
    "local_noise",
    "median_of_rows",
    "noise_sigma",
    "preprocess",
    "remove_spikes",
    "saturated_pixels",
    "smooth",
]

MIN_POINTS = 32
REFERENCE_PIXEL_CM1 = 950.0 / 1599.0  # the default 50-1000 cm-1, 1600-point axis
DEFAULT_BASELINE_METHOD = "snip"
# method -> (pybaselines method name, default options). ``lam`` is for the reference pixel density
# and scales with it; ``max_half_window`` (snip) is given in cm-1 and converted to points.
BASELINE_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "airpls": ("airpls", {"lam": 1e7}),
    "arpls": ("arpls", {"lam": 1e6}),
    "asls": ("asls", {"lam": 1e7, "p": 0.002}),
    "iarpls": ("iarpls", {"lam": 1e7}),
    "snip": ("snip", {"max_half_window": 140.0, "decreasing": True}),
    "imodpoly": ("imodpoly", {"poly_order": 4}),
}

_SPIKE_NEAR_WINDOW = 9  # running median: blind to spikes (or two touching ones) of up to 4 pixels
_SPIKE_FAR_OFFSET = 6  # neighbours this far away are outside any spike
_NOISE_BLOCK = 40  # pixels per block of the local noise estimate
SATURATION_RUN = 3  # neighbours exactly at the maximum that make a clipped (saturated) spectrum
_BASELINE_POINTS = 400  # baselines are fitted on about this many block means


def check_spectrum(
    wavenumber: ArrayLike, counts: ArrayLike, *, name: str = "spectrum"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a spectrum and return it as float arrays on an increasing axis.

    Parameters
    ----------
    wavenumber : array_like
        Raman-shift axis (cm-1), strictly increasing or strictly decreasing.
    counts : array_like
        Intensities, same length.
    name : str
        Used in error messages.

    Returns
    -------
    (ndarray, ndarray)
        Axis and counts, reversed together if the axis was decreasing.

    Raises
    ------
    ValueError
        On different lengths, fewer than 32 points, NaN/inf, or a non-monotonic axis.
    """
    x = np.asarray(wavenumber, dtype=float)
    y = np.asarray(counts, dtype=float)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(
            f"{name}: wavenumber and counts must be 1-D, got shapes {x.shape} and {y.shape}"
        )
    if x.size != y.size:
        raise ValueError(
            f"{name}: wavenumber has {x.size} points but counts has {y.size}; they must match"
        )
    if x.size < MIN_POINTS:
        raise ValueError(f"{name}: {x.size} points; at least {MIN_POINTS} are needed")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: wavenumber contains NaN or inf; only finite values are allowed")
    if not np.all(np.isfinite(y)):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise ValueError(f"{name}: counts contain {bad} NaN/inf values; only finite are allowed")
    steps = np.diff(x)
    if np.all(steps < 0):
        return x[::-1].copy(), y[::-1].copy()
    if not np.all(steps > 0):
        raise ValueError(
            f"{name}: wavenumber axis is not strictly monotonic (from {x[0]:g} to {x[-1]:g} cm-1 "
            "with repeated or reversed steps); a strictly increasing or decreasing axis is needed"
        )
    return x, y


def _second_differences(counts: np.ndarray) -> np.ndarray:
    return np.abs(counts[:-2] - 2.0 * counts[1:-1] + counts[2:])


# median |d2| of white noise of standard deviation sigma is 0.6745 * sqrt(6) * sigma
_D2_TO_SIGMA = 1.0 / (0.6745 * np.sqrt(6.0))


def median_of_rows(values: np.ndarray) -> np.ndarray | float:
    """The median along the last axis, equal to ``np.median`` (NaN for a row with a NaN).

    ``np.median`` spends most of its time on a small array outside the partition that finds the
    median (dispatch, NaN checks, a mean of the middle pair); the detector takes ten medians of
    every spectrum, and this takes a third of the time.
    """
    n = values.shape[-1]
    if n == 0:
        return np.median(values, axis=-1)  # NaN, with numpy's warning
    middle = n // 2
    if n % 2:
        median = np.partition(values, middle, axis=-1)[..., middle]
    else:
        parted = np.partition(values, (middle - 1, middle), axis=-1)
        median = 0.5 * (parted[..., middle - 1] + parted[..., middle])
    # NaN wherever a row has one, as np.median (partition sorts NaN last instead)
    return np.where(np.isnan(values).any(axis=-1), np.nan, median)[()]


def noise_sigma(counts: ArrayLike) -> float:
    """Robust white-noise standard deviation from the median absolute second difference.

    Second differences cancel the slope of band flanks and backgrounds, so only curvature
    (small on the scale of a few pixels) and noise remain.
    """
    y = np.asarray(counts, dtype=float)
    if y.size < 3:
        return 0.0
    return float(median_of_rows(_second_differences(y)) * _D2_TO_SIGMA)


def local_noise(counts: ArrayLike) -> np.ndarray:
    """Noise standard deviation per pixel: median |second difference| in blocks, interpolated."""
    y = np.asarray(counts, dtype=float)
    d2 = _second_differences(y)
    n_blocks = max(d2.size // _NOISE_BLOCK, 1)
    blocks = d2[: n_blocks * _NOISE_BLOCK].reshape(n_blocks, -1)
    block_sigma = median_of_rows(blocks) * _D2_TO_SIGMA
    centres = (np.arange(n_blocks) + 0.5) * blocks.shape[1] + 1.0
    local = np.interp(np.arange(y.size), centres, block_sigma)
    floor = max(noise_sigma(y) * 0.25, 1e-12 * (np.max(np.abs(y)) + 1.0))
    return np.maximum(local, floor)


def saturated_pixels(counts: ArrayLike) -> np.ndarray | None:
    """Pixels clipped at a detector's full scale, or None.

    A spectrum is clipped when ``SATURATION_RUN`` neighbouring pixels sit exactly at its maximum
    (a flat top: light with shot noise does not make one, and faint integer counts that tie at
    their maximum by chance, about 2 % of spectra of 10-100 counts, are not neighbours); then
    every pixel at that maximum is returned: its value says only "at least this much", and the
    flat top's second differences read as no noise.
    """
    y = np.asarray(counts, dtype=float)
    at_top = y == y.max()
    run = np.convolve(at_top.astype(np.int8), np.ones(SATURATION_RUN, dtype=np.int8), "valid")
    return at_top if run.max(initial=0) >= SATURATION_RUN else None


@dataclass(frozen=True)
class SpikeRemoval:
    """A despiked spectrum, the mask of replaced pixels and the given spectrum's local noise
    (:func:`local_noise`; the despiked spectrum's too when no pixel was replaced)."""

    counts: np.ndarray
    mask: np.ndarray
    noise: np.ndarray | None = None

    @property
    def n_spikes(self) -> int:
        """Number of separate spikes (runs of replaced pixels)."""
        mask = self.mask.astype(np.int8)
        return int(np.count_nonzero(np.diff(np.concatenate([[0], mask])) == 1))


def remove_spikes(
    counts: ArrayLike, *, threshold: float = 4.5, band_allowance: float = 0.35
) -> SpikeRemoval:
    """Replace cosmic-ray spikes (1-3 pixels far above their neighbours) by interpolation.

    Parameters
    ----------
    counts : array_like
        One spectrum (at least 32 points, finite).
    threshold : float
        Spike score, in units of the local noise, above which a pixel is a spike.
    band_allowance : float
        Share of the far excess a smooth band may show as near excess (at most ~0.3 for a band
        8 pixels wide, less for wider ones); it is subtracted before the threshold.

    Returns
    -------
    SpikeRemoval

    Raises
    ------
    ValueError
        On a non 1-D, too short or non-finite spectrum, or a threshold that is not positive.
    """
    y = np.asarray(counts, dtype=float)
    if y.ndim != 1 or y.size < MIN_POINTS or not np.all(np.isfinite(y)):
        raise ValueError(
            f"remove_spikes needs a finite 1-D spectrum of at least {MIN_POINTS} points, "
            f"got shape {y.shape}"
        )
    if not threshold > 0 or not 0 <= band_allowance < 1:
        raise ValueError(
            f"remove_spikes threshold {threshold} must be > 0 and band_allowance "
            f"{band_allowance} in [0, 1)"
        )
    k = _SPIKE_FAR_OFFSET
    # Odd reflection continues a sloped edge (the Rayleigh tail) instead of folding it into a
    # fake peak; the price is that a spike on the first or last two pixels may be kept.
    # (np.pad's odd reflection, written out: np.pad took a tenth of the whole despiking)
    padded = np.concatenate([2.0 * y[0] - y[k:0:-1], y, 2.0 * y[-1] - y[-2 : -k - 2 : -1]])
    running_median = median_filter(padded, size=_SPIKE_NEAR_WINDOW, mode="nearest")[k:-k]
    near_excess = y - running_median
    far_excess = y - 0.5 * (padded[: -2 * k] + padded[2 * k :])
    score = near_excess - band_allowance * np.maximum(far_excess, 0.0)
    noise = local_noise(y)
    candidates = score > threshold * noise
    if not candidates.any():
        return SpikeRemoval(y.copy(), np.zeros(y.size, dtype=bool), noise)
    # A spike is at most 3 pixels wide and any of them may be the one found: take 2 pixels on
    # each side, and bridge each masked run by a straight line between its clean neighbours.
    mask = candidates.copy()
    for shift in (1, 2):
        mask[shift:] |= candidates[:-shift]
        mask[:-shift] |= candidates[shift:]
    clean = np.flatnonzero(~mask)
    cleaned = y.copy()
    if clean.size >= 2:
        bad = np.flatnonzero(mask)
        cleaned[bad] = np.interp(bad, clean, y[clean])
    else:
        cleaned[mask] = running_median[mask]
    return SpikeRemoval(cleaned, mask, noise)


@functools.lru_cache(maxsize=8)
def _fitter(x_bytes: bytes) -> Baseline:
    return Baseline(x_data=np.frombuffer(x_bytes, dtype=float), assume_sorted=True)


def estimate_baseline(
    wavenumber: ArrayLike,
    counts: ArrayLike,
    method: str = DEFAULT_BASELINE_METHOD,
    *,
    decimate: int | None = None,
    **options: Any,
) -> np.ndarray:
    """Smooth background under the bands, by a pybaselines method.

    Parameters
    ----------
    wavenumber, counts : array_like
        The spectrum (checked by :func:`check_spectrum`).
    method : str
        One of :data:`BASELINE_METHODS` (default ``"snip"``).
    decimate : int, optional
        Fit the baseline on block means of this many pixels and interpolate back (a background
        is smooth on that scale; 4x fewer points make the fit ~4x faster). Default: down to
        about 400 points (4 for the 1600-point axis); 1 fits every pixel.
    **options
        Passed to the pybaselines method, overriding the defaults (e.g. ``lam=1e6``), in the
        units of the fitted (decimated) axis.

    Returns
    -------
    ndarray
        The baseline on the (increasing) axis.

    Raises
    ------
    ValueError
        On an unknown method or an invalid spectrum.
    """
    if method not in BASELINE_METHODS:
        raise ValueError(f"baseline method {method!r} is not one of {sorted(BASELINE_METHODS)}")
    x, y = check_spectrum(wavenumber, counts)
    if decimate is None:
        decimate = max(1, x.size // _BASELINE_POINTS)
    if int(decimate) != decimate or decimate < 1:
        raise ValueError(f"baseline decimate {decimate} must be an integer >= 1")
    decimate = int(decimate)
    coarse_x, coarse_y = x, y
    if decimate > 1:
        usable = (x.size // decimate) * decimate
        coarse_x = x[:usable].reshape(-1, decimate).mean(axis=1)
        coarse_y = y[:usable].reshape(-1, decimate).mean(axis=1)
    name, defaults = BASELINE_METHODS[method]
    settings = dict(defaults)
    pixel = float(np.median(np.diff(coarse_x)))
    if "lam" in settings:
        settings["lam"] = defaults["lam"] * (REFERENCE_PIXEL_CM1 / pixel) ** 4
    if "max_half_window" in settings:
        settings["max_half_window"] = max(2, int(round(defaults["max_half_window"] / pixel)))
    settings.update(options)
    baseline, _ = getattr(_fitter(coarse_x.tobytes()), name)(coarse_y, **settings)
    baseline = np.asarray(baseline, dtype=float)
    if decimate > 1:
        baseline = np.interp(x, coarse_x, baseline)
    return baseline


def smooth(
    wavenumber: ArrayLike, counts: ArrayLike, window_cm1: float = 5.0, polyorder: int = 2
) -> np.ndarray:
    """Savitzky-Golay smoothing with a window given in cm-1 (at least ``polyorder + 2`` points).

    Raises
    ------
    ValueError
        If the window is not positive or the spectrum is invalid.
    """
    x, y = check_spectrum(wavenumber, counts)
    if not window_cm1 > 0:
        raise ValueError(f"smoothing window {window_cm1} cm-1 must be > 0")
    points = int(round(window_cm1 / float(np.median(np.diff(x)))))
    points = max(points | 1, polyorder + 2 + (polyorder % 2 == 0))
    if points >= y.size:
        raise ValueError(
            f"smoothing window {window_cm1} cm-1 ({points} points) is not shorter than the "
            f"spectrum ({y.size} points)"
        )
    return savgol_filter(y, points, polyorder)


@dataclass(frozen=True)
class PreprocessedSpectrum:
    """A spectrum after spike removal and baseline estimation.

    Attributes
    ----------
    wavenumber : ndarray
        Increasing axis (cm-1).
    raw : ndarray
        Counts as given (reordered with the axis).
    despiked : ndarray
        Counts with cosmic-ray spikes replaced.
    spike_mask : ndarray of bool
        Replaced pixels.
    baseline : ndarray
        Estimated background of ``despiked``.
    corrected : ndarray
        ``despiked - baseline``, smoothed if smoothing was asked for.
    """

    wavenumber: np.ndarray
    raw: np.ndarray
    despiked: np.ndarray
    spike_mask: np.ndarray
    baseline: np.ndarray
    corrected: np.ndarray

    @property
    def n_spikes(self) -> int:
        """Number of spikes removed."""
        return SpikeRemoval(self.despiked, self.spike_mask).n_spikes


def preprocess(
    wavenumber: ArrayLike,
    counts: ArrayLike,
    *,
    despike: bool = True,
    baseline_method: str = DEFAULT_BASELINE_METHOD,
    smoothing_cm1: float | None = None,
    spike_threshold: float = 4.5,
) -> PreprocessedSpectrum:
    """Despike, remove the baseline and optionally smooth one spectrum.

    Parameters
    ----------
    wavenumber, counts : array_like
        The spectrum.
    despike : bool
        Remove cosmic-ray spikes first.
    baseline_method : str
        See :func:`estimate_baseline`.
    smoothing_cm1 : float, optional
        Savitzky-Golay window (cm-1) applied to the corrected spectrum; none by default.
    spike_threshold : float
        See :func:`remove_spikes`.

    Returns
    -------
    PreprocessedSpectrum

    Raises
    ------
    ValueError
        On an invalid spectrum or option.
    """
    x, y = check_spectrum(wavenumber, counts)
    if despike:
        removal = remove_spikes(y, threshold=spike_threshold)
        despiked, mask = removal.counts, removal.mask
    else:
        despiked, mask = y.copy(), np.zeros(y.size, dtype=bool)
    baseline = estimate_baseline(x, despiked, baseline_method)
    corrected = despiked - baseline
    if smoothing_cm1 is not None:
        corrected = smooth(x, corrected, smoothing_cm1)
    return PreprocessedSpectrum(x, y, despiked, mask, baseline, corrected)
