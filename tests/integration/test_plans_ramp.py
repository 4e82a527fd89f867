"""heat_ramp and anneal on the simulated beamline: ordering, temperatures, validation."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.plans.anneal import anneal
from insitu.plans.heat_ramp import heat_ramp


def _commands(messages, obj_name=None):
    return [
        (m.command, getattr(m.obj, "name", None))
        for m in messages
        if obj_name is None or getattr(m.obj, "name", None) == obj_name
    ]


def test_heat_ramp_acquires_each_step_without_stopping_the_ramp(held_time_beamline):
    # On held time: at 200x on scaled time one wall-clock stall of a loaded CI worker was
    # 40 C of ramp, and the steps at 50-70 C were lost (4 of 6 acquired).
    bl = held_time_beamline
    bl.messages = []
    bl.RE.msg_hook = bl.messages.append
    bl.raman.exposure.put(6.0)
    (uid,) = bl.RE(heat_ramp(bl.stage, [bl.raman], start=30, stop=90, rate=10, every_C=10))
    close = next(i for i, m in enumerate(bl.messages) if m.command == "close_run")
    messages, after_run = bl.messages[:close], bl.messages[close:]
    stage_sets = [i for i, m in enumerate(messages) if m.command == "set" and m.obj is bl.stage]
    assert len(stage_sets) == 2  # settle at start, then the one continuous ramp
    parks = [m.args[0] for m in after_run if m.command == "set" and m.obj is bl.stage]
    assert parks == [30.0]  # after the run the stage is parked at room temperature
    first_trigger = next(
        i for i, m in enumerate(messages) if m.command == "trigger" and m.obj is bl.raman
    )
    waits = [i for i, m in enumerate(messages) if m.command == "wait"]
    assert any(stage_sets[0] < w < stage_sets[1] for w in waits)  # settled before the ramp
    assert stage_sets[1] < first_trigger  # nothing acquired before settling at start
    between = messages[stage_sets[1] + 1 :]
    assert not any(m.command == "stop" for m in between), [
        m for m in between if m.command == "stop"
    ]
    assert not any(m.command == "set" and m.obj is bl.stage for m in between)

    bl.flush()  # live analysis first, then the catalog writer
    data = bl.catalog[uid]["primary"].read()
    start = np.asarray(data["stage_temperature_start"])
    end = np.asarray(data["stage_temperature_end"])
    mean = np.asarray(data["stage_temperature_mean"])
    assert len(start) >= 5
    assert np.all(np.diff(start) > 0)
    # Heating during each 6 s exposure but the last, taken at 90 C once the ramp has ended:
    # the stage holds there, within its regulation ripple (+/- 0.1 C).
    assert np.all(end[:-1] >= start[:-1])
    assert abs(end[-1] - start[-1]) <= 0.3 and abs(start[-1] - 90.0) <= 1.0
    np.testing.assert_allclose(mean, (start + end) / 2)
    assert start[0] >= 40.0 - 1.0
    assert np.asarray(data["raman_spectrum"]).shape[1] == 1600
    run = bl.catalog[uid]
    assert run.start["plan_name"] == "heat_ramp" and run.start["ramp_rate_C_per_min"] == 10


def test_anneal_ramps_dwells_and_cools(sim_beamline):
    bl = sim_beamline
    (uid,) = bl.RE(anneal(bl.stage, temperature=120, rate=20, dwell_s=60, cool_to=60))
    run = bl.catalog[uid]
    assert run.start["anneal_temperature_C"] == 120
    assert abs(bl.stage.position - 60) <= 1.0
    sets = [m.args[0] for m in bl.messages if m.command == "set" and m.obj is bl.stage]
    assert sets == [120.0, 60.0]
    with pytest.raises(ValueError, match="cool_to 130.0 C must be below"):
        bl.RE(anneal(bl.stage, temperature=120, cool_to=130))


def _anneal_with_raman(bl, exposure=1.0, **options):
    """A short anneal to 70 C (cool to 50 C) with ``exposure`` s spectra: (its start document,
    the stage temperature of each spectrum)."""
    bl.raman.exposure.put(exposure)
    (uid,) = bl.RE(
        anneal(
            bl.stage,
            temperature=70,
            rate=20,
            cool_to=50,
            detectors=[bl.raman],
            every_C=50,
            **options,
        )
    )
    bl.flush()  # the run is on disk before it is read (SQLite: no read beside the writer)
    run = bl.catalog[uid]
    return run.start, list(run["primary"]["stage_temperature_mean"].read())


def test_anneal_acquires_through_the_dwell_when_asked(held_time_beamline):
    """Crystals that appear during a dwell are seen live: spectra every dwell_every_s, on a
    schedule the exposures (20 s of each minute) do not push later until the last one is lost.
    On held time: a loaded machine's latency is not experiment time here."""
    bl = held_time_beamline
    start, temperatures = _anneal_with_raman(bl, exposure=20.0, dwell_s=240, dwell_every_s=60)
    at_top = [t for t in temperatures if abs(t - 70) <= 2.0]
    # The ramp's last (snapped to its stop), the dwell's first, then one per minute of it.
    assert len(at_top) >= 1 + 1 + 4, temperatures
    assert start["plan_args"]["dwell_every_s"] == 60
    with pytest.raises(ValueError, match="dwell_every_s -1.0 s is not allowed"):
        bl.RE(anneal(bl.stage, temperature=120, detectors=[bl.raman], dwell_every_s=-1))


def test_anneal_takes_the_spectra_after_its_cool_down_when_asked(sim_beamline):
    """The film as it left the anneal: after_spectra spectra once back at cool_to."""
    bl = sim_beamline
    start, temperatures = _anneal_with_raman(bl, dwell_s=60, after_spectra=3)
    # The last three are at cool_to, taken after the stage was back there; none before them is.
    assert [abs(t - 50) <= 1.0 for t in temperatures[-3:]] == [True] * 3, temperatures
    assert temperatures[-4] > 52.0, temperatures
    assert start["plan_args"]["after_spectra"] == 3
    with pytest.raises(ValueError, match="after_spectra 2 needs detectors"):
        bl.RE(anneal(bl.stage, temperature=120, after_spectra=2))
    with pytest.raises(ValueError, match="after_spectra -1 is outside the allowed range 0 to"):
        bl.RE(anneal(bl.stage, temperature=120, detectors=[bl.raman], after_spectra=-1))


# Last in the module: its one beamline then never runs beside another test's.
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start": 30, "stop": 2000, "rate": 5, "every_C": 5}, "above the stage limit"),
        ({"start": 30, "stop": 90, "rate": 500, "every_C": 5}, r"rate 500.0 C/min is above"),
        ({"start": 30, "stop": 90, "rate": 5}, "exactly one of every_C"),
        ({"start": 30, "stop": 90, "rate": 5, "every_C": -5}, r"every_C -5.0 C is not allowed"),
        ({"start": 30, "stop": 30, "rate": 5, "every_C": 5}, "nothing to ramp"),
        ({"start": 30, "stop": 90, "rate": float("nan"), "every_C": 5}, "finite"),
    ],
)
def test_heat_ramp_rejects_bad_arguments_before_any_message(refusing, kwargs, match):
    bl = refusing
    with pytest.raises(ValueError, match=match):
        bl.RE(heat_ramp(bl.stage, [bl.raman], **kwargs))
    assert not any(m.command in ("set", "trigger", "open_run") for m in bl.messages)
