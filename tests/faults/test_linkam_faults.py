"""Linkam link faults on a LinkamStage driving the T95 emulator, over a pty and over TCP.

What must hold, per fault (serial garbage, truncated replies, a stall with no reply, the cable
pulled or the connection dropped, the stage unplugged):

- the pending move, a trigger and a read fail with the fault's own exception (never a stale
  reading), within a few wall seconds, and the message names the device, its address and the
  fault (the bad bytes, the command left unanswered, the error flag);
- once the fault clears the stage works again by itself: no reconnect call, readings current,
  a new move reaches its target;
- a disconnect in the middle of a ramp: the controller keeps its last command (the move's own
  target, never higher) and the stage reconnects as soon as the link is back;
- a single bad reply is only a glitch: nothing read after it comes from the remains of the bad
  line, and a move in progress is not failed by it.

The stage's safe state on these faults (the watchdog) is covered in ``test_watchdog.py``; the
same faults during a run on the simulated beamline in ``test_run_survives_faults.py``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine

from insitu import clock
from insitu.devices.linkam import (
    LinkamConnectionError,
    LinkamErrorFlags,
    LinkamProtocolError,
    LinkamStage,
    LinkamStageError,
    LinkamStatus,
    LinkamTimeout,
    decode_status_reply,
)
from insitu.sim.linkam_t95 import LinkamT95Emulator

SPEEDUP = 100.0
WAIT_S = 30.0  # wall seconds any outcome may take at most, however loaded the machine
REPLY_TIMEOUT_S = 0.5  # wall; short for quick tests, long enough for a loaded machine
ORIGINAL_TARGET = 200.0
RECOVERY_TARGET = 210.0
EXPECTED = {
    "no_reply": {"pty": LinkamTimeout, "tcp": LinkamTimeout},
    "garbage": {"pty": LinkamProtocolError, "tcp": LinkamProtocolError},
    "truncated": {"pty": LinkamProtocolError, "tcp": LinkamProtocolError},
    "unplugged": {"pty": LinkamStageError, "tcp": LinkamStageError},
    # A pulled serial cable is silence; a dropped TCP connection is seen as closed.
    "disconnect": {"pty": LinkamTimeout, "tcp": LinkamConnectionError},
}
#: What the message says about the fault, after "linkam at <address>: ".
MESSAGE = {
    LinkamTimeout: rf"no reply to b'T' within {REPLY_TIMEOUT_S:g} s",
    LinkamProtocolError: r"T reply (is|has) ",
    LinkamStageError: r"the controller reports OPEN_CIRCUIT",
    # "closed by the other end" or "Connection reset by peer", as the socket saw it.
    LinkamConnectionError: r"connection lost during b'T': .*(closed|reset)",
}


@dataclass
class Rig:
    """An emulator serving on one transport, and a stage connected to it by address."""

    emulator: LinkamT95Emulator
    stage: LinkamStage
    address: str


@pytest.fixture(params=["pty", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each test using it runs over a pseudo-terminal and over loopback TCP."""
    return request.param


@pytest.fixture
def rig(transport: str) -> Iterator[Callable[..., Rig]]:
    """Factory: ``rig(**stage_options)`` on ``transport`` at a 100x clock; torn down after."""
    clock.set_speedup(SPEEDUP)
    made: list[Rig] = []

    def make(**stage_options: Any) -> Rig:
        emulator = LinkamT95Emulator("TS1500", seed=0)
        if transport == "pty":
            address = f"ASRL{emulator.serve_pty()}::INSTR"
        else:
            address = f"TCPIP::127.0.0.1::{emulator.serve_tcp()}::SOCKET"
        options: dict[str, Any] = {"min_command_interval": 0.0, "reply_timeout": REPLY_TIMEOUT_S}
        options.update(stage_options)
        stage = LinkamStage(address, name="linkam", **options)
        made.append(Rig(emulator, stage, address))
        return made[-1]

    yield make
    for built in made:
        built.stage.destroy()
        built.emulator.close()
    clock.reset()


@pytest.fixture(scope="module")
def run_engine() -> RunEngine:
    """A plain RunEngine (no subscriptions) shared by the module."""
    return RunEngine({})


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> float:
    """Wait until ``condition()``; return the wall seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)
    return time.monotonic() - started


def assert_names_device_and_fault(error: BaseException, address: str) -> None:
    """The message says which device, where, and what went wrong."""
    message = str(error)
    assert message.startswith(f"linkam at {address}: "), message
    assert re.search(MESSAGE[type(error)], message), message


def assert_current(value: float, emulator: LinkamT95Emulator, t0: float, t1: float) -> None:
    """``value`` is the true stage temperature at some moment between experiment times ``t0``
    and ``t1`` (0.1 C resolution and regulation ripple aside), however slow the machine."""
    ends = [emulator.temperature_at(t0), emulator.temperature_at(t1)]
    assert min(ends) - 0.5 <= value <= max(ends) + 0.5, (value, ends)


def bad_t_replies(emulator: LinkamT95Emulator, since: int = 0) -> int:
    """How many replies to ``T`` in the exchange log (from index ``since``) are not valid."""
    count = 0
    for _, sent, reply in list(emulator.exchanges)[since:]:
        if sent != b"T" or reply is None:
            continue
        try:
            decode_status_reply(reply[:-1])
        except LinkamProtocolError:
            count += 1
    return count


def glitch_one_reply(emulator: LinkamT95Emulator, fault: str) -> threading.Thread:
    """Inject ``fault`` and clear it as soon as one bad reply to ``T`` has gone out."""
    mark = len(emulator.exchanges)
    emulator.inject_fault(fault)

    def clear_after_one() -> None:
        deadline = time.monotonic() + WAIT_S
        while bad_t_replies(emulator, mark) < 1 and time.monotonic() < deadline:
            time.sleep(0.0005)
        emulator.clear_fault()

    watcher = threading.Thread(target=clear_after_one, name="glitch-clearer", daemon=True)
    watcher.start()
    return watcher


@pytest.mark.parametrize("fault", list(EXPECTED))
def test_fault_gives_its_exception_and_the_stage_works_after_it_clears(
    rig, transport, run_engine, fault
):
    """Every fault fails the pending move, a direct exchange, a trigger and read() with the
    fault's own exception whose message names the device, its address and the fault; once the
    fault clears, the same stage reads and moves again without being reconnected by hand."""
    expected = EXPECTED[fault][transport]
    built = rig(rate=150.0, settle_time=2.0)
    stage, emulator = built.stage, built.emulator
    move = stage.set(ORIGINAL_TARGET)
    emulator.inject_fault(fault)

    # The pending move fails with the fault's own exception...
    with pytest.raises(expected) as caught:
        move.wait(timeout=WAIT_S)
    assert_names_device_and_fault(caught.value, built.address)
    # ...and so does a direct exchange with the controller.
    with pytest.raises(expected):
        stage.driver.status()
    if fault == "unplugged":
        assert caught.value.flags == LinkamErrorFlags.OPEN_CIRCUIT
        assert stage.errors.get() == "OPEN_CIRCUIT"
    else:
        # A failed poll makes read() fail rather than serve a stale reading.
        with pytest.raises(expected):
            stage.trigger().wait(timeout=WAIT_S)
        with pytest.raises(expected):
            stage.read()
        assert stage.connected.get() == 0

    emulator.clear_fault()
    stage.trigger().wait(timeout=WAIT_S)
    assert stage.errors.get() == ""
    wait_for(lambda: stage.connected.get() == 1, "stage.connected back to 1")
    # Above anything the first move could have reached: a heating move whatever the timing.
    run_engine(bps.mv(stage, RECOVERY_TARGET))
    assert stage.position == pytest.approx(RECOVERY_TARGET, abs=1.0)
    assert stage.read()["linkam_temperature"]["value"] == pytest.approx(RECOVERY_TARGET, abs=1.0)


@pytest.mark.parametrize("fault", ["garbage", "truncated"])
def test_after_one_bad_reply_every_reading_is_valid_and_current(rig, fault):
    """One garbage or truncated reply is all that is lost: the next polls decode, nothing is
    read from the remains of the bad line, and the temperature read is the controller's own."""
    built = rig(poll_period=0.5, rate=2.0)
    stage, emulator = built.stage, built.emulator
    stage.set(100.0)  # ramping: every reading differs from the last
    mark = len(emulator.exchanges)
    glitch_one_reply(emulator, fault).join(WAIT_S)
    assert emulator.fault is None
    assert bad_t_replies(emulator, mark) >= 1, "the glitch never happened"
    after = len(emulator.exchanges)
    for _ in range(20):
        t0 = clock.now()
        reading = stage.driver.status()
        assert_current(reading.temperature, emulator, t0, clock.now())
    t0 = clock.now()
    stage.trigger().wait(timeout=WAIT_S)
    value = stage.read()["linkam_temperature"]["value"]
    assert_current(value, emulator, t0, clock.now())
    assert bad_t_replies(emulator, after) == 0


@pytest.mark.parametrize("fault", ["garbage", "truncated"])
def test_one_bad_reply_does_not_fail_a_move_in_progress(rig, fault):
    """A move in progress survives a single garbage or truncated reply: it still settles at its
    target, and the glitch did happen while it was pending."""
    built = rig(rate=150.0, settle_time=2.0)
    stage, emulator = built.stage, built.emulator
    move = stage.set(ORIGINAL_TARGET)
    wait_for(lambda: stage.position > 60.0, "the ramp under way")
    mark = len(emulator.exchanges)
    glitch_one_reply(emulator, fault).join(WAIT_S)
    assert bad_t_replies(emulator, mark) >= 1, "the glitch never happened"
    assert not move.done, "the move ended before the glitch"
    move.wait(timeout=WAIT_S)
    assert stage.position == pytest.approx(ORIGINAL_TARGET, abs=1.0)


def test_disconnect_mid_ramp_fails_the_move_and_the_stage_reconnects_by_itself(rig, transport):
    """The cable pulled (pty) or the connection dropped (TCP) mid-ramp: the move fails within
    5 wall seconds naming the device and the link; the controller keeps its last command (ramp
    to the move's target, never higher: the watchdog's job is to stop it, see
    test_watchdog.py); when the link is back the stage polls again with no call to reconnect,
    its readings are current, and a new move works."""
    built = rig(rate=150.0, settle_time=2.0)
    stage, emulator = built.stage, built.emulator
    move = stage.set(ORIGINAL_TARGET)
    wait_for(lambda: stage.position > 60.0, "the ramp under way")
    emulator.inject_fault("disconnect")
    pulled = time.monotonic()
    with pytest.raises((LinkamConnectionError, LinkamTimeout)) as caught:
        move.wait(timeout=WAIT_S)
    assert time.monotonic() - pulled < 5.0
    assert_names_device_and_fault(caught.value, built.address)
    wait_for(lambda: stage.connected.get() == 0, "stage.connected to drop to 0")
    # The controller carries on with its last command, the move's own target.
    assert emulator.status_byte() in (LinkamStatus.HEATING, LinkamStatus.HOLDING_LIMIT)
    assert emulator.limit == ORIGINAL_TARGET
    time.sleep(0.3)  # a few failed polls while unplugged
    emulator.clear_fault()
    took = wait_for(lambda: stage.connected.get() == 1, "the stage to reconnect by itself")
    assert took < 5.0
    t0 = clock.now()
    stage.trigger().wait(timeout=WAIT_S)
    assert_current(stage.position, emulator, t0, clock.now())
    stage.set(RECOVERY_TARGET).wait(timeout=WAIT_S)
    assert stage.position == pytest.approx(RECOVERY_TARGET, abs=1.0)
