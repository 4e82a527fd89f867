"""ramp_until's other actions (stop: back down; fine: finer steps), and the campaign's pause."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.plans import pause_for_sample_change, ramp_until


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stop_action_ramps_back_down_after_the_flag(held_time_beamline):
    bl = held_time_beamline
    bl.RE(ramp_until(bl.stage, bl.raman, monitor=bl.raman_flags, stop=800, rate=10, action="stop"))
    assert bl.stage.position < 40.0  # back at the start temperature
    assert bl.raman_flags.transition.get() == "crystallization_onset"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fine_action_switches_to_finer_steps_after_the_flag(held_time_beamline):
    # Held time at 2000x: 2 C steps at 5 C/min are 24 s of experiment apart whatever the wall
    # time between them.
    bl = held_time_beamline
    bl.raman.exposure.put(5.0)
    (uid,) = bl.RE(
        ramp_until(
            bl.stage,
            bl.raman,
            monitor=bl.raman_flags,
            stop=700,
            rate=10,
            action="fine",
            every_C=10,
            fine_every_C=2,
            fine_rate=5,
            park_at=None,  # stay at the end of the fine ramp, to check where it ended
        )  # fmt: skip
    )
    bl.flush()
    temperatures = np.asarray(bl.catalog[uid]["primary"].read()["stage_temperature_start"])
    onset = float(bl.catalog[uid]["transitions"].read()["temperature"].values[0])
    before = np.diff(temperatures[temperatures < onset - 1])
    after = np.diff(temperatures[temperatures > onset + 1])
    assert np.median(before) == pytest.approx(10, abs=1.5)
    assert np.median(after) == pytest.approx(2, abs=1.0)
    assert abs(bl.stage.position - 700) <= 1.0


def test_ramp_until_rejects_bad_arguments():
    class Monitor:
        analysed = transition = None

    with pytest.raises(ValueError, match="on='melting' is not a transition"):
        next(ramp_until(None, None, monitor=Monitor(), stop=800, rate=5, on="melting"))
    with pytest.raises(ValueError, match="action='explode' is not allowed"):
        next(ramp_until(None, None, monitor=Monitor(), stop=800, rate=5, action="explode"))
    with pytest.raises(TypeError, match="must be the live RamanTransitionCallback"):
        next(ramp_until(None, None, monitor=object(), stop=800, rate=5))


def test_real_sample_change_pauses_for_a_person():
    commands = [msg.command for msg in pause_for_sample_change(1, 600.0)]
    assert commands == ["checkpoint", "pause"]
