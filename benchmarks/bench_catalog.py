"""Catalog write throughput: DurableTiledWriter against TiledWriter(batch_size=1), same run.

Both writers are durable (no event waits in memory for the end of the run); the peer gets there
by writing each event on its own. Each writes a ``count`` of N events, every event a 1600-point
spectrum plus three scalars, into a fresh embedded catalog; the time runs from the first
document to the moment every event is readable. Prints events/s for both and their ratio.

Usage: python benchmarks/bench_catalog.py [--events N]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import bluesky.plans as bp
import numpy as np
from bluesky import RunEngine
from bluesky_tiled_plugins import TiledWriter
from ophyd import Component, Device, Signal

from insitu.beamline.catalog import close_catalog, open_catalog
from insitu.beamline.durable_writer import DurableTiledWriter

TARGET_EVENTS_PER_S = 200.0


class SpectrumAndScalars(Device):
    """A detector whose reading is one 1600-point spectrum and three scalars."""

    spectrum = Component(Signal, value=np.zeros(1600), kind="hinted")
    temperature = Component(Signal, value=25.0, kind="hinted")
    exposure = Component(Signal, value=1.0, kind="normal")
    counter = Component(Signal, value=0, kind="normal")

    def trigger(self):
        self.counter.put(self.counter.get() + 1)
        self.spectrum.put(np.random.default_rng().normal(1000.0, 30.0, 1600))
        self.temperature.put(25.0 + 0.1 * self.counter.get())
        return super().trigger()


def measure(writer_factory, n_events: int) -> float:
    """Return sustained events/s from the first emitted document to all events written."""
    with tempfile.TemporaryDirectory() as directory:
        catalog = open_catalog(directory)
        writer = writer_factory(catalog)
        engine = RunEngine({})
        engine.subscribe(writer)
        detector = SpectrumAndScalars(name="det")
        start = time.perf_counter()
        (uid,) = engine(bp.count([detector], num=n_events))
        if hasattr(writer, "wait"):
            writer.wait(timeout=600)
        elapsed = time.perf_counter() - start
        stored = len(catalog[uid]["primary"].read()["det_temperature"])
        if stored != n_events:
            raise RuntimeError(f"{stored} events stored, {n_events} emitted")
        if hasattr(writer, "close"):
            writer.close()
        close_catalog(catalog)
    return n_events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()

    ours = measure(DurableTiledWriter, args.events)
    peer_events = max(50, args.events // 10)  # the peer is slow; fewer events keep the run short
    peer = measure(lambda catalog: TiledWriter(catalog, batch_size=1), peer_events)
    print(f"DurableTiledWriter (max_delay 0.5 s): {ours:8.1f} events/s over {args.events} events")
    print(f"TiledWriter(batch_size=1)         : {peer:8.1f} events/s over {peer_events} events")
    print(f"ratio ours/peer: {ours / peer:.1f}x")
    verdict = "met" if ours >= TARGET_EVENTS_PER_S else "NOT met"
    print(
        f"target >= {TARGET_EVENTS_PER_S:.0f} events/s (1600-point spectrum + 3 scalars): {verdict}"
    )


if __name__ == "__main__":
    main()
