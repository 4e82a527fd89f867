"""LinkamStage against the emulator over a pty and over TCP, driven by bluesky plans."""

from __future__ import annotations

import math
import threading

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import numpy as np
import pytest

from insitu import clock
from insitu.devices.linkam import (
    LinkamMoveInterrupted,
    LinkamMoveTimeout,
    LinkamStatus,
    decode_status_reply,
)

SETTLE = 10.0
TOLERANCE = 1.0
# Reported temperatures are rounded to 0.1 C, so a reading "in band" means the true temperature
# was within tolerance + 0.05 C.
REPORTED_BAND = TOLERANCE + 0.05
SAMPLE_STEP = 0.05
# One poll at 200x: the 0.01 s wall floor is 2 experiment seconds. The device only knows what it
# reads, so a ripple out of the band shorter than that can go unseen.
POLL_INTERVAL_AT_200X = 2.0


def band_entries(emulator, start: float, end: float, target: float, half_width: float):
    """Experiment times at which the true stage temperature entered the band from outside."""
    entries, inside_before = [], False
    for i in range(int((end - start) / SAMPLE_STEP) + 1):
        t = start + i * SAMPLE_STEP
        inside = abs(emulator.temperature_at(t) - target) <= half_width
        if inside and not inside_before:
            entries.append(t)
        inside_before = inside
    return entries


def record_done(stage) -> list[float]:
    """Experiment time of the reading that completed each move."""
    done: list[float] = []
    stage.subscribe(
        lambda timestamp, **_: done.append(timestamp), event_type=stage.SUB_DONE, run=False
    )
    return done


def record_readings(stage) -> list[tuple[float, float]]:
    """(experiment time, value) of every temperature change the stage published."""
    seen: list[tuple[float, float]] = []
    stage.temperature.subscribe(
        lambda value, timestamp, **_: seen.append((timestamp, value)), run=False
    )
    return seen


def answered_polls(emulator, start: float, end: float) -> list[tuple[float, float]]:
    """(experiment time, temperature) of every T poll the emulator answered in [start, end]."""
    return [
        (t, decode_status_reply(reply.rstrip(b"\r")).temperature)
        for t, sent, reply in list(emulator.exchanges)
        if sent == b"T" and reply and start <= t <= end
    ]


def assert_settled_honestly(emulator, seen, start: float, finished: float) -> list[float]:
    """The move finished only after SETTLE seconds in band, by the wire and by the truth.

    Returns the times the true temperature entered the band.
    """
    # What the device read: in band all through the last SETTLE seconds before finishing.
    window_start = finished - SETTLE
    value_at_window_start = [value for t, value in seen if t <= window_start][-1]
    in_window = [value for t, value in seen if window_start < t <= finished]
    assert all(abs(v - 150.0) <= TOLERANCE for v in [value_at_window_start, *in_window])
    # What went over the wire: the settle counts from the first reply in band after the last
    # one out of it, and is a full SETTLE (the device times it from the latest instant that
    # reply can have been sampled to the earliest instant of the one that ends it).
    polls = answered_polls(emulator, start, finished)
    last_out = max(i for i, (_, value) in enumerate(polls) if abs(value - 150.0) > TOLERANCE)
    seen_arrival = polls[last_out + 1][0]
    assert finished - seen_arrival >= SETTLE, "finished before it had settled"
    # What the stage really did: after that reply, the true temperature (regulation ripple
    # included) left the band only between two polls, never while one was answered. A device
    # knows only what it reads; an excursion shorter than a poll gap goes unseen.
    entries = band_entries(emulator, start, finished, 150.0, REPORTED_BAND)
    times = [t for t, _ in polls[last_out + 1 :]]
    for t in times:
        assert abs(emulator.temperature_at(t) - 150.0) <= REPORTED_BAND + 0.01, t
    # Not later than needed: the device finishes at the first poll sent a settle time after the
    # reply that found it in band, so the slack is about two poll gaps, as long as the polls
    # really were (a loaded machine stretches the 10 ms wall floor, x200 in experiment time).
    gap = max([POLL_INTERVAL_AT_200X, *np.diff(times)]) if len(times) > 1 else POLL_INTERVAL_AT_200X
    assert finished - seen_arrival <= SETTLE + 2 * gap + 0.5, "finished long after settling"
    return entries


def non_status_commands(emulator) -> list[bytes]:
    return [command for command in emulator.received_commands if command != b"T"]


def test_mv_ends_in_tolerance_only_after_the_settle_time(
    linkam_rig, linkam_transport, linkam_run_engine
):
    clock.set_speedup(200)
    rig = linkam_rig(linkam_transport, rate=20.0, tolerance=TOLERANCE, settle_time=SETTLE)
    seen = record_readings(rig.stage)
    done = record_done(rig.stage)
    start = clock.now()
    linkam_run_engine(bps.mv(rig.stage, 150))
    (finished,) = done
    assert abs(rig.stage.position - 150.0) <= TOLERANCE
    assert finished - start >= (150 - 25) / 20 * 60  # no faster than the ramp itself
    assert_settled_honestly(rig.emulator, seen, start, finished)
    assert rig.stage.status.get() == "HOLDING_LIMIT"
    assert rig.stage.setpoint.get() == 150.0


def test_an_overshoot_inside_the_first_crossing_does_not_count(
    linkam_rig, linkam_transport, linkam_run_engine
):
    clock.set_speedup(200)
    rig = linkam_rig(linkam_transport, rate=20.0, tolerance=TOLERANCE, settle_time=SETTLE)
    rig.emulator.inject_fault("overshoot", degrees=4.0)
    seen = record_readings(rig.stage)
    done = record_done(rig.stage)
    start = clock.now()
    linkam_run_engine(bps.mv(rig.stage, 150))
    (finished,) = done
    entries = assert_settled_honestly(rig.emulator, seen, start, finished)
    # The true temperature crossed into the band, left it (overshoot), and came back...
    assert len(entries) >= 2
    peak = max(rig.emulator.temperature_at(entries[0] + i) for i in range(120))
    assert peak > 150.0 + TOLERANCE + 2.0
    # ...and the first crossing did not count.
    assert finished > entries[0] + SETTLE + 20
    # (assert_settled_honestly checked on the wire that the settle was counted from the last
    # reply out of the band.) Every reply the controller gave while the truth was well above
    # the band read out of it; a loaded machine may take none then. At the instant it answered,
    # not when the reading reached the device: on the rising edge 10 ms of latency is 2 s.
    for t, value in answered_polls(rig.emulator, entries[0], finished):
        if rig.emulator.temperature_at(t) > 150.0 + 2 * TOLERANCE:
            assert value > 150.0 + TOLERANCE, (t, value)
    assert abs(rig.stage.position - 150.0) <= TOLERANCE


def test_a_set_beyond_the_stage_limit_raises_before_anything_is_sent(
    linkam_rig, linkam_transport, linkam_run_engine
):
    rig = linkam_rig(linkam_transport)
    message = r"^linkam\.setpoint 2000\.0 C is above the stage limit 1500\.0 C \(TS1500\)$"
    with pytest.raises(ValueError, match=message):
        rig.stage.set(2000.0)
    with pytest.raises(ValueError, match=message):
        linkam_run_engine(bps.mv(rig.stage, 2000.0))
    with pytest.raises(
        ValueError, match=r"linkam\.setpoint -50\.0 C is below the stage limit 20\.0 C"
    ):
        rig.stage.set(-50)
    with pytest.raises(
        ValueError, match=r"linkam\.rate 200\.0 C/min is above the stage limit 150\.0"
    ):
        rig.stage.rate.put(200)
    with pytest.raises(ValueError, match=r"linkam\.rate"):
        rig.stage.rate.set(0)
    with pytest.raises(ValueError, match=r"linkam_tolerance"):
        rig.stage.tolerance.put(-1)
    # Only status polls went out: no R1, L1, S (and no O from the RunEngine's cleanup).
    assert non_status_commands(rig.emulator) == []
    assert math.isnan(rig.stage.setpoint.get())
    assert rig.stage.rate.get() == 10.0


def test_rate_is_a_config_signal_that_reaches_the_controller(linkam_rig, linkam_transport):
    rig = linkam_rig(linkam_transport)
    rig.stage.rate.put(42.125)
    assert rig.stage.rate.get() == 42.12
    assert rig.emulator.rate == 42.12
    assert non_status_commands(rig.emulator) == [b"R14212"]
    config = rig.stage.read_configuration()
    assert config["linkam_rate"]["value"] == 42.12
    assert config["linkam_tolerance"]["value"] == 1.0
    assert config["linkam_settle_time"]["value"] == 10.0
    assert rig.stage.hints == {"fields": ["linkam_temperature"]}


def test_stop_during_a_ramp_holds_the_current_temperature(linkam_rig, linkam_transport):
    rig = linkam_rig(linkam_transport, rate=30.0)
    status = rig.stage.set(500.0)
    assert clock.sleep(60)
    rig.stage.stop()
    with pytest.raises(LinkamMoveInterrupted, match="stopped; holding at"):
        status.wait(timeout=5)
    assert rig.emulator.status_byte() == LinkamStatus.HOLDING_CURRENT
    held = rig.emulator.temperature()
    assert held > 40.0
    clock.sleep(60)
    rig.stage.trigger().wait(timeout=5)
    assert rig.stage.status.get() == "HOLDING_CURRENT"
    assert rig.stage.position == pytest.approx(held, abs=0.3)
    assert rig.emulator.temperature() == pytest.approx(held, abs=0.3)


def test_negative_temperatures_on_hfs600e_with_the_pump(
    linkam_rig, linkam_transport, linkam_run_engine
):
    rig = linkam_rig(linkam_transport, stage_model="HFS600E", rate=20.0, settle_time=5.0)
    rig.stage.driver.set_pump("auto")
    linkam_run_engine(bps.mv(rig.stage, -10.0))
    assert rig.stage.position == pytest.approx(-10.0, abs=TOLERANCE)
    reading = rig.stage.driver.status()
    assert reading.temperature < 0
    assert reading.raw[6:8] == b"FF"  # the two's-complement encoding on the wire
    rig.stage.trigger().wait(timeout=5)
    assert rig.stage.pump.get() == 30
    assert rig.emulator.temperature() == pytest.approx(-10.0, abs=TOLERANCE)


def test_count_scan_and_monitor(linkam_rig, linkam_transport, linkam_run_engine):
    rig = linkam_rig(linkam_transport, rate=150.0, settle_time=2.0)
    stage = rig.stage
    documents: list[tuple[str, dict]] = []
    token = linkam_run_engine.subscribe(lambda name, doc: documents.append((name, doc)))
    try:
        linkam_run_engine(bp.count([stage], num=3))
        linkam_run_engine(bp.scan([stage], stage, 30.0, 34.0, 3))

        @bpp.run_decorator()
        def monitored_move():
            yield from bps.monitor(stage.temperature, name="linkam_temperature_monitor")
            # 26 C at 150 C/min and the settle: ~12 experiment s, ~120 ms of wall time at
            # 100x; readings come every poll (10 wall ms and a round trip): five of them even
            # on a machine four times slower.
            yield from bps.mv(stage, 60.0)
            yield from bps.unmonitor(stage.temperature)

        linkam_run_engine(monitored_move())
    finally:
        linkam_run_engine.unsubscribe(token)
    streams = {doc["uid"]: doc["name"] for name, doc in documents if name == "descriptor"}
    events = [
        (streams[doc["descriptor"]], doc["data"]) for name, doc in documents if name == "event"
    ]
    primary = [data for stream, data in events if stream == "primary"]
    assert len(primary) == 3 + 3
    assert all(
        set(data) >= {"linkam_temperature", "linkam_status", "linkam_errors"} for data in primary
    )
    scanned = [data["linkam_temperature"] for data in primary[3:]]
    assert scanned == pytest.approx([30.0, 32.0, 34.0], abs=TOLERANCE)
    monitored = [
        data["linkam_temperature"]
        for stream, data in events
        if stream == "linkam_temperature_monitor"
    ]
    assert len(monitored) >= 5
    assert max(monitored) == pytest.approx(60.0, abs=TOLERANCE)
    assert [doc["exit_status"] for name, doc in documents if name == "stop"] == ["success"] * 3


def test_destroy_stops_the_poller_and_releases_the_port(linkam_rig, linkam_transport):
    before = set(threading.enumerate())
    rig = linkam_rig(linkam_transport)
    status = rig.stage.set(300.0)
    rig.stage.destroy()
    rig.emulator.close()
    with pytest.raises(LinkamMoveInterrupted, match="destroyed"):
        status.wait(timeout=5)
    assert set(threading.enumerate()) <= before


def test_a_move_that_cannot_settle_in_time_fails_with_a_move_timeout(linkam_rig, linkam_transport):
    # TS1500 accepts 20 C, but with no liquid-nitrogen cooling it stalls at the 25 C ambient.
    rig = linkam_rig(linkam_transport, timeout=60.0)
    status = rig.stage.set(20.0)
    with pytest.raises(LinkamMoveTimeout, match=r"not settled within 1\.0 C of 20\.0 C"):
        status.wait(timeout=10)
    assert rig.stage.position == pytest.approx(25.0, abs=0.3)
    quick = rig.stage.set(300.0, timeout=5.0)  # a per-move timeout overrides the default
    with pytest.raises(LinkamMoveTimeout):
        quick.wait(timeout=10)


def test_a_new_set_supersedes_the_pending_move(linkam_rig, linkam_transport):
    rig = linkam_rig(linkam_transport, rate=150.0, settle_time=2.0)
    first = rig.stage.set(400.0)
    second = rig.stage.set(30.0)
    with pytest.raises(LinkamMoveInterrupted, match=r"400\.0 C superseded by a move to 30\.0 C"):
        first.wait(timeout=5)
    second.wait(timeout=10)
    assert rig.stage.position == pytest.approx(30.0, abs=1.0)
    assert rig.emulator.limit == 30.0
