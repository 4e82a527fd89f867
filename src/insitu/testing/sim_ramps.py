"""In-situ ramps of the simulated beamline's films, rendered without the wire, for the detector.

The same film kinetics and spectrum model as the LabSpec 6 emulator (``insitu.sim``), with each
film's and spectrometer's Raman variation (:mod:`insitu.sim.raman_variation`) drawn from the
seed, rendered straight from the model so a test can run many ramps in seconds. The result is a
:class:`~insitu.testing.raman_ramps.RenderedRamp`, judged like the independent generator's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from insitu.sim import raman_model
from insitu.sim.raman_variation import FilmRamanVariation, SpectrometerVariation
from insitu.sim.sample import GarnetFilm
from insitu.testing.raman_ramps import RenderedRamp

__all__ = ["render_sim_ramp", "sim_evidence"]


def _ramp(
    seed: int,
    spread: float,
    start_C: float,
    end_C: float,
    rate_C_per_min: float,
    every_C: float,
):
    """The seeded film, spectrometer and film variation, and each spectrum's settings:
    (temperatures, axis, [(state, temperature, true axis, laser power)], variation)."""
    rate = rate_C_per_min / 60.0

    def temperature_at(t):
        return np.minimum(start_C + rate * np.asarray(t, dtype=float), end_C)

    seeds = np.random.SeedSequence((seed, 14)).spawn(3)
    instrument = SpectrometerVariation.draw(np.random.default_rng(seeds[1]), spread)
    film_variation = FilmRamanVariation.draw(np.random.default_rng(seeds[2]), spread)
    film = GarnetFilm(temperature_at, start_time=0.0)
    axis = raman_model.default_axis()
    temperatures = np.arange(start_C + every_C, end_C + every_C / 2, every_C)
    shots = []
    for temperature in temperatures:
        t = (temperature - start_C) / rate
        shots.append(
            (
                film.state(t),
                float(temperature),
                instrument.true_axis(axis),
                raman_model.REFERENCE_POWER_MW * instrument.laser_factor(t),
            )
        )
    return temperatures, axis, shots, film_variation


def render_sim_ramp(
    seed: int,
    *,
    spread: float = 1.0,
    start_C: float = 25.0,
    end_C: float = 850.0,
    rate_C_per_min: float = 10.0,
    every_C: float = 10.0,
    exposure_s: float = 10.0,
) -> RenderedRamp:
    """One film ramped from ``start_C`` to ``end_C`` with a spectrum every ``every_C``.

    Each spectrum is an ``exposure_s`` exposure centred on its temperature, as the emulator
    takes it (the stage keeps ramping).
    """
    temperatures, axis, shots, variation = _ramp(
        seed, spread, start_C, end_C, rate_C_per_min, every_C
    )
    noise = np.random.default_rng(seed)
    counts = [
        raman_model.spectrum(
            state,
            temperature,
            true_axis,
            exposure_s=exposure_s,
            laser_power_mW=power,
            rng=noise,
            variation=variation,
        )
        for state, temperature, true_axis, power in shots
    ]
    return RenderedRamp(
        temperatures=temperatures,
        wavenumber=axis,
        counts=np.asarray(counts),
        crystalline=np.asarray([shot[0].tetragonal + shot[0].cubic for shot in shots]),
        decomposed=np.asarray([shot[0].pyrochlore for shot in shots]),
    )


def sim_evidence(
    seed: int,
    *,
    spread: float = 1.0,
    start_C: float = 25.0,
    end_C: float = 850.0,
    rate_C_per_min: float = 10.0,
    every_C: float = 10.0,
    exposure_s: float = 10.0,
) -> np.ndarray:
    """What the garnet bands carry in each spectrum of :func:`render_sim_ramp` (same arguments).

    The matched-filter signal-to-noise ratio of the tetragonal and cubic bands alone,
    ``sqrt(sum(bands**2 / variance))`` over the pixels (shot and read noise of the expected
    counts), as :func:`~insitu.testing.foreign_ramps.foreign_evidence` gives it for the other
    generator: what an ideal observer, knowing every shape and the rest of the spectrum, sees of
    the crystals. One value per spectrum (noise units).
    """
    _, _, shots, variation = _ramp(seed, spread, start_C, end_C, rate_C_per_min, every_C)
    evidence = np.zeros(len(shots))
    for i, (state, temperature, true_axis, power) in enumerate(shots):
        if state.tetragonal + state.cubic <= 0:
            continue
        settings = dict(exposure_s=exposure_s, laser_power_mW=power, variation=variation)
        mean = raman_model.expected_counts(state, temperature, true_axis, **settings)
        without = raman_model.expected_counts(
            dataclasses.replace(state, tetragonal=0.0, cubic=0.0),
            temperature,
            true_axis,
            **settings,
        )
        variance = mean + raman_model.READ_NOISE_COUNTS**2
        evidence[i] = float(np.sqrt(np.sum((mean - without) ** 2 / variance)))
    return evidence
