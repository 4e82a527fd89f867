"""Build the beamline's instruments from its config: real addresses, or emulators for ``sim``.

For a simulated instrument the emulator is started on loopback first and the *same* device class
then connects to it by address, exactly as it would to the real instrument: simulation replaces
the far end of the wire, never the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from insitu import clock
from insitu.beamline.config import SIMULATED, BeamlineConfig, FilmVariationConfig

if TYPE_CHECKING:
    from insitu.beamline.assembly import Beamline

__all__ = ["DEVICE_BUILDERS", "SimulatedLab", "build_eis", "build_raman", "build_stage"]

#: Wall-time spacing of Linkam commands: the real controller needs ~0.3 s, an emulator none.
_REAL_LINKAM_COMMAND_INTERVAL_S = 0.3


@dataclass
class SimulatedLab:
    """The far end of the wires on a simulated beamline: emulators and the virtual film."""

    film: Any = None
    linkam: Any = None
    labspec: Any = None
    term: Any = None
    seed: int | None = None
    films_loaded: int = field(default=0)
    film_variation: Any = field(default_factory=FilmVariationConfig)

    def stage_temperature(self) -> float:
        """The true stage temperature (C) now, or room temperature without a stage emulator."""
        return self.linkam.temperature() if self.linkam is not None else 25.0

    def load_new_film(self, index: int | None = None):
        """Put a fresh, as-deposited film on the stage (the simulated sample change).

        With ``index`` (a campaign's sample index) the instruments' noise and the film's Raman
        variation restart from (seed, index): sample ``index`` of a campaign is measured the same
        in an uninterrupted run and in one resumed after a crash.
        """
        from insitu.sim.sample import GarnetFilm

        if index is not None and self.linkam is not None:
            self.linkam.new_sample()
        temperature_at = self.linkam.temperature_at if self.linkam is not None else None
        variation = self.film_variation
        self.film = GarnetFilm(
            temperature_at,
            start_time=clock.now(),
            crystallization_shift_C=variation.crystallization_shift_C,
            conductivity_scale=variation.conductivity_scale,
        )
        self.films_loaded += 1
        if self.labspec is not None:
            self.labspec.new_sample(self.film, key=index)
        if self.term is not None:
            model = self.term.impedance_model
            if index is not None and hasattr(model, "reseed"):
                model.reseed(index)
            model.sample = self.film
        return self.film

    def change_sample(self, index: int, anneal_temperature: float):
        """Plan: the simulated sample change of a campaign (a fresh film, no pause)."""
        import bluesky.plan_stubs as bps

        self.load_new_film(index)
        yield from bps.null()


def _lab(beamline: Beamline) -> SimulatedLab:
    if beamline.simulation is None:
        simulation = beamline.config.simulation
        beamline.simulation = SimulatedLab(
            seed=simulation.seed, film_variation=simulation.film_variation
        )
    return beamline.simulation


def _hold(beamline: Beamline, kind: str, address: str) -> None:
    """One driver per instrument: refuse at once if another session holds it (names it)."""
    from insitu.beamline.instrument_lock import InstrumentLock

    lock = InstrumentLock.for_instrument(kind, address).acquire()
    beamline.on_close(lock.release)


def build_stage(config: BeamlineConfig, beamline: Beamline):
    """The Linkam stage (``stage``), on an emulator when its address is ``sim``."""
    from insitu.devices.linkam import STAGE_LIMITS, LinkamStage, LinkamT95, StageLimits

    settings = config.stage
    address, interval = settings.address, _REAL_LINKAM_COMMAND_INTERVAL_S
    if address != SIMULATED:
        _hold(beamline, "stage", address)
    if address == SIMULATED:
        from insitu.sim.linkam_t95 import LinkamT95Emulator

        lab = _lab(beamline)
        lab.linkam = LinkamT95Emulator(stage_model=settings.model, seed=lab.seed)
        beamline.on_close(lab.linkam.close)
        address = f"TCPIP::127.0.0.1::{lab.linkam.serve_tcp()}::SOCKET"
        interval = 0.0
        lab.load_new_film()
    model = STAGE_LIMITS[settings.model]
    # The beamline's hard limits narrow the stage model's range: nothing above them is ever sent.
    limits = StageLimits(
        f"{settings.model}, beamline limit",
        min_temperature=model.min_temperature,
        max_temperature=min(model.max_temperature, settings.max_temperature_C),
        min_rate=model.min_rate,
        max_rate=min(model.max_rate, settings.max_rate_C_per_min),
    )
    driver = LinkamT95(
        address,
        stage_model=settings.model,
        limits=limits,
        min_command_interval=interval,
        name="stage",
    )
    stage = LinkamStage(
        driver,
        name="stage",
        tolerance=settings.tolerance_C,
        settle_time=settings.settle_time_s,
        poll_period=settings.poll_period_s,
    )
    beamline.on_close(driver.close)
    beamline.on_close(stage.destroy)
    if settings.address != SIMULATED and config.safety.guard:
        _start_stage_guard(config, beamline, stage)
    return stage


def _start_stage_guard(config: BeamlineConfig, beamline: Beamline, stage) -> None:
    """A process of its own that makes the real stage safe if this one dies, stops or hangs."""
    import time

    from insitu.beamline.stage_guard import StageGuard

    stall = config.safety.stall_timeout_s
    last_poll = [time.monotonic()]

    def polled(poll) -> None:
        last_poll[0] = poll.wall_time

    stage.subscribe_polls(polled)
    guard = StageGuard(
        config.stage.address,
        stage_model=config.stage.model,
        safe_state=config.safety.safe_state,
        stall_timeout_s=stall,
        # The poller moves (good or failed polls) while this process is healthy.
        alive=lambda: time.monotonic() - last_poll[0] < stall,
    ).start()
    beamline.stage_guard = guard
    # Closers run in reverse: the guard stands down before the stage's poller stops.
    beamline.on_close(guard.stand_down)


def build_raman(config: BeamlineConfig, beamline: Beamline):
    """The Raman spectrometer (``raman``): LabSpec 6 (emulated for ``sim``) or WITec."""
    from insitu.devices.raman import LabSpec6Backend, RamanSpectrometer, WitecBackend

    settings = config.raman
    if settings.backend == "witec":
        backend = WitecBackend(laser_wavelength_nm=settings.laser_wavelength_nm)
    else:
        address = settings.address
        if address != SIMULATED:
            _hold(beamline, "raman", address)
        if address == SIMULATED:
            from insitu.sim.labspec6 import LabSpec6Emulator

            lab = _lab(beamline)
            if lab.film is None:
                lab.load_new_film()
            lab.labspec = LabSpec6Emulator(
                lab.film,
                lab.stage_temperature,
                laser_wavelength_nm=settings.laser_wavelength_nm,
                seed=lab.seed,
                variation=config.simulation.raman_variation,
            )
            beamline.on_close(lab.labspec.close)
            address = f"TCPIP::127.0.0.1::{lab.labspec.serve_tcp()}::SOCKET"
        backend = LabSpec6Backend.from_address(
            address, laser_wavelength_nm=settings.laser_wavelength_nm
        )
    raman = RamanSpectrometer(
        backend,
        name="raman",
        laser_wavelength_nm=settings.laser_wavelength_nm,
        max_laser_power_mW=settings.max_laser_power_mW,
    )
    beamline.on_close(raman.close)
    return raman


def build_eis(config: BeamlineConfig, beamline: Beamline):
    """The Zahner impedance analyzer (``eis``), on a Term emulator when its address is ``sim``."""
    from insitu.devices.zahner import ZahnerEIS

    address = config.eis.address
    if address != SIMULATED:
        _hold(beamline, "eis", address)
    if address == SIMULATED:
        from insitu.sim.film_impedance import FilmImpedance
        from insitu.sim.thales_term import TermEmulator

        lab = _lab(beamline)
        if lab.film is None:
            lab.load_new_film()
        model = FilmImpedance(lab.film, lab.stage_temperature, config.film, seed=lab.seed)
        lab.term = TermEmulator(model, seed=lab.seed)
        beamline.on_close(lab.term.close)
        # Any free port, not Term's 260: several simulated beamlines may run on one machine.
        address = f"127.0.0.1:{lab.term.serve_tcp(port=0)}"
    eis = ZahnerEIS(address, name="eis")
    beamline.on_close(eis.destroy)
    return eis


#: Device name -> builder(config, beamline) returning the device; the order is the build order.
DEVICE_BUILDERS: dict[str, Callable[[BeamlineConfig, Beamline], Any]] = {
    "stage": build_stage,
    "raman": build_raman,
    "eis": build_eis,
}
