"""The transition detector on the robustness films under acquisitions the suite does not draw.

``bench_raman.py`` judges the detector on ``insitu.testing.raman_ramps`` films as the generator
draws them: a spectrum every 2, 5 or 10 C, 1024-2048 pixels, 400-4000 counts. A lab picks its own
step, camera and exposure, so here the same films (same seeds, same material and instrument
variation) are rendered with one acquisition setting changed at a time:

* the temperature step between spectra: 1, 2, 3, 5, 10 and 20 C for every film;
* 1 and 2 C without the laser's drift (the generator's drift is a sine over 30-120 *spectra*,
  so the denser the sampling, the faster it moves against the film's own change);
* 512 and 4096 pixels over the same range;
* the film 5x fainter (80-800 counts) and 10x brighter (4000-40000 counts);
* a fluorescence 10x stronger (10-100x the Raman signal, as on a strongly fluorescing film or
  substrate: the same bands under 3x the shot noise);
* the signal fading steadily to 70 % or 50 % by the end of the ramp, as a heating stage's
  expansion defocuses the laser (the rendered spectra scaled, their noise with them).

Per setting: the ramps with every flag in its window (from the phase really there to 2 spectra
after its level, as in ``bench_raman.py``), and per flag the early (or false), late and missed
counts. Early flags are wrong calls; late and missed ones cost time. No target: this is where the
detector's defaults hold and where they do not, for the README's known limits.

Usage: python benchmarks/bench_raman_outside.py [--ramps N] [--seed S] [--workers W]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from insitu.analysis.raman import RamanTransitionDetector
from insitu.testing.raman_ramps import LEVELS, RampSpec, draw_ramp, flags_raised, judge

SETTINGS: dict[str, dict] = {
    "as drawn (2/5/10 C)": {},
    "every 1 C": {"step_C": 1.0},
    "every 2 C": {"step_C": 2.0},
    "every 3 C": {"step_C": 3.0},
    "every 5 C": {"step_C": 5.0},
    "every 10 C": {"step_C": 10.0},
    "every 20 C": {"step_C": 20.0},
    "every 1 C, no laser drift": {"step_C": 1.0, "laser_drift": 0.0},
    "every 2 C, no laser drift": {"step_C": 2.0, "laser_drift": 0.0},
    "512 pixels": {"pixels": 512},
    "4096 pixels": {"pixels": 4096},
    "5x fainter": {"signal_counts": 0.2},
    "10x brighter": {"signal_counts": 10.0},
    "10x fluorescence": {"fluorescence_ratio": 10.0},
    "fading to 70 % (defocus)": {"fade": 0.3},
    "fading to 50 % (defocus)": {"fade": 0.5},
}
SCALED = {"signal_counts", "fluorescence_ratio"}  # multiplied; every other field is set
RENDERED = {"fade"}  # applied to the rendered spectra, not a field of the film


def film(seed: int, end_C: float, setting: str) -> RampSpec:
    """The robustness film ``seed`` with one acquisition setting changed."""
    spec = draw_ramp(seed, end_C)
    changes = {
        name: getattr(spec, name) * value if name in SCALED else type(getattr(spec, name))(value)
        for name, value in SETTINGS[setting].items()
        if name not in RENDERED
    }
    return dataclasses.replace(spec, **changes)


def verdicts(job: tuple[int, float, str]) -> tuple[str, dict[str, str]]:
    seed, end_C, setting = job
    ramp = film(seed, end_C, setting).spectra()
    fade = SETTINGS[setting].get("fade", 0.0)
    if fade:
        scale = np.linspace(1.0, 1.0 - fade, ramp.temperatures.size)[:, None]
        ramp = dataclasses.replace(ramp, counts=ramp.counts * scale)
    judged = judge(ramp, flags_raised(ramp, RamanTransitionDetector()))
    return setting, {kind: verdict.verdict for kind, verdict in judged.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ramps", type=int, default=30, help="films to 850 C (+1/4 to 600 C)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    films = [(args.seed + i, 850.0) for i in range(args.ramps)]
    films += [(args.seed + 100_000 + i, 600.0) for i in range(max(args.ramps // 4, 1))]
    jobs = [(seed, end_C, setting) for setting in SETTINGS for seed, end_C in films]
    jobs.sort(key=lambda job: SETTINGS[job[2]].get("step_C", 5.0))  # the longest ramps first
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(verdicts, jobs, chunksize=1))
    print(
        f"{len(films)} raman_ramps films ({args.ramps} to 850 C, {len(films) - args.ramps} to "
        "600 C), one acquisition setting changed at a time; the detector with its defaults.\n"
        "e/l/m: early or false, late, missed (of the films whose truth crosses the level)\n"
    )
    short = {"crystallization_onset": "onset", "crystallized": "crystallized"}
    header = "   ".join(f"{short.get(kind, kind):>13s} e/l/m" for kind in LEVELS)
    print(f"{'setting':28s} {'all in window':>14s}   {header}")
    for setting in SETTINGS:
        rows = [judged for name, judged in results if name == setting]
        perfect = sum(all(v in ("ok", "quiet") for v in judged.values()) for judged in rows)
        cells = []
        for kind in LEVELS:
            counts = collections.Counter(judged[kind] for judged in rows)
            early = counts["early"] + counts["false"]
            cell = f"{early}/{counts['late']}/{counts['missed']}"
            cells.append(f"{cell:>19s}")
        print(f"{setting:28s} {perfect:>6d} of {len(rows):<4d}   " + "   ".join(cells))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
