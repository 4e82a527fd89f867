"""The transition detector over 100 varied simulated ramps: no false flag, every flag in time.

50 ramps from 25 to 850 C and 50 that stop at 600 C (never crystallizing), each with its own:

* ramp rate, uniform in 2-10 C/min (the film's kinetics shift with it; GarnetFilm also spreads
  each film's rates log-normally by 10 %), the truth is taken per ramp;
* noise: a spectrum every 5 C with an exposure of min(30 s, 80 % of the interval), laser power
  uniform in 7-13 mW (the paper's 10 mW +/- 30 %), its own noise seed;
* cosmic rays: the model's 0.02 per second plus 0, 0.02 or 0.1 per second more, 200-5000 counts,
  1-3 pixels;
* fluorescence drift: up to 3x the film's own fluorescence level, slowly varying over the ramp
  (a sine of period 40-200 spectra and a linear trend) with shot noise, on a broad shape (a
  Gaussian 1000-4000 cm-1 wide centred anywhere from -500 to 1500 cm-1, plus a slope).

The crossing index of a level is the first spectrum whose true fraction exceeds it; a flag must
come at that spectrum or at most 2 spectra later; a kind whose level is never crossed must not be
flagged. The latency distribution (spectra and degrees) is printed (run with ``-s``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
import pytest

from insitu.analysis.raman import RamanTransitionDetector
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

AXIS = raman_model.default_axis()
LEVELS = {"crystallization_onset": 0.05, "crystallized": 0.95, "decomposition": 0.10}
CRYSTALLIZING_SEEDS = range(2000, 2050)
AMORPHOUS_SEEDS = range(3000, 3050)


@dataclass
class Outcome:
    seed: int
    end_C: float
    settings: dict
    crossings: dict[str, int]
    flags: dict[str, int]
    temperatures: np.ndarray

    @property
    def failures(self) -> list[str]:
        problems = []
        for kind, index in self.flags.items():
            crossing = self.crossings.get(kind)
            if crossing is None:
                problems.append(f"false {kind} at spectrum {index}")
            elif not crossing <= index <= crossing + 2:
                problems.append(f"{kind} at {index}, crossing {crossing}")
        for kind in self.crossings.keys() - self.flags.keys():
            problems.append(f"missed {kind} (crossing {self.crossings[kind]})")
        return problems


def simulate_and_detect(seed: int, end_C: float) -> Outcome:
    rng = np.random.default_rng(seed)
    rate = rng.uniform(2.0, 10.0)
    power = rng.uniform(7.0, 13.0)
    exposure = min(30.0, 0.8 * 300.0 / rate)  # a spectrum every 5 C
    extra_cosmic_rate = float(rng.choice([0.0, 0.02, 0.1]))
    fluorescence = 250.0 * exposure * power / 10.0  # the model's level, counts
    drift_amplitude = rng.uniform(0.0, 3.0) * fluorescence
    period, phase, trend = rng.uniform(40, 200), rng.uniform(0, 2 * np.pi), rng.uniform(-1, 1)
    centre, width, slope = rng.uniform(-500, 1500), rng.uniform(1000, 4000), rng.uniform(-0.5, 1)
    shape = 0.6 * np.exp(-0.5 * ((AXIS - centre) / (width / 2.355)) ** 2)
    shape += 0.4 * (1.0 + slope * (AXIS - 50.0) / 950.0)

    profile = ThermalProfile.ramp(25.0, end_C, rate)
    film = GarnetFilm(profile, start_time=0.0, seed=seed, variability=0.1)
    temperatures = np.arange(25.0, end_C + 0.01, 5.0)
    detector = RamanTransitionDetector()
    truth = {"crystalline": [], "pyrochlore": []}
    flags = {}
    for k, temperature in enumerate(temperatures):
        state = film.state(profile.time_at_temperature(temperature))
        truth["crystalline"].append(state.crystalline_fraction)
        truth["pyrochlore"].append(state.pyrochlore)
        counts = raman_model.spectrum(
            state, temperature, exposure_s=exposure, laser_power_mW=power, rng=rng
        )
        level = (
            0.5 + 0.3 * np.sin(2 * np.pi * k / period + phase) + 0.2 * trend * k / len(temperatures)
        )
        counts += rng.poisson(np.maximum(drift_amplitude * level * shape, 0.0))
        for _ in range(rng.poisson(extra_cosmic_rate * exposure)):
            width_px = int(rng.integers(1, 4))
            start = int(rng.integers(0, AXIS.size - width_px))
            height = np.exp(rng.uniform(np.log(200.0), np.log(5000.0)))
            counts[start : start + width_px] += height * rng.uniform(0.3, 1.0, width_px)
        for flag in detector.update(AXIS, counts, temperature):
            flags[flag.kind] = flag.index
    crossings = {}
    for kind, level in LEVELS.items():
        values = np.array(truth["pyrochlore" if kind == "decomposition" else "crystalline"])
        if (values > level).any():
            crossings[kind] = int(np.argmax(values > level))
    settings = {
        "rate": round(rate, 2),
        "power_mW": round(power, 1),
        "exposure_s": round(exposure, 1),
        "extra_cosmic_per_s": extra_cosmic_rate,
        "drift_counts": round(drift_amplitude),
    }
    return Outcome(seed, end_C, settings, crossings, flags, temperatures)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_100_varied_ramps_give_no_false_flag_and_every_flag_within_two_spectra():
    outcomes = [simulate_and_detect(seed, 850.0) for seed in CRYSTALLIZING_SEEDS]
    outcomes += [simulate_and_detect(seed, 600.0) for seed in AMORPHOUS_SEEDS]

    latency_spectra = collections.defaultdict(list)
    latency_degrees = collections.defaultdict(list)
    for outcome in outcomes:
        for kind, index in outcome.flags.items():
            crossing = outcome.crossings.get(kind)
            if crossing is not None:
                latency_spectra[kind].append(index - crossing)
                latency_degrees[kind].append(
                    float(outcome.temperatures[index] - outcome.temperatures[crossing])
                )
    print(f"\n{len(outcomes)} ramps; latency after the true crossing:")
    for kind in LEVELS:
        spectra = collections.Counter(latency_spectra[kind])
        degrees = np.array(latency_degrees[kind])
        print(
            f"  {kind:22s} n={len(degrees):3d}  spectra "
            + ", ".join(f"{k}: {spectra[k]}" for k in sorted(spectra))
            + f"  | degrees C median {np.median(degrees):.1f}, mean {degrees.mean():.1f}, "
            f"max {degrees.max():.1f}"
        )
    failures = [
        f"seed {o.seed} (to {o.end_C:.0f} C, {o.settings}): {problem}"
        for o in outcomes
        for problem in o.failures
    ]
    print(f"  failures: {len(failures)}")
    for failure in failures:
        print("   ", failure)

    assert not failures
    crystallizing = [o for o in outcomes if o.end_C == 850.0]
    assert all(set(o.crossings) >= {"crystallization_onset", "crystallized"} for o in crystallizing)
    assert sum("decomposition" in o.crossings for o in crystallizing) >= 40
    assert all(o.crossings == {} and o.flags == {} for o in outcomes if o.end_C == 600.0)
