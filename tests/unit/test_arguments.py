"""insitu.plans.arguments: the shared argument checks accept real numbers and reject the rest."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from ophyd import Signal

from insitu.plans import arguments as a

NOT_NUMBERS = [None, True, False, np.True_, "5", b"5", 1j, [1.0], np.array([1.0, 2.0]), object()]
NOT_FINITE = [math.nan, math.inf, -math.inf, np.float64("nan"), 10**400, Fraction(10**400, 1)]


@pytest.mark.parametrize("value", [3, 3.5, np.float32(3.5), np.int64(3), np.array(2.0)])
def test_as_number_accepts_real_scalars(value):
    assert a.as_number(value, "plan x") == pytest.approx(float(value))


@pytest.mark.parametrize(
    "value", NOT_NUMBERS, ids=lambda v: type(v).__name__ if type(v) is object else repr(v)
)
def test_as_number_rejects_what_is_not_a_number_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^plan x .* is not a (single )?number"):
        a.as_number(value, "plan x")


@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
def test_as_number_rejects_non_finite_and_overflowing_values(value):
    with pytest.raises(ValueError, match="plan x .*finite"):
        a.as_number(value, "plan x")


def test_as_positive_bounds_and_messages():
    assert a.as_positive(0, "p dwell_s", "s", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match=r"p rate 0.0 C/min is not allowed: it must be > 0"):
        a.as_positive(0, "p rate", "C/min")
    with pytest.raises(ValueError, match=r"p t 11.0 s is too large: the allowed range is 0 to 10"):
        a.as_positive(11, "p t", "s", allow_zero=True, maximum=10)


def test_as_duration_caps_at_one_week():
    assert a.as_duration(a.MAX_DURATION_S, "p dwell_s") == a.MAX_DURATION_S
    with pytest.raises(ValueError, match="p dwell_s .* too large"):
        a.as_duration(a.MAX_DURATION_S * 2, "p dwell_s")
    with pytest.raises(ValueError, match="must be > 0"):
        a.as_duration(0, "p every_s", allow_zero=False)


def test_as_temperature_step_has_a_floor_and_the_ramp_as_ceiling():
    assert a.as_temperature_step(0.1, "p every_C", span=10) == 0.1
    assert a.as_temperature_step(10, "p every_C", span=10) == 10.0
    with pytest.raises(
        ValueError, match="p every_C 1e-300 C is not allowed: the smallest step is 0.1 C"
    ):
        a.as_temperature_step(1e-300, "p every_C")
    with pytest.raises(ValueError, match=r"p every_C 11.0 C is larger than the ramp \(10.0 C\)"):
        a.as_temperature_step(11, "p every_C", span=10.0)


@pytest.mark.parametrize("value", [2, np.int64(2), np.uint8(2)])
def test_as_count_accepts_ints(value):
    assert a.as_count(value, "p cycles") == 2


@pytest.mark.parametrize("value", [True, 2.0, "2", None, np.float64(2)])
def test_as_count_rejects_non_ints(value):
    with pytest.raises(TypeError, match="p cycles .* is not a whole number"):
        a.as_count(value, "p cycles")


def test_as_count_range():
    with pytest.raises(ValueError, match="p cycles 0 is outside the allowed range 1 to 100"):
        a.as_count(0, "p cycles", maximum=100)


def test_as_temperatures():
    assert a.as_temperatures((100, np.float64(150.5)), "p temps") == [100.0, 150.5]
    assert a.as_temperatures(np.array([1.0, 2.0]), "p temps") == [1.0, 2.0]
    assert a.as_temperatures(iter([3, 4]), "p temps") == [3.0, 4.0]
    for bad in ["100", b"1", 100, None, {100: 1}, np.zeros((2, 2))]:
        with pytest.raises(TypeError, match="p temps"):
            a.as_temperatures(bad, "p temps")
    for bad, match in [
        ([], "is empty"),
        ([100, 100.0], r"repeats \[100.0\]"),
        ([1, math.nan], "finite"),
        (range(a.MAX_LIST_LENGTH + 1), "more than 1000"),
    ]:
        with pytest.raises(ValueError, match=match):
            a.as_temperatures(bad, "p temps")
    with pytest.raises(TypeError, match="p temps entry True"):
        a.as_temperatures([True], "p temps")


def test_as_names():
    assert a.as_names(["a", "b"], "p names", count=2) == ["a", "b"]
    with pytest.raises(TypeError, match="not a list of names"):
        a.as_names("ab", "p names", count=2)
    with pytest.raises(TypeError, match="entry 1 is not a string"):
        a.as_names([1, "b"], "p names", count=2)
    with pytest.raises(ValueError, match="has 1 names: give exactly 2"):
        a.as_names(["a"], "p names", count=2)
    with pytest.raises(ValueError, match="repeats a name"):
        a.as_names(["a", "a"], "p names", count=2)
    with pytest.raises(ValueError, match="blank"):
        a.as_names(["a", " "], "p names", count=2)


def test_as_flag():
    assert a.as_flag(np.True_, "p on") is True
    assert a.as_flag(False, "p on") is False
    for bad in [1, 0, "yes", None]:
        with pytest.raises(TypeError, match="p on .* is not True or False"):
            a.as_flag(bad, "p on")


def test_as_identifier():
    assert a.as_identifier(None, "p id") is None
    assert a.as_identifier("abc", "p id") == "abc"
    with pytest.raises(TypeError):
        a.as_identifier(5, "p id")
    with pytest.raises(ValueError, match="blank"):
        a.as_identifier("", "p id")


def test_check_readable():
    x, y = Signal(name="x"), Signal(name="y")
    assert a.check_readable((x, y), "p detectors") == [x, y]
    assert a.check_readable([], "p detectors") == []
    for bad in [x, 5, "x", None, {"x": x}]:
        with pytest.raises(TypeError, match="p detectors .* must be a list of devices"):
            a.check_readable(bad, "p detectors")
    with pytest.raises(TypeError, match="is not a readable device"):
        a.check_readable([x, 5], "p detectors")
    with pytest.raises(ValueError, match="x is listed twice"):
        a.check_readable([x, y, x], "p detectors")
    with pytest.raises(ValueError, match="x is listed twice"):
        a.check_readable([x, Signal(name="x")], "p detectors")
    with pytest.raises(ValueError, match="y is already used by the plan"):
        a.check_readable([x, y], "p detectors", exclude=[y])


def test_check_stage():
    class Stage:
        name = "stage"
        temperature = rate = None

        def check_value(self, value): ...
        def set(self, value): ...
        def read(self): ...
        def describe(self): ...

    stage = Stage()
    assert a.check_stage(stage, "p stage") is stage
    for bad in [None, "stage", Signal(name="s")]:
        with pytest.raises(TypeError, match="p stage .* is not a heating stage"):
            a.check_stage(bad, "p stage")


def test_check_plan_factory():
    assert a.check_plan_factory(None, "p f") is None
    assert a.check_plan_factory(print, "p f") is print
    with pytest.raises(TypeError, match="p f 5 is neither None nor a function"):
        a.check_plan_factory(5, "p f")


def test_as_metadata():
    assert a.as_metadata(None, "p md") == {}
    md = {"sample": "LLZO", "x": np.float64(1.0), "a": np.arange(3), "n": {"k": [1, 2]}}
    assert a.as_metadata(md, "p md") == md
    for bad, error, match in [
        (5, TypeError, "is not a dict"),
        ({1: 2}, TypeError, "key 1 is not a string"),
        ({"uid": "x"}, ValueError, "'uid' is set by the RunEngine"),
        ({"time": 1}, ValueError, "'time' is set by the RunEngine"),
        ({"x": object()}, TypeError, "cannot be stored"),
        ({"scan_id": "a"}, ValueError, "scan_id: 'a' is not of type 'integer'"),
    ]:
        with pytest.raises(error, match=match):
            a.as_metadata(bad, "p md")
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises((ValueError, TypeError), match="p md"):
        a.as_metadata(loop, "p md")
