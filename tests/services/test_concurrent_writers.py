"""Two simulated beamline processes write to one shared catalog at once: complete, separate runs.

Each process loads a simulated beamline with ``catalog=URI`` (the key in its config's
``catalog.api_key``), waits at a barrier so both acquire at the same time, runs a count, a heat
ramp and another count, and prints what it emitted: per run its start metadata, and per stream
the descriptor uid and every event's ``(seq_num, time)``. The catalog must hold exactly those
runs, each with its own beamline name, host and pid, and the same events.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from insitu.beamline.catalog import close_catalog, open_catalog

pytestmark = [pytest.mark.services, pytest.mark.alone]

# The beamline process. It records the documents the catalog writer receives (raw events and the
# analysis callbacks' derived streams), so the comparison covers everything that is written.
WORKER = r"""
import json, os, sys, time
from pathlib import Path

import bluesky.plans as bp

import insitu.beamline
from insitu.plans.heat_ramp import heat_ramp

uri, name, workdir, seed = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
config = {
    "name": name,
    "catalog": {"location": uri, "api_key": os.environ["STATION_CATALOG_KEY"]},
    "metadata_dir": str(workdir / "md"),
    "simulation": {"speedup": 300, "seed": seed},
}
runs, descriptors = {}, {}

def record(kind, doc):
    if kind == "start":
        runs[doc["uid"]] = {
            "start": {key: doc.get(key) for key in ("beamline", "host", "pid", "scan_id")},
            "streams": {},
        }
    elif kind == "descriptor":
        descriptors[doc["uid"]] = (doc["run_start"], doc["name"])
        runs[doc["run_start"]]["streams"][doc["name"]] = {"descriptor": doc["uid"], "events": []}
    elif kind == "event":
        run, stream = descriptors[doc["descriptor"]]
        runs[run]["streams"][stream]["events"].append([doc["seq_num"], doc["time"]])
    elif kind == "stop":
        runs[doc["run_start"]]["exit_status"] = doc["exit_status"]

with insitu.beamline.load(config, table=False) as beamline:
    beamline.RE.waiting_hook = None
    (beamline.analysis[-1] if beamline.analysis else beamline.RE).subscribe(record)
    beamline.raman.exposure.put(5.0)
    (workdir / "ready").touch()
    deadline = time.monotonic() + 120
    while not (workdir.parent / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal within 120 s")
        time.sleep(0.05)
    beamline.RE(bp.count([beamline.raman, beamline.stage], num=4))
    beamline.RE(
        heat_ramp(beamline.stage, [beamline.raman], start=30, stop=70, rate=20, every_C=5,
                  park_at=None)
    )
    beamline.RE(bp.count([beamline.stage], num=6))
    beamline.flush()
print(json.dumps({"pid": os.getpid(), "runs": runs}))
"""

STATIONS = ("station-a", "station-b")


def _start_station(name, index, catalog_server, tmp_path):
    workdir = tmp_path / name
    workdir.mkdir()
    env = dict(os.environ, STATION_CATALOG_KEY=catalog_server.api_key)
    env.pop("TILED_API_KEY", None)  # the key must come from the config, not the environment
    log = open(workdir / "stderr.log", "w")  # noqa: SIM115 (closed after the process ends)
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, catalog_server.uri, name, str(workdir), str(index + 1)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    return workdir, process, log


def _wait_for(paths, processes, timeout):
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        for process in processes:
            if process.poll() is not None:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"beamline processes not ready within {timeout} s")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_beamline_processes_write_complete_separate_runs(catalog_server, tmp_path):
    stations = [
        _start_station(name, i, catalog_server, tmp_path) for i, name in enumerate(STATIONS)
    ]
    processes = [process for _, process, _ in stations]
    reports = {}
    try:
        _wait_for([workdir / "ready" for workdir, _, _ in stations], processes, timeout=180)
        (tmp_path / "go").touch()  # both beamlines acquire from here on, at the same time
        for (workdir, process, log), name in zip(stations, STATIONS, strict=True):
            out, _ = process.communicate(timeout=240)
            log.close()
            assert process.returncode == 0, (
                f"{name} failed:\n{(workdir / 'stderr.log').read_text()[-3000:]}"
            )
            reports[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        for _, process, log in stations:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()

    runs = open_catalog(catalog_server.uri, api_key=catalog_server.api_key)
    try:
        emitted = {
            uid: (name, report["pid"], run)
            for name, report in reports.items()
            for uid, run in report["runs"].items()
        }
        assert all(len(report["runs"]) == 3 for report in reports.values())
        assert len(emitted) == 6, "run uids repeated across the two processes"
        # Nothing lost, nothing extra: exactly the runs the two processes started.
        assert set(runs) == set(emitted)
        pids = {report["pid"] for report in reports.values()}
        assert len(pids) == 2
        for uid, (name, pid, sent) in emitted.items():
            run = runs[uid]
            # The run belongs to the process that emitted it.
            assert run.start["beamline"] == name == sent["start"]["beamline"]
            assert run.start["pid"] == pid == sent["start"]["pid"]
            assert run.start["host"] == sent["start"]["host"]
            assert run.start["scan_id"] == sent["start"]["scan_id"]
            assert run.stop["exit_status"] == sent["exit_status"] == "success"
            assert set(run) == set(sent["streams"]), f"{name} run {uid}: streams differ"
            for stream, expected in sent["streams"].items():
                assert expected["events"], f"{name} run {uid} emitted no {stream} events"
                node = run[stream]
                assert node.metadata["uid"] == expected["descriptor"]
                data = node.read()  # one read: per-column keys differ between tiled client classes
                times = [float(t) for t in data["time"].values]
                # Every event, in order, with its own emission time: no loss, no mix-up.
                assert times == [t for _, t in expected["events"]], f"{name} {uid} {stream}"
                # ... in order for any reader: PostgreSQL reads a table without ORDER BY in its
                # own row order unless the table was created ordered by seq_num.
                (source,) = node.base["internal"].data_sources()
                assert source.parameters["order_by_args"] == [
                    {"column": "seq_num", "direction": "asc"}
                ]
                if stream == "primary":
                    assert run.stop["num_events"][stream] == len(expected["events"])
    finally:
        close_catalog(runs)
