"""Thin-film impedance: choose the film model, get the film resistance and the conductivity.

The in-plane geometry of the paper (two Pt blocking electrodes on the film): the film is a
resistor R1 parallel to a CPE, possibly behind a series resistance (leads) or in front of the
electrodes' blocking CPE. :func:`fit_film` fits the three candidate circuits and keeps the one
with the lowest information criterion, so an extra element is only used when the data ask for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from insitu.analysis.eis_circuits import parse_circuit
from insitu.analysis.eis_fit import CircuitFit, fit_circuit
from insitu.checks import as_positive

# Film alone; film behind a series (lead/contact) resistance; film plus blocking electrodes.
FILM_MODELS: tuple[str, ...] = ("p(R1,CPE1)", "R0-p(R1,CPE1)", "p(R1,CPE1)-CPE2")
FILM_RESISTANCE = "R1"
METRES_PER_CENTIMETRE = 100.0


@dataclass(frozen=True)
class FilmGeometry:
    """In-plane electrode geometry, lengths in metres (defaults: the paper's sample).

    Attributes
    ----------
    gap : float
        Distance between the two electrodes (0.25 mm).
    electrode_length : float
        Length of each electrode along the gap (3 mm).
    thickness : float
        Film thickness (2 um).
    """

    gap: float = 0.25e-3
    electrode_length: float = 3e-3
    thickness: float = 2e-6

    def __post_init__(self) -> None:
        for name in ("gap", "electrode_length", "thickness"):
            value = getattr(self, name)
            if as_positive(value, f"FilmGeometry.{name}", unit="m") > 1.0:
                raise ValueError(
                    f"FilmGeometry.{name} = {value!r} m is over 1 m; lengths are in metres"
                    " (0.25 mm is 0.25e-3)"
                )


def conductivity(
    resistance: float | ArrayLike,
    gap: float = FilmGeometry.gap,
    electrode_length: float = FilmGeometry.electrode_length,
    thickness: float = FilmGeometry.thickness,
) -> float | NDArray[np.float64]:
    """Conductivity of a film measured in-plane: ``sigma = gap / (R * length * thickness)``.

    Parameters
    ----------
    resistance : float or array_like
        Film resistance in Ohm (> 0).
    gap, electrode_length, thickness : float
        Geometry in metres (> 0); defaults are the paper's 0.25 mm, 3 mm and 2 um.

    Returns
    -------
    float or ndarray
        Conductivity in S/cm (the S/m value divided by 100).
    """
    lengths = {"gap": gap, "electrode_length": electrode_length, "thickness": thickness}
    for name, value in lengths.items():
        as_positive(value, f"conductivity: {name}", unit="m")
    r = np.asarray(resistance, dtype=float)
    if np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"conductivity: resistance {resistance!r} Ohm must be finite and > 0")
    sigma = gap / (r * electrode_length * thickness) / METRES_PER_CENTIMETRE
    return float(sigma) if sigma.ndim == 0 else sigma


@dataclass(frozen=True)
class FilmFit:
    """Result of :func:`fit_film`.

    Attributes
    ----------
    model : str
        The chosen circuit.
    fit : CircuitFit
        The chosen circuit's fit.
    candidates : dict
        Every candidate circuit's fit, by circuit string.
    criterion : str
        ``"bic"`` or ``"aic"``.
    criterion_values : dict
        The criterion for each candidate that converged (lower is better).
    film_resistance, film_resistance_err : float
        R1 and its standard error in Ohm (NaN if the data do not determine it).
    conductivity, conductivity_err : float
        In S/cm; the error propagates only the resistance's error, not the geometry's.
    geometry : FilmGeometry
    success : bool
        The chosen fit converged and determines R1.
    """

    model: str
    fit: CircuitFit
    candidates: dict[str, CircuitFit] = field(repr=False)
    criterion: str
    criterion_values: dict[str, float]
    film_resistance: float
    film_resistance_err: float
    conductivity: float
    conductivity_err: float
    geometry: FilmGeometry
    success: bool

    def predict(self, frequency: ArrayLike) -> NDArray[np.complex128]:
        """Impedance of the chosen model at ``frequency`` (Hz)."""
        return self.fit.predict(frequency)

    def summary(self) -> str:
        """One line: model, film resistance, conductivity."""
        return (
            f"{self.model} (by {self.criterion.upper()}): R_film = {self.film_resistance:.4g}"
            f" \u00b1 {self.film_resistance_err:.2g} Ohm, sigma = {self.conductivity:.4g}"
            f" \u00b1 {self.conductivity_err:.2g} S/cm{'' if self.success else ' (FAILED)'}"
        )


def fit_film(
    frequency: ArrayLike,
    impedance: ArrayLike,
    geometry: FilmGeometry | None = None,
    *,
    criterion: str = "bic",
    models: Sequence[str] = FILM_MODELS,
) -> FilmFit:
    """Fit the thin-film models, keep the best by an information criterion, get sigma.

    Parameters
    ----------
    frequency : array_like
        Frequencies in Hz.
    impedance : array_like
        Complex impedance in Ohm.
    geometry : FilmGeometry, optional
        Electrode geometry; default: the paper's (0.25 mm gap, 3 mm electrodes, 2 um film).
    criterion : {"bic", "aic"}
        Information criterion on the modulus-weighted residuals.
    models : sequence of str
        Candidate circuits; each must contain the film resistance ``R1``.

    Returns
    -------
    FilmFit

    Raises
    ------
    ValueError
        On bad spectra (see :func:`~insitu.analysis.eis_fit.fit_circuit`), an unknown criterion or
        a model without ``R1``.
    """
    geometry = FilmGeometry() if geometry is None else geometry
    if criterion not in ("bic", "aic"):
        raise ValueError(f"criterion {criterion!r} is not one of 'bic', 'aic'")
    if not models:
        raise ValueError("models is empty; give at least one circuit containing R1")
    for model in models:
        if FILM_RESISTANCE not in parse_circuit(model).param_names:
            raise ValueError(f"model {model!r} has no film resistance {FILM_RESISTANCE!r}")
    candidates: dict[str, CircuitFit] = {}
    for model in models:
        fit = fit_circuit(model, frequency, impedance)
        candidates[fit.circuit] = fit
    scores = {
        name: getattr(fit, criterion)
        for name, fit in candidates.items()
        if fit.success and math.isfinite(fit.chi2)
    }
    chosen = min(scores, key=scores.__getitem__) if scores else next(iter(candidates))
    best = candidates[chosen]
    resistance = best.params[FILM_RESISTANCE]
    resistance_err = best.stderr[FILM_RESISTANCE]
    determined = best.success and math.isfinite(resistance) and resistance > 0
    if determined:
        sigma = float(
            conductivity(resistance, geometry.gap, geometry.electrode_length, geometry.thickness)
        )
        sigma_err = sigma * resistance_err / resistance
    else:
        sigma = sigma_err = float("nan")
    return FilmFit(
        model=chosen,
        fit=best,
        candidates=candidates,
        criterion=criterion,
        criterion_values=scores,
        film_resistance=float(resistance),
        film_resistance_err=float(resistance_err),
        conductivity=sigma,
        conductivity_err=float(sigma_err),
        geometry=geometry,
        success=bool(determined),
    )
