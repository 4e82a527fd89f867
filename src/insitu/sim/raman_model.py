"""Synthetic Raman spectra of the garnet film: bands per phase, background, detector noise.

:func:`spectrum` gives what a CCD Raman spectrometer reads from the film in a
:class:`~insitu.sim.sample.FilmState` at a temperature: the bands of
:mod:`insitu.sim.raman_bands` weighted by the phase fractions, on a sloped fluorescence
background, then shot noise, read noise and cosmic-ray spikes. :func:`expected_counts` is the
noise-free mean.

Physics and detector choices (numbers are constants below):

* Line shapes: pseudo-Voigt of the band's FWHM. Crystalline bands broaden as
  ``FWHM_bulk + 60 cm-1 nm / d`` (phonon confinement in nanocrystals of size d); all bands
  broaden by 0.05 %/C and shift by -1.2e-5 /C relative to their position (anharmonic softening),
  from the temperature at which the paper saw them (so at 750 C the cubic A1g sits at 651 cm-1,
  at room temperature near 656 cm-1).
* Background: fluorescence, stronger from the amorphous film, rising linearly with Raman shift
  and quenched on heating (``exp(-(T - 25) / 350)``); the tail of the Rayleigh edge filter below
  ~80 cm-1; and thermal (Planck) emission of the hot stage, which does not scale with laser
  power and becomes visible above ~700 C.
* Counts: rates are counts/s at 10 mW, scaled by ``laser_power_mW / 10`` and the exposure. With
  several accumulations the result is their **mean** (as LabSpec and WITec report), so the counts
  scale does not change with accumulations and the noise falls as 1/sqrt(accumulations).
* Noise: Poisson shot noise on all collected counts, Gaussian read noise of 5 counts per
  readout, and, while the film is rearranging, extra noise (up to 3.5x shot noise) between 150
  and 550 cm-1, as the paper observed at 500-600 C.
* Cosmic rays: Poisson arrivals at 0.02 per second of exposure (about one per minute on a
  binned CCD strip), each a 1-3 pixel spike of 200-5000 counts in one accumulation.

Speed: one 1600-point spectrum takes a few hundred microseconds (see benchmarks/bench_sim.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike

from insitu.checks import as_positive, in_range
from insitu.sim.raman_bands import BANDS, GROUPS
from insitu.sim.raman_variation import FilmRamanVariation
from insitu.sim.sample import FilmState

__all__ = [
    "default_axis",
    "expected_counts",
    "spectrum",
    "raman_shift_to_wavelength_nm",
    "DEFAULT_LASER_WAVELENGTH_NM",
    "READ_NOISE_COUNTS",
    "COSMIC_RAY_RATE_PER_S",
]

DEFAULT_LASER_WAVELENGTH_NM = 532.0
REFERENCE_POWER_MW = 10.0
AXIS_START_CM1 = 50.0
AXIS_STOP_CM1 = 1000.0
AXIS_POINTS = 1600

SIZE_BROADENING_CM1_NM = 60.0
THERMAL_BROADENING_PER_C = 5e-4
THERMAL_SHIFT_PER_C = 1.2e-5
FLUORESCENCE_CPS = 250.0
FLUORESCENCE_SLOPE = 0.8  # relative rise from 50 to 1000 cm-1
FLUORESCENCE_QUENCH_C = 350.0
RAYLEIGH_TAIL_CPS = 400.0
RAYLEIGH_TAIL_DECAY_CM1 = 8.0
THERMAL_EMISSION_CPS_850C = 150.0  # at 1000 cm-1 Stokes, 532 nm excitation
DARK_CPS = 0.2
READ_NOISE_COUNTS = 5.0
REARRANGEMENT_EXCESS_NOISE = 2.5  # extra noise / shot noise for a fully rearranged film
COSMIC_RAY_RATE_PER_S = 0.02
COSMIC_RAY_COUNTS = (200.0, 5000.0)
SECOND_RADIATION_CONSTANT_NM_K = 1.438777e7

_POSITIONS = np.array([b.position_cm1 for b in BANDS])
_FWHM = np.array([b.fwhm_cm1 for b in BANDS])
_HEIGHTS = np.array([b.height for b in BANDS])
_T_REF = np.array([b.reference_temperature_C for b in BANDS])
_ETA = np.array([b.lorentz_fraction for b in BANDS])
_SIZE = np.array([b.size_broadened for b in BANDS], dtype=float)
_ORDERED = np.array([b.grows_with_order for b in BANDS])
_GROUP = np.array([GROUPS.index(b.group) for b in BANDS])
_LN2 = np.log(2.0)


@functools.cache
def _cached_default_axis() -> np.ndarray:
    axis = np.linspace(AXIS_START_CM1, AXIS_STOP_CM1, AXIS_POINTS)
    axis.flags.writeable = False
    return axis


def default_axis() -> np.ndarray:
    """The default Raman-shift axis: 50 to 1000 cm-1 in 1600 points (a fresh copy)."""
    return _cached_default_axis().copy()


def raman_shift_to_wavelength_nm(
    shift_cm1: ArrayLike, laser_wavelength_nm: float = DEFAULT_LASER_WAVELENGTH_NM
) -> np.ndarray:
    """Stokes wavelength (nm) of a Raman shift: ``1e7 / (1e7/laser - shift)``."""
    return 1e7 / (1e7 / laser_wavelength_nm - np.asarray(shift_cm1, dtype=float))


def _group_weights(state: FilmState) -> np.ndarray:
    return np.array(
        [
            state.amorphous + state.rearranged,
            state.amorphous * state.amorphous_order,
            state.rearranged,
            state.tetragonal,
            state.cubic,
            state.pyrochlore,
        ]
    )


def _band_signal(
    state: FilmState,
    temperature_C: float,
    axis: np.ndarray,
    variation: FilmRamanVariation | None,
) -> np.ndarray:
    heights = _HEIGHTS * _group_weights(state)[_GROUP]
    heights = np.where(_ORDERED, heights * (0.25 + 0.75 * state.amorphous_order), heights)
    base_positions, base_fwhm = _POSITIONS, _FWHM
    if variation is not None:
        heights = heights * np.asarray(variation.height_factors)
        base_positions = _POSITIONS + np.asarray(variation.shifts_cm1)
        base_fwhm = _FWHM * np.asarray(variation.width_factors)
    active = heights > 1e-6
    if not active.any():
        return np.zeros_like(axis)
    positions = base_positions[active] * (
        1.0 - THERMAL_SHIFT_PER_C * (temperature_C - _T_REF[active])
    )
    size = max(state.crystallite_size_nm, 1.0)
    fwhm = (base_fwhm[active] + _SIZE[active] * SIZE_BROADENING_CM1_NM / size) * (
        1.0 + THERMAL_BROADENING_PER_C * (temperature_C - 25.0)
    )
    u2 = ((axis[None, :] - positions[:, None]) / (0.5 * fwhm[:, None])) ** 2
    eta = _ETA[active][:, None]
    shapes = eta / (1.0 + u2) + (1.0 - eta) * np.exp(-_LN2 * u2)
    return heights[active] @ shapes


def _laser_background(
    state: FilmState,
    temperature_C: float,
    axis: np.ndarray,
    variation: FilmRamanVariation | None,
) -> np.ndarray:
    amorphous = state.amorphous + state.rearranged
    level = FLUORESCENCE_CPS * (0.5 + 0.5 * amorphous)
    level *= np.exp(-max(temperature_C - 25.0, 0.0) / FLUORESCENCE_QUENCH_C)
    x = (axis - AXIS_START_CM1) / (AXIS_STOP_CM1 - AXIS_START_CM1)
    slope = 1.0 + FLUORESCENCE_SLOPE * x
    if variation is not None:
        level *= variation.fluorescence_factor
        slope = slope + variation.fluorescence_curvature * (4.0 * x * (1.0 - x))
    rayleigh = RAYLEIGH_TAIL_CPS * np.exp(
        -np.maximum(axis - AXIS_START_CM1, 0.0) / RAYLEIGH_TAIL_DECAY_CM1
    )
    return level * slope + rayleigh


def _thermal_emission(temperature_C: float, wavelength_nm: np.ndarray) -> np.ndarray:
    t_kelvin = temperature_C + 273.15
    if t_kelvin < 500.0:
        return np.zeros_like(wavelength_nm)
    reference_nm = float(raman_shift_to_wavelength_nm(1000.0))
    c2 = SECOND_RADIATION_CONSTANT_NM_K
    exponent = -c2 / (wavelength_nm * t_kelvin) + c2 / (reference_nm * 1123.15)
    return THERMAL_EMISSION_CPS_850C * (reference_nm / wavelength_nm) ** 5 * np.exp(exponent)


def _check_settings(
    temperature_C: float, exposure_s: float, accumulations: int, laser_power_mW: float
) -> None:
    in_range(
        temperature_C, -273.15, math.inf, "raman_model temperature", unit="C", include_low=False
    )
    as_positive(exposure_s, "raman_model exposure", unit="s")
    if int(accumulations) != accumulations or accumulations < 1:
        raise ValueError(f"raman_model accumulations {accumulations} must be an integer >= 1")
    as_positive(laser_power_mW, "raman_model laser power", unit="mW", allow_zero=True)


def _resolve_axis(wavenumber: ArrayLike | None) -> np.ndarray:
    if wavenumber is None:
        return _cached_default_axis()
    axis = np.asarray(wavenumber, dtype=float)
    if axis.ndim != 1 or axis.size == 0 or not np.all(np.isfinite(axis)):
        raise ValueError(f"raman_model wavenumber axis must be a finite 1-D array, got {axis!r}")
    return axis


def expected_counts(
    state: FilmState,
    temperature_C: float,
    wavenumber: ArrayLike | None = None,
    *,
    exposure_s: float = 1.0,
    laser_power_mW: float = REFERENCE_POWER_MW,
    laser_wavelength_nm: float = DEFAULT_LASER_WAVELENGTH_NM,
    variation: FilmRamanVariation | None = None,
) -> np.ndarray:
    """Noise-free mean counts per accumulation.

    Parameters
    ----------
    state : FilmState
        The film's structure (phase fractions, crystallite size, relaxation).
    temperature_C : float
        Film temperature during the measurement (C).
    wavenumber : array, optional
        Raman-shift axis (cm-1); :func:`default_axis` by default.
    exposure_s : float
        Exposure per accumulation (s).
    laser_power_mW : float
        Laser power at the sample (mW).
    laser_wavelength_nm : float
        Excitation wavelength (for the thermal-emission background).
    variation : FilmRamanVariation, optional
        This film's departure from the band table (none by default).

    Returns
    -------
    ndarray
        Mean counts at each axis point.
    """
    _check_settings(temperature_C, exposure_s, 1, laser_power_mW)
    axis = _resolve_axis(wavenumber)
    temperature_C = float(temperature_C)
    laser_scale = laser_power_mW / REFERENCE_POWER_MW
    laser_excited = _band_signal(state, temperature_C, axis, variation) + _laser_background(
        state, temperature_C, axis, variation
    )
    wavelength = raman_shift_to_wavelength_nm(axis, laser_wavelength_nm)
    unexcited = _thermal_emission(temperature_C, wavelength) + DARK_CPS
    return (laser_excited * laser_scale + unexcited) * exposure_s


def _excess_noise_factor(state: FilmState, axis: np.ndarray) -> np.ndarray | None:
    if state.rearranged <= 1e-3:
        return None
    window = 0.5 * (np.tanh((axis - 150.0) / 15.0) - np.tanh((axis - 550.0) / 15.0))
    return 1.0 + REARRANGEMENT_EXCESS_NOISE * state.rearranged * window


def _add_cosmic_rays(
    counts: np.ndarray, rng: np.random.Generator, exposure_s: float, accumulations: int
) -> None:
    n_spikes = rng.poisson(COSMIC_RAY_RATE_PER_S * exposure_s * accumulations)
    low, high = COSMIC_RAY_COUNTS
    for _ in range(n_spikes):
        width = int(rng.integers(1, 4))
        start = int(rng.integers(0, max(counts.size - width, 0) + 1))
        height = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        profile = rng.uniform(0.3, 1.0, size=width)
        profile[rng.integers(0, width)] = 1.0
        # One accumulation carries the spike; the reported mean divides it.
        counts[start : start + width] += height * profile[: counts.size - start] / accumulations


def spectrum(
    state: FilmState,
    temperature_C: float,
    wavenumber: ArrayLike | None = None,
    *,
    exposure_s: float = 1.0,
    accumulations: int = 1,
    laser_power_mW: float = REFERENCE_POWER_MW,
    laser_wavelength_nm: float = DEFAULT_LASER_WAVELENGTH_NM,
    rng: np.random.Generator | int | None = None,
    cosmic_rays: bool = True,
    variation: FilmRamanVariation | None = None,
) -> np.ndarray:
    """A noisy measured spectrum (mean over accumulations, in counts).

    Parameters
    ----------
    state : FilmState
        The film's structure.
    temperature_C : float
        Film temperature during the measurement (C).
    wavenumber : array, optional
        Raman-shift axis (cm-1); :func:`default_axis` (50-1000 cm-1, 1600 points) by default.
    exposure_s : float
        Exposure per accumulation (s), > 0.
    accumulations : int
        Number of accumulations averaged, >= 1.
    laser_power_mW : float
        Laser power at the sample (mW), >= 0.
    laser_wavelength_nm : float
        Excitation wavelength (nm).
    rng : numpy Generator or int, optional
        Random source (or seed); a fresh unseeded generator by default.
    cosmic_rays : bool
        Whether to add cosmic-ray spikes.
    variation : FilmRamanVariation, optional
        This film's departure from the band table (none by default).

    Returns
    -------
    ndarray
        Counts on the axis (float: the mean over accumulations).

    Raises
    ------
    ValueError
        On a non-positive exposure, accumulations < 1, negative power or an invalid axis.
    """
    _check_settings(temperature_C, exposure_s, accumulations, laser_power_mW)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    axis = _resolve_axis(wavenumber)
    n = int(accumulations)
    mean = expected_counts(
        state,
        temperature_C,
        axis,
        exposure_s=exposure_s,
        laser_power_mW=laser_power_mW,
        laser_wavelength_nm=laser_wavelength_nm,
        variation=variation,
    )
    total_mean = mean * n
    # The sum of n Poisson frames is one Poisson draw of n times the mean.
    counts = rng.poisson(total_mean).astype(float)
    excess = _excess_noise_factor(state, axis)
    if excess is not None:
        counts += rng.standard_normal(axis.size) * np.sqrt(total_mean * (excess**2 - 1.0))
    counts += rng.standard_normal(axis.size) * (READ_NOISE_COUNTS * np.sqrt(n))
    counts /= n
    if cosmic_rays:
        _add_cosmic_rays(counts, rng, exposure_s, n)
    return counts
