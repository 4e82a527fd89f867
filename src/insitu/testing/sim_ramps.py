"""In-situ ramps of the simulated beamline's films, rendered without the wire, for the detector.

The same film kinetics and spectrum model as the LabSpec 6 emulator (``insitu.sim``), with each
film's and spectrometer's Raman variation (:mod:`insitu.sim.raman_variation`) drawn from the
seed, rendered straight from the model so a test can run many ramps in seconds. The result is a
:class:`~insitu.testing.raman_ramps.RenderedRamp`, judged like the independent generator's.
"""

from __future__ import annotations

import numpy as np

from insitu.sim import raman_model
from insitu.sim.raman_variation import FilmRamanVariation, SpectrometerVariation
from insitu.sim.sample import GarnetFilm
from insitu.testing.raman_ramps import RenderedRamp

__all__ = ["render_sim_ramp"]


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
    rate = rate_C_per_min / 60.0

    def temperature_at(t):
        return np.minimum(start_C + rate * np.asarray(t, dtype=float), end_C)

    seeds = np.random.SeedSequence((seed, 14)).spawn(3)
    instrument = SpectrometerVariation.draw(np.random.default_rng(seeds[1]), spread)
    film_variation = FilmRamanVariation.draw(np.random.default_rng(seeds[2]), spread)
    film = GarnetFilm(temperature_at, start_time=0.0)
    noise = np.random.default_rng(seed)
    axis = raman_model.default_axis()
    temperatures = np.arange(start_C + every_C, end_C + every_C / 2, every_C)
    counts, crystalline, decomposed = [], [], []
    for temperature in temperatures:
        t = (temperature - start_C) / rate
        state = film.state(t)
        counts.append(
            raman_model.spectrum(
                state,
                float(temperature),
                instrument.true_axis(axis),
                exposure_s=exposure_s,
                laser_power_mW=raman_model.REFERENCE_POWER_MW * instrument.laser_factor(t),
                rng=noise,
                variation=film_variation,
            )
        )
        crystalline.append(state.tetragonal + state.cubic)
        decomposed.append(state.pyrochlore)
    return RenderedRamp(
        temperatures=temperatures,
        wavenumber=axis,
        counts=np.asarray(counts),
        crystalline=np.asarray(crystalline),
        decomposed=np.asarray(decomposed),
    )
