"""Bad input: every public plan and device entry point rejects it before anything moves.

Property-based (hypothesis). For the plans, random arguments (good and bad numbers, bools,
strings, NaN/inf, overflowing ints, arrays, empty, repeated and huge lists, wrong devices, bad
metadata) are judged by an independent statement of what each plan accepts (the ``*_problem``
functions below). The plan is then iterated message by message without a RunEngine
(``first_command``): passive messages (read, locate, describe, checkpoint, ...) are answered, and
the first message that commands something (set, trigger, stage, open_run, pause, ...) ends the
check. A plan must either raise ``ValueError``/``TypeError`` naming the plan or the device before
that first command (bad arguments), or reach it (good arguments); and nothing may reach the wire.
The devices (a real ``LinkamStage`` on a recording transport, a real ``RamanSpectrometer`` on a
recording backend, a real ``ZahnerEIS`` pointed at a listening socket) record what would go to the
instruments.

The ``slow`` tests run accepted arguments (small ranges) for real on the simulated beamline.

Examples are derandomized (``derandomize=True``), so a failure reproduces on every run; hypothesis
prints the falsifying example.
"""

from __future__ import annotations

import inspect
import math
import os
import reprlib
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ophyd import Signal

from insitu.devices.linkam import LinkamStage, LinkamT95, StageLimits
from insitu.devices.raman import RamanSpectrometer
from insitu.devices.zahner import ZahnerEIS
from insitu.plans import (
    anneal,
    anneal_and_measure,
    heat_ramp,
    pause_for_sample_change,
    ramp_until,
    step_eis,
    step_eis_schedule,
)
from insitu.plans.arguments import MAX_DURATION_S, MAX_LIST_LENGTH, MIN_STEP_C
from insitu.plans.closed_loop import ACTIONS, TRANSITIONS
from insitu.plans.heat_ramp import RampSignals, ramp_acquisition
from insitu.testing.drivers import ConnectionCounter, RecordingRamanBackend, RecordingT95

# The stage of the simulated beamline: TS1500 narrowed to 900 C and 50 C/min (sim.yaml).
LIMITS = StageLimits("TS1500, beamline limit", 20.0, 900.0, 0.01, 50.0)
# Device settings with no instrument limit of their own: judged by these (see the report).
MAX_TOLERANCE_C = 100.0
MAX_SETTLE_TIME_S = 86400.0

FAST = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("INSITU_BAD_INPUT_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------
# Real devices on recording far ends (insitu.testing.drivers)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rig():
    """Real devices whose far ends record: stage, Raman, impedance analyzer, monitor."""
    wire = RecordingT95()
    driver = LinkamT95(wire, limits=LIMITS, min_command_interval=0.0, name="stage")
    stage = LinkamStage(driver, name="stage", poll_period=0.5)
    backend = RecordingRamanBackend()
    raman = RamanSpectrometer(backend, name="raman")
    term = ConnectionCounter()
    eis = ZahnerEIS(f"127.0.0.1:{term.port}", name="eis", stop_timeout=5.0)
    monitor = SimpleNamespace(
        analysed=Signal(name="raman_analysed", value=0),
        transition=Signal(name="raman_transition", value=""),
    )
    thermocouple = Signal(name="thermocouple", value=25.0)
    twin = Signal(name="raman", value=0.0)  # a second device called "raman"
    yield SimpleNamespace(
        wire=wire,
        stage=stage,
        backend=backend,
        raman=raman,
        term=term,
        eis=eis,
        monitor=monitor,
        thermocouple=thermocouple,
        twin=twin,
    )
    stage.destroy()
    raman.close()
    eis.destroy()
    term.close()


def sent_so_far(rig) -> tuple[int, int, int]:
    """How much has reached the instruments: stage commands, Raman calls, Term connections."""
    return len(rig.wire.commands), len(rig.backend.calls), rig.term.count


def assert_nothing_sent(rig, before: tuple[int, int, int]) -> None:
    """Nothing reached the stage's wire, the Raman backend or Term since ``before``."""
    assert rig.wire.commands[before[0] :] == [], "sent to the stage"
    assert rig.backend.calls[before[1] :] == [], "sent to the Raman backend"
    assert rig.term.count == before[2], "connected to the impedance analyzer"


# --------------------------------------------------------------------------------------------
# Running a plan up to its first command
# --------------------------------------------------------------------------------------------

#: Messages that neither command a device nor change anything outside the plan.
PASSIVE = frozenset(
    {
        "read",
        "locate",
        "describe",
        "null",
        "checkpoint",
        "clear_checkpoint",
        "wait",
        "sleep",
        "install_suspender",
        "remove_suspender",
    }
)


class _AbandonPlanError(Exception):
    pass


def _respond(msg) -> Any:
    if msg.command == "read":
        return msg.obj.read()
    if msg.command == "locate":
        return msg.obj.locate()
    if msg.command == "describe":
        return msg.obj.describe()
    return None


def first_command(make_plan):
    """Iterate ``make_plan()`` until it raises, ends, or yields a commanding message.

    Returns ``(first commanding Msg or None, exception or None)``. A plan that reached a command
    is abandoned by throwing into it, as the RunEngine does on abort; its cleanup messages are
    answered with None and never executed.
    """
    plan = make_plan()
    response = None
    try:
        while True:
            msg = plan.send(response)
            if msg.command not in PASSIVE:
                break
            response = _respond(msg)
    except StopIteration:
        return None, None
    except Exception as error:  # judged by the caller
        return None, error
    try:
        plan.throw(_AbandonPlanError())
        for _ in range(1000):
            plan.send(None)
    except (_AbandonPlanError, StopIteration):
        pass
    finally:
        plan.close()
    return msg, None


def check_plan(rig, plan_name: str, make_plan, problem: str | None) -> None:
    """The plan rejects (ValueError/TypeError, named, before any command) iff ``problem``."""
    before = sent_so_far(rig)
    try:
        command, error = first_command(make_plan)
    finally:
        assert_nothing_sent(rig, before)
    if error is not None:
        assert isinstance(error, (ValueError, TypeError)), (
            f"{plan_name} raised {type(error).__name__}: {error} (bad input must raise "
            "ValueError or TypeError)"
        )
        assert problem is not None, f"{plan_name} rejected good arguments: {error!r}"
        text = str(error)
        assert any(word in text for word in (plan_name, "stage", "raman", "eis")), (
            f"{plan_name}: the message does not name the plan or the device: {text!r}"
        )
    else:
        assert problem is None, (
            f"{plan_name} accepted bad arguments ({problem}); its first command was "
            f"{command!r} (it must raise ValueError/TypeError before any command)"
        )


# --------------------------------------------------------------------------------------------
# What is a good argument (stated independently of the code under test)
# --------------------------------------------------------------------------------------------


def real(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (never a bool or a string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def temperature_ok(value: Any) -> bool:
    t = real(value)
    return t is not None and LIMITS.min_temperature <= t <= LIMITS.max_temperature


def rate_ok(value: Any) -> bool:
    r = real(value)
    return r is not None and LIMITS.min_rate <= r <= LIMITS.max_rate


def duration_ok(value: Any, *, allow_zero: bool = True, maximum: float = MAX_DURATION_S) -> bool:
    d = real(value)
    return d is not None and (d >= 0 if allow_zero else d > 0) and d <= maximum


def step_ok(value: Any, span: float | None = None) -> bool:
    s = real(value)
    return s is not None and s >= MIN_STEP_C and (span is None or s <= span)


def temperatures_problem(values: Any) -> str | None:
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, (list, tuple)):
        return "not a list"
    if not values or len(values) > MAX_LIST_LENGTH:
        return "empty or huge list"
    if not all(temperature_ok(v) for v in values):
        return "a temperature is not a number within the stage limits"
    if len({float(v) for v in values}) != len(values):
        return "repeated temperature"
    return None


def detectors_problem(devices: Any, rig, *, also=()) -> str | None:
    if not isinstance(devices, (list, tuple)):
        return "detectors not a list"
    devices = [*also, *devices]
    if any(not (hasattr(d, "read") and hasattr(d, "describe")) for d in devices):
        return "not a readable device"
    if any(d is rig.stage for d in devices):
        return "the stage listed as a detector"
    if len({id(d) for d in devices}) != len(devices):
        return "a device listed twice"
    if len({d.name for d in devices}) != len(devices):
        return "two devices with one name"
    return None


BAD_MD = ({1: 2}, {"uid": "x"}, {"time": 1.0}, {"scan_id": "a"}, {"x": object()}, "md", 5)
GOOD_MD = (None, {}, {"sample": "LLZO-1", "operator": "me"}, {"x": np.float64(1.5), "n": [1]})


def md_problem(md: Any) -> str | None:
    return "bad md" if any(md is bad for bad in BAD_MD) else None


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.just(np.True_),
    st.text(max_size=3),
    st.sampled_from(["30", "5.0", b"5", "nan"]),
    st.sampled_from([math.nan, math.inf, -math.inf, np.float64("nan")]),
    st.just(10**400),
    st.just(1 + 1j),
    st.lists(st.integers(20, 40), max_size=2),
    st.just(np.array([30.0, 40.0])),
)


def numbers(low: float, high: float) -> st.SearchStrategy:
    """Finite numbers in [low, high] as floats, ints and numpy floats."""
    floats = st.floats(low, high, allow_nan=False, allow_infinity=False)
    return st.one_of(floats, st.integers(math.ceil(low), math.floor(high)), floats.map(np.float64))


def maybe_bad(good: st.SearchStrategy, *bad: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly ``good`` values (which may still be out of range), sometimes junk or ``bad``."""
    return st.one_of(good, good, good, JUNK, *bad)


TEMPERATURE = maybe_bad(numbers(-300.0, 2000.0), numbers(20.0, 900.0))
RATE = maybe_bad(numbers(-5.0, 200.0), st.sampled_from([0.001, 0.01, 50.0, 50.5]))
DURATION = maybe_bad(numbers(-10.0, 2 * MAX_DURATION_S), st.sampled_from([0, 1e300]))
STEP = maybe_bad(numbers(-1.0, 500.0), st.sampled_from([1e-300, 1e-9, 0.05, MIN_STEP_C]))
COUNT = maybe_bad(st.integers(-2, 150), st.sampled_from([2.0, np.int64(2), np.uint8(3)]))
HUGE_LIST = [20.0 + 0.5 * i for i in range(MAX_LIST_LENGTH + 1)]
TEMPERATURE_LIST = st.one_of(
    st.lists(TEMPERATURE, max_size=4),
    st.lists(numbers(20.0, 900.0), min_size=1, max_size=4),
    st.lists(numbers(20.0, 900.0), min_size=1, max_size=4).map(tuple),
    st.just(HUGE_LIST),
    st.sampled_from(["100", 100, None, {100: 1}, [100, 100.0], []]),
    st.just(np.zeros((2, 2))),
)
MD = st.sampled_from(GOOD_MD + BAD_MD)


TEMPERATURE_OK = numbers(20.0, 900.0)
RATE_OK = numbers(0.01, 50.0)
DURATION_OK = numbers(0.0, 3600.0)
STEP_OK = numbers(MIN_STEP_C, 50.0)
COUNT_OK = st.integers(1, 5)
TEMPERATURE_LIST_OK = st.lists(TEMPERATURE_OK, min_size=1, max_size=4, unique_by=float)
MD_OK = st.sampled_from(GOOD_MD)


#: Arguments some plans have (safety and resume work adds them): drawn when the plan takes them.
OPTIONAL_GOOD = {
    "park_at": st.one_of(st.none(), numbers(20.0, 40.0)),
    "temperature_band": numbers(0.5, 20.0),
    "band_settle_s": DURATION_OK,
    "suspenders": st.booleans(),
}
OPTIONAL_WILD = {
    "park_at": st.one_of(st.none(), TEMPERATURE),
    "temperature_band": maybe_bad(numbers(-1.0, 50.0)),
    "band_settle_s": DURATION,
    "suspenders": st.sampled_from([True, False, 1, 0, "yes", None]),
}


def optional_problem(kwargs: dict[str, Any]) -> str | None:
    """What is wrong with the optional arguments in ``kwargs``, if any."""
    if "park_at" in kwargs and not (kwargs["park_at"] is None or temperature_ok(kwargs["park_at"])):
        return "park_at"
    band = real(kwargs.get("temperature_band", 1.0))
    if band is None or band <= 0:
        return "temperature_band"
    if not duration_ok(kwargs.get("band_settle_s", 0.0)):
        return "band_settle_s"
    if not isinstance(kwargs.get("suspenders", True), bool):
        return "suspenders"
    return None


def with_optional(plan, good: dict[str, Any], wild: dict[str, Any]):
    """Add to ``good``/``wild`` the optional arguments that ``plan`` takes."""
    taken = inspect.signature(plan).parameters
    for name in OPTIONAL_GOOD:
        if name in taken:
            good[name], wild[name] = OPTIONAL_GOOD[name], OPTIONAL_WILD[name]
    return good, wild


@st.composite
def arguments(draw, good: dict[str, Any], wild: dict[str, Any]) -> dict[str, Any]:
    """Good arguments with up to three replaced by wild ones (which may be good or bad).

    Mostly-good arguments put each bad value next to good ones, so each check is reached;
    hypothesis shrinks a failure toward the fewest replaced arguments.
    """
    replaced = draw(st.lists(st.sampled_from(sorted(wild)), max_size=3, unique=True))
    return {name: draw(wild[name] if name in replaced else good[name]) for name in good}


def detector_lists(rig) -> st.SearchStrategy:
    pool = [rig.raman, rig.eis, rig.thermocouple, rig.stage, rig.twin, 5]
    return st.one_of(
        st.lists(st.sampled_from(pool), max_size=3),
        st.lists(st.sampled_from(pool), max_size=3).map(tuple),
        st.sampled_from([None, "raman", 5, rig.raman, {"raman": rig.raman}]),
    )


def good_detector_lists(rig) -> st.SearchStrategy:
    return st.sampled_from([[rig.raman], [rig.raman, rig.thermocouple], (rig.eis,), []])


def stages(rig) -> st.SearchStrategy:
    return st.sampled_from([rig.stage, None, "stage", rig.raman])


def stage_problem(stage: Any, rig) -> str | None:
    return None if stage is rig.stage else "not a stage"


# --------------------------------------------------------------------------------------------
# Plans: rejected before any command, or accepted
# --------------------------------------------------------------------------------------------


def heat_ramp_problem(
    rig, stage, detectors, start, stop, rate, every_C, every_s, end_at, md, **optional
):
    if optional_problem(optional):
        return optional_problem(optional)
    problem = stage_problem(stage, rig) or detectors_problem(detectors, rig) or md_problem(md)
    if problem:
        return problem
    if not (temperature_ok(start) and temperature_ok(stop)) or real(start) == real(stop):
        return "start/stop"
    if not rate_ok(rate):
        return "rate"
    if (every_C is None) == (every_s is None):
        return "not exactly one of every_C, every_s"
    span = abs(real(stop) - real(start))
    if every_C is not None and not step_ok(every_C, span):
        return "every_C"
    if every_s is not None and not duration_ok(
        every_s, allow_zero=False, maximum=min(MAX_DURATION_S, span / real(rate) * 60.0)
    ):
        return "every_s (must be > 0 and no longer than the ramp)"
    if end_at is not None and not temperature_ok(end_at):
        return "end_at"
    return None


def heat_ramp_arguments(rig) -> st.SearchStrategy:
    good = {
        "stage": st.just(rig.stage),
        "detectors": good_detector_lists(rig),
        "start": TEMPERATURE_OK,
        "stop": TEMPERATURE_OK,
        "rate": RATE_OK,
        "every_C": STEP_OK,
        "every_s": st.none(),
        "end_at": st.one_of(st.none(), TEMPERATURE_OK),
        "md": MD_OK,
    }
    wild = {
        "stage": stages(rig),
        "detectors": detector_lists(rig),
        "start": TEMPERATURE,
        "stop": TEMPERATURE,
        "rate": RATE,
        "every_C": st.one_of(st.none(), STEP),
        "every_s": st.one_of(st.none(), DURATION, numbers(0.01, 600.0)),
        "end_at": st.one_of(st.none(), TEMPERATURE),
        "md": MD,
    }
    return arguments(*with_optional(heat_ramp, good, wild))


@FAST
@given(data=st.data())
def test_heat_ramp_rejects_bad_arguments_before_any_command(rig, data):
    kwargs = data.draw(heat_ramp_arguments(rig))
    check_plan(rig, "heat_ramp", lambda: heat_ramp(**kwargs), heat_ramp_problem(rig, **kwargs))


def ramp_acquisition_problem(rig, stage, detectors, stop, rate, every_C, every_s, signals):
    problem = stage_problem(stage, rig) or detectors_problem(detectors, rig)
    if problem:
        return problem
    if not temperature_ok(stop):
        return "stop"
    if not rate_ok(rate):
        return "rate"
    if (every_C is None) == (every_s is None):
        return "not exactly one of every_C, every_s"
    if every_C is not None and not step_ok(every_C):
        return "every_C"
    if every_s is not None and not duration_ok(every_s, allow_zero=False):
        return "every_s"
    if not isinstance(signals, RampSignals):
        return "signals"
    return None


@FAST
@given(data=st.data())
def test_ramp_acquisition_rejects_bad_arguments_before_any_command(rig, data):
    good = {
        "stage": st.just(rig.stage),
        "detectors": good_detector_lists(rig),
        "stop": TEMPERATURE_OK,
        "rate": RATE_OK,
        "every_C": STEP_OK,
        "every_s": st.none(),
        "signals": st.builds(RampSignals, st.just("stage")),
    }
    wild = {
        "stage": stages(rig),
        "detectors": detector_lists(rig),
        "stop": TEMPERATURE,
        "rate": RATE,
        "every_C": st.one_of(st.none(), STEP),
        "every_s": st.one_of(st.none(), DURATION, numbers(0.01, 600.0)),
        "signals": st.sampled_from([None, "signals"]),
    }
    kwargs = data.draw(arguments(good, wild))
    check_plan(
        rig,
        "ramp_acquisition",
        lambda: ramp_acquisition(**kwargs),
        ramp_acquisition_problem(rig, **kwargs),
    )


def anneal_problem(
    rig, stage, temperature, rate, dwell_s, cool_to, detectors, every_C, md, **optional
):
    if optional_problem(optional):
        return optional_problem(optional)
    problem = stage_problem(stage, rig) or detectors_problem(detectors, rig) or md_problem(md)
    if problem:
        return problem
    if not (temperature_ok(temperature) and temperature_ok(cool_to)):
        return "temperature/cool_to"
    if real(cool_to) >= real(temperature):
        return "cool_to not below temperature"
    if not rate_ok(rate):
        return "rate"
    if not duration_ok(dwell_s):
        return "dwell_s"
    if not step_ok(every_C):
        return "every_C"
    return None


@FAST
@given(data=st.data())
def test_anneal_rejects_bad_arguments_before_any_command(rig, data):
    good = {
        "stage": st.just(rig.stage),
        "temperature": numbers(500.0, 900.0),
        "rate": RATE_OK,
        "dwell_s": DURATION_OK,
        "cool_to": numbers(20.0, 400.0),
        "detectors": good_detector_lists(rig),
        "every_C": STEP_OK,
        "md": MD_OK,
    }
    wild = {
        "stage": stages(rig),
        "temperature": TEMPERATURE,
        "rate": RATE,
        "dwell_s": DURATION,
        "cool_to": TEMPERATURE,
        "detectors": detector_lists(rig),
        "every_C": STEP,
        "md": MD,
    }
    kwargs = data.draw(arguments(*with_optional(anneal, good, wild)))
    check_plan(rig, "anneal", lambda: anneal(**kwargs), anneal_problem(rig, **kwargs))


def step_eis_problem(
    rig, stage, eis, temperatures, stabilize_s, cycles, rate, extra_detectors, md, **optional
):
    if optional_problem(optional):
        return optional_problem(optional)
    problem = (
        stage_problem(stage, rig)
        or detectors_problem(extra_detectors, rig, also=[eis])
        or md_problem(md)
        or temperatures_problem(temperatures)
    )
    if problem:
        return problem
    if not duration_ok(stabilize_s):
        return "stabilize_s"
    if real(cycles) is None or isinstance(cycles, (float, np.floating)) or not 1 <= cycles <= 100:
        return "cycles"
    if rate is not None and not rate_ok(rate):
        return "rate"
    return None


@FAST
@given(data=st.data())
def test_step_eis_rejects_bad_arguments_before_any_command(rig, data):
    good = {
        "stage": st.just(rig.stage),
        "eis": st.just(rig.eis),
        "temperatures": TEMPERATURE_LIST_OK,
        "stabilize_s": DURATION_OK,
        "cycles": COUNT_OK,
        "rate": st.one_of(st.none(), RATE_OK),
        "extra_detectors": st.sampled_from([(), [rig.thermocouple]]),
        "md": MD_OK,
    }
    wild = {
        "stage": stages(rig),
        "eis": st.sampled_from([rig.stage, None, "eis", rig.raman]),
        "temperatures": TEMPERATURE_LIST,
        "stabilize_s": DURATION,
        "cycles": COUNT,
        "rate": st.one_of(st.none(), RATE),
        "extra_detectors": detector_lists(rig),
        "md": MD,
    }
    kwargs = data.draw(arguments(*with_optional(step_eis, good, wild)))
    check_plan(rig, "step_eis", lambda: step_eis(**kwargs), step_eis_problem(rig, **kwargs))


@FAST
@given(
    temperatures=TEMPERATURE_LIST,
    # Not 10**400 here: an unchecked schedule of that many cycles would fill the memory.
    cycles=st.one_of(st.integers(-2, 150), st.sampled_from([2.0, np.int64(2), True, None, "2"])),
)
def test_step_eis_schedule_rejects_what_step_eis_rejects(temperatures, cycles):
    # A schedule is not tied to a stage: any distinct finite temperatures will do.
    bad_list = not isinstance(temperatures, (list, tuple)) or not (
        0 < len(temperatures) <= MAX_LIST_LENGTH
        and all(real(t) is not None for t in temperatures)
        and len({float(t) for t in temperatures}) == len(temperatures)
    )
    bad_cycles = real(cycles) is None or isinstance(cycles, (float, np.floating))
    bad = bad_list or bad_cycles or not 1 <= cycles <= 100
    try:
        schedule = step_eis_schedule(temperatures, cycles)
    except (ValueError, TypeError) as error:
        assert bad, f"step_eis_schedule rejected good arguments: {error!r}"
        assert "step_eis" in str(error)
    else:
        assert not bad, f"step_eis_schedule accepted {reprlib.repr(temperatures)}, {cycles!r}"
        assert len(schedule) == cycles * (2 * len(temperatures) - 1)


def ramp_until_problem(
    rig,
    stage,
    raman,
    monitor,
    stop,
    rate,
    on,
    action,
    every_C,
    fine_every_C,
    fine_rate,
    md,
    **optional,
):
    if optional_problem(optional):
        return optional_problem(optional)
    problem = stage_problem(stage, rig) or detectors_problem([raman], rig) or md_problem(md)
    if problem:
        return problem
    if monitor is not rig.monitor:
        return "monitor"
    if on not in TRANSITIONS or action not in ACTIONS:
        return "on/action"
    if not temperature_ok(stop):
        return "stop"
    if not (rate_ok(rate) and rate_ok(fine_rate)):
        return "rate"
    if not (step_ok(every_C) and step_ok(fine_every_C)):
        return "every_C"
    return None


@FAST
@given(data=st.data())
def test_ramp_until_rejects_bad_arguments_before_any_command(rig, data):
    good = {
        "stage": st.just(rig.stage),
        "raman": st.just(rig.raman),
        "monitor": st.just(rig.monitor),
        "stop": TEMPERATURE_OK,
        "rate": RATE_OK,
        "on": st.sampled_from(TRANSITIONS),
        "action": st.sampled_from(ACTIONS),
        "every_C": STEP_OK,
        "fine_every_C": STEP_OK,
        "fine_rate": RATE_OK,
        "md": MD_OK,
    }
    wild = {
        "stage": stages(rig),
        "raman": st.sampled_from([rig.stage, None, "raman", rig.twin]),
        "monitor": st.sampled_from([None, rig.raman, "monitor"]),
        "stop": TEMPERATURE,
        "rate": RATE,
        "on": st.sampled_from([*TRANSITIONS, "crystallisation", "", None, 5]),
        "action": st.sampled_from([*ACTIONS, "halt", "", None, ["hold"]]),
        "every_C": STEP,
        "fine_every_C": STEP,
        "fine_rate": RATE,
        "md": MD,
    }
    kwargs = data.draw(arguments(*with_optional(ramp_until, good, wild)))
    check_plan(rig, "ramp_until", lambda: ramp_until(**kwargs), ramp_until_problem(rig, **kwargs))


def _change_sample(index, temperature):
    yield from ()


def anneal_and_measure_problem(rig, **kw) -> str | None:
    if optional_problem(kw):
        return optional_problem(kw)
    problem = (
        stage_problem(kw["stage"], rig)
        or detectors_problem([kw["raman"], kw["eis"]], rig)
        or md_problem(kw["md"])
        or temperatures_problem(kw["anneal_temperatures"])
        or temperatures_problem(kw["eis_temperatures"])
    )
    if problem:
        return problem
    if not temperature_ok(kw["room_temperature"]):
        return "room_temperature"
    if real(kw["room_temperature"]) >= min(map(float, kw["anneal_temperatures"])):
        return "room_temperature not below the anneal temperatures"
    if not (rate_ok(kw["rate"]) and rate_ok(kw["eis_rate"])):
        return "rate"
    if not (duration_ok(kw["dwell_s"]) and duration_ok(kw["stabilize_s"])):
        return "dwell_s/stabilize_s"
    if not step_ok(kw["raman_every_C"]):
        return "raman_every_C"
    cycles = kw["cycles"]
    if real(cycles) is None or isinstance(cycles, (float, np.floating)) or not 1 <= cycles <= 100:
        return "cycles"
    if not (kw["change_sample"] is None or callable(kw["change_sample"])):
        return "change_sample"
    names = kw["sample_names"]
    if names is not None and not (
        isinstance(names, (list, tuple))
        and all(isinstance(n, str) and n.strip() for n in names)
        and len(set(names)) == len(names) == len(kw["anneal_temperatures"])
    ):
        return "sample_names"
    campaign_id = kw["campaign_id"]
    if campaign_id is not None and not (isinstance(campaign_id, str) and campaign_id.strip()):
        return "campaign_id"
    return None


@FAST
@given(data=st.data())
def test_anneal_and_measure_rejects_bad_arguments_before_any_command(rig, data):
    good = {
        "stage": st.just(rig.stage),
        "raman": st.just(rig.raman),
        "eis": st.just(rig.eis),
        "anneal_temperatures": st.lists(
            numbers(500.0, 900.0), min_size=1, max_size=4, unique_by=float
        ),
        "rate": RATE_OK,
        "dwell_s": DURATION_OK,
        "room_temperature": numbers(20.0, 40.0),
        "raman_every_C": STEP_OK,
        "eis_temperatures": TEMPERATURE_LIST_OK,
        "stabilize_s": DURATION_OK,
        "cycles": COUNT_OK,
        "eis_rate": RATE_OK,
        "change_sample": st.sampled_from([_change_sample, None]),
        "sample_names": st.none(),
        "campaign_id": st.sampled_from([None, "c-1"]),
        "md": MD_OK,
    }
    wild = {
        "stage": stages(rig),
        "raman": st.sampled_from([rig.eis, None, rig.stage]),
        "eis": st.sampled_from([rig.raman, rig.stage, "eis"]),
        "anneal_temperatures": TEMPERATURE_LIST,
        "rate": RATE,
        "dwell_s": DURATION,
        "room_temperature": TEMPERATURE,
        "raman_every_C": STEP,
        "eis_temperatures": TEMPERATURE_LIST,
        "stabilize_s": DURATION,
        "cycles": COUNT,
        "eis_rate": RATE,
        "change_sample": st.sampled_from([5, "pause"]),
        "sample_names": st.sampled_from(["sample_names"]),  # filled in below
        "campaign_id": st.sampled_from(["", 5, b"c"]),
        "md": MD,
    }
    kwargs = data.draw(arguments(*with_optional(anneal_and_measure, good, wild)))
    if kwargs["sample_names"] == "sample_names":
        temperatures = kwargs["anneal_temperatures"]
        count = len(temperatures) if isinstance(temperatures, list) else 2
        names = [f"LLZO-{i}" for i in range(count)]
        choices = [names, tuple(names), names[:-1], "ab", [1] * count, ["s"] * count, [""] * count]
        kwargs["sample_names"] = data.draw(st.sampled_from(choices))
    check_plan(
        rig,
        "anneal_and_measure",
        lambda: anneal_and_measure(**kwargs),
        anneal_and_measure_problem(rig, **kwargs),
    )


@FAST
@given(index=maybe_bad(st.integers(-3, 10)), temperature=TEMPERATURE)
def test_pause_for_sample_change_rejects_bad_arguments_before_pausing(rig, index, temperature):
    bad_index = real(index) is None or isinstance(index, (float, np.floating)) or index < 0
    problem = "index" if bad_index else (None if real(temperature) is not None else "temperature")
    check_plan(
        rig,
        "pause_for_sample_change",
        lambda: pause_for_sample_change(index, temperature),
        problem,
    )


# --------------------------------------------------------------------------------------------
# Devices: nothing reaches the wire for a rejected value
# --------------------------------------------------------------------------------------------


def check_device_call(rig, device_name: str, call, good: bool) -> bool:
    """Run ``call``; it raises a named ValueError/TypeError and sends nothing iff not ``good``.

    Returns whether the call was accepted.
    """
    before = sent_so_far(rig)
    try:
        call()
    except (ValueError, TypeError) as error:
        assert not good, f"{device_name} rejected a good value: {error!r}"
        assert device_name in str(error), f"the message does not name {device_name}: {error}"
        assert_nothing_sent(rig, before)
        return False
    except Exception as error:
        raise AssertionError(
            f"{device_name} raised {type(error).__name__}: {error} (not ValueError/TypeError)"
        ) from error
    assert good, f"{device_name} accepted a bad value"
    return True


@FAST
@given(
    target=maybe_bad(numbers(-300.0, 2000.0)),
    timeout=st.one_of(st.none(), maybe_bad(numbers(-10.0, 1e5))),
    use_move=st.booleans(),
)
def test_stage_move_sends_nothing_for_a_bad_target_or_timeout(rig, target, timeout, use_move):
    stage = rig.stage
    good = temperature_ok(target) and (timeout is None or duration_ok(timeout, allow_zero=False))
    before = len(rig.wire.commands)
    statuses = []

    def call():
        if use_move:
            statuses.append(stage.move(target, timeout=timeout))
        else:
            statuses.append(stage.set(target, timeout=timeout))

    if check_device_call(rig, "stage", call, good):
        sent = [c[:2] for c in rig.wire.commands[before:]]
        assert sent == [b"R1", b"L1", b"S"], sent
        stage.stop()  # hold; the move's Status ends as interrupted
        assert statuses[0].done and not statuses[0].success
    rig.wire.commands.clear()


SETTING_VALUES = maybe_bad(numbers(-10.0, 1e6), st.sampled_from([0, 1e-9, 100.5, 86400.5]))


@FAST
@given(
    setting=st.sampled_from(["rate", "tolerance", "settle_time"]),
    value=SETTING_VALUES,
    use_set=st.booleans(),
)
def test_stage_settings_send_nothing_for_a_bad_value(rig, setting, value, use_set):
    signal = getattr(rig.stage, setting)
    v = real(value)
    good = {
        "rate": rate_ok(value),
        "tolerance": v is not None and 0 < v <= MAX_TOLERANCE_C,
        "settle_time": v is not None and 0 <= v <= MAX_SETTLE_TIME_S,
    }[setting]
    before = len(rig.wire.commands)
    old = signal.get()

    def call():
        if use_set:
            signal.set(value).wait(timeout=10)
        else:
            signal.put(value)

    try:
        if check_device_call(rig, "stage", call, good):
            sent = [c[:2] for c in rig.wire.commands[before:]]
            assert sent == ([b"R1"] if setting == "rate" else []), sent
            assert isinstance(signal.get(), float) and signal.get() == pytest.approx(v, abs=0.01)
    finally:
        signal.put(old)
        rig.wire.commands.clear()


RAMAN_DEFAULTS = {"exposure": 1.0, "accumulations": 1, "laser_power": 10.0}


@FAST
@given(
    setting=st.sampled_from(["exposure", "accumulations", "laser_power", "cosmic_ray_removal"]),
    value=st.one_of(SETTING_VALUES, st.sampled_from(["off", "median", "whitaker_hayes", "x"])),
    use_set=st.booleans(),
)
def test_raman_settings_and_trigger_send_nothing_for_a_bad_value(rig, setting, value, use_set):
    raman = rig.raman
    v = real(value)
    integral = v is not None and v == int(v)
    good = {
        "exposure": v is not None and 0 < v <= 3600.0,
        "accumulations": integral and 1 <= v <= 1000,
        "laser_power": v is not None and 0 < v <= 20.0,
        "cosmic_ray_removal": not isinstance(value, np.ndarray)
        and value in ("off", "median", "whitaker_hayes"),
    }[setting]
    signal = getattr(raman, setting)
    try:
        stored = check_device_call(
            rig,
            "raman",
            lambda: signal.set(value).wait(timeout=10) if use_set else signal.put(value),
            good,
        )
        if stored:
            trigger_ok = not (raman.cosmic_ray_removal.get() == "median")
            check_device_call(rig, "raman", lambda: raman.trigger().wait(timeout=10), trigger_ok)
            if trigger_ok:
                assert rig.backend.calls[-1] == ("acquire",)
    finally:
        for name, default in RAMAN_DEFAULTS.items():
            getattr(raman, name).put(default)
        raman.cosmic_ray_removal.put("off")
        rig.backend.calls.clear()


EIS_RANGES = {
    "f_max": (1e-5, 4e6, False),
    "f_min": (1e-5, 4e6, False),
    "f_start": (1e-5, 4e6, False),
    "amplitude": (0.0, 1.0, False),
    "dc_potential": (-4.0, 4.0, False),
    "points_per_decade_upper": (1, 100, True),
    "periods_lower": (1, 100, True),
}
EIS_DEFAULTS = {"f_max": 1e6, "f_min": 0.1, "f_start": 0.0, "amplitude": 0.05}


@FAST
@given(
    setting=st.sampled_from(sorted(EIS_RANGES)),
    value=maybe_bad(numbers(-10.0, 1e7), st.sampled_from([0, 1e-6, 0.5, 2.0, 66.0, 1e6])),
    use_set=st.booleans(),
)
def test_eis_settings_and_trigger_never_connect_for_a_bad_value(rig, setting, value, use_set):
    eis = rig.eis
    low, high, integer = EIS_RANGES[setting]
    v = real(value)
    in_range = v is not None and low <= v <= high and (not integer or v == int(v))
    if setting == "amplitude":
        in_range = in_range and v > 0
    if setting == "f_start":
        in_range = in_range or (v == 0.0)
    signal = getattr(eis, setting)
    try:
        stored = check_device_call(
            rig,
            "eis",
            lambda: signal.set(value).wait(timeout=10) if use_set else signal.put(value),
            in_range,
        )
        if stored:
            f_min, f_max = eis.f_min.get(), eis.f_max.get()
            start = eis.f_start.get() or f_max
            consistent = (
                f_min < f_max
                and f_min <= start <= f_max
                and eis.periods_upper.get() >= eis.periods_lower.get()
            )
            if not consistent:  # trigger must refuse before connecting
                check_device_call(rig, "eis", eis.trigger, False)
    finally:
        for name, default in EIS_DEFAULTS.items():
            getattr(eis, name).put(default)
        eis.points_per_decade_upper.put(10)
        eis.periods_lower.put(5)


@FAST
@given(frequency=maybe_bad(numbers(-10.0, 1e7)))
def test_eis_measure_point_never_connects_for_a_bad_frequency(rig, frequency):
    v = real(frequency)
    if v is not None and 1e-5 <= v <= 4e6:
        return  # a good frequency would connect; covered by the control test below
    check_device_call(rig, "eis", lambda: rig.eis.measure_point(frequency), False)


def test_forced_bad_settings_are_caught_at_trigger_before_anything_is_sent(rig):
    """A value stored without its check (``put(force=True)``, a choice's ``put``) is refused by
    ``trigger()`` before the instrument hears of it."""
    Signal.put(rig.raman.cosmic_ray_removal, "sometimes", force=True)  # past its check
    try:
        check_device_call(rig, "raman", rig.raman.trigger, False)
    finally:
        rig.raman.cosmic_ray_removal.put("off")
    rig.eis.f_max.put(1e9, force=True)
    try:
        check_device_call(rig, "eis", rig.eis.trigger, False)
    finally:
        rig.eis.f_max.put(1e6)


def test_recorders_do_see_good_commands():
    """Control: the recorders used above would notice a command (so the checks can fail)."""
    wire = RecordingT95()
    driver = LinkamT95(wire, limits=LIMITS, min_command_interval=0.0, name="stage")
    driver.set_rate(5.0)
    assert wire.commands == [b"R1500"]
    term = ConnectionCounter()
    eis = ZahnerEIS(f"127.0.0.1:{term.port}", name="eis", stop_timeout=5.0)
    try:
        with pytest.raises(Exception):  # noqa: B017 - any failure: the listener hangs up
            eis.measure_point(1000.0)
        assert term.count >= 1
    finally:
        eis.destroy()
        term.close()


# --------------------------------------------------------------------------------------------
# Accepted arguments run to the end on the simulated beamline (slow)
# --------------------------------------------------------------------------------------------

REAL_RUNS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=3,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def beamline(tmp_path):
    """The simulated beamline at 300x, with the stop documents of its runs collected."""
    import insitu.beamline
    from insitu import clock

    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": 300, "seed": 3},
    }
    bl = insitu.beamline.load(config, table=False)
    bl.RE.waiting_hook = None
    bl.raman.exposure.put(5.0)
    bl.stops = []
    bl.RE.subscribe(lambda name, doc: bl.stops.append(doc) if name == "stop" else None)
    yield bl
    bl.close()
    clock.reset()


def run_accepted(bl, plan) -> None:
    """Run ``plan``; every run it opened must end with exit status 'success'."""
    first = len(bl.stops)
    bl.RE(plan)
    stops = bl.stops[first:]
    assert stops, "the plan opened no run"
    assert all(stop["exit_status"] == "success" for stop in stops), stops


@pytest.mark.slow
@pytest.mark.timeout(300)
@REAL_RUNS
@given(
    start=numbers(30.0, 45.0),
    span=numbers(5.0, 20.0),
    rate=numbers(10.0, 50.0),
    step=st.sampled_from(["C", "s"]),
    md=MD_OK,
)
def test_accepted_heat_ramp_runs_to_the_end(beamline, start, span, rate, step, md):
    stop = float(start) + float(span)
    every = {"every_C": float(span) / 3} if step == "C" else {"every_s": 20.0}
    run_accepted(
        beamline,
        heat_ramp(beamline.stage, [beamline.raman], start=start, stop=stop, rate=rate, md=md,
                  **every),
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(300)
@REAL_RUNS
@given(temperature=numbers(50.0, 70.0), rate=numbers(20.0, 50.0), dwell_s=numbers(0.0, 60.0))
def test_accepted_anneal_runs_to_the_end(beamline, temperature, rate, dwell_s):
    run_accepted(
        beamline,
        anneal(beamline.stage, temperature=temperature, rate=rate, dwell_s=dwell_s, cool_to=35.0,
               detectors=[beamline.raman], every_C=10.0),
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(300)
@REAL_RUNS
@given(
    temperatures=st.lists(numbers(30.0, 60.0), min_size=1, max_size=2, unique_by=round),
    cycles=st.integers(1, 2),
)
def test_accepted_step_eis_runs_to_the_end(beamline, temperatures, cycles):
    beamline.eis.f_min.put(1000.0)  # a short sweep
    run_accepted(
        beamline,
        step_eis(beamline.stage, beamline.eis, temperatures=temperatures, stabilize_s=0.0,
                 cycles=cycles, rate=50.0),
    )  # fmt: skip
