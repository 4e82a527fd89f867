"""The Linkam T95 emulator on its own: protocol rules, analytic physics, history, faults."""

from __future__ import annotations

import math
import threading

import pytest

from insitu import clock
from insitu.devices.linkam import (
    LinkamErrorFlags,
    LinkamProtocolError,
    LinkamStatus,
    LinkamT95,
    decode_status_reply,
)
from insitu.sim.linkam_t95 import LinkamT95Emulator


@pytest.fixture
def very_fast_clock():
    clock.set_speedup(2000)
    try:
        yield
    finally:
        clock.set_speedup(1.0)


def read(emulator: LinkamT95Emulator):
    reply = emulator.respond(b"T")
    assert reply is not None and reply.endswith(b"\r") and len(reply) == 11
    return decode_status_reply(reply[:-1])


def send(emulator: LinkamT95Emulator, *commands: bytes) -> None:
    for command in commands:
        assert emulator.respond(command) == b"\r", command


def test_nothing_is_answered_or_done_before_the_first_t():
    emulator = LinkamT95Emulator()
    assert emulator.respond(b"L15000") is None
    assert emulator.respond(b"S") is None
    assert emulator.limit == 25.0
    reading = read(emulator)
    assert (reading.status, reading.temperature, reading.errors) == (
        LinkamStatus.STOPPED,
        25.0,
        LinkamErrorFlags(0),
    )
    assert reading.raw[:6] == b"\x01\x80\x80\x80\x80\x80"
    send(emulator, b"L15000")
    assert emulator.limit == 500.0


def test_out_of_range_settings_are_ignored_like_the_firmware():
    emulator = LinkamT95Emulator("TS1500")
    read(emulator)
    send(emulator, b"L116000", b"L1-100", b"R120000", b"R10", b"L1abc")
    assert (emulator.limit, emulator.rate) == (25.0, 10.0)
    assert emulator.respond(b"Q") is None  # unknown command: no reply


def test_ramp_lags_the_program_then_regulates_at_the_limit(very_fast_clock):
    emulator = LinkamT95Emulator(seed=3)
    read(emulator)
    send(emulator, b"R115000", b"L11000")  # 150 C/min to 100 C
    before = clock.now()
    send(emulator, b"S")
    after = clock.now()  # the ramp started in between
    assert read(emulator).status is LinkamStatus.HEATING

    def expected(s: float) -> float:
        # Program 25 + 2.5 s; first-order lag tau = 3 s, 7.5 C behind once the transient is gone.
        return 25 + 2.5 * s - 7.5 * (1 - math.exp(-s / 3))

    at_20_s = emulator.temperature_at(before + 20)
    assert expected(20 - (after - before)) - 0.1 <= at_20_s <= expected(20) + 0.1
    t0 = before
    clock.sleep(60)
    reading = read(emulator)
    assert reading.status is LinkamStatus.HOLDING_LIMIT
    assert reading.temperature == pytest.approx(100.0, abs=0.2)
    # Regulation noise: small but alive.
    settled = t0 + 30 + 20  # program arrives at 30 s; the lag has died out 20 s later
    samples = [emulator.temperature_at(settled + 0.05 * i) for i in range(200)]
    assert max(abs(s - 100.0) for s in samples) <= 0.11
    assert max(samples) - min(samples) > 0.05


def test_hold_freezes_and_stop_cools_exponentially_to_ambient(very_fast_clock):
    emulator = LinkamT95Emulator(seed=4)
    read(emulator)
    send(emulator, b"R13000", b"L15000", b"S")
    clock.sleep(60)
    send(emulator, b"O")
    held_at = clock.now()
    held = emulator.temperature_at(held_at)
    assert read(emulator).status is LinkamStatus.HOLDING_CURRENT
    clock.sleep(30)
    assert emulator.temperature() == pytest.approx(held, abs=0.25)
    send(emulator, b"E")
    stopped_at = clock.now()
    start = emulator.temperature_at(stopped_at)
    assert read(emulator).status is LinkamStatus.STOPPED
    # Heater off: exp(-t/90 s) toward 25 C, no regulation noise.
    assert emulator.temperature_at(stopped_at + 90) == pytest.approx(
        25 + (start - 25) * math.exp(-1), abs=1e-9
    )


def test_history_keeps_past_temperatures_whatever_happened_since(very_fast_clock):
    emulator = LinkamT95Emulator(seed=5)
    read(emulator)
    send(emulator, b"R16000", b"L13000", b"S")
    clock.sleep(10)
    t_a = clock.now()
    before = emulator.temperature_at(t_a)
    clock.set_speedup(50)
    send(emulator, b"O")
    clock.set_speedup(5000)
    send(emulator, b"E")
    clock.sleep(100)
    assert emulator.temperature_at(t_a) == before
    assert emulator.temperature_at(emulator.created_at) == 25.0
    with pytest.raises(ValueError, match="before the stage history starts"):
        emulator.temperature_at(emulator.created_at - 1)


def test_below_ambient_only_with_the_pump(very_fast_clock):
    emulator = LinkamT95Emulator("HFS600E", seed=6)
    read(emulator)
    send(emulator, b"R12000", b"L1-100", b"S")  # 20 C/min to -10 C, pump off
    clock.sleep(300)
    reading = read(emulator)
    assert reading.temperature == pytest.approx(25.0, abs=0.2)
    assert reading.status is LinkamStatus.COOLING  # stalled at ambient, never arrives
    send(emulator, b"Pa0")
    clock.sleep(300)
    reading = read(emulator)
    assert reading.status is LinkamStatus.HOLDING_LIMIT
    assert reading.temperature == pytest.approx(-10.0, abs=0.2)
    assert reading.raw[6:10] in (b"FF9B", b"FF9C", b"FF9D")
    assert reading.pump_speed == 30


def test_cooling_faster_than_the_stage_can_sets_eb1_bit_0(very_fast_clock):
    emulator = LinkamT95Emulator("HFS600E", seed=7)
    read(emulator)
    send(emulator, b"R115000", b"L11000", b"S")
    clock.sleep(60)
    send(emulator, b"R15000", b"L1300", b"S")  # 50 C/min down; 20 C/min without the pump
    reading = read(emulator)
    assert reading.errors == LinkamErrorFlags.COOLING_RATE_TOO_FAST
    assert reading.raw[1] == 0x81
    clock.sleep(300)
    assert not read(emulator).errors


@pytest.mark.parametrize("speed", [0, 12, 30])
def test_manual_pump_speed_is_reported(speed):
    emulator = LinkamT95Emulator("HFS600E")
    read(emulator)
    send(emulator, b"Pm0", b"P" + bytes([48 + speed]))
    assert read(emulator).pump_speed == speed


def test_faults_change_the_replies_until_cleared(very_fast_clock):
    emulator = LinkamT95Emulator(seed=8)
    read(emulator)
    emulator.inject_fault("no_reply")
    assert emulator.respond(b"T") is None
    assert emulator.respond(b"L15000") is None
    assert emulator.limit == 25.0  # not executed
    emulator.inject_fault("garbage")
    for _ in range(20):
        with pytest.raises(LinkamProtocolError):
            decode_status_reply(emulator.respond(b"T")[:-1])
    emulator.inject_fault("truncated")
    for _ in range(20):
        reply = emulator.respond(b"T")
        assert reply.endswith(b"\r") and 2 <= len(reply) <= 10
    emulator.clear_fault()
    send(emulator, b"R115000", b"L12000", b"S")
    clock.sleep(30)
    emulator.inject_fault("unplugged")
    frozen = read(emulator)
    assert frozen.errors == LinkamErrorFlags.OPEN_CIRCUIT and frozen.raw[1] == 0x82
    clock.sleep(60)
    assert read(emulator).temperature == frozen.temperature  # frozen report...
    assert emulator.temperature() < frozen.temperature - 5  # ...while the stage cools
    emulator.clear_fault()
    reading = read(emulator)
    assert not reading.errors and reading.status is LinkamStatus.STOPPED
    with pytest.raises(ValueError, match="unknown fault kind 'melted'"):
        emulator.inject_fault("melted")


def test_overshoot_fault_goes_past_the_limit_and_comes_back(very_fast_clock):
    emulator = LinkamT95Emulator(seed=9)
    read(emulator)
    emulator.inject_fault("overshoot", degrees=5.0)
    send(emulator, b"R12000", b"L1500")
    t0 = clock.now()
    send(emulator, b"S")
    emulator.clear_fault()  # the ramp already started keeps its overshoot
    samples = [emulator.temperature_at(t0 + 0.5 * i) for i in range(1200)]
    assert max(samples) == pytest.approx(55.0, abs=0.3)
    assert samples[-1] == pytest.approx(50.0, abs=0.2)


def test_servers_stop_cleanly_and_a_driver_talks_over_both(very_fast_clock):
    before = set(threading.enumerate())
    with LinkamT95Emulator() as emulator:
        path = emulator.serve_pty()
        port = emulator.serve_tcp()
        addresses = (
            f"ASRL{path}::INSTR",
            f"TCPIP::127.0.0.1::{port}::SOCKET",
            f"ASRLsocket://127.0.0.1:{port}::INSTR",  # a pyserial URL inside a VISA ASRL name
        )
        for address in addresses:
            with LinkamT95(address, min_command_interval=0, timeout=0.5) as driver:
                assert driver.status().temperature == 25.0
    assert set(threading.enumerate()) <= before
