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
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile
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


def test_a_simulated_anneal_completing_in_its_dwell_is_called_in_time():
    # The simulated film goes on crystallizing at constant temperature: 90 % when the 720 C
    # dwell begins, complete in it. Against the hold's own fastest growth (not the whole
    # growth's) its completion came 51 spectra late.
    profile = ThermalProfile.ramp_dwell_cool(720.0, rate_C_per_min=10.0, dwell_min=60.0)
    film = GarnetFilm(profile, start_time=0.0)
    rng = np.random.default_rng(1)
    detector, crystalline = RamanTransitionDetector(), []
    for t in np.arange(60.0, profile.end_time, 60.0):
        state = film.state(t)
        temperature = float(profile.temperature_at(t))
        detector.update(
            raman_model.default_axis(),
            raman_model.spectrum(state, temperature, exposure_s=30.0, rng=rng),
            temperature,
        )
        crystalline.append(state.tetragonal + state.cubic)
    flags = {flag.kind: flag.index for flag in detector.flags}
    crystalline = np.asarray(crystalline)
    assert int(np.argmax(crystalline >= 0.9)) <= flags["crystallized"]
    assert flags["crystallized"] <= int(np.argmax(crystalline > 0.95)) + 2
    assert "decomposition" not in flags  # nor on the way down
