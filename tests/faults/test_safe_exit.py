"""Safe exit: however the process ends, the stage is left in its safe state, the potentiostat off.

What must hold:

- a child process running a beamline whose stage is heating and whose potentiostat is on (a
  sweep running), on emulators that live in *this* process so their state can be read after
  the child is gone, ends by a normal exit, an uncaught exception (inside ``with load()``),
  SIGTERM, or Ctrl-C (twice: bluesky's hard pause, then the exit): afterwards the controller
  is stopped (heater off, told once), and the potentiostat is off;
- SIGTERM ends the process as SIGTERM would have (the default handler is chained);
- in-process: the safe exit runs once however often it is triggered, chains a previous Python
  SIGTERM handler (and does not end the process then), leaves an ignored SIGTERM ignored, and
  is uninstalled by ``Beamline.close()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from bluesky import RunEngine

from insitu import clock
from insitu.beamline import safe_exit as safe_exit_module
from insitu.beamline.safe_exit import HANDLED_SIGNALS, SafeExit
from insitu.devices.linkam import LinkamInterlockError, LinkamStage, LinkamStatus
from insitu.sim.linkam_t95 import LinkamT95Emulator
from insitu.sim.thales_term import TermEmulator

CHILD = r"""
import json, sys, threading
import bluesky.plan_stubs as bps
import insitu.beamline

config, mode = json.loads(sys.argv[1]), sys.argv[2]


def start_heating_and_sweep(bl):
    bl.stage.rate.put(10.0)
    bl.stage.set(400.0)          # ramping: the heater is on
    bl.eis.f_max.put(1000.0)
    bl.eis.f_min.put(0.01)       # a sweep of minutes: the potentiostat is on
    bl.eis.trigger()
    print("READY", flush=True)
    sys.stdin.readline()         # the test checks the emulators, then says "go"


if mode == "exception":
    with insitu.beamline.load(config, table=False, analysis=False) as bl:
        start_heating_and_sweep(bl)
        raise RuntimeError("an uncaught exception in the user's script")

bl = insitu.beamline.load(config, table=False, analysis=False)
start_heating_and_sweep(bl)
if mode == "exit":
    sys.exit(0)
if mode in ("sigterm", "sighup"):
    print("WAITING", flush=True)
    threading.Event().wait()
if mode == "ctrl-c":
    def forever():
        yield from bps.checkpoint()
        yield from bps.sleep(1e6)
    print("WAITING", flush=True)
    bl.RE(forever())             # Ctrl-C twice: bluesky's hard pause, RunEngineInterrupted
"""


@pytest.fixture
def instruments():
    """A Linkam and a Zahner Term emulator in this process, real time, closed after the test."""
    clock.reset()
    linkam = LinkamT95Emulator("TS1500", seed=5)
    term = TermEmulator(seed=5)
    linkam_port, term_port = linkam.serve_tcp(), term.serve_tcp(port=0)
    yield SimpleNamespace(
        linkam=linkam,
        term=term,
        stage_address=f"TCPIP::127.0.0.1::{linkam_port}::SOCKET",
        eis_address=f"127.0.0.1:{term_port}",
    )
    term.close()
    linkam.close()
    clock.reset()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def read_line(child: subprocess.Popen, expected: str, stderr_path: Path) -> None:
    line = child.stdout.readline().strip()
    if line != expected:
        child.kill()
        raise AssertionError(f"child said {line!r}, not {expected!r}:\n{stderr_path.read_text()}")


@pytest.mark.alone
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["exit", "exception", "sigterm", "sighup", "ctrl-c"])
def test_the_process_ending_leaves_the_stage_safe_and_the_potentiostat_off(
    instruments, tmp_path, mode
):
    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": 100},
        "stage": {"address": instruments.stage_address},
        "eis": {"address": instruments.eis_address},
    }
    stderr_path = tmp_path / "child.err"
    with open(stderr_path, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(config), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    linkam, term = instruments.linkam, instruments.term
    try:
        read_line(child, "READY", stderr_path)
        # The hazard exists: heating, and the potentiostat on.
        wait_for(lambda: term.potentiostat_on, 60, "the potentiostat to be switched on")
        assert linkam.status_byte() == LinkamStatus.HEATING
        # Really warmer: past the regulation ripple (+/-0.1 C) that can put a stage a second
        # into its ramp (10 C/min, a 3 s lag) a few hundredths below ambient.
        wait_for(lambda: linkam.temperature() > linkam.ambient + 0.2, 30, "the stage to warm up")
        mark = len(linkam.received_commands)
        child.stdin.write("go\n")
        child.stdin.flush()
        if mode in ("sigterm", "sighup"):
            read_line(child, "WAITING", stderr_path)
            child.send_signal(signal.SIGTERM if mode == "sigterm" else signal.SIGHUP)
        elif mode == "ctrl-c":
            read_line(child, "WAITING", stderr_path)
            time.sleep(1.0)
            child.send_signal(signal.SIGINT)  # a deferred pause (no checkpoint comes)...
            time.sleep(0.5)
            child.send_signal(signal.SIGINT)  # ...then the hard pause
        returncode = child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdin.close()
        child.stdout.close()
    log = stderr_path.read_text()
    expected_returncode = {
        "exit": 0,
        "exception": 1,
        "sigterm": -signal.SIGTERM,
        "sighup": -signal.SIGHUP,  # an SSH session that dropped
        "ctrl-c": 1,
    }
    assert returncode == expected_returncode[mode], log
    assert "safe exit" in log
    sent = list(linkam.received_commands)[mark:]
    assert sent.count(b"E") == 1, sent  # heater off, told once
    assert b"S" not in sent and b"H" not in sent  # nothing restarted the heating
    assert linkam.status_byte() == LinkamStatus.STOPPED
    assert not term.potentiostat_on, log
    assert term.potentiostat_log[-1][1] is False
    if mode == "exception":
        assert "an uncaught exception in the user's script" in log


# -- in-process: once, chained, uninstalled -----------------------------------------------------


class RecordingAnalyzer:
    """Stands in for the impedance analyzer: records stop() and switch_off()."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stop(self) -> None:
        self.calls.append("stop")

    def switch_off(self) -> None:
        self.calls.append("switch_off")


@pytest.fixture
def fake_beamline():
    """A stage on an emulator, a recording analyzer and an idle RunEngine, in a Beamline's shape."""
    clock.set_speedup(100)
    emulator = LinkamT95Emulator("TS1500", seed=1)
    port = emulator.serve_tcp()
    stage = LinkamStage(
        f"TCPIP::127.0.0.1::{port}::SOCKET",
        name="stage",
        min_command_interval=0.0,
        reply_timeout=0.3,
        rate=50.0,
    )
    beamline = SimpleNamespace(
        devices={"stage": stage, "eis": RecordingAnalyzer()},
        RE=RunEngine({}),
        run_aborter=None,
        emulator=emulator,
    )
    previous = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}
    yield beamline
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    stage.destroy()
    emulator.close()
    clock.reset()


@pytest.mark.parametrize("signum", HANDLED_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_safe_exit_runs_once_and_chains_a_previous_handler(fake_beamline, signum):
    """SIGTERM, and SIGHUP (an SSH session dropping) alike."""
    bl = fake_beamline
    name = signal.Signals(signum).name
    received = []
    signal.signal(signum, lambda signum, frame: received.append(signum))
    bl.devices["stage"].set(300.0)
    wait_for(lambda: bl.emulator.status_byte() == LinkamStatus.HEATING, 10, "heating")
    safe_exit = SafeExit(bl, "stop")
    safe_exit.install()
    mark = len(bl.emulator.received_commands)
    os.kill(os.getpid(), signum)  # handled on this (main) thread, between bytecodes
    wait_for(lambda: received, 10, "the previous handler to be called")
    assert received == [signum]  # chained; and this process is still alive
    assert safe_exit.done and safe_exit.reason == name
    assert bl.devices["eis"].calls == ["stop", "switch_off"]
    wait_for(lambda: bl.emulator.status_byte() == LinkamStatus.STOPPED, 10, "heater off")
    # Once only: a second signal, an atexit call, a close: no further hardware command.
    os.kill(os.getpid(), signum)
    wait_for(lambda: len(received) == 2, 10, "the second signal")
    safe_exit.run("beamline closed")
    safe_exit._at_exit()
    sent = list(bl.emulator.received_commands)[mark:]
    assert [c for c in sent if c != b"T"] == [b"E"]
    assert bl.devices["eis"].calls == ["stop", "switch_off"]
    # While the process lives on, the stage stays latched: a still-running plan cannot reheat.
    with pytest.raises(LinkamInterlockError, match=f"safe exit: {name}"):
        bl.devices["stage"].set(100.0)
    safe_exit.uninstall()
    assert signal.getsignal(signal.SIGTERM) is not safe_exit._on_signal
    assert signal.getsignal(signal.SIGHUP) is not safe_exit._on_signal


@pytest.mark.parametrize("signum", HANDLED_SIGNALS)
def test_an_ignored_signal_stays_ignored_and_touches_nothing(fake_beamline, signum):
    """``nohup`` ignores SIGHUP: such a session goes on when the terminal closes, heating too."""
    bl = fake_beamline
    signal.signal(signum, signal.SIG_IGN)
    safe_exit = SafeExit(bl, "stop")
    safe_exit.install()
    safe_exit._on_signal(signum, None)
    assert not safe_exit.done and bl.devices["eis"].calls == []
    safe_exit.uninstall()
    assert signal.getsignal(signum) == signal.SIG_IGN


def test_hold_safe_state_sends_hold(fake_beamline):
    bl = fake_beamline
    bl.devices["stage"].set(300.0)
    wait_for(lambda: bl.emulator.status_byte() == LinkamStatus.HEATING, 10, "heating")
    SafeExit(bl, "hold").run("test")
    wait_for(lambda: bl.emulator.status_byte() == LinkamStatus.HOLDING_CURRENT, 10, "holding")
    with pytest.raises(ValueError, match="neither 'hold' nor 'stop'"):
        SafeExit(bl, "cool")


class SlowStage:
    """Stands in for the stage: its safe state takes ``seconds`` to reach."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entered = threading.Event()
        self.calls: list[str] = []

    def enter_safe_state(self, state: str, why: str) -> None:
        self.entered.set()
        time.sleep(self.seconds)
        self.calls.append(state)


def test_a_late_second_trigger_returns_once_the_first_has_made_the_hardware_safe():
    """The signal relay making the hardware safe on its thread when the main thread's handler
    runs late: the handler must not end the process before the potentiostat is off."""
    stage, analyzer = SlowStage(0.5), RecordingAnalyzer()
    beamline = SimpleNamespace(
        devices={"stage": stage, "eis": analyzer}, RE=SimpleNamespace(state="idle")
    )
    safe_exit = SafeExit(beamline, "stop")
    first = threading.Thread(target=safe_exit.run, args=("SIGTERM (relay)",))
    first.start()
    assert stage.entered.wait(5)
    safe_exit.run("SIGTERM")  # the main thread's handler, late
    assert stage.calls == ["stop"] and analyzer.calls == ["stop", "switch_off"]
    assert safe_exit.reason == "SIGTERM (relay)"
    first.join(5)
    safe_exit.run("beamline closed")  # once done, at once, and nothing sent again
    assert stage.calls == ["stop"]


def test_one_relay_acts_for_every_installed_safe_exit():
    """Two beamlines in one process: a signal the main thread missed makes both safe."""
    previous = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}
    exits = []
    try:
        for _ in range(2):
            beamline = SimpleNamespace(
                devices={"eis": RecordingAnalyzer()}, RE=SimpleNamespace(state="idle")
            )
            exits.append(SafeExit(beamline, "stop"))
            exits[-1].install()
        assert safe_exit_module._act_on_missed_signal(signal.SIGTERM)
        assert all(e.done and e.reason == "SIGTERM" for e in exits)
        assert all(e.beamline.devices["eis"].calls == ["stop", "switch_off"] for e in exits)
    finally:
        for e in reversed(exits):
            e.uninstall()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
