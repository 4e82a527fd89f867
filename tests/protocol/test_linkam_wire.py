"""LinkamT95 over a real byte stream: the emulator by default, a real T95 on request.

``test_linkam_driver.py`` pins every byte against scripted exchanges; these tests drive the
same driver over TCP or a serial port, so that ``--device-address linkam=ADDRESS`` can check a
real controller answers as the emulator does (docs/real_instruments.md). Against a real stage,
tests marked ``emulator_only`` are skipped, and ``heats_stage`` ones need ``--allow-heating``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from insitu import clock
from insitu.devices.linkam import (
    LinkamErrorFlags,
    LinkamStageError,
    LinkamStatus,
    LinkamT95,
)
from insitu.sim.linkam_t95 import LinkamT95Emulator

pytestmark = pytest.mark.instrument("linkam")

EMULATOR_SPEEDUP = 100.0
#: How far a reading may wander on an idle stage (regulation noise, a stage still settling).
IDLE_DRIFT_C = 2.0


@pytest.fixture
def linkam_emulator() -> Iterator[LinkamT95Emulator]:
    """The emulator ``linkam_address`` serves when no real controller is given (100x clock)."""
    clock.set_speedup(EMULATOR_SPEEDUP)
    try:
        with LinkamT95Emulator("TS1500", seed=4) as emulator:
            yield emulator
    finally:
        clock.set_speedup(1.0)


def poll(driver: LinkamT95, done, *, timeout_s: float):
    """Read the status until ``done(reading)``; fail after ``timeout_s`` wall seconds."""
    deadline = time.monotonic() + timeout_s
    readings = []
    while time.monotonic() < deadline:
        readings.append(driver.status())
        if done(readings[-1]):
            return readings
        time.sleep(0.05)
    last = [(r.status.name, r.temperature) for r in readings[-5:]]
    pytest.fail(f"not reached within {timeout_s:g} s; last readings {last}")


def idle_limit(driver: LinkamT95, temperature: float) -> float:
    """A limit that does not heat: the current temperature (or the stage's lowest limit)."""
    return max(driver.limits.min_temperature, math.floor(temperature))


# --- any controller ---------------------------------------------------------------------------
def test_a_connected_stage_answers_t_with_a_healthy_reading(linkam_driver):
    reading = linkam_driver.status(check_errors=False)
    assert len(reading.raw) == 10
    assert reading.errors == LinkamErrorFlags(0), reading.errors.names  # e.g. OPEN_CIRCUIT
    assert -200.0 <= reading.temperature <= 1600.0


def test_set_commands_answer_one_line_each_so_readings_stay_framed(linkam_driver):
    start = linkam_driver.status().temperature
    linkam_driver.set_rate(10.0)
    linkam_driver.set_limit(idle_limit(linkam_driver, start))
    linkam_driver.set_rate(2.5)
    # A set reply left unread would be decoded as the next T reply and fail here.
    readings = [linkam_driver.status() for _ in range(5)]
    assert all(abs(r.temperature - start) <= IDLE_DRIFT_C for r in readings), readings


def test_stop_switches_the_heater_off(linkam_driver):
    linkam_driver.stop()
    assert linkam_driver.status().status is LinkamStatus.STOPPED


def test_out_of_range_values_never_reach_the_controller(linkam_driver):
    with pytest.raises(ValueError, match="above the stage limit"):
        linkam_driver.set_limit(5000.0)
    with pytest.raises(ValueError, match="above the stage limit"):
        linkam_driver.set_rate(1000.0)
    assert linkam_driver.status().errors == LinkamErrorFlags(0)


def test_a_new_connection_repeats_the_t_first_handshake(linkam_connect):
    first = linkam_connect()
    temperature = first.status().temperature
    first.close()
    second = linkam_connect()
    assert abs(second.status().temperature - temperature) <= IDLE_DRIFT_C


@pytest.mark.heats_stage
def test_a_started_ramp_heats_toward_a_higher_limit(linkam_driver):
    start = linkam_driver.status().temperature
    linkam_driver.set_rate(30.0)
    linkam_driver.set_limit(start + 10.0)
    linkam_driver.start()
    try:
        readings = poll(linkam_driver, lambda r: r.temperature >= start + 1.0, timeout_s=60.0)
        assert LinkamStatus.HEATING in {r.status for r in readings}
    finally:
        linkam_driver.stop()
    assert linkam_driver.status().status is LinkamStatus.STOPPED


# --- what only the emulator can show ----------------------------------------------------------
@pytest.mark.emulator_only("reads the emulator's log of received commands")
def test_the_controller_receives_exactly_the_documented_bytes(linkam_driver, linkam_emulator):
    linkam_driver.set_rate(12.5)
    linkam_driver.set_limit(25.0)
    linkam_driver.stop()
    linkam_driver.status()
    assert list(linkam_emulator.received_commands) == [b"T", b"R11250", b"L1250", b"E", b"T"]


@pytest.mark.emulator_only("injects a fault (the stage unplugged from the controller)")
def test_an_unplugged_stage_is_an_open_circuit_error(linkam_driver, linkam_emulator):
    linkam_emulator.inject_fault("unplugged")
    with pytest.raises(LinkamStageError, match="OPEN_CIRCUIT"):
        linkam_driver.status()
    linkam_emulator.clear_fault()
    assert linkam_driver.status().errors == LinkamErrorFlags(0)


@pytest.mark.emulator_only("needs the emulator's 100x clock: a real ramp and settle take minutes")
@pytest.mark.heats_stage
def test_a_ramp_reaches_its_limit_and_regulates_there(linkam_driver):
    start = linkam_driver.status().temperature
    linkam_driver.set_rate(150.0)
    linkam_driver.set_limit(start + 20.0)
    linkam_driver.start()
    poll(
        linkam_driver,
        lambda r: r.status is LinkamStatus.HOLDING_LIMIT and abs(r.temperature - start - 20) <= 1,
        timeout_s=30.0,
    )
