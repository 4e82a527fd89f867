"""Crash recovery: give runs cut off by a dead process the stop document they never got.

A process killed mid-run (SIGKILL, power loss, OOM) leaves its run in the catalog with every
event written so far (:class:`insitu.beamline.durable_writer.DurableTiledWriter` keeps them on
disk within a second) but no stop document, so it looks as if it were still running. On the
next start of a beamline on the same machine, :func:`close_interrupted_runs` finds such runs and
writes the stop document, saying what happened::

    exit_status: "fail"
    reason: "process died (pid 1234 on host lab-pc); stop document written on restart at
             2025-05-01T10:12:03+00:00"
    num_events: {"primary": 57, ...}      # what is stored

``exit_status`` is ``"fail"``, not ``"abort"``: in bluesky ``"abort"`` means a person asked for
the run to end, ``"fail"`` that it ended on an error; a dead process is the latter.

Only runs known to belong to a dead process are touched: the start document must carry
``host`` (this machine's) and ``pid`` (the beamline puts both in ``RE.md``), and that pid must
not be a live process that was already running when the run started. Runs of another machine
(two beamlines may share a catalog server), of a live process, or without ``host``/``pid`` are
left alone.

The stop document is stored the way bluesky-tiled-plugins' ``TiledWriter`` stores one (2.0.12:
``run.update_metadata({"stop": doc})`` on the run's container), so databroker and the
``CatalogOfBlueskyRuns`` client read it like any other.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from event_model import DocumentNames, schema_validators
from tiled.queries import Key, KeyPresent

from insitu.analysis.stored_stream import complete_events

__all__ = ["close_interrupted_runs", "process_is_alive", "this_host"]

logger = logging.getLogger(__name__)


def this_host() -> str:
    """This machine's name, as the beamline records it in start documents (``host``)."""
    return socket.gethostname()


def process_is_alive(pid: int, started_before: float | None = None) -> bool:
    """True if process ``pid`` exists on this machine (and started before ``started_before``).

    A pid is reused once its process is gone; with ``started_before`` (an epoch time, e.g. the
    run's start) a process that started later is a stranger with a recycled pid, not the
    run's writer.
    """
    try:
        import psutil  # in the resolved environment (constraints.txt); gives the start time
    except ImportError:  # pragma: no cover - psutil is installed with the project
        psutil = None
    if psutil is not None:
        try:
            process = psutil.Process(int(pid))
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            created = process.create_time()
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True
        # create_time has ~10 ms resolution (clock ticks): allow a second of slack.
        return started_before is None or created <= started_before + 1.0
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stored_events(run) -> dict[str, int]:
    """Complete events stored per stream of ``run`` (see ``complete_events``)."""
    return {stream: complete_events(run[stream]) for stream in run}


def close_interrupted_runs(
    runs,
    *,
    host: str | None = None,
    is_alive: Callable[[int], bool] | None = None,
) -> list[str]:
    """Write a stop document for each run of ``host`` whose writing process is dead.

    Parameters
    ----------
    runs : tiled runs container
        The catalog (``beamline.catalog``).
    host : str, optional
        Only runs whose start document says this ``host`` (default: this machine).
    is_alive : callable, optional
        ``is_alive(pid) -> bool``; default :func:`process_is_alive` (which also treats a pid
        recycled by a younger process as dead).

    Returns
    -------
    list of str
        The uids of the runs given a stop document, oldest first.
    """
    host = this_host() if host is None else str(host)
    open_runs = runs.search(Key("host") == host).search(KeyPresent("stop.uid", exists=False))
    closed = []
    # The listing's own metadata, not a lookup per uid in the open runs: a run another living
    # process (a second station on this host) closes in between is no longer among them, and
    # the lookup raised KeyError (a restarting queue station failed to load for it).
    candidates = sorted(
        ((run.metadata["start"]["time"], uid, run) for uid, run in open_runs.items()),
        key=lambda item: item[0],
    )
    for started, uid, run in candidates:
        start = run.metadata["start"]
        pid = start.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            logger.warning("run %s has no usable pid (%r): left open", uid, pid)
            continue
        alive = is_alive(pid) if is_alive is not None else process_is_alive(pid, started)
        if alive:
            continue
        now = time.time()
        when = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="seconds")
        stop = {
            "uid": str(uuid.uuid4()),
            "time": now,
            "run_start": uid,
            "exit_status": "fail",
            "reason": (
                f"process died (pid {pid} on host {host}); stop document written on restart "
                f"at {when}"
            ),
            "num_events": _stored_events(run),
        }
        schema_validators[DocumentNames.stop].validate(stop)
        # As TiledWriter's own stop (bluesky-tiled-plugins 2.0.12): metadata key "stop".
        run.update_metadata(metadata={"stop": stop}, drop_revision=True)
        logger.warning("run %s: %s", uid, stop["reason"])
        closed.append(uid)
    return closed
