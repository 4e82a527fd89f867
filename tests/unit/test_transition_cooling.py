"""Transition flags on a film that is heated, held and cooled: a growth that stops because the
stage cools or holds is no completion, and a film far below its hottest raises no new phase.

The ramps are `insitu.testing.raman_ramps` films under a heat-and-cool program: what a film
became stays (phase fractions follow the hottest temperature so far), band positions and widths
follow the present one. Before the detector held its tests while the film cooled, every film
heated to 63 % crystalline and cooled was called crystallized on the way down (20 of 20), an
amorphous film raised an onset at 205 C and crystallized ones a decomposition at 625 and 190 C.
"""

from __future__ import annotations

import numpy as np
import pytest

from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.raman_ramps import draw_ramp, flags_raised


def _heat_and_cool(seed: int, top_in_tau: float | None = None, top_C: float | None = None):
    spec = draw_ramp(seed, 850.0)
    t0, tau, _ = spec.kinetics
    top = t0 + top_in_tau * tau if top_C is None else top_C
    up = np.arange(25.0, top, spec.step_C)
    program = np.concatenate([up, up[::-1]])
    return spec.spectra(program), len(up)


@pytest.mark.parametrize("seed", [0, 4, 18])
def test_a_film_cooled_halfway_through_its_crystallization_is_not_called_crystallized(seed):
    ramp, heated = _heat_and_cool(seed, top_in_tau=1.0)
    assert 0.3 < ramp.crystalline.max() < 0.7
    flags = flags_raised(ramp, RamanTransitionDetector())
    assert flags.get("crystallization_onset", heated) < heated  # seen on the way up
    assert "crystallized" not in flags and "decomposition" not in flags


def test_an_amorphous_film_heated_and_cooled_raises_nothing():
    ramp, _ = _heat_and_cool(14, top_in_tau=-1.0)
    assert ramp.crystalline.max() == 0.0
    assert flags_raised(ramp, RamanTransitionDetector()) == {}


def test_a_crystallized_film_cooled_raises_no_decomposition():
    spec = draw_ramp(48, 850.0)
    centre, width = spec.decomposition
    ramp, heated = _heat_and_cool(48, top_C=centre - 5.5 * width)
    assert ramp.decomposed.max() < 0.005 and ramp.crystalline.max() > 0.95
    flags = flags_raised(ramp, RamanTransitionDetector())
    assert flags["crystallized"] < heated and "decomposition" not in flags


def test_a_film_reheated_after_a_cool_down_is_tested_again():
    # Heated to 63 %, cooled by 150 C, heated on to 850 C: the flags resume where they were.
    spec = draw_ramp(0, 850.0)
    t0, tau, _ = spec.kinetics
    up = np.arange(25.0, t0 + tau, spec.step_C)
    down = np.arange(up[-1], up[-1] - 150.0, -spec.step_C)
    program = np.concatenate([up, down, np.arange(down[-1], 850.0 + 1e-9, spec.step_C)])
    ramp = spec.spectra(program)
    flags = flags_raised(ramp, RamanTransitionDetector())
    back = len(up) + len(down) + int(np.argmax(program[len(up) + len(down) :] >= up[-1]))
    assert set(flags) == {"crystallization_onset", "crystallized", "decomposition"}
    assert flags["crystallized"] > back
    assert ramp.crystalline[flags["crystallized"]] >= 0.9


def test_one_bogus_temperature_reading_does_not_hold_the_tests():
    ramp = draw_ramp(7, 850.0).spectra()
    clean = flags_raised(ramp, RamanTransitionDetector())
    readings = ramp.temperatures.copy()
    readings[40] = 1372.0  # a thermocouple glitch, long before the onset
    detector = RamanTransitionDetector()
    for temperature, counts in zip(readings, ramp.counts, strict=True):
        detector.update(ramp.wavenumber, counts, temperature)
    assert {flag.kind: flag.index for flag in detector.flags} == clean


@pytest.mark.parametrize("seed", [5, 10])
def test_a_hold_where_the_growth_stalls_is_no_completion(seed):
    # Heated to ~60 % crystalline, held 20 spectra (this generator's film grows with the hottest
    # temperature only, so it stalls), then heated on: read against the ramp's fastest growth,
    # the stall was called crystallized 21 spectra before 90 %.
    spec = draw_ramp(seed, 850.0)
    t0, tau, _ = spec.kinetics
    up = np.arange(25.0, t0 + tau, spec.step_C)
    rest = np.arange(up[-1] + spec.step_C, 850.0 + 1e-9, spec.step_C)
    ramp = spec.spectra(np.concatenate([up, np.full(20, up[-1]), rest]))
    flags = flags_raised(ramp, RamanTransitionDetector())
    assert flags["crystallized"] >= len(up) + 20
    assert ramp.crystalline[flags["crystallized"]] >= 0.9
