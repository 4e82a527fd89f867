"""insitu.checks: numeric arguments are real finite numbers in range, or a named error."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from insitu import checks

NOT_NUMBERS = [
    None,
    True,
    False,
    np.True_,
    "5",
    b"5",
    bytearray(b"5"),
    1j,
    np.complex64(1j),
    [1.0],
    (1.0,),
    {1.0},
    np.array([1.0]),
    np.array([1.0, 2.0]),
    np.array("5"),
    np.datetime64("2020-01-01"),
    object(),
]
NOT_FINITE = [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("-inf")]
TOO_LARGE = [10**400, -(10**400), Fraction(10**400, 3)]


def _id(value):
    return type(value).__name__ if type(value) is object else repr(value)


@pytest.mark.parametrize(
    "value",
    [3, -2, 3.5, 0, np.float32(3.5), np.float64(-1e300), np.int64(3), np.uint8(2), np.array(2.0)],
    ids=repr,
)
def test_as_finite_accepts_real_scalars_and_returns_a_float(value):
    number = checks.as_finite(value, "x")
    assert type(number) is float
    assert number == float(value)


def test_as_finite_accepts_fractions():
    assert checks.as_finite(Fraction(1, 4), "x") == 0.25


@pytest.mark.parametrize("value", NOT_NUMBERS, ids=_id)
def test_as_finite_rejects_what_is_not_a_single_number_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^stage\.rate .+ is not a (single )?number$") as caught:
        checks.as_finite(value, "stage.rate", unit="C/min")
    if isinstance(value, (bool, str, bytes)):
        assert repr(value) in str(caught.value)  # the value is named


@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
def test_as_finite_rejects_nan_and_infinity_naming_value_and_unit(value):
    shown = str(float(value))
    expected = f"linkam.setpoint {shown} C is not a finite number"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        checks.as_finite(value, "linkam.setpoint", unit="C")


@pytest.mark.parametrize("value", TOO_LARGE, ids=lambda v: type(v).__name__)
def test_as_finite_rejects_numbers_too_large_for_a_float(value):
    with pytest.raises(ValueError, match=r"^p t .+ s is not a finite number \(too large") as caught:
        checks.as_finite(value, "p t", unit="s")
    assert len(str(caught.value)) < 200  # a huge int is shortened, not printed in full


def test_as_finite_without_unit_has_no_stray_space():
    with pytest.raises(ValueError, match=r"^eis\.periods nan is not a finite number$"):
        checks.as_finite(math.nan, "eis.periods")


def test_in_range_returns_the_value_and_includes_bounds_by_default():
    assert checks.in_range(0, 0, 10, "x") == 0.0
    assert checks.in_range(10, 0, 10, "x") == 10.0
    assert checks.in_range(np.float64(5.5), 0, 10, "x") == 5.5


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (-1, {}, "raman.exposure -1.0 s is outside the allowed range 0 <= value <= 3600 s"),
        (3600.5, {}, "raman.exposure 3600.5 s is outside the allowed range 0 <= value <= 3600 s"),
        (
            0.0,
            {"include_low": False},
            "raman.exposure 0.0 s is outside the allowed range 0 < value <= 3600 s",
        ),
        (
            3600,
            {"include_high": False},
            "raman.exposure 3600.0 s is outside the allowed range 0 <= value < 3600 s",
        ),
    ],
)
def test_in_range_names_value_range_and_what(value, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        checks.in_range(value, 0.0, 3600.0, "raman.exposure", unit="s", **kwargs)


def test_in_range_with_an_open_side_states_only_the_other():
    with pytest.raises(ValueError, match=r"allowed range value > -273\.15 C$"):
        checks.in_range(-300, -273.15, math.inf, "t", unit="C", include_low=False)
    with pytest.raises(ValueError, match=r"^q 5\.0 is outside the allowed range value <= 1\.5$"):
        checks.in_range(5, -math.inf, 1.5, "q")


def test_in_range_shows_small_and_large_bounds_exactly():
    with pytest.raises(ValueError, match=r"1e-05 <= value <= 4e\+06 Hz$"):
        checks.in_range(0, 1e-5, 4e6, "eis.f_max", unit="Hz")
    with pytest.raises(ValueError, match=r"0\.1 <= value <= 0\.30000000000000004$"):
        checks.in_range(1, 0.1, 0.1 + 0.2, "x")


def test_in_range_checks_the_kind_first():
    with pytest.raises(TypeError, match="x True is not a number"):
        checks.in_range(True, 0, 10, "x")
    with pytest.raises(ValueError, match="x nan is not a finite number"):
        checks.in_range(math.nan, -math.inf, math.inf, "x")


def test_as_positive():
    assert checks.as_positive(1e-300, "w") == 1e-300
    assert checks.as_positive(0, "w", allow_zero=True) == 0.0
    assert checks.as_positive(10, "w", maximum=10) == 10.0
    with pytest.raises(ValueError, match=r"^w 0\.0 s is outside the allowed range value > 0 s$"):
        checks.as_positive(0, "w", unit="s")
    with pytest.raises(ValueError, match=r"^w -1\.0 s is outside the allowed range value >= 0 s$"):
        checks.as_positive(-1, "w", unit="s", allow_zero=True)
    with pytest.raises(
        ValueError, match=r"^w 11\.0 s is outside the allowed range 0 < value <= 10"
    ):
        checks.as_positive(11, "w", unit="s", maximum=10)
    with pytest.raises(TypeError, match="w '1' is not a number"):
        checks.as_positive("1", "w")
    with pytest.raises(ValueError, match="w inf s is not a finite number"):
        checks.as_positive(math.inf, "w", unit="s")


def _reference(value):
    """What ``in_range(value, low, high)`` should do, stated without the code under test."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return TypeError
    try:
        number = float(value)
    except OverflowError:
        return ValueError
    return number if math.isfinite(number) else ValueError


@given(
    value=st.one_of(
        st.integers(-(10**400), 10**400),
        st.floats(),
        st.floats(width=32).map(np.float32),
        st.integers(-(2**63), 2**63 - 1).map(np.int64),
        st.booleans(),
        st.text(max_size=4),
        st.none(),
        st.lists(st.floats(), max_size=2),
        st.complex_numbers(),
    ),
    low=st.floats(-1e6, 1e6),
    width=st.floats(0, 1e6),
    include_low=st.booleans(),
    include_high=st.booleans(),
)
def test_in_range_matches_a_plain_statement_of_the_rule(
    value, low, width, include_low, include_high
):
    high = low + width
    expected = _reference(value)
    if isinstance(expected, float):
        inside = (expected >= low if include_low else expected > low) and (
            expected <= high if include_high else expected < high
        )
        expected = expected if inside else ValueError
    kwargs = {"unit": "C", "include_low": include_low, "include_high": include_high}
    if isinstance(expected, float):
        assert checks.in_range(value, low, high, "what", **kwargs) == expected
    else:
        with pytest.raises(expected) as caught:
            checks.in_range(value, low, high, "what", **kwargs)
        assert str(caught.value).startswith("what ")
        if expected is ValueError and "finite" not in str(caught.value):
            assert "allowed range" in str(caught.value)
