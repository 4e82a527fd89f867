"""Beamline assembly: scan_id persists across restarts; a remote tiled server works by URI."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import bluesky.plans as bp
import httpx
import numpy as np
import pytest
from ophyd.sim import SynSignal

import insitu.beamline
from insitu.beamline.catalog import close_catalog, open_catalog
from insitu.beamline.durable_writer import DurableTiledWriter


def _config(tmp_path: Path) -> dict:
    return {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": 100},
    }


@pytest.mark.allow_slow("loads the beamline three times (emulators, catalog, watchdog each time)")
def test_scan_id_persists_across_restarts(tmp_path, real_time_clock):
    signal = SynSignal(func=lambda: 1.0, name="signal")
    with insitu.beamline.load(_config(tmp_path), table=False) as beamline:
        beamline.RE(bp.count([signal]))
        beamline.RE(bp.count([signal]))
        assert beamline.RE.md["scan_id"] == 2
    with insitu.beamline.load(_config(tmp_path), table=False) as beamline:
        (uid,) = beamline.RE(bp.count([signal]))
        beamline.flush()
        assert beamline.catalog[uid].start["scan_id"] == 3
        assert beamline.catalog[uid].start["beamline"] == "insitu-sim"


def test_simulated_beamline_sets_and_restores_the_clock(tmp_path, real_time_clock):
    with insitu.beamline.load(_config(tmp_path), table=False):
        assert real_time_clock.speedup() == 100
    assert real_time_clock.speedup() == 1.0


def test_plans_resume_from_the_beamlines_catalog_flushed_first(tmp_path, real_time_clock):
    from insitu.plans import resume

    with insitu.beamline.load(_config(tmp_path), table=False) as beamline:
        assert resume.catalog_for_resume(None) is beamline.catalog
        assert resume._before_read == beamline.flush  # its writer's flush, before every read
    with pytest.raises(ValueError, match="no catalog to resume from"):
        resume.catalog_for_resume(None)  # forgotten when the beamline closed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tiled_server(tmp_path):
    """A `tiled serve catalog` on loopback with an API key."""
    tiled = shutil.which("tiled", path=str(Path(sys.executable).parent))
    port, key = _free_port(), secrets.token_hex(16)  # tiled wants alphanumeric keys
    data = tmp_path / "server"
    data.mkdir()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed at teardown)
    server = subprocess.Popen(
        [
            tiled, "serve", "catalog", str(data / "catalog.db"), "--init",
            "-w", str(data / "data"), "-w", f"sqlite:///{data / 'storage.sqlite'}",
            "--port", str(port),
        ],
        env=dict(os.environ, TILED_SINGLE_USER_API_KEY=key),  # never on the command line
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(f"{uri}/api/v1/", timeout=1.0)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        server.kill()
        log.close()
        pytest.fail(f"tiled server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
    yield uri, key
    server.terminate()
    server.wait(20)
    log.close()


@pytest.mark.slow
def test_remote_catalog_by_uri_with_api_key(tiled_server):
    from bluesky import RunEngine

    uri, key = tiled_server
    runs = open_catalog(uri, api_key=key)
    writer = DurableTiledWriter(runs)
    engine = RunEngine({})
    engine.subscribe(writer)
    spectrum = SynSignal(func=lambda: np.arange(1600.0), name="spectrum")
    (uid,) = engine(bp.count([spectrum], num=3))
    assert writer.wait(30)
    writer.close()
    data = open_catalog(uri, api_key=key)[uid]["primary"].read()
    assert data["spectrum"].shape == (3, 1600)
    with pytest.raises(Exception, match="401|[Uu]nauthori|API key"):
        open_catalog(uri, api_key="wrong-key")[uid]
    close_catalog()


def test_simulated_beamline_stage_obeys_the_configured_hard_limits(tmp_path, real_time_clock):
    import bluesky.plan_stubs as bps

    config = {**_config(tmp_path), "stage": {"max_temperature_C": 300, "max_rate_C_per_min": 20}}
    with insitu.beamline.load(config, table=False) as beamline:
        sent_before = len(beamline.simulation.linkam.received_commands)
        with pytest.raises(ValueError, match=r"stage.setpoint 350.0 C is above .* 300.0 C"):
            beamline.stage.set(350.0)
        with pytest.raises(ValueError, match=r"stage.rate 30.0 C/min is above .* 20.0"):
            beamline.stage.rate.put(30.0)
        sent = list(beamline.simulation.linkam.received_commands)[sent_before:]
        assert all(command == b"T" for command in sent)  # only status polls went out
        beamline.RE(bps.mv(beamline.stage, 40.0))
        assert abs(beamline.stage.position - 40.0) <= 1.0
