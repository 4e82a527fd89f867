"""Transition flags from a sequence of Raman spectra: a streaming detector and an offline report.

Three transitions are watched, each as a level of a class fraction from the linear unmixing
(:func:`~insitu.analysis.raman_features.describe_spectrum`):

=========================  ==========================================  ==========
kind                       statistic                                   level
=========================  ==========================================  ==========
``crystallization_onset``  crystalline fraction (first crystals)       above 0.05
``crystallized``           crystalline fraction (fully crystalline)    above 0.95
``decomposition``          decomposed fraction (Li-loss pyrochlore)    above 0.10
=========================  ==========================================  ==========

**Streaming** (:class:`RamanTransitionDetector`): one spectrum at a time, a one-sided CUSUM per
kind on the standardized excess over the level, ``z = (value - level) / sigma``, with
``sigma**2 = se**2 + sigma0**2 + (relative_error * value * (1 - value))**2``: the fit's standard
error, the in-control noise ``sigma0`` of the statistic measured on the first
``calibration_spectra`` spectra (the threshold is set from the first spectra's noise), and an
allowance for errors of the reference's relative intensities (an intensity ratio off by a factor
``1 + e`` moves a fraction ``v`` by about ``e v (1 - v)``). The CUSUM is
``S = max(0, S + min(z - drift, max_step))`` and a flag is raised when ``S >= threshold``
(defaults: threshold 3, drift 0.25, max_step 2). Because one spectrum adds at most ``max_step`` <
``threshold``, no single spectrum can raise a flag: a cosmic ray that survives despiking,
a glitch of the fit or one noisy spectrum of the rearrangement stage is not enough; two
consecutive spectra clearly beyond the level are. For ``crystallized`` the amorphous remainder
is not trusted to vanish faster than kinetics allow: when it drops below ``persistence`` (0.3) of
the previous spectrum's, the difference is added to the uncertainty (a fit that could no longer
resolve a 10 % remainder must not pass for a fully crystalline film). A fluorescence drift
moves the fitted background, not the fractions. Each kind is raised once per detector
(``reset()`` for a new ramp); ``crystallized`` only after ``crystallization_onset``; a kind
whose level is already passed in the calibration spectra is not raised (it did not happen during
this ramp).

**Offline** (:func:`analyze_ramp`): the same features for the whole sequence, the flags the
detector would have raised, and for each kind a transition temperature with an uncertainty: the
class-fraction trace is segmented by ruptures' PELT (continuous piecewise-linear cost), a
continuous piecewise-linear curve with knots at the change points is fitted by weighted least
squares to the whole trace, and its first crossing of the level is the transition temperature;
the uncertainty is the fit's (delta method, scaled by the reduced chi-square) combined with the
temperature step between spectra.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ruptures
from numpy.typing import ArrayLike

from insitu.analysis.raman_features import SpectrumFeatures, describe_spectrum
from insitu.analysis.raman_preprocess import check_spectrum
from insitu.analysis.raman_reference import LLZO, RamanReference

__all__ = [
    "TRANSITION_KINDS",
    "TransitionFlag",
    "RamanTransitionDetector",
    "TransitionEstimate",
    "RampReport",
    "analyze_ramp",
]

TRANSITION_KINDS = ("crystallization_onset", "crystallized", "decomposition")
_TRACE_OF_KIND = {
    "crystallization_onset": "crystalline",
    "crystallized": "crystalline",
    "decomposition": "decomposed",
}
_DESCRIPTION = {
    "crystallization_onset": "first crystalline peaks emerge from the amorphous film",
    "crystallized": "the film is fully crystalline",
    "decomposition": "the Li-loss (decomposed) phase appears",
}


@dataclass(frozen=True)
class TransitionFlag:
    """A transition seen in the spectrum sequence.

    Attributes
    ----------
    kind : str
        One of :data:`TRANSITION_KINDS`.
    index : int
        Position of the spectrum that raised it in the sequence (from 0).
    temperature : float
        Temperature given with that spectrum (C).
    confidence : float
        Probability, under the fit's uncertainty, that the statistic is beyond its level in that
        spectrum (normal approximation), 0 to 1.
    evidence : str
        Which statistic, its value and level, the CUSUM, and which reference bands were found.
    value, level, cusum : float
        The statistic (class fraction), its level and the CUSUM when the flag was raised.
    bands : dict
        Reference band positions found as peaks, per phase of the watched class.
    """

    kind: str
    index: int
    temperature: float
    confidence: float
    evidence: str
    value: float = math.nan
    level: float = math.nan
    cusum: float = math.nan
    bands: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def message(self) -> str:
        """One line for a log or a person: what happened, where, how sure, why."""
        return (
            f"Raman transition {self.kind} ({_DESCRIPTION.get(self.kind, self.kind)}) at "
            f"{self.temperature:.1f} C, spectrum {self.index}, confidence {self.confidence:.3f}: "
            f"{self.evidence}"
        )


@dataclass
class _Watch:
    kind: str
    statistic: Callable[[SpectrumFeatures], tuple[float, float]]
    phase_class: str
    level: float
    requires: str | None
    calibration: list[float] = field(default_factory=list)
    sigma0: float = math.nan
    armed: bool = True
    cusum: float = 0.0
    run_start: int | None = None
    raised: bool = False
    previous: float = math.nan


def _class_statistic(phase_class: str) -> Callable[[SpectrumFeatures], tuple[float, float]]:
    def statistic(features: SpectrumFeatures) -> tuple[float, float]:
        return (
            float(features.class_fractions[phase_class]),
            float(features.class_fraction_errors[phase_class]),
        )

    return statistic


def _fraction_sigma(value: float, error: float, sigma0: float, relative_error: float) -> float:
    """Uncertainty of a class fraction: fit error, in-control noise, reference intensities."""
    model = relative_error * value * (1.0 - value)
    return math.sqrt(error**2 + sigma0**2 + model**2)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


class RamanTransitionDetector:
    """Raise transition flags while spectra arrive, one at a time (see the module doc).

    Parameters
    ----------
    reference : RamanReference
        Material reference; LLZO by default. Its phase classes define the statistics.
    onset_level, crystallized_level, decomposition_level : float
        Levels of the crystalline fraction (onset, fully crystalline) and of the decomposed
        fraction, in 0-1.
    calibration_spectra : int
        Number of first spectra that set each statistic's in-control noise; no flag is raised
        before they are in.
    threshold : float
        CUSUM decision threshold (in standard deviations).
    drift : float
        CUSUM reference value subtracted from each standardized excess.
    max_step : float
        Most one spectrum can add to the CUSUM; must be below ``threshold`` so that no single
        spectrum raises a flag.
    relative_error : float
        Relative uncertainty of the reference's intensity ratios, allowed for in each fraction.
    min_noise : float
        Floor of the in-control noise (fraction units).
    persistence : float
        For the completion statistic (``crystallized``): the share of the previous spectrum's
        remainder (1 - crystalline fraction) that is expected to survive one more spectrum at
        least; a faster drop is added to the uncertainty.
    describe_options : dict, optional
        Extra keyword arguments for :func:`~insitu.analysis.raman_features.describe_spectrum`.

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
        onset_level: float = 0.05,
        crystallized_level: float = 0.95,
        decomposition_level: float = 0.10,
        calibration_spectra: int = 5,
        threshold: float = 3.0,
        drift: float = 0.25,
        max_step: float = 2.0,
        relative_error: float = 0.05,
        min_noise: float = 0.003,
        persistence: float = 0.3,
        describe_options: dict[str, Any] | None = None,
    ) -> None:
        for name, level in (
            ("onset_level", onset_level),
            ("crystallized_level", crystallized_level),
            ("decomposition_level", decomposition_level),
        ):
            if not (math.isfinite(level) and 0.0 < level < 1.0):
                raise ValueError(f"RamanTransitionDetector.{name} {level} is outside (0, 1)")
        if not onset_level < crystallized_level:
            raise ValueError(
                f"RamanTransitionDetector.onset_level {onset_level} must be below "
                f"crystallized_level {crystallized_level}"
            )
        if int(calibration_spectra) != calibration_spectra or calibration_spectra < 2:
            raise ValueError(
                f"RamanTransitionDetector.calibration_spectra {calibration_spectra} must be an "
                "integer >= 2"
            )
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"RamanTransitionDetector.threshold {threshold} must be > 0")
        if not (math.isfinite(max_step) and 0 < max_step < threshold):
            raise ValueError(
                f"RamanTransitionDetector.max_step {max_step} must be > 0 and below the "
                f"threshold {threshold} (one spectrum alone must not raise a flag)"
            )
        for name, value in (
            ("drift", drift),
            ("relative_error", relative_error),
            ("min_noise", min_noise),
            ("persistence", persistence),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RamanTransitionDetector.{name} {value} must be >= 0")
        for phase_class in ("crystalline", "decomposed"):
            if not reference.names_of_class(phase_class):
                raise ValueError(
                    f"the {reference.material} reference has no {phase_class} phase; the "
                    "detector needs at least one crystalline and one decomposed phase"
                )
        self.reference = reference
        self.levels = {
            "crystallization_onset": float(onset_level),
            "crystallized": float(crystallized_level),
            "decomposition": float(decomposition_level),
        }
        self.calibration_spectra = int(calibration_spectra)
        self.threshold = float(threshold)
        self.drift = float(drift)
        self.max_step = float(max_step)
        self.relative_error = float(relative_error)
        self.min_noise = float(min_noise)
        self.persistence = float(persistence)
        self.describe_options = dict(describe_options or {})
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next spectrum is index 0 of a new ramp."""
        requires = {"crystallized": "crystallization_onset"}
        self._watches = [
            _Watch(
                kind,
                _class_statistic(_TRACE_OF_KIND[kind]),
                _TRACE_OF_KIND[kind],
                self.levels[kind],
                requires.get(kind),
            )
            for kind in TRANSITION_KINDS
        ]
        self._index = 0
        self.flags: list[TransitionFlag] = []
        self.history: list[SpectrumFeatures] = []
        self.temperatures: list[float] = []

    @property
    def index(self) -> int:
        """Index the next spectrum will get."""
        return self._index

    @property
    def calibrated(self) -> bool:
        """Whether the calibration spectra are in (flags can be raised)."""
        return self._index >= self.calibration_spectra

    def cusum(self) -> dict[str, float]:
        """Current CUSUM value of each kind."""
        return {watch.kind: watch.cusum for watch in self._watches}

    def update(
        self, wavenumber: ArrayLike, counts: ArrayLike, temperature: float
    ) -> list[TransitionFlag]:
        """Analyse the next spectrum; return the flags it raises (usually none).

        Parameters
        ----------
        wavenumber, counts : array_like
            The spectrum as measured.
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
        features = describe_spectrum(
            wavenumber,
            counts,
            self.reference,
            temperature=temperature,
            **self.describe_options,
        )
        return self.update_features(features, temperature)

    @staticmethod
    def _checked_temperature(temperature: float) -> float:
        try:
            value = float(temperature)
        except (TypeError, ValueError):
            raise ValueError(f"temperature {temperature!r} is not a number (in C)") from None
        if not (math.isfinite(value) and value > -273.15):
            raise ValueError(f"temperature {temperature!r} C must be a finite number above -273.15")
        return value

    @property
    def last_features(self) -> SpectrumFeatures | None:
        """Features of the last spectrum, None before the first."""
        return self.history[-1] if self.history else None

    def update_features(
        self, features: SpectrumFeatures, temperature: float
    ) -> list[TransitionFlag]:
        """Like :meth:`update` for a spectrum already described by ``describe_spectrum``."""
        temperature = self._checked_temperature(temperature)
        index = self._index
        self._index += 1
        self.history.append(features)
        self.temperatures.append(temperature)
        if index < self.calibration_spectra:
            self._calibrate(features, last=index == self.calibration_spectra - 1)
            return []
        raised: list[TransitionFlag] = []
        for watch in self._watches:
            if watch.raised or not watch.armed:
                continue
            value, error = watch.statistic(features)
            if not (math.isfinite(value) and math.isfinite(error)):
                continue  # nothing fitted in this spectrum: no evidence either way
            sigma = _fraction_sigma(value, error, watch.sigma0, self.relative_error)
            if watch.level > 0.5 and math.isfinite(watch.previous):
                # Completion: the remainder 1 - value cannot vanish faster than the kinetics
                # allow; an abrupt drop (a remainder the fit could no longer resolve) is doubt.
                expected = self.persistence * (1.0 - watch.previous)
                sigma = math.hypot(sigma, max(expected - (1.0 - value), 0.0))
            watch.previous = value
            z = (value - watch.level) / sigma
            step = min(z - self.drift, self.max_step)
            if watch.cusum <= 0.0 and step > 0:
                watch.run_start = index
            watch.cusum = max(0.0, watch.cusum + step)
            prerequisite_met = watch.requires is None or any(
                w.kind == watch.requires and w.raised for w in self._watches
            )
            if watch.cusum >= self.threshold and prerequisite_met:
                flag = self._flag(watch, index, temperature, features, value, error, z)
                watch.raised = True
                raised.append(flag)
        self.flags.extend(raised)
        return raised

    def _calibrate(self, features: SpectrumFeatures, *, last: bool) -> None:
        for watch in self._watches:
            value, _ = watch.statistic(features)
            if math.isfinite(value):
                watch.calibration.append(value)
            if not last:
                continue
            values = np.asarray(watch.calibration)
            spread = float(np.std(values, ddof=1)) if values.size >= 2 else 0.0
            watch.sigma0 = max(spread, self.min_noise)
            # A level already passed before the ramp got going is not a transition of this ramp.
            watch.armed = values.size > 0 and float(np.median(values)) < watch.level

    def _flag(
        self,
        watch: _Watch,
        index: int,
        temperature: float,
        features: SpectrumFeatures,
        value: float,
        error: float,
        z: float,
    ) -> TransitionFlag:
        phases = self.reference.names_of_class(watch.phase_class)
        bands = features.matched_bands(phases)
        found = "; ".join(
            f"{phase} bands at {', '.join(f'{p:g}' for p in positions)} cm-1"
            for phase, positions in bands.items()
        )
        fitted = ", ".join(
            f"{phase} {features.phase_fractions[phase]:.3f}"
            for phase in phases
            if features.phase_fractions[phase] > 0
        )
        start = watch.run_start if watch.run_start is not None else index
        evidence = (
            f"{watch.phase_class} fraction {value:.3f} +/- {error:.3f} above {watch.level:g} "
            f"(CUSUM {watch.cusum:.2f} >= {self.threshold:g} over spectra {start}-{index}, "
            f"in-control noise {watch.sigma0:.4f}); unmixing: {fitted or 'none'}; "
            + (found if found else f"no {watch.phase_class} band resolved as a separate peak")
        )
        return TransitionFlag(
            kind=watch.kind,
            index=index,
            temperature=temperature,
            confidence=round(_normal_cdf(z), 6),
            evidence=evidence,
            value=value,
            level=watch.level,
            cusum=watch.cusum,
            bands=bands,
        )


# --- offline analysis ----------------------------------------------------------------------------
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
    features : tuple of SpectrumFeatures
        Per spectrum.
    flags : tuple of TransitionFlag
        What the streaming detector raises on this sequence.
    transitions : dict
        Kind -> :class:`TransitionEstimate`, for the kinds whose level is crossed.
    change_points : dict
        Trace name (``crystalline``, ``decomposed``) -> PELT change-point temperatures.
    """

    temperatures: np.ndarray
    features: tuple[SpectrumFeatures, ...]
    flags: tuple[TransitionFlag, ...]
    transitions: dict[str, TransitionEstimate]
    change_points: dict[str, tuple[float, ...]]

    def trace(self, name: str) -> np.ndarray:
        """A feature per spectrum: a class (``crystalline``...), a phase, or a record key."""
        if name in ("amorphous", "crystalline", "decomposed"):
            return np.array([f.class_fractions[name] for f in self.features])
        if self.features and name in self.features[0].phase_fractions:
            return np.array([f.phase_fractions[name] for f in self.features])
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
                    f"(level {estimate.level:g}, spectrum {estimate.index})"
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
        Material reference; LLZO by default.
    detector_options : dict, optional
        Options of the :class:`RamanTransitionDetector` replayed on the sequence (its levels
        are also the levels of the transition temperatures).
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
    features = []
    for (x, y), temperature in zip(pairs, t, strict=True):
        described = describe_spectrum(
            x, y, reference, temperature=float(temperature), **detector.describe_options
        )
        features.append(described)
        flags += detector.update_features(described, float(temperature))

    change_points: dict[str, tuple[float, ...]] = {}
    transitions: dict[str, TransitionEstimate] = {}
    for trace in ("crystalline", "decomposed"):
        values = np.array([f.class_fractions[trace] for f in features])
        errors = np.array([f.class_fraction_errors[trace] for f in features])
        valid = np.isfinite(values) & np.isfinite(errors)
        values, errors, temps = values[valid], errors[valid], t[valid]
        noise = _trace_noise(values, detector.min_noise)
        ends = _change_points(values, noise, penalty)
        knots = [float(temps[end - 1]) for end in ends]
        change_points[trace] = tuple(knots)
        sigmas = np.array(
            [
                _fraction_sigma(v, e, noise, detector.relative_error)
                for v, e in zip(values, errors, strict=True)
            ]
        )
        after = -math.inf
        for kind in TRANSITION_KINDS:
            if _TRACE_OF_KIND[kind] != trace or values.size < 3:
                continue
            level = detector.levels[kind]
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
        features=tuple(features),
        flags=tuple(flags),
        transitions=transitions,
        change_points=change_points,
    )
