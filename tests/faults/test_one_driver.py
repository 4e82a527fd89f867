"""One driver per instrument: a second ``load()`` of a stage (spectrometer, analyzer) already in
use, or of an embedded catalog another process writes, fails at once naming the holder; the
lock dies with its process (SIGKILL included), so a stale lock never blocks the next session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import insitu.beamline
from insitu import clock
from insitu.beamline.instrument_lock import InstrumentInUseError, InstrumentLock, instrument_key
from insitu.sim.linkam_t95 import LinkamT95Emulator

HOLDER = r"""
import json, sys, threading
import insitu.beamline

bl = insitu.beamline.load(json.loads(sys.argv[1]), table=False, analysis=False)
print("HOLDING", flush=True)
threading.Event().wait()
"""


@pytest.fixture(autouse=True)
def private_lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INSITU_LOCK_DIR", str(tmp_path / "locks"))


@pytest.fixture
def stage_address():
    clock.reset()
    emulator = LinkamT95Emulator("TS1500", seed=4)
    yield f"TCPIP::127.0.0.1::{emulator.serve_tcp()}::SOCKET"
    emulator.close()
    clock.reset()


def config_for(tmp_path, name: str, stage_address: str | None = None) -> dict:
    config = {
        "catalog": {"location": str(tmp_path / f"data-{name}")},
        "metadata_dir": str(tmp_path / f"md-{name}"),
        "simulation": {"speedup": 1},  # the emulator shares this process's clock
    }
    if stage_address:
        config["stage"] = {"address": stage_address}
    return config


@pytest.mark.allow_slow("two beamlines on a real (emulated) stage, each starting its guard")
def test_a_second_load_of_a_stage_in_use_fails_at_once_and_names_it(tmp_path, stage_address):
    first = insitu.beamline.load(config_for(tmp_path, "a", stage_address), table=False)
    try:
        with pytest.raises(InstrumentInUseError) as refused:
            insitu.beamline.load(config_for(tmp_path, "b", stage_address), table=False)
        message = str(refused.value)
        assert f"stage at {stage_address} is already in use by this process" in message
        assert f"process {os.getpid()}" in message
        assert first.stage.connected.get() == 1  # the holder is untouched
    finally:
        first.close()
    again = insitu.beamline.load(config_for(tmp_path, "b", stage_address), table=False)
    again.close()


@pytest.mark.alone
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_another_process_holding_the_stage_or_the_catalog_is_named_until_it_dies(
    tmp_path, stage_address
):
    holder_config = config_for(tmp_path, "a", stage_address)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(holder_config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline().strip()
        assert line == "HOLDING", child.stderr.read() if child.poll() is not None else line
        with pytest.raises(
            InstrumentInUseError, match=rf"stage at .* in use by process {child.pid} "
        ):
            insitu.beamline.load(config_for(tmp_path, "b", stage_address), table=False)
        # The same embedded catalog, from a simulated beamline of this process: refused too.
        same_catalog = {**config_for(tmp_path, "a"), "metadata_dir": str(tmp_path / "md-c")}
        with pytest.raises(InstrumentInUseError) as refused:
            insitu.beamline.load(same_catalog, table=False)
        assert f"embedded catalog {tmp_path / 'data-a'} is in use by process {child.pid}" in str(
            refused.value
        )
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    # Its locks died with it. Its stage guard holds the stage while it makes it safe (a new
    # session must not race it for the controller), then lets go: both load now.
    deadline = time.monotonic() + 30
    while True:
        try:
            insitu.beamline.load(config_for(tmp_path, "b", stage_address), table=False).close()
            break
        except InstrumentInUseError as busy:
            assert "stage_guard_process" in str(busy), busy
            assert time.monotonic() < deadline, busy
            time.sleep(0.2)
    insitu.beamline.load(same_catalog, table=False).close()


def test_two_beamlines_of_one_process_share_an_embedded_catalog(tmp_path):
    first = InstrumentLock.for_catalog(tmp_path).acquire()
    second = InstrumentLock.for_catalog(tmp_path).acquire()
    first.release()
    # Still held for the second: another process would be refused.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from insitu.beamline.instrument_lock import InstrumentLock as L\n"
            "try:\n    L.for_catalog(sys.argv[1]).acquire()\n"
            "except Exception as e:\n    print(type(e).__name__)",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "InstrumentInUseError", probe.stderr
    second.release()
    second.release()  # twice is harmless
    InstrumentLock.for_catalog(tmp_path).acquire().release()


def test_one_instrument_spelled_two_ways_is_one_lock(tmp_path):
    device = tmp_path / "ttyUSB0"
    device.touch()
    alias = tmp_path / "usb-Linkam_T95-if00"
    alias.symlink_to(device)
    assert instrument_key(f"ASRL{device}::INSTR") == instrument_key(f"ASRL{alias}::INSTR")
    assert instrument_key("TCPIP::ThalesPC::260::SOCKET") == instrument_key("thalespc:260")
    assert instrument_key("TCPIP0::10.0.0.5::4001::SOCKET") == "tcp:10.0.0.5:4001"
    lock = InstrumentLock.for_instrument("stage", f"ASRL{device}::INSTR").acquire()
    try:
        with pytest.raises(
            InstrumentInUseError, match=r"^stage at ASRL.*usb-Linkam_T95-if00::INSTR"
        ):
            InstrumentLock.for_instrument("stage", f"ASRL{alias}::INSTR").acquire()
    finally:
        lock.release()
