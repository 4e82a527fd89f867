"""The shared catalog server down for 20 s during a ramp: every event is in the catalog after.

Done-when of issue 16: with the default config (live analysis on), the tiled server is killed
(SIGKILL of its process group) ten events into a Raman ramp and started again 20 s later on the
same database, data directory and port. Every event the RunEngine emitted, spectra included,
and the live analysis's derived events, must be in the catalog exactly once, readable as one
table (before: a run saying ``success`` that could not be read back, 59 rows and 58 spectra).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import numpy as np
import pytest

import insitu.beamline
from insitu import clock
from insitu.plans import heat_ramp

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.alone]

OUTAGE_S = 20.0


def _kill(server) -> None:
    process, server.process = server.process, None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.timeout(600)
def test_a_catalog_server_down_for_20_s_mid_ramp_loses_no_event(catalog_server, tmp_path):
    config = {
        "catalog": {"location": catalog_server.uri, "api_key": catalog_server.api_key},
        "metadata_dir": str(tmp_path / "md"),
        # Held time: the ramp's 57 steps whatever the machine's load (the outage is wall time).
        "simulation": {"speedup": 40, "seed": 8, "virtual_time": True},
    }
    events: list[dict] = []
    descriptors: dict[str, str] = {}
    outage_started = threading.Event()
    outage_over = threading.Event()

    def outage() -> None:
        outage_started.wait()
        _kill(catalog_server)
        time.sleep(OUTAGE_S)
        catalog_server.start()
        outage_over.set()

    def record(name, doc):
        if name == "descriptor":
            descriptors[doc["uid"]] = doc["name"]
        elif name == "event" and descriptors[doc["descriptor"]] == "primary":
            events.append(doc)
            if len(events) == 10:
                outage_started.set()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    try:
        with insitu.beamline.load(config, table=False) as beamline:
            assert beamline.analysis  # the default config: live analysis between RE and writer
            beamline.RE.waiting_hook = None
            beamline.raman.exposure.put(2.0)
            beamline.RE.subscribe(record)
            (uid,) = beamline.RE(
                heat_ramp(beamline.stage, [beamline.raman], start=30, stop=600, rate=50,
                          every_C=10)
            )  # fmt: skip
            assert outage_over.wait(120), "the catalog server did not come back"
            beamline.flush(180)  # raises if any run is still only in the spool
            assert beamline.writer.unwritten() == []
            run = beamline.catalog[uid]
            assert run.metadata["stop"]["exit_status"] == "success"
            primary = run["primary"].read()
            derived = run["raman_analysis"].read()
    finally:
        outage_started.set()
        thread.join(120)
        clock.reset()
        catalog_server.start()
    assert len(events) >= 50
    assert primary.sizes["time"] == len(events)
    np.testing.assert_array_equal(
        primary["raman_spectrum"].values, np.array([e["data"]["raman_spectrum"] for e in events])
    )
    np.testing.assert_array_equal(
        primary["stage_temperature"].values, [e["data"]["stage_temperature"] for e in events]
    )
    assert derived.sizes["time"] == len(events)
