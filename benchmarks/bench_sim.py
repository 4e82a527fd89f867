"""Time the Raman spectrum model: one 1600-point spectrum against the 2 ms budget.

Run ``python benchmarks/bench_sim.py``. It prints the median time to generate one noisy spectrum
(bands, background, shot/read noise, cosmic rays) for a few film states, the ratio of that time to
the acquisition it simulates (a 1 s exposure), and whether it is under 2 ms. It also times the
virtual film's lazy integration of a 3 h ramp.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

BUDGET_S = 2e-3
EXPOSURE_S = 1.0
REPEATS = 2000


def median_seconds(function, repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls (after a warm-up)."""
    for _ in range(20):
        function()
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main() -> int:
    ramp = ThermalProfile.ramp(25.0, 925.0, 5.0)
    film = GarnetFilm(ramp, start_time=0.0)
    rng = np.random.default_rng(0)
    print(f"raman_model.spectrum: 1600 points, {EXPOSURE_S:g} s exposure, median of {REPEATS}")
    worst = 0.0
    for temperature in (25.0, 550.0, 700.0, 850.0):
        state = film.state(ramp.time_at_temperature(temperature))

        def one_spectrum(state=state, temperature=temperature) -> None:
            raman_model.spectrum(state, temperature, exposure_s=EXPOSURE_S, rng=rng)

        seconds = median_seconds(one_spectrum, REPEATS)
        worst = max(worst, seconds)
        print(
            f"  film at {temperature:5.0f} C ({state.dominant_phase:10s}): "
            f"{seconds * 1e3:6.3f} ms = {seconds / EXPOSURE_S:.2e} x the {EXPOSURE_S:g} s "
            f"acquisition ({EXPOSURE_S / seconds:,.0f}x faster than real time)"
        )
    verdict = "under" if worst < BUDGET_S else "OVER"
    print(f"slowest median {worst * 1e3:.3f} ms: {verdict} the {BUDGET_S * 1e3:g} ms budget")

    def three_hour_ramp() -> None:
        GarnetFilm(ramp, start_time=0.0).state(ramp.end_time)

    seconds = median_seconds(three_hour_ramp, 50)
    print(
        f"GarnetFilm: {ramp.end_time / 3600:.1f} h ramp integrated lazily in {seconds * 1e3:.2f} ms"
    )
    return 0 if worst < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
