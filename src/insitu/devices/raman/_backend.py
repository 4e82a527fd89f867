"""The small interface every Raman backend implements (LabSpec 6, WITec, test doubles)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["RamanBackend"]


@runtime_checkable
class RamanBackend(Protocol):
    """What :class:`~insitu.devices.raman.RamanSpectrometer` needs from an instrument.

    A backend talks to one spectrometer. Methods block and are called from one thread at a time
    (the device's acquisition thread); errors are raised, never returned or logged.
    """

    laser_wavelength_nm: float
    """Excitation wavelength the backend uses to convert its x axis to Raman shift."""

    def configure(self, exposure_s: float, accumulations: int, laser_power_mW: float) -> None:
        """Apply exposure per accumulation (s), number of accumulations and laser power (mW).

        Raises ``ValueError`` for a setting the instrument cannot take.
        """
        ...

    def acquire(self) -> tuple[np.ndarray, np.ndarray]:
        """Acquire one spectrum; return ``(raman_shift_cm1, counts)``, equal-length 1-D arrays.

        ``counts`` is the mean over the configured accumulations.
        """
        ...

    def close(self) -> None:
        """Release the instrument (log out, close the connection)."""
        ...
