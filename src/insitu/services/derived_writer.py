"""Write only the derived (analysis) streams of runs that another writer put in the catalog.

A beamline's own :class:`~insitu.beamline.durable_writer.DurableTiledWriter` (with
``analysis=False``) creates each run in the shared catalog and writes its raw streams and its
stop document. A separate analysis process receives the same documents (over 0MQ), runs the
analysis callbacks, and must add their derived streams (``raman_analysis``, ``eis_fit``...) to
those same runs without touching the raw ones. :class:`DerivedStreamsWriter` does that with
bluesky-tiled-plugins' own document handling (RunNormalizer + its per-run writer, the classes
behind ``TiledWriter``, reached through :mod:`insitu.compat.bluesky_tiled_plugins`) and changes
only what must differ:

* ``start``: the run's container is not created but looked up (waiting for the raw writer to
  create it); nothing of the start document is written.
* descriptors/events of streams not in ``streams``: dropped before any processing, so raw
  streams are never written twice; a derived stream that already exists in the run (written
  by an in-process analysis, or an earlier consumer) raises instead of being overwritten.
* ``stop``: the raw writer owns the stop document. After writing the last derived events, this
  writer waits until the raw stop is in the catalog and then merges the derived streams' event
  counts into ``stop.num_events`` with a JSON *merge* patch (server-side, so nothing the raw
  writer wrote is replaced). If the raw stop never comes (the raw writer died), the counts are
  not written and a warning is logged: a partial stop would make an unfinished run look closed.

Derived events therefore land after the raw stop; a reader that must see them waits for
``stop.num_events`` to list the derived streams (or for the stream's length).

The time bound on writing (every derived event in the catalog within ``max_delay``) comes from
:class:`~insitu.beamline.durable_writer.DurableTiledWriter`, whose worker thread is reused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from tiled.utils import patch_mimetypes

from insitu.beamline.durable_writer import DurableTiledWriter, FlushableTiledWriter
from insitu.compat.bluesky_tiled_plugins import (
    IdempotentRunWriter,
    run_writer_options,
    stream_nodes,
    stream_tree_nodes,
    write_cached_events,
)

__all__ = ["DerivedStreamsWriter", "DerivedStreamConflictError"]

logger = logging.getLogger(__name__)


class DerivedStreamConflictError(RuntimeError):
    """A derived stream already exists in the run: it is not overwritten."""


class _DerivedRunWriter(IdempotentRunWriter):
    """TiledWriter's per-run writer for a run another writer created: adds streams, not the run."""

    def __init__(self, client, *, run_timeout: float, stop_timeout: float, **kwargs):
        super().__init__(client, **kwargs)
        self.run_uid: str | None = None
        self.run_timeout = run_timeout
        self.stop_timeout = stop_timeout

    def start(self, doc):
        self.run_uid = doc["uid"]
        self.access_tags = doc.get("tiled_access_tags")

    def _run_node(self):
        """The run's container, waiting up to ``run_timeout`` for the raw writer to create it."""
        if self.root_node is None:
            deadline = time.monotonic() + self.run_timeout
            while True:
                try:
                    self.root_node = self.client[self.run_uid]
                    break
                except KeyError:
                    if time.monotonic() > deadline:
                        raise KeyError(
                            f"run {self.run_uid} is not in the catalog after {self.run_timeout} s:"
                            " the beamline's writer must create it (derived streams only here)"
                        ) from None
                    time.sleep(0.05)
        return self.root_node

    def descriptor(self, doc):
        root = self._run_node()
        name = doc["name"]
        if name not in stream_nodes(self) and name in root:
            raise DerivedStreamConflictError(
                f"run {self.run_uid} already has a stream {name!r} (another analysis wrote it);"
                " not overwriting it"
            )
        super().descriptor(doc)

    def event(self, doc):
        if doc["descriptor"] in stream_nodes(self):  # else its stream could not be created
            super().event(doc)

    def stop(self, doc):
        if self.root_node is None:
            return  # no derived stream in this run: nothing to write
        write_cached_events(self)
        closed: set[str] = set()  # the run's own node is the raw writer's to close
        for node in stream_tree_nodes(self):
            if node.uri not in closed:
                closed.add(node.uri)
                node.close_stream()
        streams = {node.item["id"] for node in stream_nodes(self).values()}
        counts = {
            name: count for name, count in (doc.get("num_events") or {}).items() if name in streams
        }
        self._merge_into_stop(counts)

    def _merge_into_stop(self, counts: dict[str, int]) -> None:
        deadline = time.monotonic() + self.stop_timeout
        while "stop" not in (node := self.client[self.run_uid]).metadata:
            if time.monotonic() > deadline:
                logger.warning(
                    "run %s has no stop document %.0f s after its derived streams ended: "
                    "their event counts %s are not added to stop.num_events",
                    self.run_uid,
                    self.stop_timeout,
                    counts,
                )
                return
            time.sleep(0.05)
        node.patch_metadata(
            metadata_patch={"stop": {"num_events": counts}},
            content_type=patch_mimetypes.MERGE_PATCH,
            drop_revision=True,
        )


class _DerivedTiledWriter(FlushableTiledWriter):
    """``TiledWriter`` that forwards only derived streams to per-run :class:`_DerivedRunWriter`."""

    def __init__(self, client, *, streams: Iterable[str], run_timeout, stop_timeout, **kwargs):
        super().__init__(client, **kwargs)
        self.streams = frozenset(streams)
        self.run_timeout = run_timeout
        self.stop_timeout = stop_timeout
        self._open_runs: set[str] = set()
        self._descriptors: dict[str, str] = {}  # derived descriptor uid -> run uid

    def make_run_writer(self, start_doc):
        options = run_writer_options(self)
        run_writer = _DerivedRunWriter(
            self.client,
            run_timeout=self.run_timeout,
            stop_timeout=self.stop_timeout,
            batch_size=options["batch_size"],
            max_array_size=options["max_array_size"],
        )
        self.run_writers[start_doc["uid"]] = run_writer
        return run_writer

    def __call__(self, name, doc):
        if name == "start":
            self._open_runs.add(doc["uid"])
        elif name == "descriptor":
            if doc["run_start"] not in self._open_runs or doc.get("name") not in self.streams:
                return  # a raw stream (the beamline's writer stores it) or an unseen run
            self._descriptors[doc["uid"]] = doc["run_start"]
        elif name in ("event", "event_page"):
            if doc["descriptor"] not in self._descriptors:
                return
        elif name == "stop":
            if doc["run_start"] not in self._open_runs:
                return
            self._open_runs.discard(doc["run_start"])
            for uid in [u for u, run in self._descriptors.items() if run == doc["run_start"]]:
                del self._descriptors[uid]
        else:
            return  # resources, datums, stream resources belong to raw streams
        super().__call__(name, doc)


class DerivedStreamsWriter(DurableTiledWriter):
    """Subscriber that adds derived streams to runs already in a catalog (see the module doc).

    Parameters
    ----------
    catalog : tiled client
        The runs container the beamline writes to (``open_catalog(uri, api_key=...)``).
    streams : iterable of str
        Names of the derived streams to write (e.g. the analysis callbacks'
        ``derived_streams``); every other stream is left to the beamline's writer.
    max_delay : float
        Longest wall time a derived event waits in memory before it is written (s, 0-1].
    run_timeout : float
        Seconds to wait for a run's container to appear before its first derived stream.
    stop_timeout : float
        Seconds to wait for a run's raw stop document before merging the derived counts.
    backup_directory : str, optional
        JSON-lines copies of runs that could not be written.

    Notes
    -----
    Errors are raised as :class:`~insitu.beamline.durable_writer.CatalogWriteError` at the next
    document handed in, as in :class:`~insitu.beamline.durable_writer.DurableTiledWriter`.
    """

    def __init__(
        self,
        catalog,
        *,
        streams: Iterable[str],
        max_delay: float = 0.1,
        max_batch: int = 2000,
        run_timeout: float = 30.0,
        stop_timeout: float = 60.0,
        backup_directory: str | None = None,
    ):
        streams = frozenset(streams)
        if not streams or not all(isinstance(s, str) and s for s in streams):
            raise ValueError(f"DerivedStreamsWriter.streams {sorted(streams)!r}: give stream names")
        for name, value in (("run_timeout", run_timeout), ("stop_timeout", stop_timeout)):
            if not value > 0:
                raise ValueError(f"DerivedStreamsWriter.{name} {value} s must be positive")
        super().__init__(
            catalog, max_delay=max_delay, max_batch=max_batch, backup_directory=backup_directory
        )
        # The base class's worker thread (time-bounded batching, error reporting) is reused; only
        # the TiledWriter it feeds differs. No document can have been queued yet: safe to swap.
        self._writer = _DerivedTiledWriter(
            catalog,
            streams=streams,
            run_timeout=run_timeout,
            stop_timeout=stop_timeout,
            batch_size=max_batch,
            backup_directory=backup_directory,
        )
        self.streams = streams
