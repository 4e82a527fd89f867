"""Raman-shift axis: conversion between detector wavelength (nm) and Raman shift (cm-1)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from insitu.checks import in_range

__all__ = ["raman_shift_cm1", "wavelength_nm", "check_laser_wavelength"]


def check_laser_wavelength(laser_wavelength_nm: float, *, owner: str = "raman") -> float:
    """Return ``laser_wavelength_nm`` as a float, or raise if it is not a plausible laser line.

    Raises
    ------
    ValueError
        If it is not a finite number between 200 and 2000 nm.
    """
    return in_range(laser_wavelength_nm, 200.0, 2000.0, f"{owner}.laser_wavelength", unit="nm")


def raman_shift_cm1(wavelength: ArrayLike, laser_wavelength_nm: float) -> np.ndarray:
    """Raman shift (cm-1) of scattered light at ``wavelength`` (nm).

    ``shift = 1e7 / laser_nm - 1e7 / wavelength_nm`` (positive for Stokes light).

    Raises
    ------
    ValueError
        If any wavelength is not a positive finite number.
    """
    laser = check_laser_wavelength(laser_wavelength_nm)
    lam = np.asarray(wavelength, dtype=float)
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError("raman axis: wavelengths must be positive finite numbers (nm)")
    return 1e7 / laser - 1e7 / lam


def wavelength_nm(shift_cm1: ArrayLike, laser_wavelength_nm: float) -> np.ndarray:
    """Wavelength (nm) of light Raman-shifted by ``shift_cm1`` from the laser line.

    Raises
    ------
    ValueError
        If a shift is not finite or reaches the laser's wavenumber (no such wavelength).
    """
    laser = check_laser_wavelength(laser_wavelength_nm)
    shift = np.asarray(shift_cm1, dtype=float)
    wavenumber = 1e7 / laser - shift
    if not np.all(np.isfinite(shift)) or np.any(wavenumber <= 0):
        raise ValueError(
            f"raman axis: shifts must be finite and below {1e7 / laser:.1f} cm-1 "
            f"for a {laser} nm laser"
        )
    return 1e7 / wavenumber
