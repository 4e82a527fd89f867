"""The stage watchdog: every hard limit trips, puts the stage in its safe state, and ends the run.

What must hold, per fault:

- over-temperature (an emulator that overshoots, or a controller heating on its own toward a
  limit above the allowed one): the safe command reaches the controller before the poll after
  the first reading above the limit (within 2 poll periods of the breach), and the true stage
  temperature never rises after it; with the RunEngine running the run is aborted with the
  limit, the value and the device in its stop document; paused, the paused run is aborted the
  same way; idle, the stage is made safe and refuses moves until the alarm is acknowledged;
- heating rate, time above a temperature, an error flag (stage unplugged), a silent controller
  (no reply, dropped link) and a stalled poller: each trips and leaves the controller in its
  safe state (for a silent controller: as soon as it answers again);
- after an alarm no move is accepted until ``watchdog.reset()``, which is refused while the
  cause persists.
"""

from __future__ import annotations

import threading
import time

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import pytest
from bluesky.utils import RunEngineInterrupted

import insitu.beamline
from insitu import clock
from insitu.beamline.safety import AlarmStillActiveError, Watchdog
from insitu.devices.linkam import (
    LinkamInterlockError,
    LinkamStage,
    LinkamStatus,
    LinkamT95,
    StageLimits,
    decode_status_reply,
)
from insitu.sim.linkam_t95 import LinkamT95Emulator

SPEEDUP = 100.0
STAGE_MAX = 300.0  # what the stage device accepts
HARD_MAX = 310.0  # the watchdog's limit
WAIT_S = 60.0  # wall seconds any trip may take at most, however loaded the machine


def wait_for(condition, timeout: float = WAIT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def safe_command_index(emulator: LinkamT95Emulator, command: bytes = b"E") -> int:
    """Index in the exchange log of the first safe command."""
    return next(i for i, (_, sent, _) in enumerate(emulator.exchanges) if sent == command)


def assert_acted_within_two_polls(emulator, limit: float, command: bytes = b"E") -> float:
    """The safe command came before the poll after the first reading above ``limit``, and the
    true temperature never rose after it. Returns the temperature when it arrived."""
    # The watchdog sets ``tripped`` before the controller has answered the safe command it sent,
    # and the emulator logs an exchange once it has answered: wait for the command to be logged.
    wait_for(
        lambda: any(sent == command for _, sent, _ in list(emulator.exchanges)),
        what=f"the safe command {command!r} in the controller's log",
    )
    log = list(emulator.exchanges)
    first_above = next(
        i
        for i, (_, sent, reply) in enumerate(log)
        if sent == b"T" and reply and decode_status_reply(reply[:-1]).temperature > limit
    )
    safe = safe_command_index(emulator, command)
    polls_between = sum(1 for _, sent, _ in log[first_above + 1 : safe] if sent == b"T")
    # The breach happened at most one poll before the reading that showed it: acting before
    # the next poll is acting within two poll periods of the breach.
    assert polls_between == 0, f"{polls_between} polls went by before the safe command"
    t_safe = log[safe][0]
    at_safe = emulator.temperature_at(t_safe)
    later = [emulator.temperature_at(t_safe + 0.5 * k) for k in range(1, 240)]
    assert max(later) <= at_safe + 0.3, "the stage kept heating after the safe command"
    return at_safe


# -- a stage and its watchdog, without a RunEngine ------------------------------------------------


@pytest.fixture
def rig():
    """Factory: ``rig(**watchdog_options)`` -> (emulator, stage, watchdog), torn down after."""
    clock.set_speedup(SPEEDUP)
    made: list[tuple[LinkamT95Emulator, LinkamStage, Watchdog]] = []

    def make(**options):
        emulator = LinkamT95Emulator("TS1500", seed=3)
        port = emulator.serve_tcp()
        limits = StageLimits("TS1500, beamline limit", 20.0, STAGE_MAX, 0.01, 50.0)
        driver = LinkamT95(
            f"TCPIP::127.0.0.1::{port}::SOCKET",
            limits=limits,
            min_command_interval=0.0,
            timeout=0.3,
            name="stage",
        )
        stage = LinkamStage(driver, name="stage", settle_time=2.0, rate=50.0, poll_period=0.5)
        settings = {"max_temperature": HARD_MAX, "max_rate": 75.0, "stall_timeout": 1.5}
        settings.update(options)
        watchdog = Watchdog(stage, **settings)
        watchdog.start()
        made.append((emulator, stage, watchdog))
        return emulator, stage, watchdog

    yield make
    for emulator, stage, watchdog in made:
        watchdog.stop()
        stage.destroy()
        stage.driver.close()
        emulator.close()
    clock.reset()


def rogue_heating(emulator: LinkamT95Emulator, target: float, rate: float) -> None:
    """The controller heads for ``target`` on its own (front panel, another program, a fault)."""
    emulator.respond(b"R1%d" % round(rate * 100))
    emulator.respond(b"L1%d" % round(target * 10))
    emulator.respond(b"S")


def test_overshoot_trips_at_the_hard_limit_within_two_polls(rig):
    emulator, stage, watchdog = rig()
    emulator.inject_fault("overshoot", degrees=30.0)
    move = stage.set(STAGE_MAX)  # allowed; the stage then overshoots by 30 C
    with pytest.raises(LinkamInterlockError, match="max_temperature_C"):
        move.wait(timeout=WAIT_S)
    alarm = watchdog.alarm
    assert alarm.limit == "max_temperature_C" and alarm.device == "stage"
    assert alarm.value > HARD_MAX and alarm.threshold == HARD_MAX
    assert f"{alarm.value} C is above max_temperature_C {HARD_MAX} C" in alarm.reason
    at_safe = assert_acted_within_two_polls(emulator, HARD_MAX)
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
    # Without the watchdog it would have gone to STAGE_MAX + 30 C: cut short where the safe
    # command found it (how far past HARD_MAX that is depends on the poll gap: load, not logic).
    peak = max(
        emulator.temperature_at(t) for t, _, _ in list(emulator.exchanges)
    )  # a copy: the server appends
    assert peak <= at_safe + 0.3 and peak < STAGE_MAX + 30.0 - 1.0, (peak, at_safe)


def test_a_setpoint_or_rate_above_the_configured_limits_is_refused_before_anything_is_sent(rig):
    emulator, stage, _ = rig()
    sent_before = len(emulator.received_commands)
    with pytest.raises(ValueError, match=r"stage.setpoint 350.0 C is above the stage limit 300.0"):
        stage.set(350.0)
    with pytest.raises(ValueError, match=r"stage.rate 60.0 C/min is above the stage limit 50.0"):
        stage.rate.put(60.0)
    with pytest.raises(ValueError, match="above the stage limit 300.0"):
        stage.driver.set_limit(301.0)
    assert all(cmd == b"T" for cmd in list(emulator.received_commands)[sent_before:])


def test_heating_rate_breach_stops_the_heater(rig):
    emulator, stage, watchdog = rig(max_temperature=900.0)
    rogue_heating(emulator, 600.0, rate=150.0)  # twice the stage's maximum
    wait_for(lambda: watchdog.tripped, what="the rate alarm")
    alarm = watchdog.alarm
    assert alarm.limit == "max_rate_C_per_min"
    assert alarm.value > 75.0 and "C/min" in alarm.reason
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
    assert emulator.temperature() < 200.0  # stopped long before the rogue target


def test_an_ordinary_ramp_at_the_maximum_rate_does_not_trip(rig):
    emulator, stage, watchdog = rig()
    stage.set(250.0).wait(timeout=WAIT_S)  # 50 C/min, the stage's maximum
    assert not watchdog.tripped, watchdog.alarm


def test_time_above_breach_stops_the_heater(rig):
    emulator, stage, watchdog = rig(time_above=(100.0, 120.0))
    stage.set(150.0).wait(timeout=WAIT_S)
    entered = clock.now()
    wait_for(lambda: watchdog.tripped, what="the dwell alarm")
    alarm = watchdog.alarm
    assert alarm.limit == "time_above" and alarm.value >= 120.0
    assert "above 100.0 C" in alarm.reason
    assert alarm.time - entered < 120.0 + 60.0  # tripped once the dwell was reached, not later
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")


def test_a_declared_dwell_that_nobody_ends_is_ended_by_the_watchdog(rig):
    emulator, stage, watchdog = rig()
    stage.set(200.0).wait(timeout=WAIT_S)
    declared = clock.now()
    stage.dwell_end.put(declared + 60.0)  # what anneal declares; then its plan is paused
    wait_for(lambda: watchdog.tripped, what="the dwell alarm")
    alarm = watchdog.alarm
    assert alarm.limit == "dwell" and "after the end of its declared dwell" in alarm.reason
    assert "above 175.0 C" in alarm.reason  # 25 C below the setpoint it was declared at
    assert 60.0 <= alarm.time - declared < 60.0 + 60.0
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")


def test_a_dwell_that_ends_in_time_does_not_trip(rig):
    emulator, stage, watchdog = rig()
    stage.set(120.0).wait(timeout=WAIT_S)
    stage.dwell_end.put(clock.now() + 100.0)
    stage.set(80.0).wait(timeout=WAIT_S)  # cools below the threshold: the dwell is over
    assert watchdog.limits.dwell is None
    clock.sleep(120.0)
    assert not watchdog.tripped, watchdog.alarm


def test_the_dwell_measurements_outlive_the_watchdog_that_made_them(rig, tmp_path):
    """A new process (a new load()) takes over: time above and a declared dwell go on."""
    state = tmp_path / "safety" / "stage.json"
    emulator, stage, first = rig(time_above=(100.0, 300.0), state_file=state)
    stage.set(150.0).wait(timeout=WAIT_S)
    wait_for(lambda: first.limits.above_since is not None, what="above 100 C")
    entered = first.limits.above_since
    stage.dwell_end.put(clock.now() + 10_000.0)
    wait_for(lambda: state.is_file() and "dwell" in state.read_text(), what="the state file")
    first.stop()  # the process ends without making the stage safe (SIGKILL, a hold guard)
    second = Watchdog(
        stage, max_temperature=HARD_MAX, max_rate=75.0, time_above=(100.0, 300.0),
        state_file=state,
    )  # fmt: skip
    second.start()
    try:
        assert second.limits.dwell is not None  # taken over
        wait_for(lambda: second.tripped, what="the time-above alarm")
        alarm = second.alarm
        assert alarm.limit == "time_above"
        assert alarm.time - entered < 300.0 + 60.0  # counted from the first process's entry
    finally:
        second.stop()


def test_error_flag_unplugged_stage_trips_and_the_controller_is_stopped(rig):
    emulator, stage, watchdog = rig()
    move = stage.set(200.0)
    time.sleep(0.2)
    emulator.inject_fault("unplugged")
    mark = len(emulator.received_commands)
    wait_for(lambda: watchdog.tripped, what="the error-flag alarm")
    assert watchdog.alarm.limit == "stage_error"
    assert watchdog.alarm.value == "OPEN_CIRCUIT"
    assert "OPEN_CIRCUIT" in watchdog.alarm.reason
    wait_for(lambda: b"E" in list(emulator.received_commands)[mark:], what="E")
    with pytest.raises(Exception):  # noqa: B017 - the move ended (error flag or interlock)
        move.wait(timeout=WAIT_S)
    emulator.clear_fault()
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
    assert watchdog.safe_state_applied


@pytest.mark.parametrize("fault", ["no_reply", "disconnect"])
def test_a_silent_controller_trips_and_is_stopped_as_soon_as_it_answers(rig, fault):
    emulator, stage, watchdog = rig()
    stage.set(250.0)
    time.sleep(0.3)
    emulator.inject_fault(fault)
    silent_from = time.monotonic()
    wait_for(lambda: watchdog.tripped, what="the stall alarm")
    assert watchdog.alarm.limit == "stall_timeout_s"
    # Not before the stall timeout: it runs from the last valid reading, which came at most one
    # poll period (0.5 s) before the fault was injected.
    assert time.monotonic() - silent_from >= 1.5 - 0.5
    assert "no valid reading" in watchdog.alarm.reason
    assert stage.connected.get() == 0
    assert not watchdog.safe_state_applied  # nothing can reach a silent controller...
    assert emulator.status_byte() == LinkamStatus.HEATING  # ...so it still heats
    emulator.clear_fault()
    wait_for(lambda: watchdog.safe_state_applied, what="the safe command to get through")
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
    wait_for(lambda: stage.connected.get() == 1, what="stage.connected back to 1")


def test_a_stalled_poller_trips(rig, monkeypatch):
    emulator, stage, watchdog = rig()
    stage.set(250.0)
    time.sleep(0.3)
    hang = threading.Event()
    real_status = stage.driver.status

    def hung_status(**kwargs):
        hang.wait(30)  # the poller's read never returns (the port is not even touched)
        return real_status(**kwargs)

    monkeypatch.setattr(stage.driver, "status", hung_status)
    try:
        wait_for(lambda: watchdog.tripped, what="the stall alarm")
        assert watchdog.alarm.limit == "stall_timeout_s"
        assert "poller delivered no reading" in watchdog.alarm.reason
        # The watchdog does not need the poller to reach the controller.
        wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
    finally:
        hang.set()


@pytest.mark.allow_slow("watches the held safe state over several watchdog polls in wall time")
def test_hold_safe_state_holds_and_reset_needs_the_cause_gone(rig):
    emulator, stage, watchdog = rig(safe_state="hold")
    emulator.inject_fault("overshoot", degrees=30.0)
    stage.set(STAGE_MAX)
    wait_for(lambda: watchdog.tripped, what="the alarm")
    assert_acted_within_two_polls(emulator, HARD_MAX, command=b"O")
    wait_for(lambda: emulator.status_byte() == LinkamStatus.HOLDING_CURRENT, what="hold")
    # Latched: no move, no heating command, also below the limit; heater off is allowed.
    with pytest.raises(LinkamInterlockError, match="watchdog.reset"):
        stage.set(100.0)
    with pytest.raises(LinkamInterlockError):
        stage.driver.start()
    with pytest.raises(LinkamInterlockError):
        stage.driver.heat()
    stage.driver.hold()  # the configured safe state itself stays allowed
    stage.stop()  # the RunEngine's cleanup call: sends nothing, raises nothing
    # Held above the limit: acknowledging is refused until the stage is cooled.
    wait_for(lambda: stage.trigger().wait(WAIT_S) or True)
    with pytest.raises(AlarmStillActiveError, match="above max_temperature"):
        watchdog.reset()
    stage.driver.stop()
    wait_for(lambda: stage.position < HARD_MAX - 20, what="cooling")
    watchdog.reset()
    assert not watchdog.tripped and stage.interlock is None
    emulator.clear_fault()
    stage.set(100.0).wait(timeout=WAIT_S)
    assert not watchdog.tripped and len(watchdog.alarms) == 1


@pytest.mark.allow_slow(
    "waits for the watchdog to see and stop a restart, over several polls in wall time"
)
def test_a_front_panel_restart_after_the_trip_is_stopped_again(rig):
    emulator, stage, watchdog = rig()
    rogue_heating(emulator, 400.0, rate=50.0)
    wait_for(lambda: watchdog.tripped, what="the alarm")
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
    emulator.respond(b"S")  # someone restarts the ramp at the controller itself
    mark = len(emulator.received_commands)
    wait_for(lambda: b"E" in list(emulator.received_commands)[mark:], what="E again")
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off again")


# -- on the beamline: the RunEngine running, paused, idle -----------------------------------------


@pytest.fixture(scope="module")
def shared_beamline(tmp_path_factory):
    """A simulated beamline whose stage accepts up to 300 C; the watchdog trips above 310 C."""
    data = tmp_path_factory.mktemp("watchdog-beamline")
    config = {
        "catalog": {"location": str(data / "data")},
        "metadata_dir": str(data / "md"),
        "simulation": {"speedup": SPEEDUP, "seed": 2},
        "stage": {"max_temperature_C": STAGE_MAX, "max_rate_C_per_min": 50.0},
        "safety": {"max_temperature_C": HARD_MAX},
    }
    bl = insitu.beamline.load(config, table=False, analysis=False)
    bl.RE.waiting_hook = None
    yield bl
    bl.close()
    clock.reset()


@pytest.fixture
def beamline(shared_beamline):
    """The shared beamline, armed and cool, with the stage ramping at 50 C/min."""
    bl = shared_beamline
    clock.set_speedup(SPEEDUP)
    bl.stage.rate.put(50.0)
    # Each test starts from a cool, armed stage: a trip left by the test before would be taken
    # for this test's own.
    assert not bl.watchdog.tripped, bl.watchdog.alarm
    assert bl.stage.position < 100.0, bl.stage.position
    bl.simulation.linkam.exchanges.clear()
    yield bl
    bl.simulation.linkam.clear_fault()
    if str(bl.RE.state) != "idle":
        bl.RE.abort("test teardown")
    if bl.watchdog.tripped:
        bl.stage.driver.stop()
        wait_for(lambda: bl.stage.position < 100.0, what="cooling before the next test")
        bl.watchdog.reset()


def stop_document(bl, uid: str) -> dict:
    bl.flush()
    return bl.catalog[uid].stop


def assert_aborted_for_over_temperature(stop: dict) -> None:
    assert stop["exit_status"] == "abort"
    reason = stop["reason"]
    assert "max_temperature_C 310.0 C" in reason and "stage temperature" in reason, reason
    assert "safe state 'stop'" in reason


def test_running_run_is_aborted_with_the_reason_in_its_stop_document(beamline):
    bl, emulator = beamline, beamline.simulation.linkam
    assert bl.RE.md["pid"] > 0 and bl.RE.md["host"]
    emulator.inject_fault("overshoot", degrees=30.0)
    uids = []

    @bpp.run_decorator(md={"purpose": "overshoot test"})
    def plan():
        yield from bps.mv(bl.stage, STAGE_MAX)
        for _ in range(1000):  # would take much longer than the trip
            yield from bps.trigger_and_read([bl.stage])
            yield from bps.sleep(5)

    with pytest.raises(RunEngineInterrupted):
        bl.RE(plan(), {"start": lambda name, doc: uids.append(doc["uid"])})
    assert_aborted_for_over_temperature(stop_document(bl, uids[0]))
    assert_acted_within_two_polls(emulator, HARD_MAX)
    assert bl.RE.state == "idle"
    # A plan bug asking for more than allowed is refused before anything is sent...
    with pytest.raises(ValueError, match="above the stage limit 300.0"):
        bl.RE(bps.mv(bl.stage, 950.0))
    # ...and while the alarm stands, so is any move.
    with pytest.raises(LinkamInterlockError):
        bl.RE(bps.mv(bl.stage, 100.0))


def test_paused_run_is_aborted_and_the_stage_made_safe(beamline):
    bl, emulator = beamline, beamline.simulation.linkam
    uids = []

    @bpp.run_decorator()
    def plan():
        yield from bps.trigger_and_read([bl.stage])
        yield from bps.checkpoint()
        yield from bps.pause()
        yield from bps.trigger_and_read([bl.stage])

    with pytest.raises(RunEngineInterrupted):
        bl.RE(plan(), {"start": lambda name, doc: uids.append(doc["uid"])})
    assert bl.RE.state == "paused"
    rogue_heating(emulator, 500.0, rate=50.0)  # the controller heats while nobody runs a plan
    wait_for(lambda: bl.watchdog.tripped, what="the alarm")
    wait_for(lambda: bl.RE.state == "idle", what="the paused run to be aborted")
    assert_aborted_for_over_temperature(stop_document(bl, uids[0]))
    assert_acted_within_two_polls(emulator, HARD_MAX)
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")


def test_idle_stage_is_made_safe_and_refuses_moves_until_acknowledged(beamline):
    bl, emulator = beamline, beamline.simulation.linkam
    rogue_heating(emulator, 500.0, rate=50.0)
    wait_for(lambda: bl.watchdog.tripped, what="the alarm")
    assert bl.watchdog.alarm.limit == "max_temperature_C"
    assert_acted_within_two_polls(emulator, HARD_MAX)
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
    with pytest.raises(LinkamInterlockError, match="max_temperature_C"):
        bl.RE(bps.mv(bl.stage, 100.0))
    wait_for(lambda: bl.stage.position < 200.0, what="cooling")
    bl.watchdog.reset()
    bl.RE(bps.mv(bl.stage, 150.0))
    assert abs(bl.stage.position - 150.0) <= 1.0
    assert not bl.watchdog.tripped
    clock.set_speedup(1000.0)  # cool for the next test, quickly
    bl.RE(bps.mv(bl.stage, 30.0))


@pytest.mark.allow_slow("the overrun allows 5 wall s of latency, which the test waits out")
def test_an_anneal_paused_in_its_dwell_is_ended_by_the_watchdog(beamline):
    from insitu.plans import anneal
    from insitu.plans.anneal import dwell_overrun_s

    bl, emulator = beamline, beamline.simulation.linkam
    clock.set_speedup(1000.0)  # the overrun allows 5 wall s of latency: 5000 s here
    declared = []

    def pause_in_the_dwell(value=None, **_):
        declared.append((clock.now(), value))
        bl.RE.request_pause(defer=False)

    token = bl.stage.dwell_end.subscribe(pause_in_the_dwell, run=False)
    try:
        with pytest.raises(RunEngineInterrupted):
            bl.RE(anneal(bl.stage, temperature=200.0, rate=50.0, dwell_s=120.0, cool_to=30.0))
    finally:
        bl.stage.dwell_end.unsubscribe(token)
    assert bl.RE.state == "paused"  # nobody will resume it
    ((at, end),) = declared
    # Declared from the dwell's start, the instant the stage settled (not when the plan heard
    # of it: on a loaded machine that is many experiment seconds at 1000x), never later.
    started = end - 120.0 - dwell_overrun_s(50.0)
    assert started == pytest.approx(bl.stage.settled_at, abs=1e-3) and started <= at
    wait_for(lambda: bl.watchdog.tripped, what="the dwell alarm")
    assert bl.watchdog.alarm.limit == "dwell"
    wait_for(lambda: bl.RE.state == "idle", what="the paused anneal to be aborted")
    wait_for(lambda: emulator.status_byte() == LinkamStatus.STOPPED, what="heater off")
