"""DurableTiledWriter: an event's max_delay runs from when it was handed in, and a backlog is
written in one batch (the catalog itself replaced by a recording stand-in)."""

from __future__ import annotations

import threading
import time
import types

import pytest

from insitu.beamline.durable_writer import DurableTiledWriter

pytestmark = pytest.mark.unit


class _SlowCatalogWriter:
    """What the worker thread uses of FlushableTiledWriter: a call per document (a "slow"
    document takes ``slow_s``), flush() (recorded with the events it wrote), no spool."""

    def __init__(self, slow_s: float):
        self.slow_s = slow_s
        self.spooled = False
        self.run_guards: dict = {}
        self.cached: list[int] = []
        self.flushes: list[tuple[float, list[int]]] = []
        self.lock = threading.Lock()

    def __call__(self, name, doc):
        if name == "slow":
            time.sleep(self.slow_s)
        elif name == "event":
            with self.lock:
                self.cached.append(doc["seq_num"])

    def flush(self):
        with self.lock:
            self.flushes.append((time.monotonic(), self.cached))
            self.cached = []
        return 0


def _writer(slow_s: float) -> tuple[DurableTiledWriter, _SlowCatalogWriter]:
    # No catalog: TiledWriter only asks a client for include_data_sources() when built; the
    # stand-in takes its place before the first document reaches the worker thread.
    catalog = types.SimpleNamespace(include_data_sources=lambda: None)
    writer = DurableTiledWriter(catalog, max_delay=0.5)
    stand_in = _SlowCatalogWriter(slow_s)
    writer._writer = stand_in
    return writer, stand_in


def test_an_event_behind_a_slow_write_is_on_disk_within_its_delay_of_being_handed_in():
    writer, stand_in = _writer(slow_s=0.6)
    try:
        writer("slow", {})  # the worker is busy with this for 0.6 s
        handed_in = time.monotonic()
        writer("event", {"seq_num": 1})
        # Not wait(): it asks for a flush at once. The worker's own delay writes it.
        deadline = time.monotonic() + 10
        while not any(events for _, events in stand_in.flushes):
            assert time.monotonic() < deadline, "the event was never written"
            time.sleep(0.01)
        ((flushed_at, events), *_) = [f for f in stand_in.flushes if f[1]]
        assert events == [1]
        # Due 0.5 s after it was handed in, written once the slow write let go (0.6 s): counted
        # from when the worker took it, it waited 0.6 + 0.5 s.
        assert flushed_at - handed_in < 0.95, flushed_at - handed_in
    finally:
        writer.close()


def test_a_backlog_behind_a_slow_write_is_written_in_one_batch():
    writer, stand_in = _writer(slow_s=0.6)
    try:
        writer("slow", {})
        for seq_num in range(1, 51):
            writer("event", {"seq_num": seq_num})
        deadline = time.monotonic() + 10
        while sum(len(events) for _, events in stand_in.flushes) < 50:
            assert time.monotonic() < deadline, "the events were never written"
            time.sleep(0.01)
        batches = [events for _, events in stand_in.flushes if events]
        assert sum(batches, []) == list(range(1, 51))
        assert len(batches) == 1, [len(b) for b in batches]
    finally:
        writer.close()
