"""Arrhenius fits of conductivity against temperature: activation energy and extrapolation.

Two forms are in use for ionic conductors: ``sigma T = A exp(-Ea / kT)`` (``form="sigmaT"``,
the usual one for hopping conduction, and the paper's) and ``sigma = A exp(-Ea / kT)``
(``form="sigma"``). Both are straight lines in 1/T after taking logarithms, fitted here by
ordinary least squares, with the standard error of Ea from the residual scatter.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

BOLTZMANN_EV_PER_K = 8.617333262e-5  # CODATA 2018, exact
CELSIUS_ZERO_K = 273.15
FORMS = ("sigmaT", "sigma")


@dataclass(frozen=True)
class ArrheniusFit:
    """Result of :func:`fit_arrhenius`.

    Attributes
    ----------
    Ea_eV, Ea_stderr_eV : float
        Activation energy and its standard error (NaN with only two points).
    prefactor : float
        ``A``: in S K/cm for ``form="sigmaT"``, S/cm for ``form="sigma"``.
    ln_prefactor_stderr : float
        Standard error of ``ln A``.
    r2 : float
        Coefficient of determination of the straight line.
    form : str
        ``"sigmaT"`` or ``"sigma"``.
    temperature_K, sigma : ndarray
        The data fitted.
    per_cycle : dict
        Separate fits by label (cycle, direction, or ``(cycle, direction)`` when both are
        given); groups with fewer than two distinct temperatures are left out and named in
        ``groups_too_small``.
    groups_too_small : tuple
        Labels of groups that could not be fitted on their own.
    """

    Ea_eV: float
    Ea_stderr_eV: float
    prefactor: float
    ln_prefactor_stderr: float
    r2: float
    form: str
    temperature_K: NDArray[np.float64] = field(repr=False)
    sigma: NDArray[np.float64] = field(repr=False)
    per_cycle: dict[Hashable, ArrheniusFit] = field(default_factory=dict, repr=False)
    groups_too_small: tuple[Hashable, ...] = ()

    @property
    def n_points(self) -> int:
        return int(self.temperature_K.size)

    def sigma_at(self, temperature_K: float | ArrayLike) -> float | NDArray[np.float64]:
        """Conductivity (S/cm) from the fitted line at ``temperature_K`` (K, > 0).

        For the paper's room-temperature value use ``sigma_at(303.15)`` (30 C).
        """
        t = np.asarray(temperature_K, dtype=float)
        if np.any(~np.isfinite(t)) or np.any(t <= 0):
            raise ValueError(f"sigma_at: temperature {temperature_K!r} K must be finite and > 0")
        value = self.prefactor * np.exp(-self.Ea_eV / (BOLTZMANN_EV_PER_K * t))
        if self.form == "sigmaT":
            value = value / t
        return float(value) if value.ndim == 0 else value

    def summary(self) -> str:
        """One line: Ea with error, r2, sigma at 30 C, number of points."""
        return (
            f"Arrhenius ({self.form}): Ea = {self.Ea_eV:.3f} \u00b1 {self.Ea_stderr_eV:.3f} eV,"
            f" r2 = {self.r2:.4f}, sigma(30 C) = {self.sigma_at(CELSIUS_ZERO_K + 30):.3g} S/cm,"
            f" {self.n_points} points"
        )


def _line_fit(
    temperature_K: NDArray[np.float64], sigma: NDArray[np.float64], form: str
) -> ArrheniusFit:
    x = 1.0 / temperature_K
    y = np.log(sigma * temperature_K) if form == "sigmaT" else np.log(sigma)
    n = x.size
    x_mean, y_mean = x.mean(), y.mean()
    sxx = float(np.sum((x - x_mean) ** 2))
    slope = float(np.sum((x - x_mean) * (y - y_mean)) / sxx)
    intercept = float(y_mean - slope * x_mean)
    residuals = y - (intercept + slope * x)
    sse = float(np.sum(residuals**2))
    sst = float(np.sum((y - y_mean) ** 2))
    if n > 2:
        variance = sse / (n - 2)
        slope_err = math.sqrt(variance / sxx)
        intercept_err = math.sqrt(variance * (1.0 / n + x_mean**2 / sxx))
    else:
        slope_err = intercept_err = float("nan")
    return ArrheniusFit(
        Ea_eV=-slope * BOLTZMANN_EV_PER_K,
        Ea_stderr_eV=slope_err * BOLTZMANN_EV_PER_K,
        prefactor=math.exp(intercept),
        ln_prefactor_stderr=intercept_err,
        r2=1.0 - sse / sst if sst > 0 else 1.0,
        form=form,
        temperature_K=temperature_K,
        sigma=sigma,
    )


def _labels(name: str, values: Sequence[Hashable] | None, n: int) -> list[Hashable] | None:
    if values is None:
        return None
    labels = list(values.tolist() if isinstance(values, np.ndarray) else values)
    if len(labels) != n:
        raise ValueError(f"fit_arrhenius: {name} has {len(labels)} labels for {n} points")
    return labels


def fit_arrhenius(
    temperature_K: ArrayLike,
    sigma: ArrayLike,
    form: str = "sigmaT",
    cycle: Sequence[Hashable] | None = None,
    direction: Sequence[Hashable] | None = None,
) -> ArrheniusFit:
    """Fit an Arrhenius line to conductivity against temperature.

    Parameters
    ----------
    temperature_K : array_like
        Temperatures in kelvin (> 0).
    sigma : array_like
        Conductivities in S/cm (> 0), same length.
    form : {"sigmaT", "sigma"}
        ``"sigmaT"``: ln(sigma T) against 1/T; ``"sigma"``: ln(sigma) against 1/T.
    cycle : sequence, optional
        A label per point (e.g. 1, 1, 1, 2, 2, 2); fits per label go to ``per_cycle``.
    direction : sequence, optional
        A label per point such as ``"heating"``/``"cooling"``; combined with ``cycle`` when both
        are given.

    Returns
    -------
    ArrheniusFit
        The fit of all points, with per-label fits in ``per_cycle``.

    Raises
    ------
    ValueError
        On unequal lengths, fewer than two points or two distinct temperatures, non-positive or
        non-finite temperatures or conductivities, an unknown form, or label lists of the wrong
        length.
    """
    if form not in FORMS:
        raise ValueError(f"fit_arrhenius: form {form!r} is not one of {', '.join(FORMS)}")
    t = np.asarray(temperature_K, dtype=float).ravel()
    s = np.asarray(sigma, dtype=float).ravel()
    if t.size != s.size:
        raise ValueError(
            f"fit_arrhenius: {t.size} temperatures but {s.size} conductivities; they must match"
        )
    if t.size < 2:
        raise ValueError(f"fit_arrhenius: needs at least 2 points, got {t.size}")
    if np.any(~np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(
            f"fit_arrhenius: temperatures must be finite and > 0 K, got {t[~(t > 0)][:3].tolist()}"
            " (convert Celsius with + 273.15)"
        )
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(
            f"fit_arrhenius: conductivities must be finite and > 0 S/cm, got"
            f" {s[~(s > 0) | ~np.isfinite(s)][:3].tolist()}"
        )
    if np.unique(t).size < 2:
        raise ValueError("fit_arrhenius: needs at least 2 distinct temperatures")

    cycles = _labels("cycle", cycle, t.size)
    directions = _labels("direction", direction, t.size)
    if cycles is not None and directions is not None:
        labels: list[Hashable] | None = list(zip(cycles, directions, strict=True))
    else:
        labels = cycles if cycles is not None else directions

    overall = _line_fit(t, s, form)
    if labels is None:
        return overall
    per_cycle: dict[Hashable, ArrheniusFit] = {}
    too_small: list[Hashable] = []
    for label in dict.fromkeys(labels):  # first-seen order
        mask = np.array([item == label for item in labels])
        if np.unique(t[mask]).size >= 2:
            per_cycle[label] = _line_fit(t[mask], s[mask], form)
        else:
            too_small.append(label)
    return ArrheniusFit(
        Ea_eV=overall.Ea_eV,
        Ea_stderr_eV=overall.Ea_stderr_eV,
        prefactor=overall.prefactor,
        ln_prefactor_stderr=overall.ln_prefactor_stderr,
        r2=overall.r2,
        form=form,
        temperature_K=t,
        sigma=s,
        per_cycle=per_cycle,
        groups_too_small=tuple(too_small),
    )
