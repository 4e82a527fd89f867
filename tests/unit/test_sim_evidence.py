"""The simulated films' ideal crystalline evidence (insitu.testing.sim_ramps.sim_evidence)."""

import numpy as np
import pytest

from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.raman_ramps import flags_raised
from insitu.testing.sim_ramps import render_sim_ramp, sim_evidence


@pytest.mark.parametrize(("seed", "spread"), [(0, 1.0), (3, 2.0)])
def test_the_evidence_is_nothing_before_crystals_and_grows_with_them(seed, spread):
    ramp, evidence = render_sim_ramp(seed, spread=spread), sim_evidence(seed, spread=spread)
    assert evidence.shape == ramp.crystalline.shape
    assert np.all(evidence[ramp.crystalline == 0] == 0)
    first = int(np.flatnonzero(ramp.crystalline > 0.01)[0])
    rising = evidence[first - 2 : first + 3]
    assert np.all(np.diff(rising) > 0)
    # The simulator's films are bright: an ideal observer sees the crystals several noise units
    # out before 1 % (what bench_raman's onset bound is made of).
    assert evidence[first - 1] > 5


def test_no_detector_sees_more_than_the_ideal_observer():
    # The detector's crystalline z (noise units) stays below the ideal matched filter of the
    # garnet bands, spectrum by spectrum, through the crystallization.
    ramp, evidence = render_sim_ramp(7), sim_evidence(7)
    detector = RamanTransitionDetector()
    flags_raised(ramp, detector)
    z = np.array([features.crystalline_z for features in detector.history])
    first = int(np.flatnonzero(ramp.crystalline > 0.01)[0])
    rise = slice(first - 2, first + 10)
    assert np.all(z[rise] < evidence[rise])


def test_the_evidence_follows_the_rendering_settings():
    slow = sim_evidence(2, end_C=750.0, rate_C_per_min=20.0, every_C=25.0, exposure_s=30.0)
    ramp = render_sim_ramp(2, end_C=750.0, rate_C_per_min=20.0, every_C=25.0, exposure_s=30.0)
    assert slow.shape == ramp.crystalline.shape
    # Three times the exposure of the default ramp: about sqrt(3) times the evidence for the same
    # crystals, so the first spectrum past 1 % already shows them far out of the noise.
    assert slow[int(np.flatnonzero(ramp.crystalline > 0.01)[0])] > 20
