"""How far a film has crystallized on a heating ramp, read from the shape of its growth curve.

On a constant heating rate the crystalline fraction of a film that crystallizes by nucleation
and growth (Johnson-Mehl-Avrami-Kolmogorov with an Arrhenius rate, the non-isothermal form of
Ozawa and Kissinger) obeys ``ln(-ln(1 - f)) = n ln K(T)``, with ``K`` the integral of the
Arrhenius rate over the ramp. Across a transition that double logarithm rises nearly linearly
with temperature and bends slightly down (``-E/RT`` is concave in ``T``, as is the
``n ln(T - T0)`` of a growth that starts at a temperature). So a crystalline signal ``S(T)`` that
grows in proportion to ``f`` is fitted as

    S(T) = A (1 - exp(-exp(u(T)))),   u(T) = a + b s + c s^2,   s = (T - T_now) / 50 C,

with ``b > 0`` (a growth) and ``c < 0`` (the bend), and ``1 - exp(-exp(a))`` is the fraction
at the present temperature ``T_now``. Only the form comes from the literature: the amplitude,
the Avrami exponent, the activation energy and the transition's temperature are the film's own,
fitted, and the fraction's standard error comes from the fit's covariance in units of the
signal's own errors (scaled by the misfit when the curve does not follow the form). The form
holds for the *fraction*; a signal that also changes for other reasons (a polymorph whose bands
are stronger, a laser whose power drifts) is read through it, which is why the detector asks it
only to confirm, with both of its completion signals, what it would otherwise wait for
(:mod:`insitu.analysis.completion`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

__all__ = ["FractionFit", "fitted_fraction"]

SCALE_C = 50.0  # temperature unit of the fit's polynomial (keeps b and c of order 1)
_U_MAX = 5.0  # u at which the fraction is 1 to double precision
# Starting amplitudes, in units of the largest value seen: a growth near its end, half-way
# through its top, and one that has far to go; the best fit of the three is kept.
_AMPLITUDE_STARTS = (1.05, 1.3, 2.0)


@dataclass(frozen=True)
class FractionFit:
    """A growth curve's fit (see the module doc).

    Attributes
    ----------
    fraction : float
        Fitted fraction of the final signal at the last temperature, 0 to 1.
    u_error : float
        Standard error of ``a`` (``u`` at the last temperature).
    amplitude : float
        Fitted final signal ``A``.
    parameters : tuple of float
        ``(a, b, c)`` of ``u(T)``.
    reduced_chi2 : float
        Weighted misfit per degree of freedom.
    """

    fraction: float
    u_error: float
    amplitude: float
    parameters: tuple[float, float, float]
    reduced_chi2: float

    def lower(self, standard_errors: float = 1.0) -> float:
        """The fraction ``standard_errors`` standard errors of ``a`` lower (one-sided)."""
        return float(_fraction(self.parameters[0] - standard_errors * self.u_error))


def _fraction(u: float | np.ndarray) -> float | np.ndarray:
    return 1.0 - np.exp(-np.exp(np.minimum(u, _U_MAX)))


def _u_start(s: np.ndarray, values: np.ndarray, amplitude: float) -> tuple[float, float]:
    """``a`` and ``b`` of the straight line through the linearized curve at one amplitude."""
    share = np.clip(values / amplitude, 1e-3, 0.999)
    u = np.log(-np.log1p(-share))
    slope = float(np.polyfit(s, u, 1)[0]) if s.size > 1 else 1.0
    return float(u[-1]), max(slope, 0.1)


def fitted_fraction(
    temperatures: np.ndarray, values: np.ndarray, errors: np.ndarray
) -> FractionFit | None:
    """Fit a heating ramp's crystalline growth curve and read its fraction at the last point.

    Parameters
    ----------
    temperatures : ndarray
        Increasing temperatures of the spectra (C), the last one the present.
    values, errors : ndarray
        The crystalline signal and its standard error at each (errors > 0).

    Returns
    -------
    FractionFit or None
        None with fewer than 5 points (4 parameters) or when no fit converges.
    """
    temperatures = np.asarray(temperatures, dtype=float)
    values = np.asarray(values, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if values.size < 5 or not np.all(errors > 0):
        return None
    s = (temperatures - temperatures[-1]) / SCALE_C
    top = float(np.max(values))
    if not top > 0:
        return None

    # Unconstrained parameters (log A, a, log b, log -c) so that MINPACK's Levenberg-Marquardt
    # (scipy's method="lm", with the Jacobian below) does the fit: the bounded trust-region
    # method took ~80 ms per fit on these 5-100 points, this ~3 ms.
    def unpacked(p: np.ndarray) -> tuple[float, np.ndarray, float, float]:
        amplitude, b, c = np.exp(np.clip(p[[0, 2, 3]], -50.0, 50.0))
        return amplitude, np.clip(p[1] + b * s - c * s * s, -50.0, _U_MAX), b, c

    def residuals(p: np.ndarray) -> np.ndarray:
        amplitude, u, _, _ = unpacked(p)
        return (amplitude * _fraction(u) - values) / errors

    def jacobian(p: np.ndarray) -> np.ndarray:
        amplitude, u, b, c = unpacked(p)
        growth = np.exp(u - np.exp(u))  # dF/du
        du = amplitude * growth / errors
        return np.column_stack([amplitude * _fraction(u) / errors, du, du * b * s, -du * c * s * s])

    best = None
    for share in _AMPLITUDE_STARTS:
        a, b = _u_start(s, values, share * top)
        start = np.array([math.log(share * top), a, math.log(b), math.log(0.05)])
        found = least_squares(residuals, start, jac=jacobian, method="lm")
        if not np.all(np.isfinite(found.x)):
            continue
        if best is None or found.cost < best.cost:
            best = found
    if best is None:
        return None
    dof = max(values.size - 4, 1)
    reduced = 2.0 * float(best.cost) / dof
    try:
        covariance = np.linalg.inv(best.jac.T @ best.jac) * max(reduced, 1.0)
    except np.linalg.LinAlgError:
        return None
    amplitude, a = math.exp(best.x[0]), float(best.x[1])
    b, c = math.exp(best.x[2]), -math.exp(best.x[3])
    sigma_a = math.sqrt(max(float(covariance[1, 1]), 0.0))
    return FractionFit(
        fraction=float(_fraction(a)),
        u_error=sigma_a,
        amplitude=amplitude,
        parameters=(a, b, c),
        reduced_chi2=reduced,
    )
