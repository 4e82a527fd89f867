"""The Raman spectrometer as an ophyd Device: settings as config signals, a spectrum per trigger."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device
from ophyd.status import DeviceStatus

from insitu import clock
from insitu.checks import as_positive
from insitu.devices.raman._axis import check_laser_wavelength
from insitu.devices.raman._backend import RamanBackend
from insitu.devices.raman._cosmic_rays import (
    median_of_accumulations,
    remove_spikes_whitaker_hayes,
)
from insitu.devices.raman._signals import ArraySignal, ChoiceSignal, RangeSignal
from insitu.devices.reconnect import ConnectedSignal, LinkState, Reconnector
from insitu.devices.status import ExplainedDeviceStatus

__all__ = ["RamanSpectrometer", "COSMIC_RAY_REMOVAL_MODES", "AcquisitionStoppedError"]

COSMIC_RAY_REMOVAL_MODES = ("off", "median", "whitaker_hayes")
MAX_EXPOSURE_S = 3600.0
MAX_ACCUMULATIONS = 1000
# Wall seconds a simulation's time may stand at an exposure's start or end waiting for the
# emulator (normally milliseconds) before it goes on anyway.
_PIN_WALL_LIMIT_S = 2.0


class AcquisitionStoppedError(RuntimeError):
    """The acquisition was stopped (``stop()``) before it finished."""


@dataclass
class _Acquisition:
    """One trigger in flight: its Status and whether a pause/suspension abandoned it."""

    status: DeviceStatus
    superseded: threading.Event = field(default_factory=threading.Event)
    ended: bool = False
    pins: list = field(default_factory=list)  # on virtual time: its exposure's start and end


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

    reconnect_timeout : float
        Wall seconds the device keeps trying to reconnect after its link is lost, before it
        gives up (backends with a ``reconnect()`` method only).

    Signals
    -------
    spectrum : reading, 1-D counts (mean over accumulations)
    exposure, accumulations, laser_power, laser_wavelength, wavenumber, cosmic_ray_removal :
        configuration; ``wavenumber`` is the Raman-shift axis (cm-1) of the last spectrum.
    connected : omitted from readings; 1 while the link is up, 0 from a link failure until the
        background reconnect succeeds (watch it with
        :func:`insitu.plans.suspenders.connection_suspenders`).

    Notes
    -----
    A lost link (the backend's ``link_errors``: a closed socket, a silent or garbled server)
    during an acquisition sets ``connected`` to 0 at once and starts
    :attr:`reconnector` (exponential backoff, wall time). The trigger's Status does not fail:
    it waits for the reconnect and acquires again, unless the RunEngine suspends meanwhile
    (``pause()``), which abandons it (the Status finishes without new data; the RunEngine
    replays the trigger after resuming). If the reconnector gives up, the Status fails with
    ``ConnectionError`` saying why. Backends without ``reconnect()`` fail at once, as before.
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
    connected = Cpt(ConnectedSignal, kind="omitted")

    def __init__(
        self,
        backend: RamanBackend,
        *,
        name: str,
        laser_wavelength_nm: float = 532.0,
        max_laser_power_mW: float = 20.0,
        cosmic_ray_removal: str = "off",
        max_exposure_s: float = MAX_EXPOSURE_S,
        reconnect_timeout: float = 300.0,
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
        max_power = as_positive(
            max_laser_power_mW, f"{name}.max_laser_power", unit="mW", maximum=1000.0
        )
        max_exposure = as_positive(
            max_exposure_s, f"{name}.max_exposure", unit="s", maximum=86400.0
        )
        self.cosmic_ray_removal.check_value(cosmic_ray_removal)
        self.backend = backend
        self.laser_power.high = max_power
        self.exposure.high = max_exposure
        self.laser_power.put(min(10.0, max_power))
        self.laser_wavelength.put(laser)
        self.cosmic_ray_removal.put(cosmic_ray_removal)
        self._busy = threading.Lock()  # held by the thread talking to the backend
        self._stop_requested = threading.Event()
        self._applied_settings: tuple[float, int, float] | None = None
        self._inflight_lock = threading.Lock()
        self._current: _Acquisition | None = None  # the latest trigger
        self._running: _Acquisition | None = None  # the one talking to the backend
        can_reconnect = callable(getattr(backend, "reconnect", None))
        self.link_errors: tuple[type[BaseException], ...] = (
            tuple(getattr(backend, "link_errors", ())) if can_reconnect else ()
        )
        self.reconnector: Reconnector | None = (
            Reconnector(
                self._reconnect_backend,
                self.connected,
                owner=name,
                give_up_after=reconnect_timeout,
            )
            if can_reconnect
            else None
        )

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
            If an acquisition is already running (one abandoned by ``pause()`` does not count:
            the new one starts when it has ended).
        """
        settings = self._checked_settings()
        with self._inflight_lock:
            current = self._current
            if current is not None and not current.ended and not current.superseded.is_set():
                raise RuntimeError(f"{self.name} is already acquiring a spectrum")
            self._stop_requested.clear()
            # No stop() on failure: the Status fails only when its acquisition has ended, and
            # ophyd calls stop() after waking the waiters, so it landed on the next trigger's
            # acquisition (AcquisitionStoppedError on a retry right after a failure).
            acquisition = _Acquisition(ExplainedDeviceStatus(self, call_stop_on_failure=False))
            # Experiment time the exposure should end at: a simulation's held time runs at full
            # speed only to there (issue 17); real instruments never read it.
            exposure, accumulations = settings[0], settings[1]
            clock.expect_end(acquisition.status, clock.now() + exposure * accumulations)
            # On virtual time the exposure starts at this very instant, however long the
            # settings take on the wire (see _pinned_acquire).
            started = clock.pin(until_started=True, wall_limit=_PIN_WALL_LIMIT_S)
            acquisition.pins = [started] if started is not None else []
            self._current = acquisition
        thread = threading.Thread(
            target=self._acquire_in_background,
            args=(settings, acquisition),
            name=f"{self.name}-acquire",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            acquisition.ended = True
            raise
        return acquisition.status

    def _acquire_in_background(
        self, settings: tuple[float, int, float, str], acquisition: _Acquisition
    ) -> None:
        with self._busy:  # an abandoned acquisition still talking to the backend ends first
            self._running = acquisition
            try:
                result = self._acquire_until_done(settings, acquisition)
            except Exception as exc:  # handed to the Status, which re-raises it in the plan
                self._end(acquisition, error=exc)
                return
            if result is not None and not acquisition.superseded.is_set():
                self.wavenumber.put(result[0])
                self.spectrum.put(result[1])
            self._end(acquisition)

    def _acquire_until_done(
        self, settings: tuple[float, int, float, str], acquisition: _Acquisition
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Acquire, riding out lost links; ``None`` if a pause/suspension abandoned it."""
        reconnector = self.reconnector
        while True:
            if reconnector is not None:
                state = reconnector.wait_settled(acquisition.superseded)
                if acquisition.superseded.is_set():
                    return None
                if state == LinkState.GAVE_UP:
                    reconnector.try_once()  # a new trigger after a give-up: one more try
            try:
                result = self._acquire(*settings)
            except self.link_errors as exc:
                if acquisition.superseded.is_set():
                    return None
                self._applied_settings = None
                reconnector.link_lost(exc)  # connected -> 0 now; a suspender trips
                continue
            if reconnector is not None:
                reconnector.mark_healthy()
            return None if acquisition.superseded.is_set() else result

    def _end(self, acquisition: _Acquisition, error: Exception | None = None) -> None:
        """Finish the Status once: abandoned ones finish without error (nobody reads them)."""
        with self._inflight_lock:
            if acquisition.ended:
                return
            acquisition.ended = True
        try:
            if error is None or acquisition.superseded.is_set():
                acquisition.status.set_finished()
            else:
                acquisition.status.set_exception(error)
        finally:  # after the Status: a plan waiting for it holds time at the exposure's end
            for pinned in acquisition.pins:
                pinned.release()

    def _reconnect_backend(self) -> None:
        """Called by the reconnector: reopen the backend; settings are sent again afterwards."""
        self._applied_settings = None
        self.backend.reconnect()

    def pause(self) -> None:
        """The RunEngine pauses or suspends: abandon the acquisition in flight.

        Its Status finishes at once without new data (the RunEngine rewinds to its last
        checkpoint and triggers again on resume). A running exposure cannot be cut short
        (LabSpec 6 has no abort); its spectrum is discarded and the next trigger starts
        when it has ended.
        """
        with self._inflight_lock:
            acquisition = self._current
            if acquisition is None or acquisition.ended:
                return
            acquisition.superseded.set()
        self._end(acquisition)

    def resume(self) -> None:
        """The RunEngine resumes: nothing to do (the replayed trigger acquires again)."""

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
                if self._stop_requested.is_set() or self._abandoned():
                    raise AcquisitionStoppedError(f"{self.name} acquisition was stopped")
                axis, frame = self._pinned_acquire(exposure)
                frames.append(frame)
            return axis, median_of_accumulations(np.vstack(frames))
        self._configure(exposure, accumulations, power)
        axis, counts = self._pinned_acquire(exposure * accumulations)
        if mode == "whitaker_hayes":
            counts = remove_spikes_whitaker_hayes(counts)
        if self._stop_requested.is_set():
            raise AcquisitionStoppedError(f"{self.name} acquisition was stopped")
        return axis, counts

    def _pinned_acquire(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """``backend.acquire()``; on a simulation's virtual time, pinned so that it repeats.

        Time stands where the acquisition was asked for until the (simulated) instrument starts
        exposing, and at the exposure's end until the spectrum is read: the same experiment
        times in every run, not where a thread's wall latency put them. Each pin lapses after
        ``_PIN_WALL_LIMIT_S`` of wall time, so an instrument that never answers delays the
        simulation but cannot stop it. Real instruments: a plain ``backend.acquire()``.
        """
        acquisition = self._running
        if acquisition is not None:
            new = [
                clock.pin(until_started=True, wall_limit=_PIN_WALL_LIMIT_S),
                clock.pin(clock.now() + seconds, wall_limit=_PIN_WALL_LIMIT_S),
            ]
            for old in acquisition.pins:  # released once the new ones stand
                old.release()
            acquisition.pins = [p for p in new if p is not None]
        return self._checked(*self.backend.acquire())

    def _abandoned(self) -> bool:
        running = self._running
        return running is not None and running.superseded.is_set()

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
        """Stop reconnecting, close the backend and destroy the device's signals."""
        try:
            if self.reconnector is not None:
                self.reconnector.close()
            self.backend.close()
        finally:
            self.destroy()
