"""``ZahnerEIS``: potentiostatic impedance sweeps on a Zahner analyzer as an ophyd Device."""

from __future__ import annotations

import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device
from ophyd.status import DeviceStatus, StatusBase
from thales_remote.script_wrapper import FileNaming, PotentiostatMode, ScanDirection, ScanStrategy
from zahner_analysis.file_import.ism_import import IsmImport

from insitu import clock
from insitu.devices.reconnect import ConnectedSignal, LinkState, Reconnector
from insitu.devices.status import ExplainedDeviceStatus
from insitu.devices.zahner._address import parse_term_address
from insitu.devices.zahner._errors import (
    ZahnerConnectionError,
    ZahnerError,
    ZahnerSweepAborted,
)
from insitu.devices.zahner._session import ThalesSession
from insitu.devices.zahner._settings import (
    AMPLITUDE,
    BAND_EDGE_HZ,
    DC_POTENTIAL,
    FREQUENCY,
    PERIODS,
    POINTS_PER_DECADE,
    SweepSettings,
    check_thales_path,
)
from insitu.devices.zahner._signals import MeasuredSignal, SettingSignal, SpectrumSignal

__all__ = ["ZahnerEIS"]


def _check_start(label: str, value: Any) -> float:
    if not isinstance(value, (bool, np.bool_, np.ndarray)) and value == 0:
        return 0.0
    return FREQUENCY.check(label, value)


def _setting(check: Any, value: float, units: str, limits: tuple[float, float]) -> Cpt:
    return Cpt(SettingSignal, check=check, value=value, units=units, limits=limits, kind="config")


@dataclass
class _Sweep:
    """One trigger in flight: its Status, and why it should end early.

    ``abort`` is set by ``stop()`` and ``pause()``; ``superseded`` only by ``pause()`` (the
    RunEngine suspends and will trigger again: the Status finishes without new data).
    """

    status: DeviceStatus
    abort: threading.Event = field(default_factory=threading.Event)
    superseded: threading.Event = field(default_factory=threading.Event)
    ended: bool = False
    pins: list = field(default_factory=list)  # virtual time: its start, then its result
    started_at: float = 0.0  # experiment time of the trigger


_FREQ_LIMITS = (FREQUENCY.low, FREQUENCY.high)
_COUNT_LIMITS = (POINTS_PER_DECADE.low, POINTS_PER_DECADE.high)
_PERIOD_LIMITS = (PERIODS.low, PERIODS.high)
# Wall seconds a simulation's time may stand at a sweep's start or end waiting for the
# analyzer (normally milliseconds) before it goes on anyway.
_PIN_WALL_LIMIT_S = 2.0


class ZahnerEIS(Device):
    """A Zahner impedance analyzer (Zennium, IM6) run through Term with ``thales_remote``.

    ``trigger()`` runs one potentiostatic EIS sweep in a background thread: Thales is set up,
    the potentiostat switched on, the sweep measured, the potentiostat switched off again (also
    after an error or ``stop()``), and the ``.ism`` result file brought over Term's FileExchange
    channel and read with ``zahner_analysis``. The Status finishes when the spectrum is in the
    reading signals. The connection opens on first use and is reopened after it breaks.

    Parameters
    ----------
    address : str
        Term's address: ``"host"``, ``"host:port"`` or ``"TCPIP::host::port::SOCKET"``
        (port 260 unless given).
    name : str
        Device name.
    thales_data_path : str
        Folder on the Thales PC where Thales writes the result files (must exist there).
    heartbeat_period, heartbeat_timeout : float
        Wall seconds between Term heartbeats during a sweep, and how long one may take before
        the connection counts as lost.
    stop_timeout : float
        Wall seconds ``stop()`` waits for the sweep thread to switch the potentiostat off.
    reconnect_timeout : float
        Wall seconds the device keeps trying to reconnect after the link to Term is lost.

    Notes
    -----
    Settings (kind ``config``, checked against the ranges in
    :mod:`insitu.devices.zahner._settings` when set and again before a sweep): ``f_max``,
    ``f_min``, ``f_start`` (0 = start at ``f_max``), ``points_per_decade_upper/lower`` (steps per
    decade above/below 66 Hz), ``amplitude`` (V), ``dc_potential`` (V), ``periods_upper/lower``.
    Reading: ``frequency`` (Hz), ``z_real``, ``z_imag`` (ohm), ascending in frequency, and
    ``sweep_duration`` (experiment seconds, ``kind='hinted'``).

    ``connected`` (omitted from readings) is 1 while the link to Term is up or not needed yet,
    0 from a lost link until :attr:`reconnector` has reopened it (exponential backoff in wall
    time) and switched the potentiostat off. A sweep whose link drops does not fail: it waits
    for the reconnection and sweeps again, unless the RunEngine suspends meanwhile
    (``pause()``): then its Status finishes without new data and the RunEngine triggers again
    after resuming. If the reconnector gives up, the Status fails with
    :class:`ZahnerConnectionError` saying why. A Term that was never reached fails at once.
    """

    f_max = _setting(FREQUENCY.check, 1e6, "Hz", _FREQ_LIMITS)
    f_min = _setting(FREQUENCY.check, 0.1, "Hz", _FREQ_LIMITS)
    f_start = _setting(_check_start, 0.0, "Hz", _FREQ_LIMITS)
    points_per_decade_upper = _setting(POINTS_PER_DECADE.check, 10, "", _COUNT_LIMITS)
    points_per_decade_lower = _setting(POINTS_PER_DECADE.check, 5, "", _COUNT_LIMITS)
    amplitude = _setting(AMPLITUDE.check, 0.05, "V", (AMPLITUDE.low, AMPLITUDE.high))
    dc_potential = _setting(DC_POTENTIAL.check, 0.0, "V", (DC_POTENTIAL.low, DC_POTENTIAL.high))
    periods_upper = _setting(PERIODS.check, 20, "", _PERIOD_LIMITS)
    periods_lower = _setting(PERIODS.check, 5, "", _PERIOD_LIMITS)

    frequency = Cpt(SpectrumSignal, units="Hz", kind="normal")
    z_real = Cpt(SpectrumSignal, units="Ohm", kind="normal")
    z_imag = Cpt(SpectrumSignal, units="Ohm", kind="normal")
    sweep_duration = Cpt(MeasuredSignal, value=0.0, units="s", kind="hinted")
    connected = Cpt(ConnectedSignal, kind="omitted")

    _SETTING_NAMES = (
        "f_max",
        "f_min",
        "f_start",
        "points_per_decade_upper",
        "points_per_decade_lower",
        "amplitude",
        "dc_potential",
        "periods_upper",
        "periods_lower",
    )

    def __init__(
        self,
        address: str,
        *,
        name: str,
        thales_data_path: str = r"c:\thales\temp",
        heartbeat_period: float = 0.5,
        heartbeat_timeout: float = 5.0,
        stop_timeout: float = 60.0,
        reconnect_timeout: float = 300.0,
        **kwargs: Any,
    ) -> None:
        self.host, self.port = parse_term_address(address)
        self.address = address
        self.source_prefix = f"thales://{self.host}:{self.port}"
        super().__init__(name=name, **kwargs)
        self.thales_data_path = check_thales_path(f"{name}.thales_data_path", thales_data_path)
        self.heartbeat_period = float(heartbeat_period)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.stop_timeout = float(stop_timeout)
        self._session: ThalesSession | None = None
        self._session_lock = threading.Lock()
        self._busy = threading.Lock()  # one sweep or single point at a time
        self._inflight_lock = threading.Lock()
        self._current: _Sweep | None = None  # the latest trigger
        self._measuring_point = False
        self._link_established = False  # a first contact that fails is an error at once
        self._worker: threading.Thread | None = None
        self.reconnector = Reconnector(
            self._reopen_and_switch_off,
            self.connected,
            owner=name,
            give_up_after=reconnect_timeout,
        )
        self._last_sweep: tuple[SweepSettings, int] | None = None
        self._fastest_sweep_s: dict[SweepSettings, float] = {}  # measuring, experiment s
        self._file_prefix = re.sub(r"[^0-9A-Za-z_+-]", "_", name)[:20] or "eis"

    # --- connection ----------------------------------------------------------------------------
    @property
    def thales_version(self) -> str:
        """Version reported by Thales ("" before the first connection)."""
        session = self._session
        return session.thales_version if session is not None else ""

    def connect(self) -> None:
        """Open the connection to Term now instead of on first use.

        Raises
        ------
        ZahnerConnectionError
            If Term cannot be reached.
        """
        self._open_session()

    def _open_session(self) -> ThalesSession:
        with self._session_lock:
            if self._session is not None and self._session.usable:
                return self._session
            if self._session is not None:
                self._session.close()
                self._session = None
            session = ThalesSession(self.host, self.port, owner=self.name)
            session.open()
            self._session = session
            self._link_established = True
            return session

    def _reopen_and_switch_off(self) -> None:
        """The reconnector's step: a fresh session to Term, then the potentiostat off.

        Term keeps the instrument's state when the link drops (a potentiostat that was on
        stays on), so the link only counts as back once it is switched off.
        """
        with self._session_lock:
            if self._session is not None:
                self._session.sever()
                self._session = None
        self._switch_off()

    def close(self) -> None:
        """Stop a running sweep and close the connection to Term (reopened on next use)."""
        self.stop()
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def destroy(self) -> None:
        """Stop reconnecting, close the connection and release the ophyd Device."""
        self.reconnector.close()
        self.close()
        super().destroy()

    # --- settings ------------------------------------------------------------------------------
    def sweep_settings(self) -> SweepSettings:
        """The current settings, each re-checked, as one sweep's settings.

        Raises
        ------
        ValueError
            If a setting is outside its range (also one stored with ``put(force=True)``) or the
            settings contradict each other.
        """
        values = {
            key: getattr(self, key).checked(getattr(self, key).get()) for key in self._SETTING_NAMES
        }
        settings = SweepSettings(**values)
        settings.check_consistent(self.name)
        return settings

    def expected_point_count(self) -> int:
        """Points the next sweep returns: the last sweep's count if the settings are unchanged,
        else the count predicted from the settings."""
        try:
            settings = self.sweep_settings()
        except ValueError:
            return 0
        if self._last_sweep is not None and self._last_sweep[0] == settings:
            return self._last_sweep[1]
        return settings.point_count()

    # --- sweep ---------------------------------------------------------------------------------
    def trigger(self) -> StatusBase:
        """Start one EIS sweep; the Status finishes when the spectrum has been read.

        Raises
        ------
        ValueError
            At once, before anything is sent, if a setting is out of range.
        RuntimeError
            If a sweep or a single-point measurement is already running (a sweep abandoned by
            ``pause()`` does not count: the new one starts when it has ended).
        """
        settings = self.sweep_settings()
        with self._inflight_lock:
            current = self._current
            active = current is not None and not current.ended and not current.superseded.is_set()
            if active or self._measuring_point:
                raise RuntimeError(f"{self.name}: a measurement is already running")
            # No stop() on failure: the Status fails only when its sweep has ended (switched
            # off on the way), and ophyd calls stop() after waking the waiters, so it aborted
            # the sweep a plan retrying had started by then.
            sweep = _Sweep(
                ExplainedDeviceStatus(self, call_stop_on_failure=False), started_at=clock.now()
            )
            self._current = sweep
        # For a simulation's held time (issue 17; real instruments never read it): until the
        # analyzer measures, the sweep is wire chatter (settings, switching on), which takes no
        # time the film should live at 2000x, so time goes on at the slow rate at once; once it
        # measures, it should end after the fastest measuring this analyzer has done with these
        # settings (else the periods alone, a lower bound; see _sweep_once).
        clock.expect_end(sweep.status, sweep.started_at)
        # Virtual time stands here while the sweep is set up on the wire, until the analyzer
        # starts measuring: the same schedule in every run.
        started = clock.pin(until_started=True, wall_limit=_PIN_WALL_LIMIT_S)
        sweep.pins = [started] if started is not None else []
        self._worker = threading.Thread(
            target=self._run_sweep, args=(settings, sweep), name=f"{self.name}-sweep", daemon=True
        )
        self._worker.start()
        return sweep.status

    def _run_sweep(self, settings: SweepSettings, sweep: _Sweep) -> None:
        with self._busy:  # an abandoned sweep still switching off ends first
            try:
                result = self._sweep_until_done(settings, sweep)
            except BaseException as error:  # every failure goes to the Status
                self._end(sweep, error)
                return
            if result is not None and not sweep.superseded.is_set():
                frequency, impedance, duration = result
                now = clock.now()
                self.frequency.update(frequency, now)
                self.z_real.update(impedance.real.copy(), now)
                self.z_imag.update(impedance.imag.copy(), now)
                self.sweep_duration.update(duration, now)
                self._last_sweep = (settings, len(frequency))
                self._fastest_sweep_s[settings] = min(
                    duration, self._fastest_sweep_s.get(settings, math.inf)
                )
            self._end(sweep)

    def _sweep_until_done(
        self, settings: SweepSettings, sweep: _Sweep
    ) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Sweep, riding out lost links; ``None`` if a pause/suspension abandoned it."""
        while True:
            state = self.reconnector.wait_settled(sweep.abort)
            if sweep.superseded.is_set():
                return None
            self._check_not_stopped(sweep)
            if state == LinkState.GAVE_UP:
                self.reconnector.try_once()  # a new trigger after a give-up: one more try
            try:
                result = self._sweep(settings, sweep)
            except ZahnerConnectionError as error:
                if not getattr(error, "link_lost", False):
                    raise
                self.reconnector.link_lost(error)  # connected -> 0 now; a suspender trips
                continue
            except ZahnerSweepAborted:
                if sweep.superseded.is_set():
                    return None
                raise
            self.reconnector.mark_healthy()
            return result

    def _end(self, sweep: _Sweep, error: BaseException | None = None) -> None:
        """Finish the Status once: abandoned ones finish without error (nobody reads them)."""
        with self._inflight_lock:
            if sweep.ended:
                return
            sweep.ended = True
        try:
            if error is None or sweep.superseded.is_set():
                sweep.status.set_finished()
            else:
                sweep.status.set_exception(error)
        finally:  # after the Status: a plan waiting for it held time at this instant
            for pinned in sweep.pins:
                pinned.release()

    def _sweep(
        self, settings: SweepSettings, sweep: _Sweep
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """One sweep. A link lost after Term was reached raises ``ZahnerConnectionError`` with
        ``link_lost = True`` and leaves switching off to the reconnector."""
        file_name = f"{self._file_prefix}_{uuid.uuid4().hex[:12]}"
        path = self.thales_data_path.rstrip("\\/") + "\\" + file_name + ".ism"
        link_was_up = self._link_established
        try:
            session = self._open_session()
            self._configure_sweep(session, settings, file_name, sweep)
            self._check_not_stopped(sweep)
            session.command("Pot=-1", session.wrapper.enablePotentiostat)
            started = clock.now()
            expected = self._fastest_sweep_s.get(settings, settings.shortest_duration_s())
            clock.expect_end(sweep.status, started + expected)
            session.measure_eis(
                heartbeat_period=self.heartbeat_period,
                heartbeat_timeout=self.heartbeat_timeout,
                abort=sweep.abort,
            )
            # Virtual time: stay at the sweep's end (the analyzer pinned it until taken) while
            # switching off and reading the file, until the Status is done (see _end).
            result = clock.pin(wall_limit=_PIN_WALL_LIMIT_S)
            if result is not None:
                sweep.pins.append(result)
            clock.claim()
            duration = clock.now() - started
            clock.expect_end(sweep.status, clock.now())  # switching off, reading the file: chatter
        except BaseException as error:
            if sweep.abort.is_set():
                aborted = ZahnerSweepAborted(f"{self.name}: EIS sweep aborted by stop()")
                self._switch_off_after(aborted)
                raise aborted from error
            if isinstance(error, ZahnerConnectionError) and link_was_up:
                error.link_lost = True
                raise
            self._switch_off_after(error)
            raise
        try:
            self._switch_off()
            data = session.fetch_file(path)
        except ZahnerConnectionError as error:
            error.link_lost = True
            raise
        frequency, impedance = self._read_ism(data, path)
        return frequency, impedance, duration

    def _configure_sweep(
        self, session: ThalesSession, s: SweepSettings, file_name: str, sweep: _Sweep
    ) -> None:
        w = session.wrapper
        steps = [
            (
                f"EIS_PATH={self.thales_data_path}",
                lambda: w.setEISOutputPath(self.thales_data_path),
            ),
            ("EIS_MOD=2", lambda: w.setEISNaming(FileNaming.INDIVIDUAL)),
            (f"EIS_ROOT={file_name}", lambda: w.setEISOutputFileName(file_name)),
            ("Gal=0:GAL=0", lambda: w.setPotentiostatMode(PotentiostatMode.POTMODE_POTENTIOSTATIC)),
            (f"Pset={s.dc_potential:g}", lambda: w.setPotential(float(s.dc_potential))),
            (f"Ampl={s.amplitude * 1e3:g}", lambda: w.setAmplitude(float(s.amplitude))),
            (f"Fmin={s.f_min:g}", lambda: w.setLowerFrequencyLimit(float(s.f_min))),
            (f"Fmax={s.f_max:g}", lambda: w.setUpperFrequencyLimit(float(s.f_max))),
            (
                f"Fstart={s.start_frequency:g}",
                lambda: w.setStartFrequency(float(s.start_frequency)),
            ),
            (
                f"dfm={s.points_per_decade_upper}",
                lambda: w.setUpperStepsPerDecade(int(s.points_per_decade_upper)),
            ),
            (
                f"dfl={s.points_per_decade_lower}",
                lambda: w.setLowerStepsPerDecade(int(s.points_per_decade_lower)),
            ),
            (f"Nws={s.periods_upper}", lambda: w.setUpperNumberOfPeriods(int(s.periods_upper))),
            (f"Nwl={s.periods_lower}", lambda: w.setLowerNumberOfPeriods(int(s.periods_lower))),
            ("ScanStrategy=0", lambda: w.setScanStrategy(ScanStrategy.SINGLE_SINE)),
            ("ScanDirection=0", lambda: w.setScanDirection(ScanDirection.START_TO_MAX)),
        ]
        for command, action in steps:
            self._check_not_stopped(sweep)
            session.command(command, action)

    def _check_not_stopped(self, sweep: _Sweep) -> None:
        if sweep.abort.is_set():
            raise ZahnerSweepAborted(f"{self.name}: EIS sweep aborted by stop()")

    def _read_ism(self, data: bytes, path: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            ism = IsmImport(data)
            frequency = np.asarray(ism.getFrequencyArray(), dtype=float)
            impedance = np.asarray(ism.getComplexImpedanceArray(), dtype=complex)
        except (ValueError, TypeError, IndexError, OSError) as error:
            raise ZahnerError(
                f"{self.name}: cannot read the result file {path}: {error}"
            ) from error
        if frequency.size == 0 or frequency.shape != impedance.shape:
            raise ZahnerError(f"{self.name}: the result file {path} holds no spectrum")
        return frequency.copy(), impedance.copy()

    # --- potentiostat off, always --------------------------------------------------------------
    def switch_off(self) -> None:
        """Switch the potentiostat off now (reconnecting first if the link was lost).

        For a safe exit; call ``stop()`` first if a sweep may be running.

        Raises
        ------
        ZahnerError
            If Term cannot be reached or refuses the command.
        """
        self._switch_off()

    def _switch_off(self) -> None:
        """Switch the potentiostat off, reconnecting first if the link was lost."""
        session = self._open_session()
        session.command("Pot=0", session.wrapper.disablePotentiostat)

    def _switch_off_after(self, error: BaseException) -> None:
        try:
            self._switch_off()
        except ZahnerError as off_error:
            error.add_note(
                f"{self.name}: the potentiostat could NOT be switched off afterwards "
                f"(its state is unknown): {off_error}"
            )
        else:
            error.add_note(f"{self.name}: the potentiostat was switched off afterwards")

    # --- single frequency ----------------------------------------------------------------------
    def measure_point(self, frequency: float) -> complex:
        """Measure the impedance at one frequency with the current amplitude and DC potential.

        The potentiostat is switched on for the measurement and off again afterwards. Periods
        are ``periods_upper`` at or above 66 Hz and ``periods_lower`` below.

        Parameters
        ----------
        frequency : float
            Frequency in Hz (10 uHz - 4 MHz).

        Returns
        -------
        complex
            The impedance in ohm.

        Raises
        ------
        ValueError
            Before anything is sent, if ``frequency`` or a setting is out of range.
        ZahnerError
            If Thales refuses or fails the measurement, or the connection is lost.
        """
        frequency = FREQUENCY.check(f"{self.name}.measure_point frequency", frequency)
        settings = self.sweep_settings()
        periods = settings.periods_upper if frequency >= BAND_EDGE_HZ else settings.periods_lower
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(f"{self.name}: a measurement is already running")
        self._measuring_point = True
        try:
            return self._measure_point(frequency, settings, periods)
        finally:
            self._measuring_point = False
            self._busy.release()

    def _measure_point(self, frequency: float, s: SweepSettings, periods: int) -> complex:
        try:
            session = self._open_session()
            w = session.wrapper
            session.command(
                "Gal=0:GAL=0",
                lambda: w.setPotentiostatMode(PotentiostatMode.POTMODE_POTENTIOSTATIC),
            )
            session.command(
                f"Pset={s.dc_potential:g}", lambda: w.setPotential(float(s.dc_potential))
            )
            session.command("Pot=-1", w.enablePotentiostat)
            impedance = session.command(
                f"Frq={frequency:g}:Ampl={s.amplitude * 1e3:g}:Nw={periods}:IMPEDANCE",
                lambda: w.getImpedance(frequency, float(s.amplitude), int(periods)),
            )
        except BaseException as error:
            self._switch_off_after(error)
            raise
        self._switch_off()
        return complex(impedance)

    # --- stop ----------------------------------------------------------------------------------
    def stop(self, *, success: bool = False) -> None:
        """Abort a running sweep: cut the link, reconnect, switch the potentiostat off.

        Returns when the sweep thread has finished (its Status then holds
        :class:`ZahnerSweepAborted`), at most ``stop_timeout`` wall seconds.

        Raises
        ------
        ZahnerConnectionError
            If the sweep thread did not finish in time (the potentiostat state is unknown).
        """
        worker = self._worker
        if worker is not None and worker.is_alive() and worker is not threading.current_thread():
            sweep = self._current
            if sweep is not None:
                sweep.abort.set()
            session = self._session
            if session is not None:
                session.sever()
            worker.join(timeout=self.stop_timeout)
            if worker.is_alive():
                raise ZahnerConnectionError(
                    f"{self.name}: the sweep did not end within {self.stop_timeout} s after "
                    "stop(); the potentiostat state is unknown"
                )
        super().stop(success=success)

    # --- RunEngine pause / suspension ----------------------------------------------------------
    def pause(self) -> None:
        """The RunEngine pauses or suspends: abandon the sweep in flight.

        Its Status finishes at once without new data (the RunEngine rewinds to its last
        checkpoint and triggers again on resume). The sweep is aborted in the background (the
        heartbeat watchdog cuts the link within ``heartbeat_period``) and the potentiostat is
        switched off; the next trigger starts when that is done.
        """
        with self._inflight_lock:
            sweep = self._current
            if sweep is None or sweep.ended:
                return
            sweep.superseded.set()
            sweep.abort.set()
        self._end(sweep)

    def resume(self) -> None:
        """The RunEngine resumes: nothing to do (the replayed trigger sweeps again)."""
