"""Offline analysis of a whole Raman ramp: the detector's flags and transition temperatures.

:func:`analyze_ramp` replays the streaming detector
(:class:`~insitu.analysis.transitions.RamanTransitionDetector`) over a recorded ramp, then
estimates a temperature, with an uncertainty, for each transition from the whole sequence. The
crystalline band signal (every crystalline band far from the amorphous ones, against the learned
amorphous state) is normalized by its largest value, the *crystalline progress*; the decomposed
band signal (against the crystallized state) by its largest value, the *decomposed progress*.
Each progress trace is segmented by ruptures' PELT (continuous piecewise-linear cost); a
continuous piecewise-linear curve with knots at the change points is fitted by weighted least
squares to the whole trace, and its first crossing of a level is the transition temperature
(onset: crystalline progress 0.05; crystallized: 0.95; decomposition: decomposed progress 0.10).
The uncertainty is the fit's (delta method, scaled by the reduced chi-square) combined with the
temperature step between spectra. Progress is relative to the ramp's own largest signal: without
standards, band areas do not give phase fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ruptures
from numpy.typing import ArrayLike

from insitu.analysis.raman_preprocess import check_spectrum
from insitu.analysis.raman_reference import LLZO, RamanReference
from insitu.analysis.transition_features import TransitionFeatures
from insitu.analysis.transition_flags import TRANSITION_KINDS, TransitionFlag
from insitu.analysis.transitions import RamanTransitionDetector

__all__ = ["PROGRESS_LEVELS", "RampReport", "TransitionEstimate", "analyze_ramp"]

# Kind -> (progress trace, level).
PROGRESS_LEVELS = {
    "crystallization_onset": ("crystalline", 0.05),
    "crystallized": ("crystalline", 0.95),
    "decomposition": ("decomposed", 0.10),
}
_SIGNAL_OF_TRACE = {
    "crystalline": ("crystalline_total", "crystalline_total_err"),
    "decomposed": ("decomposed_signal", "decomposed_signal_err"),
}
_NOISE_FLOOR = 0.003
# A band signal whose largest value is below this many standard errors gives no progress trace.
SIGNIFICANT_PROGRESS = 10.0


@dataclass(frozen=True)
class TransitionEstimate:
    """Transition temperature from a whole ramp.

    Attributes
    ----------
    kind : str
        One of :data:`TRANSITION_KINDS`.
    temperature : float
        Where the fitted class-fraction trace crosses the level (C).
    uncertainty : float
        One standard deviation (C).
    level : float
        The level crossed.
    index : int
        First spectrum at or after the crossing.
    change_points : tuple of float
        Temperatures of the PELT change points of the trace (C).
    """

    kind: str
    temperature: float
    uncertainty: float
    level: float
    index: int
    change_points: tuple[float, ...]


@dataclass(frozen=True)
class RampReport:
    """Everything :func:`analyze_ramp` found in a ramp.

    Attributes
    ----------
    temperatures : ndarray
        Temperature of each spectrum (C).
    features : tuple of TransitionFeatures
        Per spectrum, as the detector saw it.
    flags : tuple of TransitionFlag
        What the streaming detector raises on this sequence.
    transitions : dict
        Kind -> :class:`TransitionEstimate`, for the kinds whose level is crossed.
    change_points : dict
        Progress trace (``crystalline``, ``decomposed``) -> PELT change-point temperatures.
    """

    temperatures: np.ndarray
    features: tuple[TransitionFeatures, ...]
    flags: tuple[TransitionFlag, ...]
    transitions: dict[str, TransitionEstimate]
    change_points: dict[str, tuple[float, ...]]

    def trace(self, name: str) -> np.ndarray:
        """A value per spectrum: a progress trace (``crystalline``, ``decomposed``) or a
        record key of :class:`~insitu.analysis.transition_features.TransitionFeatures`."""
        if name in _SIGNAL_OF_TRACE:
            return progress(self.features, name)[0]
        return np.array([f.as_record()[name] for f in self.features], dtype=float)

    def summary(self) -> str:
        """Human-readable lines: transition temperatures and flags."""
        lines = []
        for kind in TRANSITION_KINDS:
            estimate = self.transitions.get(kind)
            if estimate is None:
                lines.append(f"{kind}: not reached")
            else:
                lines.append(
                    f"{kind}: {estimate.temperature:.1f} +/- {estimate.uncertainty:.1f} C "
                    f"(progress {estimate.level:g}, spectrum {estimate.index})"
                )
        lines += [f"flag: {flag.message()}" for flag in self.flags]
        return "\n".join(lines)


def _spectra_pairs(
    n: int, spectra: Any, wavenumber: ArrayLike | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    if wavenumber is None:
        pairs = list(spectra)
        if len(pairs) != n or not all(len(pair) == 2 for pair in pairs):
            raise ValueError(
                "analyze_ramp: without wavenumber, spectra must be (wavenumber, counts) pairs, "
                f"one per temperature ({n})"
            )
        return [(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in pairs]
    axis = np.asarray(wavenumber, dtype=float)
    counts = [np.asarray(y, dtype=float) for y in spectra]
    if len(counts) != n:
        raise ValueError(f"analyze_ramp: {len(counts)} spectra for {n} temperatures")
    if axis.ndim == 1:
        return [(axis, y) for y in counts]
    if axis.ndim == 2 and axis.shape[0] == n:
        return list(zip(axis, counts, strict=True))
    raise ValueError(
        f"analyze_ramp: wavenumber must be one axis or one per spectrum, got shape {axis.shape}"
    )


def _trace_noise(values: np.ndarray, floor: float) -> float:
    second = np.diff(values, 2)
    if second.size == 0:
        return floor
    return max(float(np.median(np.abs(second))) / (0.6745 * math.sqrt(6.0)), floor)


def _change_points(values: np.ndarray, noise: float, penalty: float) -> list[int]:
    if values.size < 8:
        return []
    algorithm = ruptures.Pelt(model="clinear", min_size=3, jump=1).fit(values)
    ends = algorithm.predict(pen=penalty * noise**2 * math.log(values.size))
    return [int(end) for end in ends[:-1]]


def _hinge_basis(t: np.ndarray, knots: Sequence[float]) -> np.ndarray:
    columns = [np.ones_like(t), t] + [np.maximum(t - knot, 0.0) for knot in knots]
    return np.column_stack(columns)


def _first_crossing(
    temperatures: np.ndarray,
    values: np.ndarray,
    sigmas: np.ndarray,
    knots: Sequence[float],
    level: float,
    after: float,
) -> tuple[float, float] | None:
    """Crossing of ``level`` (upwards, after ``after``) by the fitted piecewise-linear curve."""
    order = np.argsort(temperatures, kind="stable")
    t, v, s = temperatures[order], values[order], sigmas[order]
    basis = _hinge_basis(t, knots)
    weights = 1.0 / s
    a = basis * weights[:, None]
    coef, *_ = np.linalg.lstsq(a, v * weights, rcond=None)
    residual = v * weights - a @ coef
    dof = max(t.size - basis.shape[1], 1)
    chi2 = float(residual @ residual) / dof
    covariance = np.linalg.pinv(a.T @ a) * max(chi2, 1.0)
    grid = np.linspace(t[0], t[-1], max(200, 20 * t.size))
    grid = grid[grid >= after]
    if grid.size < 2:
        return None
    fitted = _hinge_basis(grid, knots) @ coef
    above = np.flatnonzero((fitted[1:] >= level) & (fitted[:-1] < level))
    if above.size == 0:
        return None
    i = int(above[0])
    t0, t1, f0, f1 = grid[i], grid[i + 1], fitted[i], fitted[i + 1]
    crossing = float(t0 + (level - f0) / (f1 - f0) * (t1 - t0))
    g = _hinge_basis(np.array([crossing]), knots)[0]
    slope = (f1 - f0) / (t1 - t0)
    fit_sigma = math.sqrt(max(float(g @ covariance @ g), 0.0)) / abs(slope)
    step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    return crossing, math.hypot(fit_sigma, step / math.sqrt(12.0))


def progress(features: Sequence[TransitionFeatures], trace: str) -> tuple[np.ndarray, np.ndarray]:
    """A band signal over a ramp normalized by its largest value, and its standard errors.

    Parameters
    ----------
    features : sequence of TransitionFeatures
        Per spectrum.
    trace : str
        ``"crystalline"`` (every crystalline band far from the amorphous ones) or
        ``"decomposed"``.

    Returns
    -------
    (ndarray, ndarray)
        Progress (NaN where the signal was not measured) and its errors; all NaN when the
        largest signal is within :data:`SIGNIFICANT_PROGRESS` standard errors (no transition).
    """
    key, error_key = _SIGNAL_OF_TRACE[trace]
    values = np.array([getattr(f, key) for f in features], dtype=float)
    errors = np.array([getattr(f, error_key) for f in features], dtype=float)
    finite = np.isfinite(values) & np.isfinite(errors)
    if not finite.any():
        return np.full(values.shape, math.nan), np.full(values.shape, math.nan)
    top = int(np.flatnonzero(finite)[np.argmax(values[finite])])
    largest = float(values[top])
    # A largest value within the noise is no signal: nothing to normalize by.
    if not largest > SIGNIFICANT_PROGRESS * errors[top]:
        return np.full(values.shape, math.nan), np.full(values.shape, math.nan)
    return values / largest, errors / largest


def analyze_ramp(
    temperatures: ArrayLike,
    spectra: Any,
    wavenumber: ArrayLike | None = None,
    *,
    reference: RamanReference = LLZO,
    detector_options: dict[str, Any] | None = None,
    penalty: float = 4.0,
) -> RampReport:
    """Transition temperatures (with uncertainty) and flags of a whole ramp.

    Parameters
    ----------
    temperatures : array_like
        Temperature of each spectrum (C), in acquisition order.
    spectra : array_like or sequence
        Counts, one spectrum per temperature (2-D array or sequence of 1-D arrays); with
        ``wavenumber`` None, a sequence of ``(wavenumber, counts)`` pairs.
    wavenumber : array_like, optional
        One axis for all spectra, or one axis per spectrum (2-D).
    reference : RamanReference
        Material reference (band positions); LLZO by default.
    detector_options : dict, optional
        Options of the :class:`~insitu.analysis.transitions.RamanTransitionDetector` replayed
        on the sequence.
    penalty : float
        PELT penalty, in units of ``noise**2 * log(n)`` of each trace.

    Returns
    -------
    RampReport

    Raises
    ------
    ValueError
        On fewer than 3 spectra, mismatched lengths, or an invalid spectrum or temperature.
    """
    t = np.asarray(temperatures, dtype=float)
    if t.ndim != 1 or t.size < 3:
        raise ValueError(
            f"analyze_ramp needs at least 3 temperatures in a 1-D array, got shape {t.shape}"
        )
    if not np.all(np.isfinite(t)):
        raise ValueError("analyze_ramp: temperatures contain NaN or inf; only finite are allowed")
    pairs = _spectra_pairs(t.size, spectra, wavenumber)
    for i, (x, y) in enumerate(pairs):
        check_spectrum(x, y, name=f"analyze_ramp spectrum {i}")
    detector = RamanTransitionDetector(reference, **(detector_options or {}))
    flags: list[TransitionFlag] = []
    for (x, y), temperature in zip(pairs, t, strict=True):
        flags += detector.update(x, y, float(temperature))
    features = tuple(detector.history)

    change_points: dict[str, tuple[float, ...]] = {}
    transitions: dict[str, TransitionEstimate] = {}
    for trace in ("crystalline", "decomposed"):
        values, errors = progress(features, trace)
        valid = np.isfinite(values) & np.isfinite(errors)
        values, errors, temps = values[valid], errors[valid], t[valid]
        if values.size < 3:
            continue
        noise = _trace_noise(values, _NOISE_FLOOR)
        ends = _change_points(values, noise, penalty)
        knots = [float(temps[end - 1]) for end in ends]
        change_points[trace] = tuple(knots)
        sigmas = np.sqrt(errors**2 + noise**2)
        after = -math.inf
        for kind in TRANSITION_KINDS:
            name, level = PROGRESS_LEVELS[kind]
            if name != trace:
                continue
            crossing = _first_crossing(temps, values, sigmas, knots, level, after)
            if crossing is None:
                continue
            temperature, uncertainty = crossing
            later = np.flatnonzero(t >= temperature)
            transitions[kind] = TransitionEstimate(
                kind=kind,
                temperature=temperature,
                uncertainty=uncertainty,
                level=level,
                index=int(later[0]) if later.size else int(t.size - 1),
                change_points=tuple(knots),
            )
            after = temperature
    return RampReport(
        temperatures=t,
        features=features,
        flags=tuple(flags),
        transitions=transitions,
        change_points=change_points,
    )
