"""A closed loop end to end: ramp_until holds the film at the edge of crystallization.

The paper's whole protocol end to end (raw simulated data -> plans -> catalog -> the paper's
numbers and the ramp's flags) is the demo's test, ``test_profile_and_cli.py``: it runs the same
plans at the same speed-up, so a second in-process copy here would only cost CI time.
"""

from __future__ import annotations

import numpy as np
import pytest

from insitu import clock
from insitu.plans import ramp_until


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ramp_until_holds_at_the_edge_of_crystallization(held_time_beamline):
    # On held time at the demo's 2000x: experiment time stands still while the plan waits for
    # the live analysis of each spectrum, so the loop reacts at the spectrum's temperature.
    bl = held_time_beamline
    lab = bl.simulation
    (uid,) = bl.RE(
        ramp_until(
            bl.stage,
            bl.raman,
            monitor=bl.raman_flags,
            stop=800,
            rate=5,
            action="hold",
            park_at=None,  # keep the film held at the edge after the plan (attended use)
        )
    )
    plan_ended = clock.now()
    held_at = bl.stage.position
    bl.flush()
    flags = bl.catalog[uid]["transitions"].read()
    assert list(flags["kind"].values) == ["crystallization_onset"]
    assert bl.RE.state == "idle"
    film = lab.film
    now = film.state(plan_ended)
    # The crystals were really there (1 %) when the plan held, and it held within 15 C of the
    # true onset (5 %) if the film got there.
    times = np.arange(film.start_time, now.time + 20.0, 20.0)
    crystalline = np.array([film.state(t).crystalline_fraction for t in times])
    assert crystalline[-1] >= 0.01
    there = lab.linkam.temperature_at(times[np.argmax(crystalline >= 0.01)])
    assert held_at >= there
    if (crystalline > 0.05).any():
        true_onset = lab.linkam.temperature_at(times[np.argmax(crystalline > 0.05)])
        assert held_at - true_onset <= 15.0
    assert held_at < 800.0 - 50.0  # and did not ramp on
    assert now.crystalline_fraction < 0.30  # when the plan hands the held film back
    assert bl.stage.status.get() == "HOLDING_CURRENT"
