"""The Raman spectrometer as an ophyd Device: settings as config signals, a spectrum per trigger."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device
from ophyd.status import DeviceStatus

from insitu.devices.raman._axis import check_laser_wavelength
from insitu.devices.raman._backend import RamanBackend
from insitu.devices.raman._cosmic_rays import (
    median_of_accumulations,
    remove_spikes_whitaker_hayes,
)
from insitu.devices.raman._signals import ArraySignal, ChoiceSignal, RangeSignal

__all__ = ["RamanSpectrometer", "COSMIC_RAY_REMOVAL_MODES", "AcquisitionStoppedError"]

COSMIC_RAY_REMOVAL_MODES = ("off", "median", "whitaker_hayes")
MAX_EXPOSURE_S = 3600.0
MAX_ACCUMULATIONS = 1000


class AcquisitionStoppedError(RuntimeError):
    """The acquisition was stopped (``stop()``) before it finished."""


class RamanSpectrometer(Device):
    """A CCD Raman spectrometer behind a backend (LabSpec 6, WITec, or a test double).

    Parameters
    ----------
    backend : RamanBackend
        Talks to the instrument: ``configure``, ``acquire``, ``close``.
    name : str
        Device name (prefix of every signal name).
    laser_wavelength_nm : float
        Excitation wavelength; must match the backend's when the backend states one.
    max_laser_power_mW : float
        Highest laser power a plan may set (protects the film).
    cosmic_ray_removal : {"off", "median", "whitaker_hayes"}
        Initial value of the ``cosmic_ray_removal`` signal. ``"median"`` acquires the
        accumulations one by one and keeps the pixel-wise median (needs >= 3 accumulations);
        ``"whitaker_hayes"`` despikes each spectrum by the modified z-score of its first
        difference.
    max_exposure_s : float
        Highest exposure per accumulation (s).

    Signals
    -------
    spectrum : reading, 1-D counts (mean over accumulations)
    exposure, accumulations, laser_power, laser_wavelength, wavenumber, cosmic_ray_removal :
        configuration; ``wavenumber`` is the Raman-shift axis (cm-1) of the last spectrum.
    """

    spectrum = Cpt(ArraySignal, units="counts", kind="normal")
    wavenumber = Cpt(ArraySignal, units="cm^-1", kind="config")
    exposure = Cpt(
        RangeSignal,
        value=1.0,
        low=0.0,
        high=MAX_EXPOSURE_S,
        low_exclusive=True,
        units="s",
        kind="config",
    )
    accumulations = Cpt(
        RangeSignal, value=1, low=1, high=MAX_ACCUMULATIONS, integer=True, kind="config"
    )
    laser_power = Cpt(
        RangeSignal, value=1.0, low=0.0, high=1.0, low_exclusive=True, units="mW", kind="config"
    )
    laser_wavelength = Cpt(
        RangeSignal, value=532.0, low=200.0, high=2000.0, units="nm", kind="config"
    )
    cosmic_ray_removal = Cpt(
        ChoiceSignal, value="off", choices=COSMIC_RAY_REMOVAL_MODES, kind="config"
    )

    def __init__(
        self,
        backend: RamanBackend,
        *,
        name: str,
        laser_wavelength_nm: float = 532.0,
        max_laser_power_mW: float = 20.0,
        cosmic_ray_removal: str = "off",
        max_exposure_s: float = MAX_EXPOSURE_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        for method in ("configure", "acquire", "close"):
            if not callable(getattr(backend, method, None)):
                raise TypeError(f"{name} backend {backend!r} has no {method}() method")
        laser = check_laser_wavelength(laser_wavelength_nm, owner=name)
        backend_laser = getattr(backend, "laser_wavelength_nm", None)
        if backend_laser is not None and abs(float(backend_laser) - laser) > 0.01:
            raise ValueError(
                f"{name}.laser_wavelength {laser} nm differs from its backend's "
                f"{backend_laser} nm: the Raman-shift axis would be wrong"
            )
        max_power = float(max_laser_power_mW)
        if not (np.isfinite(max_power) and 0 < max_power <= 1000.0):
            raise ValueError(
                f"{name}.max_laser_power {max_laser_power_mW} mW is outside the allowed range "
                f"0 < value <= 1000 mW"
            )
        max_exposure = float(max_exposure_s)
        if not (np.isfinite(max_exposure) and 0 < max_exposure <= 86400.0):
            raise ValueError(
                f"{name}.max_exposure {max_exposure_s} s is outside the allowed range "
                f"0 < value <= 86400 s"
            )
        self.cosmic_ray_removal.check_value(cosmic_ray_removal)
        self.backend = backend
        self.laser_power.high = max_power
        self.exposure.high = max_exposure
        self.laser_power.put(min(10.0, max_power))
        self.laser_wavelength.put(laser)
        self.cosmic_ray_removal.put(cosmic_ray_removal)
        self._busy = threading.Lock()
        self._stop_requested = threading.Event()
        self._applied_settings: tuple[float, int, float] | None = None

    # --- settings -------------------------------------------------------------------------
    def _checked_settings(self) -> tuple[float, int, float, str]:
        """Read and re-check every setting; raise ``ValueError`` naming the bad one."""
        exposure = self.exposure.get()
        accumulations = self.accumulations.get()
        power = self.laser_power.get()
        mode = self.cosmic_ray_removal.get()
        self.exposure.check_value(exposure)
        self.accumulations.check_value(accumulations)
        self.laser_power.check_value(power)
        self.cosmic_ray_removal.check_value(mode)
        if mode == "median" and accumulations < 3:
            raise ValueError(
                f"{self.name}.accumulations {accumulations} is outside the allowed range for "
                f"median cosmic-ray removal: 3 <= integer <= {MAX_ACCUMULATIONS}"
            )
        return float(exposure), int(accumulations), float(power), str(mode)

    # --- bluesky interface ----------------------------------------------------------------
    def trigger(self) -> DeviceStatus:
        """Start one acquisition in a background thread; the Status finishes when it is read.

        Raises
        ------
        ValueError
            If a setting is out of range (before anything is sent to the instrument).
        RuntimeError
            If an acquisition is already running.
        """
        settings = self._checked_settings()
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(f"{self.name} is already acquiring a spectrum")
        self._stop_requested.clear()
        status = DeviceStatus(self)
        thread = threading.Thread(
            target=self._acquire_in_background,
            args=(settings, status),
            name=f"{self.name}-acquire",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            self._busy.release()
            raise
        return status

    def _acquire_in_background(
        self, settings: tuple[float, int, float, str], status: DeviceStatus
    ) -> None:
        try:
            axis, counts = self._acquire(*settings)
            self.wavenumber.put(axis)
            self.spectrum.put(counts)
        except Exception as exc:  # handed to the Status, which re-raises it in the plan
            self._busy.release()
            status.set_exception(exc)
        else:
            self._busy.release()
            status.set_finished()

    def _configure(self, exposure: float, accumulations: int, power: float) -> None:
        wanted = (exposure, accumulations, power)
        if wanted != self._applied_settings:
            self._applied_settings = None
            self.backend.configure(exposure, accumulations, power)
            self._applied_settings = wanted

    def _acquire(
        self, exposure: float, accumulations: int, power: float, mode: str
    ) -> tuple[np.ndarray, np.ndarray]:
        if mode == "median":
            self._configure(exposure, 1, power)
            frames = []
            axis = np.zeros(0)
            for _ in range(accumulations):
                if self._stop_requested.is_set():
                    raise AcquisitionStoppedError(f"{self.name} acquisition was stopped")
                axis, frame = self._checked(*self.backend.acquire())
                frames.append(frame)
            return axis, median_of_accumulations(np.vstack(frames))
        self._configure(exposure, accumulations, power)
        axis, counts = self._checked(*self.backend.acquire())
        if mode == "whitaker_hayes":
            counts = remove_spikes_whitaker_hayes(counts)
        if self._stop_requested.is_set():
            raise AcquisitionStoppedError(f"{self.name} acquisition was stopped")
        return axis, counts

    def _checked(self, axis: Any, counts: Any) -> tuple[np.ndarray, np.ndarray]:
        axis = np.asarray(axis, dtype=float)
        counts = np.asarray(counts, dtype=float)
        if axis.ndim != 1 or axis.shape != counts.shape or axis.size == 0:
            raise ValueError(
                f"{self.name} backend returned an axis of shape {axis.shape} and counts of "
                f"shape {counts.shape}; expected two equal 1-D arrays"
            )
        return axis, counts

    def stop(self, *, success: bool = False) -> None:
        """Ask a running acquisition to stop.

        The spectrum being exposed cannot be cut short (LabSpec 6 has no abort command); the
        Status then fails with :class:`AcquisitionStoppedError` instead of delivering it.
        """
        self._stop_requested.set()
        super().stop(success=success)

    def close(self) -> None:
        """Close the backend and destroy the device's signals."""
        try:
            self.backend.close()
        finally:
            self.destroy()
