"""Run recorders and checks for faults during real runs: no event lost, what the caller is told.

:class:`RunRecorder` subscribes to a RunEngine, counts each stream's events and injects a fault
when the run has emitted a given event (from inside the document stream, so "before the fault"
is exact); :func:`assert_no_event_lost` then checks the run against the catalog and
:func:`error_text` gives what the caller of ``RE(plan)`` was told.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from insitu.beamline import Beamline

__all__ = ["RunRecorder", "assert_no_event_lost", "error_text"]


class RunRecorder:
    """RunEngine subscriber: counts each stream's events, keeps the primary ones, and calls
    ``at_event`` when the ``primary`` stream has emitted ``n`` events.

    ``at_event`` runs in the RunEngine's thread, before the next message; it may raise ``n`` to
    be called again later.

    Parameters
    ----------
    n : int
        The number of ``primary`` events after which ``at_event`` is called.
    at_event : callable
        Called with no argument (injects the fault).

    Attributes
    ----------
    start, stop : dict or None
        The run's start and stop documents, once emitted.
    streams : dict
        Descriptor uid -> stream name.
    emitted : collections.Counter
        Events emitted per stream name.
    primary : list of dict
        The ``primary`` event documents, in order.
    fault_started_at : float or None
        ``time.monotonic()`` when ``at_event`` was last called.
    """

    def __init__(self, n: int, at_event: Callable[[], None]) -> None:
        self.n = n
        self.at_event = at_event
        self.start: dict | None = None
        self.stop: dict | None = None
        self.streams: dict[str, str] = {}
        self.emitted: Counter[str] = Counter()
        self.primary: list[dict] = []
        self.fault_started_at: float | None = None

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self.start = doc
        elif name == "descriptor":
            self.streams[doc["uid"]] = doc["name"]
        elif name == "event":
            stream = self.streams[doc["descriptor"]]
            self.emitted[stream] += 1
            if stream == "primary":
                self.primary.append(doc)
                if self.emitted[stream] == self.n:
                    self.fault_started_at = time.monotonic()
                    self.at_event()
        elif name == "stop":
            self.stop = doc


def assert_no_event_lost(
    bl: Beamline, recorder: RunRecorder, derived: str | None = None, *, min_primary: int = 0
) -> dict:
    """Every event the run emitted is in the catalog, in every stream, and the stored stop
    document counts the same.

    Parameters
    ----------
    bl : insitu.beamline.Beamline
        The beamline the run was on (flushed here).
    recorder : RunRecorder
        The run's recorder.
    derived : str, optional
        A live-analysis stream that must hold one event per ``primary`` event.
    min_primary : int, optional
        The run must have emitted at least this many ``primary`` events.

    Returns
    -------
    dict
        The stop document as stored.
    """
    bl.flush()
    stored = bl.catalog[recorder.start["uid"]]
    stop = stored.stop
    assert stop is not None and stop["uid"] == recorder.stop["uid"]
    assert recorder.emitted["primary"] >= min_primary
    counted = stop["num_events"]
    # The RunEngine's streams as emitted; the analysis chain adds its derived streams.
    assert {name: counted[name] for name in recorder.emitted} == dict(recorder.emitted)
    if derived is not None:
        assert counted.get(derived, 0) == recorder.emitted["primary"]
    for stream, count in counted.items():
        assert len(stored[stream].read()["time"]) == count, stream
    return stop


def error_text(error: BaseException | None) -> str:
    """What the caller of ``RE(plan)`` is told: the exception and the chain of its causes.

    Parameters
    ----------
    error : BaseException or None
        What ``RE(plan)`` raised.

    Returns
    -------
    str
        ``"Type: message <- Cause: message ..."``; empty for None.
    """
    parts = []
    while error is not None:
        parts.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    return " <- ".join(parts)
