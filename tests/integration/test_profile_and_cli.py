"""The IPython profile starts the beamline; the insitu command lists, exports, serves emulators.

The demo's own test is in ``test_demo.py`` (alone in its file, so ``--dist loadfile`` puts the
rest of this file on another worker)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "profile_insitu"
INSITU = [sys.executable, "-m", "insitu.cli"]


def _run(args, tmp_path, **env):
    environment = {**os.environ, **env}
    return subprocess.run(
        args, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=180
    )


@pytest.mark.slow
def test_ipython_profile_starts_and_counts(tmp_path, sim_config):
    profile = tmp_path / "profile_insitu"
    shutil.copytree(PROFILE / "startup", profile / "startup")  # IPython writes into its profile
    ipython = shutil.which("ipython", path=str(Path(sys.executable).parent))
    result = _run(
        [
            ipython,
            f"--profile-dir={profile}",
            "-c",
            "RE(bps.mv(stage, 30)); print('namespace', RE, catalog, bp, bps, raman.name); "
            "print('stage at', round(stage.position))",
        ],
        tmp_path,
        INSITU_CONFIG=sim_config,
    )
    assert result.returncode == 0, result.stderr
    assert "insitu: beamline 'insitu-sim'" in result.stdout
    assert "namespace <bluesky.run_engine.RunEngine" in result.stdout
    assert "stage at 30" in result.stdout


_COUNT_ON_THE_SIM_BEAMLINE = """
import sys, bluesky.plans as bp, insitu.beamline
with insitu.beamline.load(sys.argv[1], table=False) as bl:
    bl.RE(bp.count([bl.stage, bl.raman], num=3))
    bl.flush()
"""


@pytest.mark.slow
def test_runs_then_export(tmp_path, sim_config):
    config = sim_config
    written = _run([sys.executable, "-c", _COUNT_ON_THE_SIM_BEAMLINE, config], tmp_path)
    assert written.returncode == 0, written.stderr

    runs = _run([*INSITU, "--config", config, "runs"], tmp_path)
    assert runs.returncode == 0, runs.stderr
    rows = [line for line in runs.stdout.splitlines() if "success" in line]
    assert rows, runs.stdout
    uid = rows[-1].split()[0]

    exported = _run([*INSITU, "--config", config, "export", uid, "--format", "hdf5"], tmp_path)
    assert exported.returncode == 0, exported.stderr
    with h5py.File(exported.stdout.split()[-1]) as h5:
        assert h5.attrs["start"]
        assert h5["primary/stage_temperature"].shape == (3,)
        assert h5["primary/raman_spectrum"].shape == (3, 1600)

    as_csv = _run([*INSITU, "--config", config, "export", uid, "--format", "csv"], tmp_path)
    assert as_csv.returncode == 0, as_csv.stderr
    files = as_csv.stdout.split()
    assert any(f.endswith("_primary.csv") for f in files)
    assert any(f.endswith("_primary_raman_spectrum.csv") for f in files)

    missing = _run([*INSITU, "--config", config, "export", "abcdef123"], tmp_path)
    assert missing.returncode == 2
    assert "no run 'abcdef123'" in missing.stderr


def test_help_everywhere():
    queue = [["serve", "queue"], ["queue"], ["queue", "add"], ["queue", "status"]]
    for args in ([], ["demo"], ["runs"], ["export"], ["sim"], ["sim", "linkam"], *queue):
        result = subprocess.run(
            [*INSITU, *args, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (args, result.stderr)
        assert "usage: insitu" in result.stdout


@pytest.mark.slow  # a CLI process: its imports alone are seconds
def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage:\n  model: TS9000\n")
    result = _run([*INSITU, "--config", str(bad), "runs"], tmp_path)
    assert result.returncode == 2
    assert "stage.model: 'TS9000' is not allowed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where", [["--port", "0"], ["--pty"]])
def test_sim_linkam_serves_an_emulator_another_process_can_drive(where):
    from insitu.devices.linkam import LinkamT95

    server = subprocess.Popen(
        [*INSITU, "sim", "linkam", *where, "--speedup", "50"], stdout=subprocess.PIPE, text=True
    )
    try:
        banner = server.stdout.readline()
        address = banner.split("connect with ")[-1].strip()
        assert address.startswith(("TCPIP::127.0.0.1::", "ASRL/dev/pts/")), banner
        driver = LinkamT95(address, min_command_interval=0.0)
        try:
            assert 20.0 < driver.status().temperature < 30.0
        finally:
            driver.close()
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(20) == 0
        server.stdout.close()


def test_startup_dir_is_a_queueserver_profile():
    """The permissions file is valid and lets the primary group use every insitu plan; each plan
    has a description the queueserver accepts (JSON-able defaults and annotations)."""
    from bluesky_queueserver.manager.profile_ops import (
        _process_plan,
        _select_allowed_plans,
        load_user_group_permissions,
    )

    from insitu.services.queue_plans import QUEUE_PLANS

    permissions = load_user_group_permissions(PROFILE / "startup" / "user_group_permissions.yaml")
    primary = permissions["user_groups"]["primary"]
    descriptions = {
        name: _process_plan(plan, existing_devices={}, existing_plans={})
        for name, plan in QUEUE_PLANS.items()
    }
    allowed = _select_allowed_plans(
        descriptions, primary["allowed_plans"], primary["forbidden_plans"]
    )
    assert set(allowed) == set(QUEUE_PLANS)
    assert not (PROFILE / "startup" / "existing_plans_and_devices.yaml").exists()  # per station
