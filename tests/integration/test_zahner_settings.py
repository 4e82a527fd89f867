"""Out-of-range settings are refused by ZahnerEIS before anything reaches Term."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from insitu.devices.zahner import ZahnerEIS
from insitu.sim.thales_term import TermEmulator

# (setting, value, what the message says): each beyond one edge of the documented ranges.
OUT_OF_RANGE = [
    ("f_max", 5e6, "eis.f_max 5000000.0 Hz is above the instrument limit 4000000.0 Hz"),
    ("f_max", 1e-6, "eis.f_max 1e-06 Hz is below the instrument limit 1e-05 Hz"),
    ("f_min", 0.0, "eis.f_min 0.0 Hz is below the instrument limit 1e-05 Hz"),
    ("f_min", 1e7, "eis.f_min 10000000.0 Hz is above the instrument limit 4000000.0 Hz"),
    ("f_start", 4.5e6, "eis.f_start 4500000.0 Hz is above the instrument limit 4000000.0 Hz"),
    ("f_start", -1.0, "eis.f_start -1.0 Hz is below the instrument limit 1e-05 Hz"),
    ("points_per_decade_upper", 0, "eis.points_per_decade_upper 0 is below the instrument limit 1"),
    (
        "points_per_decade_upper",
        101,
        "eis.points_per_decade_upper 101 is above the instrument limit 100",
    ),
    ("points_per_decade_lower", 2.5, "eis.points_per_decade_lower 2.5 is not a whole number"),
    ("points_per_decade_lower", 0, "eis.points_per_decade_lower 0 is below the instrument limit 1"),
    ("amplitude", 0.0, "eis.amplitude 0.0 V is at or below the instrument limit 0.0 V"),
    ("amplitude", 1.5, "eis.amplitude 1.5 V is above the instrument limit 1.0 V"),
    ("dc_potential", 4.5, "eis.dc_potential 4.5 V is above the instrument limit 4.0 V"),
    ("dc_potential", -5.0, "eis.dc_potential -5.0 V is below the instrument limit -4.0 V"),
    ("periods_upper", 0, "eis.periods_upper 0 is below the instrument limit 1"),
    ("periods_upper", 101, "eis.periods_upper 101 is above the instrument limit 100"),
    ("periods_lower", 1000, "eis.periods_lower 1000 is above the instrument limit 100"),
    ("periods_lower", float("nan"), "eis.periods_lower nan is not a finite number"),
    ("f_max", "fast", "eis.f_max 'fast' is not a number"),
]


@pytest.fixture(scope="module")
def term() -> Iterator[TermEmulator]:
    with TermEmulator() as emulator:
        emulator.serve_tcp(0)
        yield emulator


@pytest.fixture
def eis(term: TermEmulator) -> Iterator[ZahnerEIS]:
    device = ZahnerEIS(f"127.0.0.1:{term.port}", name="eis")
    yield device
    device.destroy()
    # Nothing was sent: no connection was even opened.
    assert term.registrations == []
    assert term.received_commands == []


@pytest.mark.parametrize(("setting", "value", "message"), OUT_OF_RANGE)
def test_out_of_range_setting_is_refused_before_anything_is_sent(eis, setting, value, message):
    signal = getattr(eis, setting)
    before = signal.get()
    with pytest.raises(ValueError) as by_set:
        signal.set(value)
    assert str(by_set.value) == message
    with pytest.raises(ValueError, match="instrument limit|whole number|not a"):
        signal.put(value)
    assert signal.get() == before
    # Forced past the signal, the value is still caught when the sweep is set up.
    signal.put(value, force=True)
    with pytest.raises(ValueError) as by_trigger:
        eis.trigger()
    assert str(by_trigger.value) == message
    with pytest.raises(ValueError):
        eis.measure_point(1e3)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"f_min": 1e3, "f_max": 1e2}, "eis.f_min 1000.0 Hz must be below eis.f_max 100.0 Hz"),
        ({"f_start": 1e-3}, "eis.f_start 0.001 Hz is outside the sweep range 0.1 Hz to"),
        (
            {"periods_upper": 2, "periods_lower": 5},
            "eis.periods_upper 2 is below eis.periods_lower 5",
        ),
    ],
)
def test_contradicting_settings_are_refused_before_anything_is_sent(eis, settings, message):
    for setting, value in settings.items():
        getattr(eis, setting).set(value).wait(1)
    with pytest.raises(ValueError, match=message):
        eis.trigger()


def test_out_of_range_single_frequency_is_refused(eis):
    with pytest.raises(ValueError, match=r"eis.measure_point frequency 5000000.0 Hz is above"):
        eis.measure_point(5e6)


def test_describe_reports_units_and_limits(eis):
    description = eis.describe_configuration()
    assert description["eis_f_max"]["units"] == "Hz"
    assert description["eis_f_max"]["upper_ctrl_limit"] == 4e6
    assert description["eis_amplitude"]["units"] == "V"
    assert eis.read_configuration()["eis_f_start"]["value"] == 0.0  # 0: start at f_max
