"""Each Term fault gives a clear exception, leaves the potentiostat off, and the device recovers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from insitu import clock
from insitu.devices.zahner import (
    ZahnerCommandError,
    ZahnerConnectionError,
    ZahnerEIS,
    ZahnerSweepAborted,
)
from insitu.sim.thales_term import TermEmulator

SPEEDUP = 1000.0


@pytest.fixture(scope="module")
def term() -> Iterator[TermEmulator]:
    clock.set_speedup(SPEEDUP)
    emulator = TermEmulator(seed=3)
    emulator.serve_tcp(0)
    try:
        yield emulator
    finally:
        emulator.close()
        clock.set_speedup(1.0)
    assert [t.name for t in threading.enumerate() if t.name.startswith("term-")] == []


@pytest.fixture(scope="module")
def device(term: TermEmulator) -> Iterator[ZahnerEIS]:
    eis = ZahnerEIS(f"127.0.0.1:{term.port}", name="eis", heartbeat_period=0.2)
    eis.connect()
    yield eis
    eis.destroy()


@pytest.fixture
def eis(device: ZahnerEIS, term: TermEmulator) -> Iterator[ZahnerEIS]:
    """The shared device, with faults cleared and the emulator's record emptied."""
    term.clear_fault()
    term.clear_record()
    clock.set_speedup(SPEEDUP)
    yield device
    term.clear_fault()
    clock.set_speedup(SPEEDUP)


def assert_switched_on_then_off(term: TermEmulator) -> None:
    assert not term.potentiostat_on
    assert [on for _, on in term.potentiostat_log][-2:] == [True, False]


def assert_usable(eis: ZahnerEIS, term: TermEmulator) -> None:
    eis.trigger().wait(30)
    assert eis.z_real.get().size == 57
    assert not term.potentiostat_on


def test_dropped_connection_mid_sweep_reconnects_and_sweeps_again(eis, term):
    seen: list[int] = []
    token = eis.connected.subscribe(lambda value, **_: seen.append(value), run=False)
    term.inject_fault("drop_connection_mid_sweep")
    try:
        eis.trigger().wait(60)
    finally:
        eis.connected.unsubscribe(token)
    assert seen == [0, 1]  # lost, then back
    assert eis.z_real.get().size == 57
    # On for the cut sweep, off from the reconnection (before connected = 1), on/off for the retry.
    assert [on for _, on in term.potentiostat_log] == [True, False, True, False]
    assert term.registrations.count("ScriptRemote") == 1  # the reconnection
    assert eis.reconnector.state == "up"


def test_error_reply_to_the_sweep(eis, term):
    term.inject_fault("error_reply", command="EIS", code=42)
    with pytest.raises(
        ZahnerCommandError, match=r"ERROR;42;1.* to EIS \(error code 42\)"
    ) as caught:
        eis.trigger().wait(30)
    assert caught.value.code == 42 and caught.value.command == "EIS"
    assert_switched_on_then_off(term)
    assert_usable(eis, term)


def test_error_reply_to_the_first_setting(eis, term):
    term.inject_fault("error_reply")
    with pytest.raises(
        ZahnerCommandError, match=r"to EIS_PATH=c:\\thales\\temp \(error code 999\)"
    ):
        eis.trigger().wait(30)
    assert "EIS" not in term.received_commands
    assert not term.potentiostat_on
    assert_usable(eis, term)


def test_overload_stops_sweeps_and_single_points(eis, term):
    term.inject_fault("overload")
    with pytest.raises(ZahnerCommandError, match="error code 300") as caught:
        eis.trigger().wait(30)
    assert caught.value.command == "EIS"
    assert_switched_on_then_off(term)
    with pytest.raises(ZahnerCommandError, match="IMPEDANCE.*error code 300"):
        eis.measure_point(1e3)
    assert_switched_on_then_off(term)
    term.clear_fault()
    assert_usable(eis, term)


def test_a_failed_sweep_does_not_stop_the_next_one(eis, term, monkeypatch):
    # ophyd's DeviceStatus calls device.stop() on failure after waking its waiters; this stop()
    # aborts whatever sweep is running, so a sweep triggered at once after a failed one (a plan
    # retrying) was cut by it. The failed sweep has ended (and switched off) by then.
    stops = []
    monkeypatch.setattr(eis, "stop", lambda **kwargs: stops.append(kwargs))
    term.inject_fault("error_reply", command="EIS", code=42)
    status = eis.trigger()
    # ophyd runs a Status' callbacks after its failure handling (the stop), on the same thread.
    handled = threading.Event()
    status.add_callback(lambda _: handled.set())
    with pytest.raises(ZahnerCommandError, match="error code 42"):
        status.wait(30)
    term.clear_fault()
    assert handled.wait(5)
    assert stops == []
    assert_switched_on_then_off(term)
    assert_usable(eis, term)


def test_stop_aborts_the_sweep_and_switches_off(eis, term):
    clock.set_speedup(10.0)  # ~18 s of wall time for the sweep: plenty of time to stop it
    status = eis.trigger()
    for _ in range(200):
        if "EIS" in term.received_commands:
            break
        threading.Event().wait(0.02)
    assert term.potentiostat_on
    eis.stop()
    assert status.done and not status.success
    with pytest.raises(ZahnerSweepAborted, match="aborted by stop"):
        status.wait(0)
    assert_switched_on_then_off(term)
    clock.set_speedup(SPEEDUP)
    assert_usable(eis, term)


def test_unreachable_term_is_a_clear_connection_error(term):
    with TermEmulator() as gone:
        port = gone.serve_tcp(0)
    eis = ZahnerEIS(f"127.0.0.1:{port}", name="eis_gone")
    try:
        with pytest.raises(ZahnerConnectionError, match=f"cannot reach Term at 127.0.0.1:{port}"):
            eis.trigger().wait(30)
    finally:
        eis.destroy()


def test_switch_off_is_public_for_a_safe_exit(eis, term):
    eis.close()  # even without an open link: it reconnects first
    eis.switch_off()
    assert term.received_commands[-1] == "Pot=0"
    assert not term.potentiostat_on
