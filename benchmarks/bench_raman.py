"""Raman analysis: baselines, per-spectrum time, transition robustness, callback overhead.

1. Baseline methods (pybaselines, through ``estimate_baseline``): RMS error against the true
   smooth background, relative to the shot noise, away from the first 40 cm-1, and median time,
   on seeded synthetic spectra (1600 points, 50-1000 cm-1): phase mixtures of a line-shape table
   (``insitu.testing.raman_ramps.band_model_mapping``) with random shifts and widths on a sloped
   fluorescence, an amorphous hump, a laser-edge tail and thermal emission, shot and read noise.
2. Per-spectrum analysis (issue 14 target: median <= 3 ms for 1600 points): the whole path of
   ``RamanTransitionDetector.update`` (despiking, noise, band-growth fit, statistics, CUSUM) on the
   simulated 5 C/min ramp (166 spectra, 30 s at 10 mW, cosmic rays), beside the present
   implementation's path before it (``describe_spectrum``: despiking, pybaselines baseline, peaks
   and the linear unmixing against a line-shape table), timed in the same run.
3. Transition robustness: the detector, built once with its defaults, on ramps from
   ``insitu.testing.raman_ramps`` (a generator sharing nothing with ``insitu.sim`` but the
   paper's band positions; widths x0.6-1.8, ratios x0.5-2, 3-5 random amorphous bands,
   fluorescence 1-10x with an etalon ripple, laser drift, cosmic rays, 1024-2048-pixel axes,
   softening 0.01-0.03 cm-1/C; a spectrum every 2, 5 or 10 C) to 850 C and to 600 C: per flag,
   how many came in their window (from the phase really there to 2 spectra after the level),
   early, late, missed or false, and the latency distribution; then the same ramps with the
   detector given a reference calibrated on each film's own standard spectra (calibrated mode);
   then ramps of ``insitu.testing.foreign_ramps``, a second generator written without reading
   this project's others (its own line shapes, amorphous spectrum, fluorescence, kinetics), with
   each late or missed onset and decomposition put beside the evidence its phase's bands had
   given by the deadline (``foreign_evidence``: a matched filter of the true bands, which only
   the generator knows, with the background known and with a smooth one fitted beside the
   bands): below ~4 noise units no detector could have been on time; then the
   50 ramps of ``insitu.testing.third_ramps``, a third generator written apart from all of
   these, which reads the paper's band positions as room-temperature ones, weighed the same way
   (``third_evidence``); then the onset's bound from both sides: the most evidence any
   simulated or third-generator film shows before it is 1 % crystalline (where a flag is early)
   against the least any late onset had by its deadline; then 200 of the simulated beamline's
   films on the demo's ramp.
4. Held out: the three generators' ramps on seeds no setting of the detector was chosen on
   (raman_ramps 5000-5059 and 105000-105029, foreign 2000-2059 and 2500-2529, third 200-259 and
   300-314), the detector with its defaults: what the suites above say once nothing was tuned.
5. Callback overhead (target: < 1 % of a simulated ramp's wall time): the same RunEngine ramp
   over a test spectrometer whose exposure (30 s) runs on ``insitu.clock`` at a speed-up, with and
   without ``RamanTransitionCallback`` subscribed, alternated in one run. The ramp's wall time is
   ``RE(plan)``; the time until the callback has also analysed everything (``flush``) is printed
   too.

Usage: python benchmarks/bench_raman.py [--ramps N] [--spectra N] [--speedup K] [--repeats R]
       [--seed S]
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import statistics
import threading
import time

import bluesky.plan_stubs as bps
import numpy as np
from bluesky import RunEngine
from ophyd import Component, Device, Signal
from ophyd.status import DeviceStatus
from tqdm import tqdm

from insitu import clock
from insitu.analysis.callbacks import RamanTransitionCallback
from insitu.analysis.raman import (
    BASELINE_METHODS,
    DEFAULT_BASELINE_METHOD,
    RamanTransitionDetector,
    describe_spectrum,
    estimate_baseline,
    pseudo_voigt,
    reference_from_mapping,
)
from insitu.analysis.raman_standards import reference_from_spectra
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile
from insitu.testing.foreign_ramps import foreign_evidence, foreign_ramp
from insitu.testing.raman_ramps import (
    LEVELS,
    band_model_mapping,
    draw_ramp,
    flags_raised,
    judge,
)
from insitu.testing.sim_ramps import render_sim_ramp, sim_evidence
from insitu.testing.third_ramps import THIRD_SEEDS, third_evidence, third_ramp

AXIS = raman_model.default_axis()
TARGET_MEDIAN_S = 0.003
BAND_MODEL = reference_from_mapping(band_model_mapping())
TARGET_OVERHEAD = 0.01
EXPOSURE_S = 30.0


# --- 1. baselines --------------------------------------------------------------------------------
def synthetic_spectrum(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    temperature = rng.uniform(25.0, 850.0)
    fractions = rng.dirichlet(np.full(len(BAND_MODEL.phases), 0.5))
    bands = sum(
        share
        * BAND_MODEL.render(
            name, AXIS, temperature, shift=rng.normal(0, 1), broadening=rng.uniform(-2, 5)
        ).shape
        for share, name in zip(fractions, BAND_MODEL.phase_names, strict=True)
    )
    seconds = rng.uniform(5.0, 60.0)
    amorphous = sum(
        share
        for share, phase in zip(fractions, BAND_MODEL.phases, strict=True)
        if phase.phase_class == "amorphous"
    )
    hump = 45.0 * amorphous * pseudo_voigt(AXIS, 480.0, rng.uniform(520.0, 660.0), 0.0)
    fluorescence = rng.uniform(20, 300) * (1 + rng.uniform(0, 1.5) * (AXIS - 50) / 950)
    edge = rng.uniform(100, 600) * np.exp(-(AXIS - 50) / rng.uniform(5, 12))
    thermal = rng.uniform(0, 150) * np.exp((AXIS - 1000) / rng.uniform(150, 400))
    background = (hump + fluorescence + edge + thermal) * seconds
    counts = rng.poisson(bands * seconds + background).astype(float)
    counts += rng.normal(0.0, 5.0, AXIS.size)
    return counts, background, np.sqrt(np.maximum(background, 1.0) + 25.0)


def bench_baselines(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    spectra = [synthetic_spectrum(rng) for _ in range(n)]
    inside = AXIS >= 90.0
    print(f"1. baselines on {n} synthetic spectra (RMS error / noise above 90 cm-1):")
    print("   method     median  p90    median ms")
    for method in BASELINE_METHODS:
        errors, seconds = [], []
        for counts, background, noise in spectra:
            started = time.perf_counter()
            baseline = estimate_baseline(AXIS, counts, method)
            seconds.append(time.perf_counter() - started)
            errors.append(float(np.sqrt(np.mean(((baseline - background) / noise)[inside] ** 2))))
        chosen = "  <- default" if method == DEFAULT_BASELINE_METHOD else ""
        print(
            f"   {method:9s} {np.median(errors):6.2f} {np.percentile(errors, 90):6.2f} "
            f"{np.median(seconds) * 1e3:8.2f}{chosen}"
        )


# --- 2. per-spectrum analysis --------------------------------------------------------------------
def simulated_ramp(seed: int) -> tuple[np.ndarray, np.ndarray]:
    profile = ThermalProfile.ramp(25.0, 850.0, 5.0)
    film = GarnetFilm(profile, start_time=0.0)
    temperatures = np.arange(25.0, 850.01, 5.0)
    rng = np.random.default_rng(seed)
    spectra = np.array(
        [
            raman_model.spectrum(
                film.state(profile.time_at_temperature(t)), t, exposure_s=EXPOSURE_S, rng=rng
            )
            for t in temperatures
        ]
    )
    return temperatures, spectra


def median_ms(function, items, passes: int) -> float:
    durations = []
    for _ in range(passes):
        for item in items:
            started = time.perf_counter()
            function(*item)
            durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1e3


def bench_per_spectrum(seed: int, passes: int) -> bool:
    temperatures, spectra = simulated_ramp(seed)
    items = list(zip(temperatures, spectra, strict=True))
    for t, y in items[:20]:  # warm-up: caches of the axis (background basis, pybaselines)
        describe_spectrum(AXIS, y, BAND_MODEL, temperature=t)
    previous = median_ms(
        lambda t, y: describe_spectrum(AXIS, y, BAND_MODEL, temperature=t), items, passes
    )
    durations = []
    for _ in range(passes):
        detector = RamanTransitionDetector()
        for t, y in items:
            started = time.perf_counter()
            detector.update(AXIS, y, t)
            durations.append(time.perf_counter() - started)
    median = statistics.median(durations)
    p90 = float(np.percentile(durations, 90))
    met = median <= TARGET_MEDIAN_S
    print(f"\n2. per-spectrum analysis, 1600 points, {len(items)} spectra x {passes} passes:")
    print(
        f"   detector.update (the whole path)  median {median * 1e3:6.2f} ms, "
        f"p90 {p90 * 1e3:.2f} ms, flags {[f.kind for f in detector.flags]}"
    )
    print(f"   previous path (describe_spectrum, unmixing)  median {previous:6.2f} ms")
    print(
        f"   ratio previous / present: {previous / (median * 1e3):.2f}; target median <= "
        f"{TARGET_MEDIAN_S * 1e3:g} ms: {'MET' if met else 'NOT MET'} ({median * 1e3:.2f} ms)"
    )
    return met


# --- 3. robustness -------------------------------------------------------------------------------
def run_ramp(seed: int, end_C: float) -> tuple[dict, dict]:
    """Verdicts of the default detector and of one calibrated on the film's own standards."""
    spec = draw_ramp(seed, end_C)
    ramp = spec.spectra()
    axis, crystalline = spec.standard("crystalline")
    _, decomposed = spec.standard("decomposed")
    reference = reference_from_spectra(axis, {"crystalline": crystalline, "decomposed": decomposed})
    return (
        judge(ramp, flags_raised(ramp, RamanTransitionDetector())),
        judge(ramp, flags_raised(ramp, RamanTransitionDetector(reference))),
    )


def print_table(verdicts: list[dict]) -> bool:
    print(
        "   kind                    ok  early  late  missed  false  | latency (spectra after level)"
    )
    all_ok = True
    for kind in LEVELS:
        counts = collections.Counter(v[kind].verdict for v in verdicts)
        latency = collections.Counter(
            v[kind].latency for v in verdicts if v[kind].latency is not None
        )
        spread = ", ".join(f"{k:+d}: {latency[k]}" for k in sorted(latency))
        print(
            f"   {kind:22s} {counts['ok']:4d} {counts['early']:6d} {counts['late']:5d} "
            f"{counts['missed']:7d} {counts['false']:6d}  | {spread}"
        )
        all_ok &= counts["early"] + counts["late"] + counts["missed"] + counts["false"] == 0
    perfect = sum(all(x.verdict in ("ok", "quiet") for x in v.values()) for v in verdicts)
    print(
        f"   ramps with every flag in its window and no false flag: {perfect} of {len(verdicts)}"
        f"; target all: {'MET' if all_ok else 'NOT MET'}"
    )
    return all_ok


def default_verdicts(render, jobs, desc: str) -> list[dict]:
    """Verdicts of the detector with its defaults on each ramp ``render(*job)`` draws."""
    return [
        judge(ramp, flags_raised(ramp, RamanTransitionDetector()))
        for ramp in (render(*job) for job in tqdm(jobs, desc=desc, leave=False))
    ]


def bench_robustness(ramps: int, seed: int) -> bool:
    jobs = [(seed + i, 850.0) for i in range(ramps)]
    jobs += [(seed + 100_000 + i, 600.0) for i in range(max(ramps // 2, 1))]
    results = [run_ramp(*job) for job in tqdm(jobs, desc="robustness ramps", leave=False)]
    print(
        f"\n3. robustness: {ramps} ramps to 850 C and {max(ramps // 2, 1)} to 600 C from "
        "insitu.testing.raman_ramps, the detector with its defaults:"
    )
    all_ok = print_table([default for default, _ in results])
    print(
        "   the same ramps, the detector given a reference calibrated on the film's own "
        "standards\n   (reference_from_spectra: a crystalline and a decomposed standard, 10 "
        "accumulations each at 25 C):"
    )
    print_table([calibrated for _, calibrated in results])
    foreign = [(1000 + i, 850.0) for i in range(max(ramps * 2 // 5, 1))]
    foreign += [(1500 + i, 600.0) for i in range(max(ramps // 5, 1))]
    verdicts = default_verdicts(foreign_ramp, foreign, "foreign ramps")
    print(
        f"   {len(foreign)} ramps (seeds 1000-, 1500- to 600 C) of insitu.testing.foreign_ramps, "
        "a generator written\n   without reading this project's others, the detector with its "
        "defaults:"
    )
    all_ok &= print_table(verdicts)
    late_foreign = print_evidence(foreign, verdicts)
    third = default_verdicts(third_ramp, THIRD_SEEDS, "third ramps")
    print(
        f"   {len(third)} ramps of insitu.testing.third_ramps, a third generator written apart "
        "(its own line shapes,\n   a Si substrate band, glow, edge filter; the paper's "
        "positions read as room-temperature ones), defaults:"
    )
    all_ok &= print_table(third)
    late_third = print_evidence(list(THIRD_SEEDS), third, third_evidence)
    print_onset_bound({"foreign": late_foreign, "third": late_third})
    demo = default_verdicts(demo_film_ramp, [(i,) for i in range(DEMO_FILMS)], "demo films")
    print(
        f"   {DEMO_FILMS} of the simulated beamline's films (seeds 0-{DEMO_FILMS - 1}, variation "
        "1) on the demo's ramp (30-850 C at 5 C/min,\n   a 30 s spectrum every 5 C: brighter "
        "and denser than the films above), defaults:"
    )
    all_ok &= print_table(demo)
    return all_ok


# Seeds no setting of the detector was ever chosen on (the suites above were measured while
# choosing them): how the defaults fare on films drawn afresh from the same three generators.
HELD_OUT = {
    "raman_ramps (seeds 5000-5059, 105000-105029)": (
        lambda seed, end_C: draw_ramp(seed, end_C).spectra(),
        [(5000 + i, 850.0) for i in range(60)] + [(105_000 + i, 600.0) for i in range(30)],
    ),
    "foreign_ramps (seeds 2000-2059, 2500-2529)": (
        foreign_ramp,
        [(2000 + i, 850.0) for i in range(60)] + [(2500 + i, 600.0) for i in range(30)],
    ),
    "third_ramps (seeds 200-259, 300-314)": (
        third_ramp,
        [(200 + i, 850.0) for i in range(60)] + [(300 + i, 600.0) for i in range(15)],
    ),
}


def bench_held_out() -> bool:
    print(
        "\n4. held out: ramps of the same generators on seeds no setting of the detector was "
        "chosen on,\n   the detector with its defaults:"
    )
    all_ok = True
    for name, (render, jobs) in HELD_OUT.items():
        print(f"   {len(jobs)} ramps of insitu.testing.{name}:")
        all_ok &= print_table(default_verdicts(render, jobs, name.split()[0]))
    return all_ok


# The demo's in-situ ramp (insitu.demo) draws a new film each run (simulation seed null).
DEMO_FILMS = 200


def demo_film_ramp(seed: int):
    """Film ``seed`` of the simulated beamline, rendered on the demo's in-situ ramp."""
    return render_sim_ramp(
        seed, start_C=30.0, end_C=850.0, rate_C_per_min=5.0, every_C=5.0, exposure_s=30.0
    )


# An ideal observer holding this suite's false-alarm rate (about one in 10^4 spectra, tested one
# by one) needs its statistic about this many noise units above zero to flag half the time.
IDEAL_LEVEL = 4.0


# The smooth background a detector that knows no fluorescence shape must fit: cubic B-splines
# this far apart (the transition detector's own spacing, BACKGROUND_KNOT_SPACING_CM1).
BACKGROUND_KNOTS_CM1 = 150.0


def print_evidence(
    jobs: list[tuple[int, float]], verdicts: list[dict], evidence_of=foreign_evidence
) -> list[float]:
    """How much a late or missed flag's new phase had shown by its deadline: the matched filter
    of the true bands (``evidence_of``: the generator's foreign_evidence or third_evidence),
    every spectrum up to the deadline combined, and the
    same for a detector that must also fit an unknown smooth background (only the part of the
    bands no such background mimics). Below IDEAL_LEVEL no detector working from those bands
    could have been on time. Returns the late or missed onsets' values (background known)."""
    kinds = ("crystallization_onset", "decomposition")
    found: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for job, verdict in zip(jobs, verdicts, strict=True):
        failed = [k for k in kinds if verdict[k].verdict in ("late", "missed")]
        if not failed:
            continue
        known = evidence_of(*job)
        smooth = evidence_of(*job, background_knots_cm1=BACKGROUND_KNOTS_CM1)
        for kind in failed:
            deadline = min(verdict[kind].window[1], known[kind].size - 1)
            combined = [
                float(np.sqrt(np.sum(evidence[kind][: deadline + 1] ** 2)))
                for evidence in (known, smooth)
            ]
            found[kind].append(tuple(combined))
    print(
        "   late or missed flags, by the evidence their phase's bands gave up to the deadline "
        "(a matched\n   filter of the true bands, all spectra combined; "
        f"< {IDEAL_LEVEL:g}: beyond any detector at this suite's false-alarm rate),\n"
        "   the background known / an unknown smooth one fitted beside the bands (cubic "
        f"splines every {BACKGROUND_KNOTS_CM1:g} cm-1):"
    )
    for kind, pairs in found.items():
        for column, label in ((0, "background known"), (1, "smooth background fitted")):
            values = np.asarray([pair[column] for pair in pairs])
            below = int(np.sum(values < IDEAL_LEVEL))
            middle = int(np.sum((values >= IDEAL_LEVEL) & (values < 10.0)))
            print(
                f"   {kind:22s} {len(values):3d}, {label:24s}: {below} below {IDEAL_LEVEL:g}, "
                f"{middle} at {IDEAL_LEVEL:g}-10, {len(values) - below - middle} above 10"
            )
    return [known for known, _ in found["crystallization_onset"]]


# The simulated beamline's films of tests/unit/test_raman_variation.py (seed, spread).
SIM_FILMS = [(seed, 1.0) for seed in range(12)] + [(seed, 2.0) for seed in range(100, 112)]


def _before_one_percent(evidence: np.ndarray, crystalline: np.ndarray) -> float:
    """Evidence combined over the spectra before the film is 1 % crystalline."""
    last = int(np.flatnonzero(crystalline > 0.01)[0]) - 1
    return float(np.sqrt(np.sum(evidence[: last + 1] ** 2)))


def print_onset_bound(late_onsets: dict[str, list[float]]) -> None:
    """The other side of the onset's window: the evidence films give before they are 1 %
    crystalline (combined up to their last spectrum below it), where a flag is early, for the
    simulated beamline's films and the third generator's. A detector that reads only the
    bands' significance, as it must without their intensities, flags every film at about one
    evidence: the late onsets (``late_onsets``, per generator: evidence by their deadline) with
    less evidence than some film shows before 1 % cannot all be put in their window without
    flagging that film early."""
    before = {
        "simulator": [
            (
                _before_one_percent(
                    sim_evidence(seed, spread=spread),
                    render_sim_ramp(seed, spread=spread).crystalline,
                ),
                seed,
            )
            for seed, spread in SIM_FILMS
        ],
        "third": [],
    }
    for job in THIRD_SEEDS:
        crystalline = third_ramp(*job).crystalline
        if crystalline.max() > 0.01:
            evidence = third_evidence(*job)["crystallization_onset"]
            before["third"].append((_before_one_percent(evidence, crystalline), job[0]))
    values = [value for value, _ in before["simulator"]]
    middle = float(np.median(values))
    print(
        f"   the simulator's {len(values)} films (test_raman_variation) before 1 % crystalline: "
        f"evidence {min(values):.0f}-{max(values):.0f} (median {middle:.0f}), where a flag is "
        "early;"
    )
    for name, late in late_onsets.items():
        fewer = sum(value < middle for value in late)
        print(
            f"   {fewer} of the {len(late)} late or missed {name} onsets had less by their deadline"
        )
    highest = {name: max(pairs) for name, pairs in before.items()}
    lowest = {name: min(late) for name, late in late_onsets.items() if late}
    print(
        "   most evidence before 1 % (background known): "
        + ", ".join(f"{name} film {seed} {value:.1f}" for name, (value, seed) in highest.items())
        + ";\n   least by a late or missed onset's deadline: "
        + ", ".join(f"{name} {value:.1f}" for name, value in lowest.items())
    )
    exists = max(v for v, _ in highest.values()) < min(lowest.values(), default=math.inf)
    print(
        "   a detector on the bands' significance (noise units, no band intensities) flags at "
        "about one evidence:\n   one level above every film's before 1 % and below every late "
        f"onset's by its deadline {'exists' if exists else 'does not exist'};\n   band "
        "intensities per unit of crystalline material, measured on standards, are what would "
        "tell them apart (the detector does not use them so yet)"
    )


# --- 5. callback overhead ------------------------------------------------------------------------
class Stage(Device):
    """The sample temperature, set by the plan."""

    temperature = Component(Signal, value=25.0, kind="hinted")


class ExposingRaman(Device):
    """Exposes for 30 s of experiment time (insitu.clock), then serves the film's spectrum."""

    spectrum = Component(Signal, value=np.zeros(AXIS.size), kind="normal")
    wavenumber = Component(Signal, value=AXIS, kind="config")

    def __init__(self, *args, stage: Stage, seed: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._stage = stage
        self._profile = ThermalProfile.ramp(25.0, 850.0, 5.0)
        self._film = GarnetFilm(self._profile, start_time=0.0)
        self._rng = np.random.default_rng(seed)

    def trigger(self) -> DeviceStatus:
        status = DeviceStatus(self)
        temperature = float(self._stage.temperature.get())

        def expose() -> None:
            clock.sleep(EXPOSURE_S)
            state = self._film.state(self._profile.time_at_temperature(temperature))
            self.spectrum.put(
                raman_model.spectrum(state, temperature, exposure_s=EXPOSURE_S, rng=self._rng)
            )
            status.set_finished()

        threading.Thread(target=expose, daemon=True).start()
        return status


def ramp_plan(stage: Stage, raman: ExposingRaman, temperatures: np.ndarray):
    yield from bps.open_run()
    for temperature in temperatures:
        yield from bps.mv(stage.temperature, float(temperature))
        yield from bps.trigger_and_read([raman, stage])
    yield from bps.close_run()


def bench_callback(n_spectra: int, speedup: float, repeats: int, seed: int) -> bool:
    temperatures = np.linspace(25.0, 850.0, n_spectra)
    stage = Stage(name="stage")
    raman = ExposingRaman(name="raman", stage=stage, seed=seed)
    without, with_callback, with_flush = [], [], []
    flags = []
    clock.set_speedup(speedup)
    try:
        for _ in range(repeats):
            engine = RunEngine({})
            started = time.perf_counter()
            engine(ramp_plan(stage, raman, temperatures))
            without.append(time.perf_counter() - started)

            engine = RunEngine({})
            callback = RamanTransitionCallback()
            engine.subscribe(callback)
            started = time.perf_counter()
            engine(ramp_plan(stage, raman, temperatures))
            with_callback.append(time.perf_counter() - started)
            callback.flush(timeout=600)
            with_flush.append(time.perf_counter() - started)
            flags = [flag.kind for flag in callback.flags]
            callback.close()
    finally:
        clock.reset()
    base, loaded, drained = (statistics.median(v) for v in (without, with_callback, with_flush))
    overhead = loaded / base - 1.0
    met = overhead < TARGET_OVERHEAD
    print(
        f"\n5. callback overhead: RunEngine ramp of {n_spectra} spectra, {EXPOSURE_S:g} s exposure "
        f"on insitu.clock at {speedup:g}x ({EXPOSURE_S / speedup * 1e3:.0f} ms wall each), "
        f"median of {repeats} alternated pairs"
    )
    print(f"   without callback   {base:7.3f} s   (runs: {', '.join(f'{v:.3f}' for v in without)})")
    print(
        f"   with callback      {loaded:7.3f} s   "
        f"(runs: {', '.join(f'{v:.3f}' for v in with_callback)})"
    )
    print(f"   with callback + analysis drained (flush) {drained:7.3f} s")
    print(f"   ratio with/without {loaded / base:.4f}  ->  overhead {overhead * 100:+.2f} %")
    print(f"   flags raised live: {flags}")
    print(
        f"   target overhead < {TARGET_OVERHEAD * 100:g} %: {'MET' if met else 'NOT MET'} "
        f"({overhead * 100:+.2f} %)"
    )
    return met


def main() -> None:
    # The callback logs each flag at WARNING; here only the numbers are of interest.
    logging.getLogger("insitu.analysis.callbacks.raman_transitions").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-spectra", type=int, default=160)
    parser.add_argument("--ramps", type=int, default=100, help="ramps to 850 C (half to 600 C)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--spectra", type=int, default=166, help="spectra in the callback ramp")
    parser.add_argument("--speedup", type=float, default=300.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bench_baselines(args.baseline_spectra, args.seed)
    per_spectrum = bench_per_spectrum(args.seed, args.passes)
    robust = bench_robustness(args.ramps, args.seed)
    robust &= bench_held_out()
    overhead = bench_callback(args.spectra, args.speedup, args.repeats, args.seed)
    print(
        f"\nsummary: per-spectrum target {'MET' if per_spectrum else 'NOT MET'}, "
        f"robustness target {'MET' if robust else 'NOT MET'}, "
        f"callback overhead target {'MET' if overhead else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
