"""Arrhenius/JMAK kinetics of the garnet film: rates, history integrals and transformed fractions.

Model
-----
Every structural change of the film is one thermally activated process ``i`` with an Arrhenius
rate constant

    k_i(T) = k_ref,i * exp(-E_i / R * (1/T - 1/T_ref,i))          (1/s, T in K)

and a *kinetic integral* (the "isokinetic additivity" or Nakamura form of JMAK kinetics)

    beta_i(t) = integral_0^t k_i(T(s)) ds.

The transformed fraction is the Avrami law in that integral,

    X_i = 1 - exp(-beta_i ** n_i).

At constant temperature this is the classical JMAK isotherm ``1 - exp(-(k t)^n)``; under any
other program the integral carries the whole thermal history, so a slower ramp transforms at a
lower temperature (Kissinger shift), a dwell keeps transforming, and cooling freezes the state.
Crystallite growth uses the same integral as a parabolic growth law ``d^2 = d0^2 + beta_g``
(``k_ref`` of that process is in nm^2/s).

Processes and how each extent becomes a phase (see :mod:`insitu.sim.sample`):

==============  =========================================================  ====  =====  ======
process         meaning                                                    E eV  n      T_ref C
==============  =========================================================  ====  =====  ======
relaxation      amorphous network orders (the 91 cm-1 O-La-O band grows)  0.80  1.0    400
rearrangement   local rearrangement of the matrix (broad 143 cm-1 band)    1.30  1.5    550
crystallization garnet nanocrystals nucleate and grow from the matrix      3.50  1.5    700
cubic           tetragonal -> cubic garnet (share of the crystals)         3.50  1.5    700
li_loss         Li evaporates, the film turns to La2Zr2O7 pyrochlore       4.50  1.2    850
growth          crystallite size, d^2 = d0^2 + beta (nm^2), d0 = 3 nm     1.30  --     650
==============  =========================================================  ====  =====  ======

Calibration (5 C/min from room temperature, the paper's in-situ ramp; the rate constants
``k_ref`` below were solved so that the listed fraction is reached at the listed temperature, then
rounded). Resulting fractions of the extent X at 5 C/min:

* relaxation: 0.80 at 400 C (the 91 cm-1 band "grows up to ~400 C").
* rearrangement: 0.08 at 500 C, 0.44 at 550 C, 0.96 at 600 C ("500-600 C: broad 143 band").
* crystallization: 0.001 at 600 C, 0.04 at 650 C (first tetragonal nanocrystals), 0.29 at
  680 C ("amorphous below about 680 C"), 0.75 at 700 C, 0.994 at 720 C, 1.000 at 750 C.
* cubic share of the crystals: 0.02 at 650 C, 0.55 at 700 C, 0.95 at 720 C, 1.000 at 750 C
  ("fully crystalline cubic by 750 C").
* li_loss: 0.005 at 750 C, 0.09 at 800 C, 0.75 at 850 C ("Li loss, La2Zr2O7 at 850 C").
* growth: d = 3.4 nm at 500 C, 6.5 nm at 600 C (pyrochlore nuclei 3-5 and 4-8 nm), 10 nm at
  650 C (tetragonal nanocrystals 8-12 nm), about 24 nm at 750 C and 50 nm at 850 C.

Why these activation energies: the width of a transformation on a ramp fixes the product
``n * E`` (the sharper the step, the larger), and ``E`` alone fixes the Kissinger shift with
heating rate. Crystallization going from 4 % at 650 C to complete at 720-750 C needs
``n * E`` of about 5 eV; with n = 1.5 (growth of pre-existing nuclei, the paper's pyrochlore/
garnet nuclei) E = 3.5 eV, typical of oxide-glass crystallization, and the 50 % point moves by
about 65 C between 1 and 20 C/min (657, 691 and 722 C at 1, 5 and 20 C/min). A 2 h dwell at
620 C then crystallizes about half the film.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "KineticProcess",
    "PROCESSES",
    "PROCESS_NAMES",
    "GROWTH_INITIAL_SIZE_NM",
    "rate_constants",
    "integrate_extents",
    "transformed_fractions",
    "crystallite_size_nm",
]

GAS_CONSTANT = 8.314462618  # J/(mol K)
FARADAY = 96485.33212  # J/(mol eV): converts eV per particle to J/mol
KELVIN = 273.15
GROWTH_INITIAL_SIZE_NM = 3.0


@dataclass(frozen=True)
class KineticProcess:
    """One thermally activated process of the film.

    Attributes
    ----------
    name : str
        Process name (also the key in the extents array order).
    activation_energy_eV : float
        Arrhenius activation energy.
    rate_at_reference : float
        Rate constant at ``reference_temperature_C`` (1/s; nm^2/s for growth).
    reference_temperature_C : float
        Temperature at which ``rate_at_reference`` is given.
    avrami_exponent : float
        JMAK exponent n (unused for growth).
    """

    name: str
    activation_energy_eV: float
    rate_at_reference: float
    reference_temperature_C: float
    avrami_exponent: float

    def rate(self, temperature_C: np.ndarray) -> np.ndarray:
        """Arrhenius rate constant at ``temperature_C`` (array in, array out)."""
        inverse_t = 1.0 / (np.asarray(temperature_C, dtype=float) + KELVIN)
        inverse_ref = 1.0 / (self.reference_temperature_C + KELVIN)
        e_over_r = self.activation_energy_eV * FARADAY / GAS_CONSTANT
        return self.rate_at_reference * np.exp(-e_over_r * (inverse_t - inverse_ref))


PROCESSES: tuple[KineticProcess, ...] = (
    KineticProcess("relaxation", 0.80, 3.12e-3, 400.0, 1.0),
    KineticProcess("rearrangement", 1.30, 1.42e-3, 550.0, 1.5),
    KineticProcess("crystallization", 3.50, 4.61e-3, 700.0, 1.5),
    KineticProcess("cubic", 3.50, 3.21e-3, 700.0, 1.5),
    KineticProcess("li_loss", 4.50, 4.72e-3, 850.0, 1.2),
    KineticProcess("growth", 1.30, 0.157, 650.0, 1.0),
)
PROCESS_NAMES: tuple[str, ...] = tuple(p.name for p in PROCESSES)
_AVRAMI = np.array([p.avrami_exponent for p in PROCESSES[:-1]])
_E_OVER_R = np.array([p.activation_energy_eV * FARADAY / GAS_CONSTANT for p in PROCESSES])
_INV_REF = np.array([1.0 / (p.reference_temperature_C + KELVIN) for p in PROCESSES])
_LOG_K_REF = np.log(np.array([p.rate_at_reference for p in PROCESSES]))


def rate_constants(temperature_C: np.ndarray, rate_scale: np.ndarray | None = None) -> np.ndarray:
    """Rate constants of all :data:`PROCESSES` on a temperature grid.

    Parameters
    ----------
    temperature_C : ndarray, shape (N,)
        Temperatures in C.
    rate_scale : ndarray, shape (P,), optional
        Multiplies each process's rate (film-to-film variation); 1 by default.

    Returns
    -------
    ndarray, shape (P, N)
        ``k_i(T_j)``.
    """
    inverse_t = 1.0 / (np.asarray(temperature_C, dtype=float) + KELVIN)
    exponent = _LOG_K_REF[:, None] - _E_OVER_R[:, None] * (inverse_t[None, :] - _INV_REF[:, None])
    rates = np.exp(exponent)
    if rate_scale is not None:
        rates *= np.asarray(rate_scale, dtype=float)[:, None]
    return rates


def integrate_extents(
    times: np.ndarray, temperature_C: np.ndarray, rate_scale: np.ndarray | None = None
) -> np.ndarray:
    """Increase of every kinetic integral ``beta_i`` over a sampled temperature history.

    Parameters
    ----------
    times : ndarray, shape (N,)
        Increasing experiment times (s), N >= 1.
    temperature_C : ndarray, shape (N,)
        Temperature at each time (C).
    rate_scale : ndarray, shape (P,), optional
        Per-process rate multipliers.

    Returns
    -------
    ndarray, shape (P,)
        Trapezoid-rule integral of ``k_i(T(t)) dt`` from ``times[0]`` to ``times[-1]``.
    """
    times = np.asarray(times, dtype=float)
    if times.size < 2:
        return np.zeros(len(PROCESSES))
    rates = rate_constants(temperature_C, rate_scale)
    steps = np.diff(times)
    return (0.5 * (rates[:, 1:] + rates[:, :-1]) * steps[None, :]).sum(axis=1)


def transformed_fractions(extents: np.ndarray) -> np.ndarray:
    """JMAK fractions ``1 - exp(-beta^n)`` of every process except growth.

    Parameters
    ----------
    extents : ndarray, shape (P,)
        Kinetic integrals ``beta_i`` in :data:`PROCESS_NAMES` order.

    Returns
    -------
    ndarray, shape (P - 1,)
        Fractions for relaxation, rearrangement, crystallization, cubic, li_loss.
    """
    beta = np.maximum(np.asarray(extents, dtype=float)[:-1], 0.0)
    return -np.expm1(-(beta**_AVRAMI))


def crystallite_size_nm(extents: np.ndarray) -> float:
    """Mean crystallite size from the growth integral: ``sqrt(d0^2 + beta_growth)``."""
    return float(np.sqrt(GROWTH_INITIAL_SIZE_NM**2 + max(float(extents[-1]), 0.0)))
