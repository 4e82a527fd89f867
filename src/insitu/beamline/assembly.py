"""Assemble a beamline from its config: devices, RunEngine, catalog writer, all closed together."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bluesky import RunEngine
from bluesky.utils import ProgressBarManager, SigintHandler

from insitu import clock
from insitu.beamline.catalog import close_catalog, open_catalog
from insitu.beamline.config import BeamlineConfig, load_config, parse_config
from insitu.beamline.durable_writer import CatalogWriteError, DurableTiledWriter
from insitu.beamline.instrument_lock import InstrumentLock
from insitu.beamline.instruments import DEVICE_BUILDERS
from insitu.beamline.persistent_metadata import PersistentMetadata
from insitu.beamline.recovery import close_interrupted_runs
from insitu.beamline.run_spool import RunSpool, spool_directory
from insitu.beamline.safe_exit import SafeExit
from insitu.beamline.safety import RunAborter, Watchdog
from insitu.compat.bluesky_run_engine import light_plan_stacks
from insitu.plans.resume import forget_catalog, use_catalog

__all__ = ["Beamline", "analysis_chain", "load"]

logger = logging.getLogger(__name__)


@dataclass
class Beamline:
    """A built beamline: devices, a RunEngine writing to a catalog, and what must be closed.

    Attributes
    ----------
    config : BeamlineConfig
    RE : bluesky.RunEngine
        Subscribed to the catalog writer; ``RE.md`` persists ``scan_id`` across restarts.
    catalog : tiled client
        The runs container (``catalog[uid]``, ``catalog[-1]``).
    writer : DurableTiledWriter
    bec : BestEffortCallback or None
    devices : dict
        Every device by name; each is also an attribute (``beamline.stage``).
    simulation : SimulatedLab or None
        On a simulated beamline: the emulators and the virtual film (``simulation.film``).
    analysis : list
        The live analysis callbacks, in document order (``analysis[0]`` is subscribed to RE);
        ``beamline.raman_flags`` is the Raman transition callback.
    watchdog : Watchdog or None
        Guards the stage's hard limits (``config.safety``) from its own thread; an alarm
        aborts the current run. Acknowledge an alarm with ``beamline.watchdog.reset()``.
    run_aborter : RunAborter or None
        Aborts the current run from any thread with the reason in its stop document.
    safe_exit : SafeExit or None
        Puts the stage in its safe state and the potentiostat off when the process ends
        (exit, exception, Ctrl-C, SIGTERM, SIGHUP) or the beamline is closed.
    stage_guard : StageGuard or None
        For a real stage, the process that makes it safe when this one cannot (SIGKILL,
        SIGSTOP, a hang; ``insitu.beamline.stage_guard``).
    """

    config: BeamlineConfig
    RE: RunEngine
    catalog: Any
    writer: DurableTiledWriter
    bec: Any = None
    devices: dict[str, Any] = field(default_factory=dict)
    simulation: Any = None
    analysis: list[Any] = field(default_factory=list)
    watchdog: Watchdog | None = None
    safe_exit: SafeExit | None = None
    run_aborter: RunAborter | None = None
    stage_guard: Any = None
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def __getattr__(self, name: str) -> Any:
        devices = self.__dict__.get("devices", {})
        if name in devices:
            return devices[name]
        raise AttributeError(f"beamline has no attribute or device {name!r}")

    def on_close(self, closer: Callable[[], None]) -> None:
        """Register something to close with the beamline (emulators, connections)."""
        self._closers.append(closer)

    @property
    def raman_flags(self):
        """The live Raman transition callback (its ``transition`` Signal drives plans)."""
        return self.analysis[0] if self.analysis else None

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until live analysis and the catalog writer have handled every document."""
        for callback in self.analysis:
            callback.flush(timeout)
        if not self.writer.wait(timeout):
            unwritten = self.writer.unwritten()
            if unwritten:
                raise CatalogWriteError(
                    f"{len(unwritten)} run(s) are not in the catalog yet; they are kept in "
                    f"{self.writer.spool.directory} and written when the catalog takes them "
                    "(or at the next load() of this config)"
                )
            raise CatalogWriteError(
                f"the catalog writer did not finish within {timeout} s or a write failed "
                "(see the log)"
            )

    def close(self) -> None:
        """Make the hardware safe, write what is pending, stop devices and emulators, close the
        catalog.

        Closing leaves the instruments unattended (no watchdog any more), so the stage is put
        in its safe state and the potentiostat switched off first (``SafeExit``).
        """
        if self.safe_exit is not None:
            self.safe_exit.run("beamline closed")
        for callback in self.analysis:
            try:
                callback.close()
            except Exception:  # still close the writer: no measured data is lost
                logger.exception("closing the analysis callback %r failed", callback)
        self.writer.close()
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # keep closing the rest; the failure is reported, not hidden
                logger.exception("closing %r failed", closer)
        self._closers.clear()
        if self.safe_exit is not None:
            self.safe_exit.uninstall()
        close_catalog(self.catalog)
        if self.config.simulated:
            clock.reset()

    def __enter__(self) -> Beamline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _MainThreadSigintHandler(SigintHandler):
    """bluesky's Ctrl-C handler, installed only when the RunEngine is driven from the main thread.

    ``signal.signal`` works only on the main thread, and bluesky enters its context managers
    on whichever thread resumes the RunEngine: the watchdog aborting a *paused* run does so
    from its own thread (``RE.abort``), where the stock handler would raise ValueError.
    """

    def __enter__(self):
        self._on_main_thread = threading.current_thread() is threading.main_thread()
        return super().__enter__() if self._on_main_thread else self

    def __exit__(self, *exc) -> None:
        if self._on_main_thread:
            super().__exit__(*exc)


#: Start-document keys naming the process that writes a run (see insitu.beamline.recovery).
_PROCESS_KEYS = ("host", "pid")


def _guard_process_metadata(engine: RunEngine) -> None:
    """Refuse to open a run whose ``host``/``pid`` differ from those the beamline put in RE.md.

    The insitu plans refuse them in their ``md`` already (``as_metadata``); this covers the rest:
    bluesky's own plans (``bp.count(..., md={"pid": 1})``) and ``RE(plan, pid=1)``. It runs as
    the RunEngine's ``md_validator``, on the final metadata, before the run opens.
    """
    validate = engine.md_validator

    def md_validator(md: dict) -> None:
        validate(md)
        for key in _PROCESS_KEYS:
            recorded = engine.md.get(key)
            if key in md and md[key] != recorded:
                plan = md.get("plan_name") or "the plan"
                raise ValueError(
                    f"{plan} metadata key {key!r} ({md[key]!r}) is not allowed: 'host' and "
                    f"'pid' are recorded by the beamline ({key} {recorded!r}: the process "
                    "writing the run, which crash recovery checks); leave them out of the "
                    "plan's md and of RE(...) keywords"
                )

    engine.md_validator = md_validator


def _start_watchdog(cfg: BeamlineConfig, beamline: Beamline) -> None:
    stage = beamline.devices.get("stage")
    if stage is None:
        return
    # Per stage address: what a later load() of the same stage takes over (safety.py).
    digest = hashlib.sha256(cfg.stage.address.encode()).hexdigest()[:16]
    state_file = Path(cfg.metadata_dir).expanduser() / "safety" / f"stage-{digest}.json"
    watchdog = Watchdog.from_config(stage, cfg.safety, state_file=state_file)
    watchdog.add_alarm_callback(beamline.run_aborter.on_alarm)
    beamline.watchdog = watchdog
    beamline.on_close(watchdog.stop)  # closers run in reverse: before the stage is destroyed
    watchdog.start()


def _headless() -> bool:
    import matplotlib

    return not os.environ.get("DISPLAY") or matplotlib.get_backend().lower() == "agg"


def _best_effort_callback(headless: bool):
    from bluesky.callbacks.best_effort import BestEffortCallback

    bec = BestEffortCallback()
    if headless:
        bec.disable_plots()
    return bec


def analysis_chain(cfg: BeamlineConfig, writer: DurableTiledWriter) -> list:
    """RunEngine -> Raman transitions -> impedance fits -> catalog writer: each callback forwards
    every document, with its derived streams, to the next (and holds a run's stop document
    until its analysis of that run is done)."""
    from insitu.analysis.callbacks import EISFitCallback, RamanTransitionCallback
    from insitu.analysis.eis import FilmGeometry

    film = cfg.film
    geometry = FilmGeometry(
        gap=film.gap_mm * 1e-3,
        electrode_length=film.electrode_length_mm * 1e-3,
        thickness=film.thickness_um * 1e-6,
    )
    raman = RamanTransitionCallback()
    impedance = EISFitCallback(geometry=geometry, cycle_key="cycle")
    raman.subscribe(impedance)
    impedance.subscribe(writer)
    return [raman, impedance]


def load(
    config: str | os.PathLike | dict | BeamlineConfig | None = None,
    *,
    catalog: str | None = None,
    table: bool = True,
    analysis: bool | None = None,
    speedup: float | None = None,
    virtual_time: bool | None = None,
) -> Beamline:
    """Build the beamline described by ``config``.

    Parameters
    ----------
    config : path, mapping or BeamlineConfig, optional
        The YAML file (default: the shipped simulated beamline ``sim.yaml``), an already-parsed
        mapping, or a validated model.
    catalog : str, optional
        Override ``config.catalog.location`` (a directory or an http(s) URI).
    table : bool
        Subscribe a BestEffortCallback (a live table; plots only with a display).
    analysis : bool, optional
        Run the live analysis callbacks (Raman transition flags, impedance fits) between the
        RunEngine and the catalog, so their derived streams are stored beside the raw data.
        Default: ``streaming.local_analysis`` of the config (true). With
        ``streaming.publish_to`` set, every document is also published to that 0MQ proxy, for
        ``insitu serve analysis`` (then set ``local_analysis: false``) or live plots elsewhere.
    speedup : float, optional
        Override ``simulation.speedup`` (only used when an instrument is simulated).
    virtual_time : bool, optional
        Override ``simulation.virtual_time`` (held experiment time; every instrument simulated).

    Returns
    -------
    Beamline
        Close it (or use it as a context manager) to stop emulators and flush the catalog.
    """
    if isinstance(config, BeamlineConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = parse_config(config)
    else:
        cfg = load_config(config)
    if catalog is not None:
        # Validated like the config's own (a password in a URI is shown as '***' in reprs).
        location = parse_config({"catalog": {"location": os.fspath(catalog)}}).catalog.location
        cfg = cfg.model_copy(
            update={"catalog": cfg.catalog.model_copy(update={"location": location})}
        )
    if speedup is not None:
        simulation = parse_config({"simulation": {"speedup": speedup}}).simulation
        cfg = cfg.model_copy(
            update={"simulation": cfg.simulation.model_copy(update={"speedup": simulation.speedup})}
        )
    if virtual_time is not None:
        cfg = cfg.model_copy(
            update={
                "simulation": cfg.simulation.model_copy(update={"virtual_time": bool(virtual_time)})
            }
        )

    if cfg.simulated:
        clock.set_speedup(cfg.simulation.speedup)
    runs = open_catalog(cfg.catalog.location, api_key=cfg.catalog.api_key)
    catalog_lock = None
    if not cfg.catalog.location.startswith(("http://", "https://")):
        # One writing process per embedded catalog (a server serialises its own writers).
        try:
            catalog_lock = InstrumentLock.for_catalog(cfg.catalog.location).acquire()
        except BaseException:
            close_catalog(runs)
            raise
    try:
        beamline = _assemble(cfg, runs, analysis=analysis, table=table)
    except BaseException:
        if catalog_lock is not None:
            catalog_lock.release()
        raise
    if catalog_lock is not None:
        beamline.on_close(catalog_lock.release)
    return _build_devices(cfg, beamline)


def _write_spooled_runs(runs, directory) -> None:
    """Write the runs an earlier session kept in the spool because the catalog failed."""
    if not Path(directory).is_dir():
        return
    spool = RunSpool(directory)
    pending = spool.pending()
    if not pending:
        return
    try:
        written = spool.replay_all(runs)
    except Exception:
        logger.exception("the catalog does not take the spooled runs in %s yet", directory)
        return
    logger.warning("wrote %d spooled run(s) from %s into the catalog", written, directory)


def _assemble(cfg: BeamlineConfig, runs, *, analysis: bool | None, table: bool) -> Beamline:
    """The RunEngine, writer and analysis chain on an open catalog (no devices yet)."""
    spool = spool_directory(cfg.metadata_dir, cfg.catalog.location)
    _write_spooled_runs(runs, spool)  # before recovery: a spooled run may lack its stop
    closed = close_interrupted_runs(runs)  # runs of a process of this host that died (SIGKILL)
    if closed:
        logger.warning(
            "wrote the stop document of %d run(s) cut off when their process died: %s",
            len(closed),
            ", ".join(closed),
        )
    writer = DurableTiledWriter(
        runs, max_delay=cfg.catalog.max_write_delay_s, spool_directory=spool
    )

    light_plan_stacks()  # 70 % of the RunEngine thread's time went to formatting stacks
    engine = RunEngine({}, context_managers=[_MainThreadSigintHandler])
    engine.md = PersistentMetadata(cfg.metadata_dir)
    engine.md.setdefault("beamline", cfg.name)
    # Which process writes the runs: crash recovery closes only runs of a process that is gone.
    engine.md["host"] = socket.gethostname()
    engine.md["pid"] = os.getpid()
    _guard_process_metadata(engine)
    engine.waiting_hook = ProgressBarManager()
    if cfg.simulation.virtual_time and cfg.all_simulated and clock.speedup() > 1.0:
        from insitu.beamline import virtual_time

        virtual_time.enable(engine)
    if analysis is None:
        analysis = cfg.streaming.local_analysis
    callbacks = analysis_chain(cfg, writer) if analysis else []
    if callbacks:
        # The chain hands documents to the writer from its own thread: write errors are raised
        # into the RunEngine by this direct subscriber instead (the run aborts with the reason).
        writer.check_in(engine)
    engine.subscribe(callbacks[0] if callbacks else writer)
    bec = None
    if table:
        bec = _best_effort_callback(_headless())
        engine.subscribe(bec)

    beamline = Beamline(
        config=cfg,
        RE=engine,
        catalog=runs,
        writer=writer,
        bec=bec,
        analysis=callbacks,
        run_aborter=RunAborter(engine),
    )
    return beamline


def _build_devices(cfg: BeamlineConfig, beamline: Beamline) -> Beamline:
    """Devices, watchdog and safe exit; on any failure the beamline is closed again."""
    try:
        if cfg.streaming.publish_to:
            from insitu.beamline.publisher import attach_publisher

            attach_publisher(beamline, cfg.streaming.publish_to)
        for name, builder in DEVICE_BUILDERS.items():
            device = builder(cfg, beamline)
            if device is not None:
                beamline.devices[name] = device
        _start_watchdog(cfg, beamline)
        beamline.safe_exit = SafeExit(beamline, cfg.safety.safe_state)
        beamline.safe_exit.install()
    except BaseException:
        beamline.close()
        raise
    # Plans resuming a campaign read this catalog by default, after the writer has written all
    # it holds (a campaign resumed in the session that cut it off must see its last runs whole).
    use_catalog(beamline.catalog, before_read=beamline.flush)
    beamline.on_close(lambda: forget_catalog(beamline.catalog))
    return beamline
