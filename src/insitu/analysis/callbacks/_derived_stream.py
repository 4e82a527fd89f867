"""Base of the analysis callbacks: forward a run's documents and add derived streams to it.

A :class:`DerivedStreamCallback` sits between the RunEngine and the document consumers (e.g. a
``TiledWriter``): ``RE.subscribe(callback); callback.subscribe(writer)``. Its ``__call__`` only
puts the document on a queue; one worker thread forwards every document unchanged, in order, and
lets the subclass analyse events and emit derived streams *in the same run* (descriptors composed
with event-model against the run's start document). The stop document is forwarded after the
run's queue is drained and :meth:`DerivedStreamCallback._finish_run` has run, with ``num_events``
counting the derived streams, so a writer stores them before it closes the run.

Errors: an exception while handling a document, or raised by a subscriber, is logged with its
traceback and kept; :meth:`DerivedStreamCallback.flush` raises it (as the ``__cause__`` of a
``RuntimeError``). Subclasses report their own analysis failures with :meth:`_record_error`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import event_model
import numpy as np

__all__ = ["DerivedRun", "DerivedStreamCallback", "Subscriber", "data_key", "plain"]

Subscriber = Callable[[str, dict], Any]


def data_key(dtype: str, units: str | None = None, *, source: str) -> dict:
    """A scalar data key of a derived stream."""
    return {"dtype": dtype, "shape": [], "source": source, "units": units}


def plain(value: Any) -> Any:
    """numpy scalars to Python ones, so documents serialize as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class DerivedRun:
    """What the worker knows about one open run (subclasses add their own fields)."""

    start: dict
    descriptors: dict[str, dict] = field(default_factory=dict)
    streams: dict[str, Any] = field(default_factory=dict)
    event_counters: dict[str, int] = field(default_factory=dict)
    composers: dict[str, Any] = field(default_factory=dict)
    emitted: dict[str, int] = field(default_factory=dict)  # events per derived stream


class DerivedStreamCallback:
    """Queue documents, handle them in one worker thread, emit derived streams into the run.

    Parameters
    ----------
    name : str
        Name of the worker thread and prefix of error messages.

    Subclasses override :meth:`_new_run`, :meth:`_process_event` and optionally
    :meth:`_finish_run` and :attr:`derived_streams`.
    """

    def __init__(self, *, name: str) -> None:
        self._name = name
        self._logger = logging.getLogger(type(self).__module__)
        self._subscribers: dict[int, Subscriber] = {}
        self._next_token = 0
        self._subscribers_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, dict] | None] = queue.Queue()
        self._pending = 0
        self._pending_condition = threading.Condition()
        self._runs: dict[str, DerivedRun] = {}
        self._descriptor_run: dict[str, str] = {}
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ subclass interface

    @property
    def derived_streams(self) -> tuple[str, ...]:
        """Names of the streams this callback emits (events of such streams are not analysed)."""
        return ()

    def _new_run(self, start: dict) -> DerivedRun:
        """State of a new run (override to return a subclass of :class:`DerivedRun`)."""
        return DerivedRun(start=start)

    def _process_event(self, run: DerivedRun, descriptor: dict, event: dict) -> None:
        """Analyse one event of a run's own stream (called after the event is forwarded)."""

    def _finish_run(self, run: DerivedRun, stop: dict) -> None:
        """Emit end-of-run summaries (called before the stop document is forwarded)."""

    # ------------------------------------------------------------------ RunEngine-facing side

    def __call__(self, name: str, doc: dict) -> None:
        """Queue a document (called by the RunEngine; returns at once)."""
        if not self._worker.is_alive():
            raise RuntimeError(f"{self._name} is closed; create a new one")
        with self._pending_condition:
            self._pending += 1
        self._queue.put((name, doc))

    def subscribe(self, callback: Subscriber) -> int:
        """Forward every document (raw and derived) to ``callback(name, doc)``; returns a token."""
        if not callable(callback):
            raise ValueError(f"subscribe: {callback!r} is not callable")
        with self._subscribers_lock:
            token = self._next_token
            self._next_token += 1
            self._subscribers[token] = callback
        return token

    def unsubscribe(self, token: int) -> None:
        """Stop forwarding to the subscriber registered under ``token``."""
        with self._subscribers_lock:
            self._subscribers.pop(token, None)

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until every queued document has been processed and forwarded.

        Raises
        ------
        TimeoutError
            When documents are still pending after ``timeout`` seconds.
        RuntimeError
            When a subscriber raised while receiving a document, or the callback failed on one,
            since the last flush (each traceback was logged when it happened).
        """
        with self._pending_condition:
            done = self._pending_condition.wait_for(lambda: self._pending == 0, timeout)
        if not done:
            raise TimeoutError(f"{self._name}: {self._pending} documents still pending")
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            raise RuntimeError(
                f"{self._name}: {len(errors)} error(s) in the worker or a subscriber since the"
                f" last flush; first: {errors[0]!r}"
            ) from errors[0]

    wait = flush

    def close(self, timeout: float | None = 60.0) -> None:
        """Process what is queued, then stop the worker thread."""
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout)

    # ------------------------------------------------------------------ worker side

    def _record_error(self, error: BaseException) -> None:
        """Keep an error for :meth:`flush` to raise (log it first, with its traceback)."""
        with self._errors_lock:
            self._errors.append(error)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, doc = item
            try:
                self._handle(name, doc)
            except Exception as error:  # a bug here must not kill the worker and hang flush()
                self._logger.exception("%s failed on a %r document", self._name, name)
                self._record_error(error)
                if name == "stop":
                    self._emit(name, doc)
            finally:
                with self._pending_condition:
                    self._pending -= 1
                    self._pending_condition.notify_all()

    def _emit(self, name: str, doc: dict) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers.values())
        for subscriber in subscribers:
            try:
                subscriber(name, doc)
            except Exception as error:
                self._logger.exception(
                    "%s subscriber %r failed on %r", self._name, subscriber, name
                )
                self._record_error(error)

    def _handle(self, name: str, doc: dict) -> None:
        if name == "start":
            self._runs[doc["uid"]] = self._new_run(doc)
            self._emit(name, doc)
        elif name == "descriptor":
            run = self._runs.get(doc["run_start"])
            if run is not None:
                run.descriptors[doc["uid"]] = doc
                self._descriptor_run[doc["uid"]] = doc["run_start"]
            self._emit(name, doc)
        elif name == "event":
            self._emit(name, doc)
            self._dispatch_event(doc)
        elif name == "event_page":
            self._emit(name, doc)
            for event in event_model.unpack_event_page(doc):
                self._dispatch_event(event)
        elif name == "stop":
            run = self._runs.pop(doc["run_start"], None)
            if run is not None:
                for uid in run.descriptors:
                    self._descriptor_run.pop(uid, None)
                self._finish_run(run, doc)
                num_events = dict(doc.get("num_events") or {})
                num_events.update(run.emitted)
                doc = {**doc, "num_events": num_events}
            self._emit(name, doc)
        else:
            self._emit(name, doc)

    def _dispatch_event(self, event: dict) -> None:
        run_uid = self._descriptor_run.get(event["descriptor"])
        if run_uid is None:
            return
        run = self._runs[run_uid]
        descriptor = run.descriptors[event["descriptor"]]
        if descriptor.get("name") in self.derived_streams:
            return
        self._process_event(run, descriptor, event)

    def _emit_event(self, run: DerivedRun, stream: str, data_keys: dict, data: dict) -> dict:
        """Emit one event of a derived stream (its descriptor first, once per run)."""
        if stream not in run.composers:
            bundle = event_model.compose_descriptor(
                start=run.start,
                streams=run.streams,
                event_counters=run.event_counters,
                name=stream,
                data_keys={key: dict(value) for key, value in data_keys.items()},
                object_keys={stream: list(data_keys)},
            )
            run.composers[stream] = bundle.compose_event
            self._emit("descriptor", bundle.descriptor_doc)
        now = time.time()
        data = {key: plain(value) for key, value in data.items()}
        event = run.composers[stream](data=data, timestamps=dict.fromkeys(data, now), time=now)
        run.emitted[stream] = run.emitted.get(stream, 0) + 1
        self._emit("event", event)
        return event
