"""Data-quality checks of impedance spectra: the linear Kramers-Kronig test and a noise estimate.

The lin-KK test of Schoenleber et al. (Electrochim. Acta 131, 2014, 20-27) fits the spectrum with
a series resistance and M RC elements whose time constants are fixed and log-spaced over the
measured range, which is a linear least-squares problem. Any Kramers-Kronig-consistent (causal,
linear, stable, time-invariant) spectrum can be approximated this way, so large, structured
residuals mean the measurement is not: typically the sample drifted during the sweep. M is raised
until over-fitting sets in, detected by the ratio mu of negative to positive resistances
(stop when mu < 0.85). A series capacitance and inductance are part of the model so that the
capacitive tail of blocking electrodes and lead inductance are not false alarms.

Validity is judged against the noise estimated from the spectrum itself: white noise leaves
residuals that average out over neighbouring frequencies, while a drift leaves a systematic run.
The score is the largest mean residual over windows of 8-16 neighbouring points, in standard
errors of the noise; above ``SCORE_THRESHOLD`` the spectrum is flagged.

Written here rather than taken from impedance.py's ``linKK`` because that fits with M starting at
1, where under-fitting of a CPE arc drives mu below 0.85 at a handful of RC elements and leaves
residuals of several percent on clean spectra (false alarms), and it gives no validity verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

MU_THRESHOLD = 0.85
# Fewest RC elements per decade before the mu criterion may stop: below about 3 per decade the RC
# sum cannot follow a CPE arc, negative resistances appear from under-fitting (not over-fitting)
# and mu dips below 0.85 too early, leaving residuals that look like a failed test.
MIN_RC_PER_DECADE = 3.0
# The relative noise is never taken below this. It covers the approximation error of a finite RC
# sum (which dominates on noise-free spectra) and the analyzer's own systematic error: the real
# Zahner file in ../shared/data/zahner has 0.06 % scatter but ~1 % steps where the current range
# switches (16-20 Hz, 1.3-1.7 kHz); judged against 0.3 % it fails (score 5.8), against 0.5 % not.
NOISE_FLOOR = 5e-3
# Windows (in points) over which residuals are averaged to find systematic runs.
RUN_WINDOWS = (8, 12, 16)
# A spectrum is invalid when a run of residuals is off by more than this many standard errors.
# Calibrated on random R-CPE and R-CPE-CPE spectra with 1 % noise: the largest score of 400 clean
# spectra was 3.7, so 4.0 gives well under 1 % false alarms (tests/unit/test_kramers_kronig.py).
SCORE_THRESHOLD = 4.0

# Fourth differences cancel a locally cubic spectrum; their coefficients' squared sum is 70.
_FOURTH_DIFFERENCE_NORM = np.sqrt(70.0)


def estimate_relative_noise(frequency: ArrayLike, impedance: ArrayLike) -> float:
    """Relative noise of a spectrum, per component, estimated from its point-to-point scatter.

    Uses fourth differences of ``ln Z`` (log modulus and phase) along frequency: they cancel the
    smooth part of the spectrum (exactly for a locally cubic one) and leave the noise. The result
    is comparable to residuals divided by ``|Z|``: 1 % Gaussian noise on the real and imaginary
    parts, scaled to ``|Z|``, gives about 0.01.

    Parameters
    ----------
    frequency : array_like
        Frequencies in Hz (any order).
    impedance : array_like
        Complex impedance.

    Returns
    -------
    float
        The estimated relative noise, or NaN with fewer than 7 points.
    """
    f = np.asarray(frequency, dtype=float)
    z = np.asarray(impedance, dtype=complex)
    if f.size < 7:
        return float("nan")
    order = np.argsort(f)
    log_z = np.log(z[order])
    # unwrap the phase so a crossing of +-pi is not mistaken for noise
    values = np.concatenate([log_z.real, np.unwrap(log_z.imag)]).reshape(2, -1)
    fourth = np.diff(values, n=4, axis=1) / _FOURTH_DIFFERENCE_NORM
    # a robust scale (median absolute deviation) so a single glitch does not inflate it
    return float(1.4826 * np.median(np.abs(fourth)))


@dataclass(frozen=True)
class KKResult:
    """Result of :func:`kramers_kronig`.

    Attributes
    ----------
    frequency : ndarray
        Frequencies (Hz), as given.
    impedance_fit : ndarray of complex
        The lin-KK model at ``frequency``.
    residuals_real, residuals_imag : ndarray
        ``(Z - Z_fit) / |Z|`` for the real and imaginary parts (fractions, not percent).
    n_rc : int
        Number of RC elements chosen by the mu criterion.
    mu : float
        mu at the chosen ``n_rc``.
    max_residual_percent : float
        Largest absolute residual, in percent.
    residual_rms_percent : float
        Root mean square of all residuals, in percent.
    noise_percent : float
        Noise used to judge the residuals (estimated from the spectrum's point-to-point scatter,
        at least ``NOISE_FLOOR``), in percent.
    score : float
        Largest systematic run of residuals, in standard errors of the noise.
    score_threshold : float
        Score above which the spectrum is judged invalid.
    valid : bool
        True when ``score <= score_threshold``.
    """

    frequency: NDArray[np.float64]
    impedance_fit: NDArray[np.complex128]
    residuals_real: NDArray[np.float64]
    residuals_imag: NDArray[np.float64]
    n_rc: int
    mu: float
    max_residual_percent: float
    residual_rms_percent: float
    noise_percent: float
    score: float
    score_threshold: float
    valid: bool

    def summary(self) -> str:
        """One line: verdict, score, residuals, noise, number of RC elements."""
        verdict = "valid" if self.valid else "NOT Kramers-Kronig consistent"
        return (
            f"lin-KK: {verdict}; score {self.score:.1f} (threshold {self.score_threshold:.1f}),"
            f" residual rms {self.residual_rms_percent:.2f} %,"
            f" max {self.max_residual_percent:.2f} %,"
            f" noise {self.noise_percent:.2f} %, M = {self.n_rc}, mu = {self.mu:.2f}"
        )


def _validate(frequency: ArrayLike, impedance: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(frequency, dtype=float)
    z = np.asarray(impedance, dtype=complex)
    if f.ndim != 1 or z.ndim != 1 or f.size != z.size:
        raise ValueError(
            f"frequency and impedance must be 1-D arrays of equal length, got shapes"
            f" {f.shape} and {z.shape}"
        )
    if f.size < 8:
        raise ValueError(f"the lin-KK test needs at least 8 points, got {f.size}")
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise ValueError("frequency must be finite and > 0 Hz; got non-finite or non-positive ones")
    if np.unique(f).size != f.size:
        raise ValueError("frequency contains repeated values; give each frequency once")
    if not np.all(np.isfinite(z)):
        raise ValueError("impedance contains NaN or infinite values")
    if np.any(z == 0):
        raise ValueError("impedance contains zeros; residuals are relative to |Z|")
    return f, z


def _largest_run(residuals: NDArray[np.float64], windows: tuple[int, ...]) -> float:
    """Largest |mean| of ``residuals`` over consecutive windows, times sqrt(window length)."""
    cumulative = np.concatenate([[0.0], np.cumsum(residuals)])
    best = 0.0
    for k in windows:
        if k <= residuals.size:
            sums = cumulative[k:] - cumulative[:-k]
            best = max(best, float(np.max(np.abs(sums))) / np.sqrt(k))
    return best


class _LinKKSystem:
    """The weighted linear system of lin-KK for one spectrum; solved for a given M."""

    def __init__(self, f: NDArray[np.float64], z: NDArray[np.complex128]):
        self.omega = 2 * np.pi * f
        self.weight = 1.0 / np.abs(z)
        self.target = np.concatenate([z.real * self.weight, z.imag * self.weight])
        zeros = np.zeros_like(self.omega)
        # Extra terms: series R (real 1), series 1/C (imag -1/omega), series L (imag omega).
        self.extra = np.stack(
            [
                np.concatenate([self.weight, zeros]),
                np.concatenate([zeros, -self.weight / self.omega]),
                np.concatenate([zeros, self.weight * self.omega]),
            ],
            axis=1,
        )
        self.log_tau_range = (-np.log10(self.omega.max()), -np.log10(self.omega.min()))

    def solve(self, m: int) -> tuple[NDArray[np.float64], float]:
        """Weighted model values (real then imaginary parts) and mu for ``m`` RC elements."""
        tau = np.logspace(*self.log_tau_range, m)
        x = np.outer(self.omega, tau)
        denominator = 1.0 + x * x
        w = self.weight[:, None]
        design = np.hstack([np.concatenate([w / denominator, -w * x / denominator]), self.extra])
        scale = np.linalg.norm(design, axis=0)
        coefficients, *_ = np.linalg.lstsq(design / scale, self.target, rcond=None)
        coefficients = coefficients / scale
        resistances = coefficients[:m]
        positive = resistances[resistances >= 0].sum()
        negative = -resistances[resistances < 0].sum()
        mu = 1.0 - negative / positive if positive > 0 else 0.0
        return design @ coefficients, float(mu)


def kramers_kronig(
    frequency: ArrayLike,
    impedance: ArrayLike,
    *,
    mu_threshold: float = MU_THRESHOLD,
    score_threshold: float = SCORE_THRESHOLD,
    n_rc: int | None = None,
) -> KKResult:
    """Linear Kramers-Kronig test (lin-KK) with automatic choice of the number of RC elements.

    Parameters
    ----------
    frequency : array_like
        Frequencies in Hz (any order).
    impedance : array_like
        Complex impedance in Ohm.
    mu_threshold : float
        The number of RC elements M rises (from about 3 per decade) until mu falls below this
        (Schoenleber et al.: 0.85).
    score_threshold : float
        Largest allowed systematic run of residuals, in standard errors of the noise.
    n_rc : int, optional
        Use exactly this many RC elements instead of the mu criterion.

    Returns
    -------
    KKResult

    Raises
    ------
    ValueError
        On mismatched lengths, fewer than 8 points, non-positive or repeated frequencies,
        non-finite or zero impedance, or thresholds out of range.
    """
    f, z = _validate(frequency, impedance)
    if not 0 < mu_threshold < 1:
        raise ValueError(f"mu_threshold {mu_threshold} must lie in (0, 1)")
    if not score_threshold > 0:
        raise ValueError(f"score_threshold {score_threshold} must be > 0")
    n_points = f.size
    limit = n_points - 3  # keep at least as many equations as unknowns in each part
    system = _LinKKSystem(f, z)

    if n_rc is not None:
        if not 1 <= n_rc <= limit:
            raise ValueError(f"n_rc {n_rc} must lie in 1..{limit} for {n_points} points")
        m = int(n_rc)
        model, mu = system.solve(m)
    else:
        decades = np.log10(f.max() / f.min())
        m = int(min(limit, max(2, np.ceil(MIN_RC_PER_DECADE * decades))))
        model, mu = system.solve(m)
        while mu >= mu_threshold and m < limit:
            m += 1
            model, mu = system.solve(m)

    residuals = system.target - model
    residuals_real, residuals_imag = residuals[:n_points], residuals[n_points:]
    order = np.argsort(f)
    noise = max(estimate_relative_noise(f, z), NOISE_FLOOR)
    score = (
        max(
            _largest_run(residuals_real[order], RUN_WINDOWS),
            _largest_run(residuals_imag[order], RUN_WINDOWS),
        )
        / noise
    )
    return KKResult(
        frequency=f,
        impedance_fit=(model[:n_points] + 1j * model[n_points:]) / system.weight,
        residuals_real=residuals_real,
        residuals_imag=residuals_imag,
        n_rc=m,
        mu=mu,
        max_residual_percent=100.0 * float(np.max(np.abs(residuals))),
        residual_rms_percent=100.0 * float(np.sqrt(np.mean(residuals**2))),
        noise_percent=100.0 * noise,
        score=float(score),
        score_threshold=float(score_threshold),
        valid=bool(score <= score_threshold),
    )
