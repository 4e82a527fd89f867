"""The out-of-process stage guard: a real stage heating for a process that is killed, stopped or
hung is put in its safe state from outside within the stall timeout + 10 s; a clean end stands
the guard down without a command.

The Linkam emulator lives in *this* process (served on loopback TCP as ``insitu sim linkam
--port N`` serves it), so its heater can be read while the beamline's process is gone.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from insitu import clock
from insitu.beamline.stage_guard import StageGuard
from insitu.beamline.stage_guard_process import process_alive
from insitu.devices.linkam import LinkamStatus, LinkamT95
from insitu.sim.linkam_t95 import LinkamT95Emulator

STALL_S = 2.0
TAKEOVER_BOUND_S = STALL_S + 10.0

CHILD = r"""
import json, signal, sys, threading
import insitu.beamline

bl = insitu.beamline.load(json.loads(sys.argv[1]), table=False, analysis=False)
bl.stage.rate.put(10.0)
bl.stage.set(250.0)          # ramping: the heater is on
if sys.argv[2:] == ["blind"]:  # as if a SIGHUP landed just before the wait: no handler runs
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
print(bl.stage_guard.pid, flush=True)
threading.Event().wait()     # until a signal ends (or stops) this process
"""


@pytest.fixture
def linkam():
    clock.reset()
    emulator = LinkamT95Emulator("TS1500", seed=3)
    port = emulator.serve_tcp()
    emulator.address = f"TCPIP::127.0.0.1::{port}::SOCKET"
    yield emulator
    emulator.close()
    clock.reset()


def wait_for(condition, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def sleeper_and_guard(linkam, *, safe_state: str, stall_timeout_s: float, alive):
    """A stand-in process to guard (a sleeping Python) and a started guard on it."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    guard = StageGuard(
        linkam.address,
        stage_model="TS1500",
        safe_state=safe_state,
        stall_timeout_s=stall_timeout_s,
        alive=alive,
        pid=sleeper.pid,
    ).start()
    return sleeper, guard


def heater_off(emulator) -> bool:
    return emulator.status_byte() == LinkamStatus.STOPPED


def heating_child(linkam, tmp_path, *args: str, safety: dict | None = None):
    """The CHILD beamline process (``args`` after its config), its stage heating: the process,
    the file its stderr goes to and its stage guard's pid."""
    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "stage": {"address": linkam.address},
        **({"safety": safety} if safety else {}),
    }
    stderr_path = tmp_path / "child.err"
    with open(stderr_path, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(config), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        guard_pid = int(child.stdout.readline() or 0)
        assert guard_pid, stderr_path.read_text()
        wait_for(lambda: linkam.status_byte() == LinkamStatus.HEATING, 30, "heating")
    except BaseException:
        child.kill()
        child.wait()
        child.stdout.close()
        raise
    return child, stderr_path, guard_pid


@pytest.mark.alone
@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP", "SIGHUP"])
def test_a_process_killed_stopped_or_hung_up_while_heating_leaves_the_heater_off(
    linkam, tmp_path, how
):
    child, stderr_path, guard_pid = heating_child(
        linkam, tmp_path, safety={"stall_timeout_s": STALL_S}
    )
    try:
        mark = len(linkam.received_commands)
        child.send_signal(getattr(signal, how))
        try:
            took = wait_for(lambda: heater_off(linkam), TAKEOVER_BOUND_S, "the heater off")
        except AssertionError as error:  # say what the process and its guard said
            sent = list(linkam.received_commands)[mark:]
            raise AssertionError(
                f"{error}; commands since the signal {sent}; child alive "
                f"{child.poll() is None}, guard alive {process_alive(guard_pid)}; log:\n"
                f"{stderr_path.read_text()}"
            ) from None
        returncode = child.wait(timeout=15)  # a stopped process was ended by the guard
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    wait_for(lambda: not process_alive(guard_pid), 10, "the guard to exit")
    log = stderr_path.read_text()
    assert took <= TAKEOVER_BOUND_S, log
    assert returncode == -getattr(signal, how if how != "SIGSTOP" else "SIGKILL"), log
    sent = list(linkam.received_commands)[mark:]
    assert sent.count(b"E") == 1, sent  # told once: by the guard, or by the safe exit (SIGHUP)
    assert b"S" not in sent and b"H" not in sent
    if how == "SIGHUP":
        assert "safe exit (SIGHUP)" in log and "stage guard" not in log
    else:
        assert "insitu stage guard: stage at" in log and "safe state (stop)" in log, log
    if how == "SIGSTOP":
        assert "no heartbeat" in log


@pytest.mark.alone  # a wall-clock bound (heater off within 5 s): not beside the campaigns
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_hangup_the_main_thread_is_blind_to_still_stops_the_heater(linkam, tmp_path):
    """CPython runs a signal's handler on the main thread only: one blocked in a wait without a
    timeout when the signal lands never runs it (CI, 2026-12-07). The signal relay does."""
    child, stderr_path, guard_pid = heating_child(linkam, tmp_path, "blind")
    try:
        time.sleep(1.0)  # the child's main thread, with nothing left to run, is in its wait
        mark = len(linkam.received_commands)
        child.send_signal(signal.SIGHUP)
        wait_for(lambda: heater_off(linkam), 5.0, "the heater off")
        wait_for(lambda: not process_alive(guard_pid), 10, "the guard to stand down")
        assert child.poll() is None  # its main thread still blocks the resent SIGHUP
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    log = stderr_path.read_text()
    sent = list(linkam.received_commands)[mark:]
    assert sent.count(b"E") == 1, sent
    assert "SIGHUP not handled by the main thread" in log, log
    assert "safe exit (SIGHUP)" in log and "stage guard" not in log, log


@pytest.mark.allow_slow("waits out a 0.5 s stall timeout and a guard process starting")
def test_a_guard_without_heartbeats_ends_the_process_and_stops_the_stage(linkam):
    with LinkamT95(linkam.address, min_command_interval=0.0) as driver:
        driver.set_rate(20.0)
        driver.set_limit(300.0)
        driver.start()
    assert linkam.status_byte() == LinkamStatus.HEATING
    hung, guard = sleeper_and_guard(
        linkam, safe_state="hold", stall_timeout_s=0.5, alive=lambda: False
    )
    try:
        assert hung.wait(timeout=20) == -signal.SIGKILL
        wait_for(lambda: linkam.status_byte() == LinkamStatus.HOLDING_CURRENT, 15, "hold")
        wait_for(lambda: not guard.running, 15, "the guard to exit")
    finally:
        hung.kill()
        hung.wait()
        guard.stand_down()


@pytest.mark.allow_slow("a guard process starting and standing down")
def test_a_guard_fed_heartbeats_then_stood_down_touches_nothing(linkam):
    sleeper, guard = sleeper_and_guard(
        linkam, safe_state="stop", stall_timeout_s=0.3, alive=lambda: True
    )
    try:
        time.sleep(1.5)  # five stall timeouts, fed
        assert guard.running and sleeper.poll() is None
        mark = len(linkam.received_commands)
        guard.stand_down()
        assert not guard.running and guard._process.returncode == 0
        assert list(linkam.received_commands)[mark:] == []
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_zombie_is_not_a_live_process():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_for(lambda: not process_alive(child.pid), 10, "the child to become a zombie")
    child.wait()
    assert not process_alive(child.pid)
    assert process_alive(subprocess.os.getpid())


def test_bad_guard_settings_are_refused():
    with pytest.raises(ValueError, match="safe_state 'cool' is neither 'stop' nor 'hold'"):
        StageGuard("x", stage_model="TS1500", safe_state="cool", stall_timeout_s=1, alive=bool)
    with pytest.raises(ValueError, match="stall_timeout_s 0 must be > 0"):
        StageGuard("x", stage_model="TS1500", safe_state="stop", stall_timeout_s=0, alive=bool)
