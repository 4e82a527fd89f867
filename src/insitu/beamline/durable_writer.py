"""Write bluesky documents into tiled from a worker thread, every event on disk within a second.

bluesky-tiled-plugins' ``TiledWriter`` batches events by *count* only: with its default batch
size a three-hour ramp sits in memory until the stop document, and with ``batch_size=1`` it
manages ~25 events/s. ``DurableTiledWriter`` keeps TiledWriter for all the document handling and
adds a *time* bound: a worker thread feeds it documents and writes the buffered events once the
oldest has waited ``max_delay`` since the RunEngine handed it in (not since the worker got to it:
behind a slow write it waited in the queue too), with whatever queued behind it in the same
batch, so batches grow with the event rate (one write per ``max_delay`` at most: throughput)
while no event waits much longer than ``max_delay`` (durability). The RunEngine thread only
enqueues.

With a spool directory, a run the catalog fails to take is not lost: from the first failed
write on, the whole run goes to an fsync'd spool file (:mod:`insitu.beamline.run_spool`), the
run goes on, and the writer writes the run into the catalog once it answers again (or the next
``load()`` of the same config does). Until then :meth:`DurableTiledWriter.wait` reports it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from insitu.beamline.run_spool import RunSpool, SpoolFile, encode
from insitu.compat.bluesky_tiled_plugins import (
    PerRunTiledWriter,
    RunWriter,
    write_cached_events,
)

__all__ = ["CatalogWriteError", "DurableTiledWriter", "FlushableTiledWriter"]

logger = logging.getLogger(__name__)

_STOP = object()
_FLUSH = object()

#: Wall seconds between attempts to write spooled runs while the catalog is failing.
SPOOL_RETRY_S = 2.0


class CatalogWriteError(RuntimeError):
    """Raised into the RunEngine when documents could not be written to the catalog."""


class _SpoolOnFailure:
    """One run's documents to the catalog; from its first failed write on, the whole run to a spool.

    The library's ``_ConditionalBackup`` has the same rule (a run whose write failed gets no
    more writes, so a partial run cannot pass as complete) but it swallows the failure, keeps
    JSON lines that are never synced and never written back; this one spools with fsync and
    hands the file to :class:`FlushableTiledWriter` to replay. Every document is kept (as its
    spool record) until the run ends, so a failure late in a run still spools all of it.
    """

    def __init__(self, primary: Any, spool: RunSpool, uid: str) -> None:
        self.primary = primary
        self.spool = spool
        self.uid = uid
        self.records: list[bytes] = []
        self.file: SpoolFile | None = None

    def __call__(self, name: str, doc: dict) -> None:
        record = encode(name, doc)  # serialized now: the writer may pop keys from the document
        if self.file is not None:
            self.file.append(record)
            return
        self.records.append(record)
        try:
            self.primary(name, doc)
        except Exception as error:
            self.fail(error, f"a {name!r} document")

    def write_cached(self, run_writer: Any) -> int:
        """Write the run writer's batched events, or nothing once the run is spooled."""
        if self.file is not None:
            return 0
        try:
            return write_cached_events(run_writer)
        except Exception as error:
            self.fail(error, "buffered events")
            return 0

    def fail(self, error: BaseException, what: str) -> None:
        self.file = self.spool.open_run(self.uid)
        for record in self.records:
            self.file.append(record)
        self.records.clear()
        self.file.sync()
        logger.warning(
            "writing %s of run %s to the catalog failed (%r): the run goes on and is kept in %s "
            "until the catalog takes it",
            what,
            self.uid,
            error,
            self.file.path,
        )

    def sync(self) -> None:
        if self.file is not None:
            self.file.sync()


class FlushableTiledWriter(PerRunTiledWriter):
    """TiledWriter that remembers its per-run writers so buffered events can be flushed on demand.

    TiledWriter has no public flush; this keeps each run's writer (made as TiledWriter makes it)
    and writes its event cache the way its own ``stop`` does, through
    :mod:`insitu.compat.bluesky_tiled_plugins`. With ``spool``, a run whose write fails goes to
    the spool (:class:`_SpoolOnFailure`); ``spooled`` lists the files of such runs that ended.
    """

    def __init__(self, client, *, spool: RunSpool | None = None, **kwargs):
        super().__init__(client, **kwargs)
        self.spool = spool
        self.run_writers: dict[str, RunWriter] = {}
        self.run_guards: dict[str, _SpoolOnFailure] = {}
        self.spooled: list[Path] = []

    def make_run_writer(self, start_doc):
        run_writer = super().make_run_writer(start_doc)
        self.run_writers[start_doc["uid"]] = run_writer
        return run_writer

    def wrap_run(self, callback, start_doc):
        if self.spool is None:
            return callback
        guard = _SpoolOnFailure(callback, self.spool, start_doc["uid"])
        self.run_guards[start_doc["uid"]] = guard
        return guard

    def __call__(self, name, doc):
        super().__call__(name, doc)
        if name == "stop":
            self.run_writers.pop(doc["run_start"], None)
            guard = self.run_guards.pop(doc["run_start"], None)
            if guard is not None and guard.file is not None:
                guard.file.close()
                self.spooled.append(guard.file.path)

    def flush(self) -> int:
        """Write every buffered event of every open run; return how many were written."""
        written = 0
        for uid, run_writer in list(self.run_writers.items()):
            guard = self.run_guards.get(uid)
            written += guard.write_cached(run_writer) if guard else write_cached_events(run_writer)
        for guard in list(self.run_guards.values()):
            guard.sync()
        return written


class DurableTiledWriter:
    """A RunEngine subscriber that writes runs into a tiled catalog, durably and fast.

    Parameters
    ----------
    catalog : tiled client
        The runs container, e.g. from :func:`insitu.beamline.catalog.open_catalog`.
    max_delay : float
        Longest time in wall seconds an event may wait in memory before it is written (0.5 s
        keeps every event on disk within a second of being emitted).
    max_batch : int
        Write at once when this many events are buffered.
    backup_directory : str, optional
        TiledWriter's own JSON-lines backup (used only without ``spool_directory``).
    spool_directory : path, optional
        Where runs the catalog fails to take are kept (fsync'd, arrays included) until they are
        written (see the module doc). Without it a failed write is an error.

    Notes
    -----
    Errors (a failed write without a spool, or a spool that cannot be written) are logged with
    their traceback and raised as :class:`CatalogWriteError` at the next document handed in,
    which aborts the run with the reason rather than measuring into the void; that document is
    still written. When other callbacks sit between the RunEngine and the writer (live
    analysis), subscribe :meth:`check` to the RunEngine so the error reaches it there.
    """

    def __init__(
        self,
        catalog,
        *,
        max_delay: float = 0.5,
        max_batch: int = 2000,
        backup_directory: str | None = None,
        spool_directory: str | Path | None = None,
    ):
        if not (0.0 < max_delay <= 1.0):
            raise ValueError(
                f"DurableTiledWriter.max_delay {max_delay} s is outside the allowed range "
                "(0, 1] s: events must be on disk within a second"
            )
        if max_batch < 1:
            raise ValueError(f"DurableTiledWriter.max_batch {max_batch} must be at least 1")
        self.catalog = catalog
        self.spool = RunSpool(spool_directory) if spool_directory is not None else None
        self._writer = FlushableTiledWriter(
            catalog,
            spool=self.spool,
            batch_size=max_batch,
            backup_directory=None if self.spool else backup_directory,
        )
        self.max_delay = float(max_delay)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._idle = threading.Condition()
        self._unfinished = 0
        self._error: BaseException | None = None  # raised at the next document (or check)
        self._failed = False  # any error since the last wait(): wait() reports it
        self._checked_elsewhere = False
        self._next_replay = 0.0
        self._thread = threading.Thread(
            target=self._work, name="insitu-catalog-writer", daemon=True
        )
        self._thread.start()

    def __call__(self, name: str, doc: dict) -> None:
        """Enqueue one document (called by the RunEngine; never blocks on I/O).

        Raises
        ------
        CatalogWriteError
            If an earlier write failed (this document is still queued and written).
        """
        if not self._thread.is_alive():
            raise CatalogWriteError(
                f"the catalog writer has been closed: a {name!r} document was not written"
            )
        with self._idle:
            self._unfinished += 1
        # A shallow copy: downstream normalizers may pop keys from the documents they are given.
        # Stamped now: an event's max_delay runs from when it was handed in, not from when the
        # worker got to it (behind a slow write it waited in the queue as long as the write).
        self._queue.put((name, dict(doc), time.monotonic()))
        if not self._checked_elsewhere:
            self.check()

    def check(self, name: str | None = None, doc: dict | None = None) -> None:
        """Raise the pending write error, once, as :class:`CatalogWriteError`.

        Subscribe it to the RunEngine (``RE.subscribe(writer.check)``) when the writer gets its
        documents through other callbacks: the error then aborts the run in the RunEngine.
        """
        error, self._error = self._error, None
        if error is not None:
            raise CatalogWriteError(f"writing to the catalog failed: {error!r}") from error

    def check_in(self, engine: Any) -> int:
        """Subscribe :meth:`check` to ``engine``; errors are then raised there only."""
        self._checked_elsewhere = True
        return engine.subscribe(self.check)

    def unwritten(self) -> list[Path]:
        """Spool files of runs not in the catalog yet (empty without a spool)."""
        return self.spool.pending() if self.spool is not None else []

    def wait(self, timeout: float | None = 10.0) -> bool:
        """Block until every document handed in so far is in the catalog.

        Events still batched in memory (at most ``max_delay`` old) are written too, so a reader
        sees every event afterwards, also of a run that has no stop document yet. Spooled runs
        are tried once more.

        Returns
        -------
        bool
            False on timeout, if a write failed since the last call, or if a run is still only
            in the spool (:meth:`unwritten` names the files).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread.is_alive():
            with self._idle:
                self._unfinished += 1
            self._queue.put(_FLUSH)
        with self._idle:
            while self._unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
            failed, self._failed = self._failed, False
        return not failed and not self._writer.spooled and not self._open_spooled_runs()

    def _open_spooled_runs(self) -> bool:
        return any(guard.file is not None for guard in list(self._writer.run_guards.values()))

    def close(self, timeout: float = 30.0) -> None:
        """Write what is left and stop the worker thread; log what could not be written."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error(
                "the catalog writer did not finish within %s s: %d document(s) not written",
                timeout,
                self._queue.qsize(),
            )
        unwritten = self.unwritten()
        if unwritten:
            logger.error(
                "%d run(s) are not in the catalog and are kept in %s: they are written when "
                "this config is loaded again with the catalog up (%s)",
                len(unwritten),
                self.spool.directory,
                ", ".join(path.name for path in unwritten),
            )

    def _work(self) -> None:
        self._pending_since: float | None = None  # when the oldest unwritten event was handed in
        carried = None  # a control item met while draining a backlog: handled next
        while True:
            timeout = None
            if self._pending_since is not None:
                timeout = max(0.0, self._pending_since + self.max_delay - time.monotonic())
            if self._writer.spooled:
                wait = max(0.0, self._next_replay - time.monotonic())
                timeout = wait if timeout is None else min(timeout, wait)
            if carried is not None:
                item, carried = carried, None
            else:
                try:
                    item = self._queue.get(timeout=timeout) if timeout != 0.0 else None
                except queue.Empty:
                    item = None
            if item is _STOP:
                self._flush()
                self._replay(force=True)
                return
            if item is _FLUSH:
                self._flush()
                self._replay(force=True)
                self._pending_since = None
            elif item is not None:
                self._write(item)
            # Flushing only when the oldest event is due (not whenever the queue is empty) keeps
            # batches large at high rates: measured 300 vs 210 events/s for 1600-point spectra.
            if self._due():
                # What waits behind it goes into the same batch: a backlog flushed event by
                # event would be written at the rate of one request per event.
                for _ in range(self._queue.qsize()):
                    try:
                        queued = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if queued is _STOP or queued is _FLUSH:
                        carried = queued
                        break
                    self._write(queued)
                    self._done_one()
                if self._pending_since is not None:
                    self._flush()
                    self._pending_since = None
            if item is None or (item is not _FLUSH and self._queue.empty()):
                self._replay(force=False)
            if item is not None:
                self._done_one()

    def _write(self, item: tuple[str, dict, float]) -> None:
        """Hand one queued document to the catalog writer (its events are batched)."""
        name, doc, handed_in = item
        try:
            self._writer(name, doc)
        except Exception as error:
            logger.exception("could not write a %r document to the catalog", name)
            self._record(error)
        if name in ("event", "event_page") and self._pending_since is None:
            self._pending_since = handed_in
        elif name == "stop":
            self._pending_since = None  # the run writer wrote its cache with the stop document

    def _due(self) -> bool:
        since = self._pending_since
        return since is not None and time.monotonic() - since >= self.max_delay

    def _done_one(self) -> None:
        with self._idle:
            self._unfinished -= 1
            if not self._unfinished:
                self._idle.notify_all()

    def _record(self, error: BaseException) -> None:
        self._error = error
        self._failed = True

    def _flush(self) -> None:
        try:
            self._writer.flush()
        except Exception as error:
            logger.exception("could not write buffered events to the catalog")
            self._record(error)

    def _replay(self, *, force: bool) -> None:
        """Write the ended spooled runs into the catalog (at most every SPOOL_RETRY_S)."""
        if not self._writer.spooled or (not force and time.monotonic() < self._next_replay):
            return
        try:
            while self._writer.spooled:
                self.spool_replay(self._writer.spooled[0])
                self._writer.spooled.pop(0)
        except Exception as error:
            logger.info("the catalog does not take the spooled runs yet (%r); retrying", error)
        self._next_replay = time.monotonic() + SPOOL_RETRY_S

    def spool_replay(self, path: Path) -> None:
        """Write one spooled run into the catalog (see :func:`insitu.beamline.run_spool.replay`)."""
        from insitu.beamline.run_spool import replay

        replay(self.catalog, path)
