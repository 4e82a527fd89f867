"""step_eis and the impedance analyzer on the simulated beamline, end to end into the catalog."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import numpy as np
import pytest

from insitu.analysis.eis import fit_film
from insitu.analysis.stored_stream import read_stream
from insitu.plans.step_eis import step_eis, step_eis_schedule


def test_schedule_heats_then_cools_each_cycle():
    assert step_eis_schedule([300, 100, 200], 2) == [
        (1, "heating", 100), (1, "heating", 200), (1, "heating", 300),
        (1, "cooling", 200), (1, "cooling", 100),
        (2, "heating", 100), (2, "heating", 200), (2, "heating", 300),
        (2, "cooling", 200), (2, "cooling", 100),
    ]  # fmt: skip


@pytest.mark.allow_slow(
    "two runs through the embedded catalog (~1 s of writing each) and a first sweep whose "
    "length is not known yet (timed at the slow rate): 5.4 s idle"
)
def test_count_eis_lands_in_the_catalog_with_the_films_activation_energy(held_time_beamline):
    bl = held_time_beamline  # 2000x on held time: sweeps to 0.1 Hz take wall milliseconds
    resistance = {}
    for temperature in (100.0, 300.0):
        bl.RE(bps.mv(bl.stage.rate, 50.0, bl.stage, temperature))
        (uid,) = bl.RE(bp.count([bl.eis, bl.stage]))
        bl.flush()  # live analysis first, then the catalog writer
        data = bl.catalog[uid]["primary"].read()
        frequency = np.asarray(data["eis_frequency"])[0]
        impedance = np.asarray(data["eis_z_real"])[0] + 1j * np.asarray(data["eis_z_imag"])[0]
        assert frequency.min() == pytest.approx(0.1) and frequency.max() == pytest.approx(1e6)
        resistance[temperature] = fit_film(frequency, impedance).film_resistance
    film = bl.simulation.film
    state = film.state()
    expected = film.conductivity(300.0, state) / film.conductivity(100.0, state)
    assert resistance[100.0] / resistance[300.0] == pytest.approx(expected, rel=0.1)
    assert expected > 100  # the as-deposited film's high activation energy


@pytest.mark.allow_slow(
    "eight sweeps to 0.1 Hz between settled stage moves, and the run through the embedded "
    "catalog: 4-6.5 s with the fast tier beside it"
)
def test_step_eis_settles_before_measuring_and_switches_the_potentiostat_off(held_time_beamline):
    bl = held_time_beamline
    messages = []
    bl.RE.msg_hook = messages.append
    (uid,) = bl.RE(
        step_eis(bl.stage, bl.eis, temperatures=[100, 150], cycles=2, stabilize_s=60, rate=50)
    )
    for index, message in enumerate(messages):
        if message.command == "trigger" and message.obj is bl.eis:
            before = messages[:index]
            last_set = max(
                i for i, m in enumerate(before) if m.command == "set" and m.obj is bl.stage
            )
            assert any(m.command == "wait" for m in before[last_set:])  # settled first
            assert any(m.command == "sleep" for m in before[last_set:])  # then stabilized
    assert bl.simulation.term.potentiostat_on is False
    states = [on for _, on in bl.simulation.term.potentiostat_log]
    assert states == [True, False] * 6  # on, and off again, for each of the six sweeps

    bl.flush()  # live analysis first, then the catalog writer
    data = bl.catalog[uid]["primary"].read()
    assert list(data["cycle"].values) == [1, 1, 1, 2, 2, 2]
    assert list(data["direction"].values) == ["heating", "heating", "cooling"] * 2
    np.testing.assert_allclose(data["stage_temperature"], [100, 150, 100] * 2, atol=1.0)


@pytest.mark.allow_slow(
    "two sweeps to 0.1 Hz between three settled stage moves on held time, the first timed at "
    "the slow rate (3.4 s of RunEngine, measured alone), and the run through the embedded "
    "catalog: 5.2-5.9 s alone, 9 s with the fast tier beside it"
)
def test_step_eis_resume_skips_stored_measurements(held_time_beamline):
    bl = held_time_beamline
    skip = [(1, "heating", 100.0)]
    (uid,) = bl.RE(
        step_eis(bl.stage, bl.eis, temperatures=[100, 150], cycles=1, stabilize_s=0, skip=skip)
    )
    bl.flush()  # live analysis first, then the catalog writer
    # The one column: reading the whole stream built an xarray Dataset of the spectra (~0.5 s).
    stored = read_stream(bl.catalog[uid]["primary"], ["direction"])["direction"]
    assert list(stored) == ["heating", "cooling"]


# Last in the module: its one beamline then never runs beside another test's.
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"temperatures": []}, ValueError),
        ({"temperatures": [100, 2000]}, ValueError),
        ({"temperatures": [100, 100]}, ValueError),
        ({"temperatures": [100], "cycles": 0}, ValueError),
        ({"temperatures": [100], "cycles": 1.5}, TypeError),
        ({"temperatures": [100], "stabilize_s": -1}, ValueError),
        ({"temperatures": "100"}, TypeError),
    ],
)
def test_step_eis_rejects_bad_arguments_before_any_message(refusing, kwargs, error):
    bl = refusing
    with pytest.raises(error):
        bl.RE(step_eis(bl.stage, bl.eis, **kwargs))
    assert not any(m.command in ("set", "trigger", "open_run") for m in bl.messages)
