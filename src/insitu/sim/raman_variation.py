"""How one simulated film and one simulated spectrometer depart from the nominal band table.

A real lab's film is never the paper's film and its spectrometer is never ours: band widths and
intensity ratios differ from film to film, the amorphous network's bands sit and spread a little
differently, fluorescence differs in level and shape, the axis calibration is off by a fraction
of a wavenumber and the laser power drifts. The simulated beamline draws all of that (seeded),
so the analysis is exercised the way a new instrument would exercise it, not on the very shapes
of :mod:`insitu.sim.raman_bands`.

``spread`` scales every range: 0 is the nominal table, 1 the default (a typical film on a
typical instrument: widths x0.8-1.25, ratios x0.7-1.4, amorphous bands moved by ~4 cm-1,
fluorescence x0.5-3 with a curvature, an axis offset of ~1 cm-1, laser drift up to 5 %), 2-3 the
wide variation of the detector's robustness suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insitu.checks import in_range
from insitu.sim.raman_bands import BANDS

__all__ = ["FilmRamanVariation", "SpectrometerVariation", "MAX_SPREAD"]

MAX_SPREAD = 3.0
# Half-ranges of the log factors at spread 1.
_LOG_WIDTH = math.log(1.25)
_LOG_HEIGHT = math.log(1.4)
_LOG_FLUORESCENCE_LOW, _LOG_FLUORESCENCE_HIGH = math.log(0.5), math.log(3.0)
# Standard deviations of band shifts at spread 1 (cm-1): the amorphous network's bands are broad
# and composition-dependent; a crystal's bands move only with strain and composition.
_AMORPHOUS_SHIFT_CM1 = 4.0
_CRYSTAL_SHIFT_CM1 = 0.7
_FLUORESCENCE_CURVATURE = 0.3
_AXIS_OFFSET_CM1 = 1.0
_AXIS_STRETCH = 5e-4
_LASER_DRIFT = 0.05
_LASER_DRIFT_PERIOD_S = (3600.0, 4 * 3600.0)


def _check_spread(spread: float) -> float:
    return in_range(spread, 0.0, MAX_SPREAD, "raman variation spread")


@dataclass(frozen=True)
class FilmRamanVariation:
    """One film's material variation, band by band in the order of ``raman_bands.BANDS``.

    Attributes
    ----------
    width_factors, height_factors : tuple of float
        Multiply each band's FWHM and height.
    shifts_cm1 : tuple of float
        Added to each band's position.
    fluorescence_factor : float
        Multiplies the fluorescence level.
    fluorescence_curvature : float
        Relative quadratic term of the fluorescence across the axis.
    """

    width_factors: tuple[float, ...]
    height_factors: tuple[float, ...]
    shifts_cm1: tuple[float, ...]
    fluorescence_factor: float = 1.0
    fluorescence_curvature: float = 0.0

    @classmethod
    def nominal(cls) -> FilmRamanVariation:
        """No variation: the band table as written."""
        ones = (1.0,) * len(BANDS)
        return cls(ones, ones, (0.0,) * len(BANDS))

    @classmethod
    def draw(cls, rng: np.random.Generator, spread: float = 1.0) -> FilmRamanVariation:
        """A film drawn at ``spread`` (0 to :data:`MAX_SPREAD`)."""
        spread = _check_spread(spread)
        if spread == 0:
            return cls.nominal()
        n = len(BANDS)
        crystal = np.array([band.size_broadened for band in BANDS])
        shift_sd = np.where(crystal, _CRYSTAL_SHIFT_CM1, _AMORPHOUS_SHIFT_CM1) * spread
        low, high = _LOG_FLUORESCENCE_LOW * spread, _LOG_FLUORESCENCE_HIGH * spread
        return cls(
            width_factors=tuple(np.exp(rng.uniform(-1, 1, n) * _LOG_WIDTH * spread)),
            height_factors=tuple(np.exp(rng.uniform(-1, 1, n) * _LOG_HEIGHT * spread)),
            shifts_cm1=tuple(rng.standard_normal(n) * shift_sd),
            fluorescence_factor=float(np.exp(rng.uniform(low, high))),
            fluorescence_curvature=float(rng.uniform(-1, 1) * _FLUORESCENCE_CURVATURE * spread),
        )


@dataclass(frozen=True)
class SpectrometerVariation:
    """One spectrometer's axis calibration error and laser-power drift.

    Attributes
    ----------
    axis_offset_cm1, axis_stretch : float
        The true Raman shift of a pixel is ``offset + (1 + stretch) * reported``.
    laser_drift : float
        Relative amplitude of the slow laser-power drift.
    laser_drift_period_s, laser_drift_phase : float
        Its period (experiment seconds) and phase (radians).
    """

    axis_offset_cm1: float = 0.0
    axis_stretch: float = 0.0
    laser_drift: float = 0.0
    laser_drift_period_s: float = 7200.0
    laser_drift_phase: float = 0.0

    @classmethod
    def draw(cls, rng: np.random.Generator, spread: float = 1.0) -> SpectrometerVariation:
        """An instrument drawn at ``spread`` (0 to :data:`MAX_SPREAD`)."""
        spread = _check_spread(spread)
        if spread == 0:
            return cls()
        return cls(
            axis_offset_cm1=float(rng.standard_normal() * _AXIS_OFFSET_CM1 * spread),
            axis_stretch=float(rng.standard_normal() * _AXIS_STRETCH * spread),
            laser_drift=float(rng.uniform(0.0, _LASER_DRIFT * spread)),
            laser_drift_period_s=float(rng.uniform(*_LASER_DRIFT_PERIOD_S)),
            laser_drift_phase=float(rng.uniform(0.0, 2 * math.pi)),
        )

    def true_axis(self, reported_cm1: np.ndarray) -> np.ndarray:
        """The Raman shifts the pixels really see, given the axis the software reports."""
        return self.axis_offset_cm1 + (1.0 + self.axis_stretch) * np.asarray(reported_cm1)

    def laser_factor(self, t: float) -> float:
        """Laser power relative to its set value at experiment time ``t``."""
        phase = 2 * math.pi * t / self.laser_drift_period_s + self.laser_drift_phase
        return 1.0 + self.laser_drift * math.sin(phase)
