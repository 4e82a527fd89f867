"""Equivalent-circuit fitting of impedance spectra that needs no initial guess.

``fit_circuit("R0-p(R1,CPE1)", f, Z)`` derives a starting point from the spectrum itself
(:mod:`insitu.analysis.eis_start`: the arc apex gives the time constant, the high- and
low-frequency limits the resistances, the arc depression the CPE exponent, the low-frequency slope
a blocking-electrode CPE; with several parallel blocks, a coarse distribution of relaxation times
places the arcs), then fits the log10 of every parameter by bounded least squares on residuals
divided by ``|Z|`` (modulus weighting), with scipy's ``least_squares(method="trf",
x_scale="jac")`` and the circuit's analytic Jacobian. When the first fit leaves residuals above
the noise estimated from the spectrum, it restarts from alternative guesses and keeps the best.

Why not impedance.py or pyimpspec: measured on thin-film spectra (``../shared/reference/
zahner_thales.md``) their fits converged 0 times in 20 from a generic guess, took 25 ms to 2.4 s
each, and they give every parameter a value, including those the data cannot determine (a
100 Ohm series resistor in front of a 1e8 Ohm film). Here such parameters are listed in
``CircuitFit.undetermined`` and reported as NaN. ``benchmarks/bench_eis.py`` measures both.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from insitu.analysis.eis_circuits import CompiledCircuit, parse_circuit
from insitu.analysis.eis_start import automatic_guesses
from insitu.analysis.kramers_kronig import estimate_relative_noise

LN10 = math.log(10.0)
# A parameter whose relative standard error exceeds this is reported as undetermined. Above about
# 30 % the linearized error is itself unreliable: for a series resistor of 10-1000 Ohm in front of
# a thin film, fits reporting 35-90 % errors gave values 2-100 times the truth (one-sided profile).
UNDETERMINED_RELATIVE_STDERR = 0.3
# Restart from other guesses when the residual rms exceeds this multiple of the noise estimate.
RESTART_NOISE_MULTIPLE = 1.2
# Below this relative rms a fit is good whatever the noise estimate says (noise-free data).
GOOD_ENOUGH_RMS = 1e-3
MAX_STARTS = 8

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]


@functools.lru_cache(maxsize=64)
def _compiled(circuit: str) -> CompiledCircuit:
    return parse_circuit(circuit)


@dataclass(frozen=True)
class CircuitFit:
    """Result of :func:`fit_circuit`.

    Attributes
    ----------
    circuit : str
        The circuit string.
    params : dict
        Fitted value of every parameter by name (impedance.py names: ``R1``, ``CPE1_0``, ...);
        NaN for parameters in ``undetermined``; fixed parameters have their given value.
    stderr : dict
        Standard error of every parameter in its own (linear) units, from the Jacobian at the
        solution scaled by the residual variance; 0 for fixed and NaN for undetermined ones.
    undetermined : tuple of str
        Parameters the data cannot pin down (relative standard error above
        ``UNDETERMINED_RELATIVE_STDERR``), e.g. a small series resistance in front of a large one.
    fixed : tuple of str
        Parameters held at given values.
    model_params : dict
        Every parameter's value as the optimizer left it, undetermined ones included (those are
        arbitrary within their bounds). Use it to evaluate the model, never to report values.
    chi2 : float
        Sum of squared relative residuals ``|Z_fit - Z| / |Z|`` over real and imaginary parts.
    reduced_chi2 : float
        ``chi2 / (2 N - n_free)``; about the squared relative noise for a good fit.
    residuals_real, residuals_imag : ndarray
        ``(Z_fit - Z) / |Z|`` per point, real and imaginary parts, in the input order.
    residual_rms : float
        Root mean square of all relative residuals.
    noise_estimate : float
        Relative noise estimated from the spectrum's point-to-point scatter, for comparison.
    success : bool
        The optimizer converged to finite parameters.
    message : str
        The optimizer's message, or why the fit failed.
    n_starts : int
        Number of starting points tried.
    frequency : ndarray
        Frequencies (Hz) as given.
    impedance : ndarray of complex
        Impedance as given.
    """

    circuit: str
    params: dict[str, float]
    stderr: dict[str, float]
    undetermined: tuple[str, ...]
    fixed: tuple[str, ...]
    model_params: dict[str, float]
    chi2: float
    reduced_chi2: float
    residuals_real: FloatArray
    residuals_imag: FloatArray
    residual_rms: float
    noise_estimate: float
    success: bool
    message: str
    n_starts: int
    frequency: FloatArray = field(repr=False)
    impedance: ComplexArray = field(repr=False)

    @property
    def n_free(self) -> int:
        """Number of fitted (not fixed) parameters."""
        return len(self.params) - len(self.fixed)

    @property
    def n_residuals(self) -> int:
        """Number of real residuals: twice the number of points."""
        return 2 * int(self.frequency.size)

    @property
    def aic(self) -> float:
        """Akaike information criterion of the weighted fit: ``n ln(chi2/n) + 2 k``."""
        n = self.n_residuals
        return n * math.log(max(self.chi2, 1e-300) / n) + 2 * self.n_free

    @property
    def bic(self) -> float:
        """Bayesian information criterion of the weighted fit: ``n ln(chi2/n) + k ln n``."""
        n = self.n_residuals
        return n * math.log(max(self.chi2, 1e-300) / n) + self.n_free * math.log(n)

    def predict(self, frequency: ArrayLike) -> ComplexArray:
        """Impedance of the fitted circuit at ``frequency`` (Hz)."""
        f = np.asarray(frequency, dtype=float)
        if np.any(~np.isfinite(f)) or np.any(f <= 0):
            raise ValueError("predict: frequency must be finite and > 0 Hz")
        compiled = _compiled(self.circuit)
        values = [self.model_params[name] for name in compiled.param_names]
        return compiled.impedance(values, np.atleast_1d(f))

    def summary(self) -> str:
        """One line: circuit, parameters with relative errors, residual rms against the noise."""
        parts = []
        for name, value in self.params.items():
            if name in self.undetermined:
                parts.append(f"{name} undetermined")
            elif name in self.fixed:
                parts.append(f"{name}={value:.4g} (fixed)")
            else:
                relative = self.stderr[name] / value if value else float("nan")
                parts.append(f"{name}={value:.4g} \u00b1{100 * relative:.2g}%")
        status = "ok" if self.success else f"FAILED ({self.message})"
        return (
            f"{self.circuit}: {', '.join(parts)}; rms {100 * self.residual_rms:.2f}%"
            f" (noise {100 * self.noise_estimate:.2f}%), {status}"
        )


# ----------------------------------------------------------------------------- input checks


def _as_spectrum(frequency: ArrayLike, impedance: ArrayLike) -> tuple[FloatArray, ComplexArray]:
    try:
        f = np.asarray(frequency, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"frequency must be an array of numbers (Hz): {error}") from None
    try:
        z = np.asarray(impedance, dtype=complex)
    except (TypeError, ValueError) as error:
        raise ValueError(f"impedance must be an array of complex numbers (Ohm): {error}") from None
    if f.ndim != 1 or z.ndim != 1:
        raise ValueError(
            f"frequency and impedance must be 1-D arrays, got shapes {f.shape} and {z.shape}"
        )
    if f.size != z.size:
        raise ValueError(
            f"frequency has {f.size} points but impedance has {z.size}; they must match"
        )
    bad = ~np.isfinite(f) | (f <= 0)
    if np.any(bad):
        raise ValueError(
            f"frequency must be finite and > 0 Hz; got {f[bad][:5].tolist()} at indices"
            f" {np.flatnonzero(bad)[:5].tolist()}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError(
            f"impedance contains NaN or infinite values at indices"
            f" {np.flatnonzero(~np.isfinite(z))[:5].tolist()}"
        )
    if np.any(z == 0):
        raise ValueError("impedance contains exact zeros; residuals are weighted by 1/|Z|")
    return f, z


def _check_names(kind: str, names: Sequence[str], compiled: CompiledCircuit) -> None:
    unknown = [name for name in names if name not in compiled.param_names]
    if unknown:
        raise ValueError(
            f"{kind}: unknown parameter {unknown[0]!r} for circuit {compiled.circuit!r};"
            f" its parameters are {', '.join(compiled.param_names)}"
        )


def _check_value(kind: str, name: str, value: float, low: float, high: float) -> float:
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{kind}: {name} = {value!r} is outside its allowed range [{low}, {high}]")
    return value


def _resolve_bounds(
    compiled: CompiledCircuit, bounds: Mapping[str, tuple[float, float]] | None
) -> dict[str, tuple[float, float]]:
    resolved = dict(compiled.default_bounds)
    if bounds is None:
        return resolved
    if not isinstance(bounds, Mapping):
        raise ValueError("bounds must be a dict: parameter name -> (low, high)")
    _check_names("bounds", list(bounds), compiled)
    for name, pair in bounds.items():
        try:
            low, high = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"bounds: {name} needs a (low, high) pair, got {pair!r}") from None
        if not (low > 0 and high > low and math.isfinite(low)):
            raise ValueError(
                f"bounds: {name} = ({low}, {high}) is invalid; parameters are fitted as log10,"
                " so 0 < low < high is required (high may be inf)"
            )
        resolved[name] = (low, high)
    return resolved


# ----------------------------------------------------------------------------- the fit


class _Problem:
    """Residuals and Jacobian of a circuit fit in log10 parameters, with fixed values held."""

    def __init__(
        self,
        compiled: CompiledCircuit,
        omega: FloatArray,
        z: ComplexArray,
        free: list[int],
        fixed_values: dict[int, float],
    ):
        self.compiled = compiled
        self.omega = omega
        self.z = z
        self.inverse_modulus = 1.0 / np.abs(z)
        self.free = np.array(free, dtype=int)
        self.values = np.zeros(compiled.n_params)
        for index, value in fixed_values.items():
            self.values[index] = value
        self._cached_x: FloatArray | None = None
        self._cached_jacobian: FloatArray | None = None

    def full_values(self, x: FloatArray) -> FloatArray:
        values = self.values.copy()
        values[self.free] = 10.0**x
        return values

    def residuals(self, x: FloatArray) -> FloatArray:
        values = self.full_values(x)
        z_model, jacobian = self.compiled.impedance_and_jacobian(values, self.omega)
        relative = (z_model - self.z) * self.inverse_modulus
        # d/d(log10 p) = ln(10) p d/dp; stacked as (2N, n_free) for scipy
        scaled = jacobian[self.free] * (LN10 * values[self.free])[:, None] * self.inverse_modulus
        self._cached_x = x.copy()
        self._cached_jacobian = np.concatenate([scaled.real, scaled.imag], axis=1).T
        return np.concatenate([relative.real, relative.imag])

    def jacobian(self, x: FloatArray) -> FloatArray:
        if self._cached_x is None or not np.array_equal(x, self._cached_x):
            self.residuals(x)
        assert self._cached_jacobian is not None
        return self._cached_jacobian


def _inside(x: FloatArray, low: FloatArray, high: FloatArray) -> FloatArray:
    """``x`` moved strictly inside the bounds, as the trust-region-reflective method requires."""
    margin = 1e-6 * np.maximum(1.0, np.where(np.isfinite(high - low), high - low, 1.0))
    return np.clip(x, low + margin, np.where(np.isfinite(high), high - margin, np.inf))


def fit_circuit(
    circuit: str,
    frequency: ArrayLike,
    impedance: ArrayLike,
    *,
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    initial_guess: Mapping[str, float] | Sequence[float] | None = None,
) -> CircuitFit:
    """Fit an equivalent circuit to an impedance spectrum, no initial guess needed.

    Parameters
    ----------
    circuit : str
        impedance.py syntax, e.g. ``"p(R1,CPE1)"``, ``"R0-p(R1,CPE1)-CPE2"``.
    frequency : array_like
        Frequencies in Hz, any order.
    impedance : array_like
        Complex impedance in Ohm (``Z' + 1j Z''``, so a capacitive arc has negative imaginary
        part).
    fixed : dict, optional
        Parameters held at given values, e.g. ``{"CPE1_1": 1.0}``.
    bounds : dict, optional
        ``name -> (low, high)`` overriding the defaults (``0 < low < high``; parameters are fitted
        as log10). Defaults: R 1e-4..1e16 Ohm, C and CPE Q 1e-18..1e2, CPE alpha 0.1..1.
    initial_guess : dict or sequence, optional
        Starting values by name (all free parameters) or in parameter order. Without it the
        guess comes from the spectrum; automatic guesses still serve as restarts.

    Returns
    -------
    CircuitFit

    Raises
    ------
    ValueError
        On mismatched lengths, non-positive or non-finite frequencies, NaN impedance, fewer points
        than free parameters, an unknown element or parameter name, or invalid bounds or values.
    """
    compiled = _compiled(circuit) if isinstance(circuit, str) else parse_circuit(circuit)
    f, z = _as_spectrum(frequency, impedance)
    names = list(compiled.param_names)
    resolved_bounds = _resolve_bounds(compiled, bounds)

    fixed = dict(fixed or {})
    _check_names("fixed", list(fixed), compiled)
    fixed_values = {
        names.index(name): _check_value("fixed", name, value, *resolved_bounds[name])
        for name, value in fixed.items()
    }
    free = [i for i in range(len(names)) if i not in fixed_values]
    free_names = [names[i] for i in free]
    if not free:
        raise ValueError(f"every parameter of {compiled.circuit!r} is fixed; nothing to fit")
    if f.size < len(free):
        raise ValueError(
            f"{f.size} points cannot determine {len(free)} free parameters of"
            f" {compiled.circuit!r}; give at least {len(free)} points"
        )

    guesses: list[dict[str, float]] = []
    if initial_guess is not None:
        guesses.append(_user_guess(initial_guess, compiled, free_names, resolved_bounds))
    guesses.extend(automatic_guesses(compiled, f, z))

    low = np.log10([resolved_bounds[name][0] for name in free_names])
    high = np.log10([resolved_bounds[name][1] for name in free_names])
    problem = _Problem(compiled, 2 * np.pi * f, z, free, fixed_values)
    noise = estimate_relative_noise(f, z)  # NaN with fewer than 7 points: then always restart
    good_enough = max(RESTART_NOISE_MULTIPLE * noise, GOOD_ENOUGH_RMS) if noise == noise else 0.0

    starts = _distinct_starts(guesses, free_names, low, high)
    rng = np.random.default_rng(0)
    best = None
    n_starts = 0
    while n_starts < MAX_STARTS:
        if n_starts < len(starts):
            start = starts[n_starts]
        else:  # guesses used up: jump around the best point so far
            centre = best.x if best is not None else starts[0]
            step = np.minimum(0.5, 0.25 * np.where(np.isfinite(high - low), high - low, 4.0))
            start = _inside(centre + rng.normal(0.0, step), low, high)
        n_starts += 1
        try:
            result = least_squares(
                problem.residuals,
                start,
                jac=problem.jacobian,
                bounds=(low, high),
                method="trf",
                x_scale="jac",
                ftol=1e-10,
                xtol=1e-10,
                gtol=1e-10,
                max_nfev=200,
            )
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
        if not np.isfinite(result.cost):
            continue
        if best is None or result.cost < best.cost:
            best = result
        if math.sqrt(2 * best.cost / (2 * f.size)) <= good_enough:
            break

    if best is None:
        return _failed_fit(compiled, f, z, fixed, noise, n_starts)
    return _build_result(compiled, problem, best, f, z, fixed, noise, n_starts)


def _user_guess(
    initial_guess: Mapping[str, float] | Sequence[float],
    compiled: CompiledCircuit,
    free_names: list[str],
    resolved_bounds: Mapping[str, tuple[float, float]],
) -> dict[str, float]:
    if isinstance(initial_guess, Mapping):
        _check_names("initial_guess", list(initial_guess), compiled)
        missing = [name for name in free_names if name not in initial_guess]
        if missing:
            raise ValueError(f"initial_guess: no value for free parameter(s) {', '.join(missing)}")
        values = dict(initial_guess)
    else:
        sequence = list(initial_guess)
        if len(sequence) != len(free_names):
            raise ValueError(
                f"initial_guess has {len(sequence)} values; the free parameters are"
                f" {', '.join(free_names)}"
            )
        values = dict(zip(free_names, sequence, strict=True))
    return {
        name: _check_value("initial_guess", name, values[name], *resolved_bounds[name])
        for name in free_names
    }


def _distinct_starts(
    guesses: list[dict[str, float]], free_names: list[str], low: FloatArray, high: FloatArray
) -> list[FloatArray]:
    starts: list[FloatArray] = []
    for guess in guesses:
        x0 = np.log10(np.array([max(guess[name], 1e-300) for name in free_names], dtype=float))
        start = _inside(x0, low, high)
        if not any(np.allclose(start, other, atol=1e-3) for other in starts):
            starts.append(start)
    return starts


def _build_result(
    compiled: CompiledCircuit,
    problem: _Problem,
    result,
    f: FloatArray,
    z: ComplexArray,
    fixed: Mapping[str, float],
    noise: float,
    n_starts: int,
) -> CircuitFit:
    names = list(compiled.param_names)
    free_names = [names[i] for i in problem.free]
    values = problem.full_values(result.x)
    residuals = problem.residuals(result.x)
    jacobian = problem.jacobian(result.x)
    n_points = f.size
    chi2 = float(np.dot(residuals, residuals))
    dof = max(2 * n_points - len(free_names), 1)
    variance = chi2 / dof

    relative_error = _relative_errors(jacobian, variance)
    undetermined = [
        name
        for name, error in zip(free_names, relative_error, strict=True)
        if not error <= UNDETERMINED_RELATIVE_STDERR
    ]
    if undetermined:  # errors of the others with the undetermined directions taken out
        keep = [i for i, name in enumerate(free_names) if name not in undetermined]
        relative_error = np.full(len(free_names), np.nan)
        if keep:
            relative_error[keep] = _relative_errors(jacobian[:, keep], variance)

    model_params = {name: float(v) for name, v in zip(names, values, strict=True)}
    params: dict[str, float] = {}
    stderr: dict[str, float] = {}
    for name in names:
        if name in fixed:
            params[name], stderr[name] = float(fixed[name]), 0.0
        elif name in undetermined:
            params[name], stderr[name] = float("nan"), float("nan")
        else:
            params[name] = model_params[name]
            stderr[name] = float(relative_error[free_names.index(name)] * model_params[name])
    success = bool(result.status > 0 and np.all(np.isfinite(values)))
    return CircuitFit(
        circuit=compiled.circuit,
        params=params,
        stderr=stderr,
        undetermined=tuple(undetermined),
        fixed=tuple(name for name in names if name in fixed),
        model_params=model_params,
        chi2=chi2,
        reduced_chi2=variance,
        residuals_real=residuals[:n_points],
        residuals_imag=residuals[n_points:],
        residual_rms=float(np.sqrt(chi2 / (2 * n_points))),
        noise_estimate=noise,
        success=success,
        message=str(result.message),
        n_starts=n_starts,
        frequency=f,
        impedance=z,
    )


def _relative_errors(jacobian: FloatArray, variance: float) -> FloatArray:
    """Relative standard errors from a Jacobian in log10 parameters (pseudo-inverse via SVD)."""
    _, singular, vt = np.linalg.svd(jacobian, full_matrices=False)
    cutoff = np.finfo(float).eps * max(jacobian.shape) * (singular[0] if singular.size else 0.0)
    # a direction the data barely see (singular value at round-off level) counts with the
    # cutoff instead: the parameters along it get enormous errors, the others are unaffected
    floor = max(cutoff, 1e-150)  # squared, still a normal float
    covariance_diagonal = np.sum(vt**2 / np.maximum(singular, floor)[:, None] ** 2, axis=0)
    return LN10 * np.sqrt(variance * covariance_diagonal)


def _failed_fit(
    compiled: CompiledCircuit,
    f: FloatArray,
    z: ComplexArray,
    fixed: Mapping[str, float],
    noise: float,
    n_starts: int,
) -> CircuitFit:
    nan = float("nan")
    names = compiled.param_names
    return CircuitFit(
        circuit=compiled.circuit,
        params={n: float(fixed[n]) if n in fixed else nan for n in names},
        stderr={n: 0.0 if n in fixed else nan for n in names},
        undetermined=tuple(n for n in names if n not in fixed),
        fixed=tuple(n for n in names if n in fixed),
        model_params={n: float(fixed[n]) if n in fixed else nan for n in names},
        chi2=nan,
        reduced_chi2=nan,
        residuals_real=np.full(f.size, nan),
        residuals_imag=np.full(f.size, nan),
        residual_rms=nan,
        noise_estimate=noise,
        success=False,
        message="no start converged to finite values",
        n_starts=n_starts,
        frequency=f,
        impedance=z,
    )
