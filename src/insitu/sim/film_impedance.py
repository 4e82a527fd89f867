"""Impedance of the in-plane film cell: film R parallel CPE, electrode CPE and a series resistance.

The cell of the paper (``reference/science.md``): two Pt blocking electrodes, 3 mm long and
0.25 mm apart, on a 2 um film. Its impedance is modelled as::

    Z = R_s + Z_film + Z_electrode
    Z_film      = R / (1 + R Q_f (j w)^a_f)          (the film: R parallel CPE)
    Z_electrode = 1 / (Q_e (j w)^a_e)                 (blocking electrodes: a CPE)
    R           = gap / (sigma * electrode_length * thickness)

with sigma converted from S/cm to S/m (x 100). Chosen constants, typical of such thin-film cells:
film CPE Q_f = 2e-11 F s^(a-1), a_f = 0.9 (arc apex ~3 kHz at 100 C, ~200 kHz at 300 C for the
750 C film, inside a 1 MHz - 0.1 Hz window); electrode CPE Q_e = 1e-7 F s^(a-1), a_e = 0.8 (the
low-frequency spike); R_s = 50 ohm for leads and Pt contacts. A measured point carries
multiplicative complex noise ``Z (1 + n_re + j n_im)`` with n_re, n_im normal of standard deviation
0.5 % each (about 0.7 % in modulus).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from insitu.sim.sample_conductivity import ConductivityLaw

__all__ = [
    "ConductivityModel",
    "DEFAULT_GEOMETRY",
    "FILM_750C",
    "FilmImpedance",
]

DEFAULT_GEOMETRY = (0.25, 3.0, 2.0)  # gap mm, electrode length mm, film thickness um


class ConductivityModel(Protocol):
    """Anything that gives the film's conductivity (S/cm) at a temperature (C)."""

    def conductivity(self, temperature_C: float) -> float:
        """Conductivity in S/cm at ``temperature_C``."""


#: The 750 C-annealed, cubic film of the paper (Table S5): 2.51e-6 S/cm at 30 C, 0.343 eV.
FILM_750C = ConductivityLaw(math.log10(2.51e-6), 0.343)  # the shared sigma*T law


def _room_temperature() -> float:
    return 25.0


class FilmImpedance:
    """The in-plane film cell's impedance, measured "now" at the stage's temperature.

    Parameters
    ----------
    sample : object with ``conductivity(temperature_C) -> S/cm``, optional
        The film, e.g. ``insitu.sim.sample.GarnetFilm``; defaults to :data:`FILM_750C`.
    temperature : callable() -> float, optional
        The stage temperature in C now; defaults to 25 C.
    geometry : (gap_mm, electrode_length_mm, thickness_um) or an object with those attributes
        Electrode gap, electrode length and film thickness (default 0.25 mm, 3 mm, 2 um).
    film_cpe, electrode_cpe : (Q, alpha)
        CPE parameters (Q in F s^(alpha-1)) of the film and of the blocking electrodes.
    series_resistance_ohm : float
        Leads and contacts.
    relative_noise : float
        Standard deviation of the real and the imaginary part of the multiplicative noise.
    seed : int, optional
        Seed of the noise generator (reproducible spectra).
    """

    def __init__(
        self,
        sample: ConductivityModel | None = None,
        temperature: Callable[[], float] | None = None,
        geometry: Any = DEFAULT_GEOMETRY,
        *,
        film_cpe: tuple[float, float] = (2e-11, 0.9),
        electrode_cpe: tuple[float, float] = (1e-7, 0.8),
        series_resistance_ohm: float = 50.0,
        relative_noise: float = 0.005,
        seed: int | None = None,
    ) -> None:
        self.sample = FILM_750C if sample is None else sample
        self.temperature = _room_temperature if temperature is None else temperature
        if isinstance(geometry, tuple | list):
            gap_mm, length_mm, thickness_um = (float(v) for v in geometry)
        else:
            gap_mm = float(geometry.gap_mm)
            length_mm = float(geometry.electrode_length_mm)
            thickness_um = float(geometry.thickness_um)
        if min(gap_mm, length_mm, thickness_um) <= 0:
            raise ValueError(f"FilmImpedance geometry {geometry!r} must be positive")
        # gap / (length * thickness) in 1/m: R = cell_constant / sigma[S/m]
        self.cell_constant_per_m = (gap_mm * 1e-3) / ((length_mm * 1e-3) * (thickness_um * 1e-6))
        self.film_cpe = film_cpe
        self.electrode_cpe = electrode_cpe
        self.series_resistance_ohm = float(series_resistance_ohm)
        self.relative_noise = float(relative_noise)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()

    def reseed(self, key: int) -> None:
        """Restart the noise from (seed, ``key``): a campaign's sample ``key`` gets the same
        noise whatever was measured before it (a resumed campaign, a restarted process)."""
        if self._seed is not None:
            with self._rng_lock:
                self._rng = np.random.default_rng(np.random.SeedSequence((self._seed, 27, key)))

    def film_resistance_ohm(self, temperature_C: float) -> float:
        """Film resistance R (ohm) at ``temperature_C`` from the sample's conductivity."""
        sigma_S_per_m = float(self.sample.conductivity(temperature_C)) * 100.0
        return self.cell_constant_per_m / sigma_S_per_m

    def impedance(self, frequency_Hz: ArrayLike, temperature_C: float) -> np.ndarray:
        """Noise-free impedance (ohm, complex) at ``frequency_Hz`` and ``temperature_C``."""
        frequency = np.asarray(frequency_Hz, dtype=float)
        j_omega = 1j * 2.0 * math.pi * frequency
        r_film = self.film_resistance_ohm(temperature_C)
        q_film, a_film = self.film_cpe
        q_el, a_el = self.electrode_cpe
        z_film = r_film / (1.0 + r_film * q_film * j_omega**a_film)
        z_electrode = 1.0 / (q_el * j_omega**a_el)
        return self.series_resistance_ohm + z_film + z_electrode

    def __call__(self, frequency_Hz: float) -> complex:
        """One measured point: the impedance at the stage temperature now, with noise."""
        z = complex(self.impedance(frequency_Hz, float(self.temperature())))
        with self._rng_lock:
            noise = self._rng.normal(0.0, self.relative_noise, 2)
        return z * complex(1.0 + noise[0], noise[1])
