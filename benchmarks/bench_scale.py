"""Live analysis latency over 0MQ: RunEngine event -> derived document readable in the catalog.

Starts a SQLite-backed ``tiled serve`` with an API key (the shared catalog), bluesky's
``bluesky-0MQ-proxy`` and ``insitu serve analysis`` (the 0MQ analysis consumer). A simulated
beamline loaded with ``analysis=False`` writes the raw runs to the server and publishes its
documents with ``attach_publisher``; the consumer adds the ``raman_analysis`` events to the same
runs. The peer, measured in the same run against the same server and workload, is the
in-process analysis chain (``insitu.beamline.load(analysis=True)``: RamanTransitionCallback ->
EISFitCallback -> DurableTiledWriter in the beamline's process). Both writers use the same
``--max-delay``.

Workload: a heat ramp (400 -> 850 C at 20 C/min, a 30 s Raman spectrum every 10 C) at
``--speedup`` (default 60x: about one spectrum every 0.5 s of wall time).

For every Raman spectrum event, t_emit is when the RunEngine hands the event to its subscribers
(a subscriber stamps it, ``time.time()``), and t_read is when a separate reader process, polling
the catalog over HTTP with its own client every 50 ms, first gets back a ``raman_analysis`` event
whose ``source_uid`` is that event (the end of the read that saw it: an upper bound). Prints the
median and p90 of t_read - t_emit for both paths, split at the derived event's own ``time`` (when
the analysis composed it) into emitted -> analysed (0MQ or queue, analysis) and analysed ->
readable (writer delay, HTTP write, reader poll), their ratio, and the target (median < 1 s).
Write errors the server logged (SQLite "database is locked" under concurrent writers; the
writers retry them) are counted.

Usage: python benchmarks/bench_scale.py [--speedup S] [--max-delay D] [--catalog URI --api-key K]
"""

from __future__ import annotations

import argparse
import inspect
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_MEDIAN_S = 1.0
STREAM = "raman_analysis"
SPECTRUM_KEY = "raman_spectrum"
POLL_S = 0.05
READER_READY = "reader ready"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_tiled_server(directory: Path) -> tuple[subprocess.Popen, str, str]:
    """A SQLite-backed ``tiled serve catalog`` on loopback; returns (process, uri, api key)."""
    tiled = shutil.which("tiled", path=str(Path(sys.executable).parent)) or "tiled"
    port, key = _free_port(), secrets.token_hex(16)
    process = subprocess.Popen(
        [
            tiled, "serve", "catalog", str(directory / "catalog.db"), "--init",
            "-w", str(directory / "data"), "-w", f"sqlite:///{directory / 'storage.sqlite'}",
            "--api-key", key, "--port", str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "server.log", "w"),  # noqa: SIM115 (lives as long as the server)
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}", key


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """Terminate ``process``; kill it if it has not ended after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def wait_for_line(process: subprocess.Popen, prefix: str, what: str) -> None:
    line = process.stdout.readline()
    if not line.startswith(prefix):
        raise RuntimeError(f"{what} did not start: {line!r}")


class EmissionStamps:
    """RunEngine subscriber: the wall time each Raman spectrum event was emitted, by event uid."""

    def __init__(self):
        self.emitted: dict[str, float] = {}
        self._spectrum_descriptors: set[str] = set()

    def __call__(self, name: str, doc: dict) -> None:
        if name == "descriptor" and SPECTRUM_KEY in doc["data_keys"]:
            self._spectrum_descriptors.add(doc["uid"])
        elif name == "event" and doc["descriptor"] in self._spectrum_descriptors:
            self.emitted[doc["uid"]] = time.time()


class CatalogReader:
    """A child process that reports when each derived event becomes readable in the catalog."""

    def __init__(self, uri: str, key: str):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--read-catalog", uri, "--api-key", key],
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_for_line(self.process, READER_READY, "the catalog reader")
        self.seen: dict[str, float] = {}
        self.analysed: dict[str, float] = {}
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            uid, seen, analysed = line.split()
            self.analysed[uid] = float(analysed)
            self.seen[uid] = float(seen)

    def wait_for(self, uids, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not set(uids) <= set(self.seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop_process(self.process, timeout=30)
        self._thread.join(10)
        self.process.stdout.close()


def read_catalog_main(uri: str, key: str) -> None:
    """Reader process: poll the newest run's derived stream; print, per derived event,
    "source_uid time_read time_analysed" (the last is the derived event's own ``time``)."""
    import signal

    from insitu.beamline.catalog import open_catalog

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    runs = open_catalog(uri, api_key=key)
    known = set(runs)
    print(READER_READY, flush=True)
    run = stream = None
    reported: set[str] = set()
    while True:
        time.sleep(POLL_S)
        if run is None:
            new = set(runs) - known
            if not new:
                continue
            run = runs[new.pop()]
        if stream is None:
            if STREAM not in run:
                continue
            stream = run[STREAM]  # kept: each poll is then one read of its table
        try:
            table = stream.read(variables=["source_uid", "time"])
            source_uids, analysed_at = table["source_uid"].values, table["time"].values
        except KeyError:  # the stream's container exists, its first rows are not written yet
            stream = None
            continue
        now = time.time()
        for uid, analysed in zip(source_uids, analysed_at, strict=True):
            if uid not in reported:
                reported.add(uid)
                print(uid, repr(now), repr(float(analysed)), flush=True)


def measure(label: str, config: dict, uri: str, key: str, publish_to: str | None) -> dict:
    """Run the workload on a fresh beamline; return per-event latencies (s) of its spectra.

    Keys: ``total`` (emitted -> readable), ``analysed`` (emitted -> derived event composed, i.e.
    transport, queues and analysis) and ``stored`` (composed -> readable: writer and reader).
    """
    import bluesky.plan_stubs as bps

    import insitu.beamline
    from insitu import clock
    from insitu.plans import heat_ramp
    from insitu.services.streaming import CONNECT_SETTLE_S, attach_publisher

    stamps = EmissionStamps()
    reader = CatalogReader(uri, key)
    with insitu.beamline.load(config, table=False, analysis=publish_to is None) as beamline:
        beamline.RE.waiting_hook = None
        beamline.raman.exposure.put(30.0)
        if publish_to is not None:
            attach_publisher(beamline, publish_to)
            time.sleep(CONNECT_SETTLE_S)
        beamline.RE(bps.mv(beamline.stage.rate, 50.0))  # reach the start temperature quickly
        beamline.RE.subscribe(stamps)
        # The stage is left where the ramp ends (no slow cool-down to the park temperature).
        no_park = {"park_at": None} if "park_at" in inspect.signature(heat_ramp).parameters else {}
        started = time.monotonic()
        (uid,) = beamline.RE(heat_ramp(beamline.stage, [beamline.raman], start=400, stop=850,
                                       rate=20, every_C=10, **no_park))  # fmt: skip
        print(f"{label}: ramp run took {time.monotonic() - started:.1f} s", file=sys.stderr)
        beamline.flush()
        reader.wait_for(stamps.emitted, timeout=120)
        stored = beamline.catalog[uid]["primary"].read().sizes["time"]
    clock.reset()
    if stored != len(stamps.emitted):
        raise RuntimeError(f"{label}: {stored} raw events stored, {len(stamps.emitted)} emitted")
    missing = set(stamps.emitted) - set(reader.seen)
    if missing:
        raise RuntimeError(f"{label}: {len(missing)} of {len(stamps.emitted)} events never read")
    events = stamps.emitted
    return {
        "total": [reader.seen[uid] - emitted for uid, emitted in events.items()],
        "analysed": [reader.analysed[uid] - emitted for uid, emitted in events.items()],
        "stored": [reader.seen[uid] - reader.analysed[uid] for uid in events],
    }


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speedup", type=float, default=60.0, help="simulation speed-up")
    parser.add_argument("--max-delay", type=float, default=0.1, help="writers' max delay (s)")
    parser.add_argument(
        "--catalog",
        help="URI of a running tiled server to use (e.g. a PostgreSQL-backed `insitu serve "
        "catalog`); default: start a SQLite-backed `tiled serve` for the run",
    )
    parser.add_argument("--api-key", help="API key of --catalog")
    parser.add_argument("--read-catalog", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_catalog:
        read_catalog_main(args.read_catalog, args.api_key)
        return

    from insitu.services.analysis_consumer import READY_LINE
    from insitu.services.streaming import CONNECT_SETTLE_S, start_proxy

    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        if args.catalog:
            server, uri, key = None, args.catalog, args.api_key
        else:
            server, uri, key = start_tiled_server(tmp)
        proxy = start_proxy()
        consumer = subprocess.Popen(
            [
                sys.executable, "-m", "insitu.cli", "serve", "analysis", "--zmq",
                proxy.out_address, "--catalog", uri, "--api-key", key,
                "--max-delay", str(args.max_delay),
            ],
            stdout=subprocess.PIPE,
            stderr=open(tmp / "consumer.log", "w"),  # noqa: SIM115 (lives with the consumer)
            text=True,
        )  # fmt: skip
        try:
            wait_for_line(consumer, READY_LINE, "insitu serve analysis")
            time.sleep(CONNECT_SETTLE_S)

            def config(name: str) -> dict:
                return {
                    "catalog": {"location": uri, "api_key": key,
                                "max_write_delay_s": args.max_delay},
                    "metadata_dir": str(tmp / name),
                    "simulation": {"speedup": args.speedup, "seed": 3},
                }  # fmt: skip

            ours = measure("0MQ consumer", config("zmq"), uri, key, proxy.in_address)
            peer = measure("in-process chain", config("local"), uri, key, None)
        finally:
            stop_process(consumer, timeout=120)
            consumer.stdout.close()
            proxy.close()
            server_errors = []
            if server is not None:
                stop_process(server, timeout=30)
                server_errors = re.findall(
                    r"^([\w.]+(?:Error|Exception): .*)$",
                    (tmp / "server.log").read_text(),
                    flags=re.MULTILINE,
                )

    backend = args.catalog or "a SQLite-backed `tiled serve` started for this run"
    print(f"catalog: {backend}")
    print(
        f"heat ramp with Raman at {args.speedup:g}x, writers' max delay {args.max_delay:g} s, "
        f"reader polls every {POLL_S * 1000:.0f} ms; latency = event emitted -> "
        f"{STREAM} event readable in the tiled server"
    )
    rows = (
        ("insitu serve analysis (0MQ consumer process)", ours),
        ("peer: in-process analysis chain (load(analysis=True))", peer),
    )
    for name, latencies in rows:
        values = latencies["total"]
        print(
            f"{name:54}: median {statistics.median(values):6.3f} s  p90 {p90(values):6.3f} s  "
            f"over {len(values)} events"
        )
        print(
            f"{'':54}  of which emitted->analysed median "
            f"{statistics.median(latencies['analysed']):.3f} s, analysed->readable median "
            f"{statistics.median(latencies['stored']):.3f} s"
        )
    if server_errors:
        print(
            f"server: {len(server_errors)} write error(s), retried by the writers; last: "
            f"{server_errors[-1][:160]}"
        )
    ratio = statistics.median(ours["total"]) / statistics.median(peer["total"])
    print(f"ratio of medians ours/peer: {ratio:.2f}x")
    verdict = "met" if statistics.median(ours["total"]) < TARGET_MEDIAN_S else "NOT met"
    print(f"target: median < {TARGET_MEDIAN_S:g} s over 0MQ: {verdict}")


if __name__ == "__main__":
    main()
