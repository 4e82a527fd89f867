"""Circuit fitting and lin-KK: insitu's fit_circuit against impedance.py's CustomCircuit.fit.

Both fit the same seeded set of thin-film spectra (R1 1e5-1e9 Ohm, CPE Q 1e-11-1e-9, alpha
0.8-0.95; a quarter each plain, with a 10-1000 Ohm series resistor, with a blocking-electrode
CPE, with both; 1 % noise; 61 points from 1 MHz to 0.1 Hz) with the circuit that made them.
fit_circuit gets no initial guess; impedance.py gets the generic one a user would type
(R0 = 100, R1 = 1e7, Q = 1e-10, alpha = 0.9, electrode Q = 1e-7, alpha = 0.8), once with its
defaults and once with ``weight_by_modulus=True``. A fit succeeds when R1, Q and alpha are all
within 2 % of the truth; rates are given over the spectra whose arc apex lies in the window and
over those a fit started at the true values gets right (the noise ceiling). Also times
kramers_kronig on the same spectra.

Targets (issue 6): fit_circuit at most 5 ms per fit (median), at least 5x faster than
impedance.py and with the higher success rate; kramers_kronig under 20 ms per spectrum.

Usage: python benchmarks/bench_eis.py [--spectra N] [--seed S]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from impedance.models.circuits import CustomCircuit
from scipy.optimize import least_squares

from insitu.analysis.eis import circuit_impedance, fit_circuit, kramers_kronig, parse_circuit

FREQUENCY = np.logspace(6, -1, 61)
FILM_PARAMETERS = ("R1", "CPE1_0", "CPE1_1")
GENERIC_GUESS = {
    "R0": 100.0,
    "R1": 1e7,
    "CPE1_0": 1e-10,
    "CPE1_1": 0.9,
    "CPE2_0": 1e-7,
    "CPE2_1": 0.8,
}
TARGET_MEDIAN_S = 0.005
TARGET_SPEEDUP = 5.0
TARGET_KK_S = 0.020


def random_thin_film(rng: np.random.Generator, variant: int) -> tuple[str, dict[str, float]]:
    params = {
        "R1": 10 ** rng.uniform(5, 9),
        "CPE1_0": 10 ** rng.uniform(-11, -9),
        "CPE1_1": rng.uniform(0.8, 0.95),
    }
    circuit = "p(R1,CPE1)"
    if variant in (1, 3):
        circuit = "R0-" + circuit
        params["R0"] = 10 ** rng.uniform(1, 3)
    if variant in (2, 3):
        circuit += "-CPE2"
        params["CPE2_0"] = 10 ** rng.uniform(-8, -6)
        params["CPE2_1"] = rng.uniform(0.6, 0.9)
    return circuit, params


def make_spectra(n: int, seed: int) -> list[tuple[str, dict[str, float], np.ndarray]]:
    rng = np.random.default_rng(seed)
    spectra = []
    for index in range(n):
        circuit, params = random_thin_film(rng, index % 4)
        z = circuit_impedance(circuit, params, FREQUENCY)
        noise = rng.standard_normal((2, z.size))
        spectra.append((circuit, params, z + 0.01 * np.abs(z) * (noise[0] + 1j * noise[1])))
    return spectra


def apex_inside_window(params: dict[str, float]) -> bool:
    apex = 1 / (2 * np.pi * (params["R1"] * params["CPE1_0"]) ** (1 / params["CPE1_1"]))
    return bool(FREQUENCY.min() < apex < FREQUENCY.max())


def recovered(estimate: dict[str, float], truth: dict[str, float]) -> bool:
    return all(
        np.isfinite(estimate[name]) and abs(estimate[name] / truth[name] - 1) < 0.02
        for name in FILM_PARAMETERS
    )


def fit_from_true_values(circuit: str, truth: dict[str, float], z: np.ndarray) -> dict[str, float]:
    compiled = parse_circuit(circuit)
    names = compiled.param_names
    low = np.log10([compiled.default_bounds[n][0] for n in names])
    high = np.log10([compiled.default_bounds[n][1] for n in names])
    x0 = np.clip(np.log10([truth[n] for n in names]), low + 1e-9, high - 1e-9)
    omega, weight = 2 * np.pi * FREQUENCY, 1 / np.abs(z)

    def residuals(x):
        model, _ = compiled.impedance_and_jacobian(10**x, omega, with_jacobian=False)
        relative = (model - z) * weight
        return np.concatenate([relative.real, relative.imag])

    result = least_squares(residuals, x0, bounds=(low, high), method="trf", x_scale="jac")
    return dict(zip(names, 10**result.x, strict=True))


def run_ours(circuit: str, z: np.ndarray) -> tuple[dict[str, float], float]:
    started = time.perf_counter()
    fit = fit_circuit(circuit, FREQUENCY, z)
    return fit.model_params, time.perf_counter() - started


def run_impedance_py(circuit: str, z: np.ndarray, weighted: bool) -> tuple[dict, float]:
    model = CustomCircuit(
        circuit, initial_guess=[GENERIC_GUESS[n] for n in parse_circuit(circuit).param_names]
    )
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(FREQUENCY, z, weight_by_modulus=weighted)
        estimate = dict(zip(model.get_param_names()[0], model.parameters_, strict=True))
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        estimate = dict.fromkeys(FILM_PARAMETERS, np.nan)
    return estimate, time.perf_counter() - started


def report(name: str, ok: np.ndarray, inside: np.ndarray, ceiling: np.ndarray, times) -> None:
    print(
        f"  {name:<34} apex in window {ok[inside].sum():4d}/{inside.sum():<4d}"
        f" ({100 * ok[inside].mean():5.1f} %)   ceiling set {ok[ceiling].sum():4d}/"
        f"{ceiling.sum():<4d} ({100 * ok[ceiling].mean():5.1f} %)   median"
        f" {1e3 * np.median(times):7.2f} ms   p90 {1e3 * np.percentile(times, 90):7.2f} ms"
    )


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spectra", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    spectra = make_spectra(args.spectra, args.seed)
    print(f"{len(spectra)} thin-film spectra, 61 points, 1 MHz-0.1 Hz, 1 % noise, seed {args.seed}")

    fit_circuit(spectra[0][0], FREQUENCY, spectra[0][2])  # warm-up: imports, caches
    kramers_kronig(FREQUENCY, spectra[0][2])

    inside = np.array([apex_inside_window(p) for _, p, _ in spectra])
    ceiling = inside & np.array(
        [recovered(fit_from_true_values(c, p, z), p) for c, p, z in spectra]
    )
    results = {}
    for name, runner in (
        ("insitu fit_circuit (no guess)", run_ours),
        ("impedance.py CustomCircuit.fit", lambda c, z: run_impedance_py(c, z, weighted=False)),
        ("impedance.py, weight_by_modulus", lambda c, z: run_impedance_py(c, z, weighted=True)),
    ):
        outcomes = [runner(circuit, z) for circuit, _, z in spectra]
        ok = np.array(
            [recovered(est, p) for (est, _), (_, p, _) in zip(outcomes, spectra, strict=True)]
        )
        results[name] = (ok, np.array([t for _, t in outcomes]))

    kk_times = []
    for _, _, z in spectra:
        started = time.perf_counter()
        kramers_kronig(FREQUENCY, z)
        kk_times.append(time.perf_counter() - started)

    print("R1, Q and alpha all within 2 % of the truth:")
    for name, (ok, times) in results.items():
        report(name, ok, inside, ceiling, times)
    ours_ok, ours_times = results["insitu fit_circuit (no guess)"]
    ours_median = float(np.median(ours_times))
    print(
        f"  kramers_kronig                     median {1e3 * np.median(kk_times):7.2f} ms"
        f"   p90 {1e3 * np.percentile(kk_times, 90):7.2f} ms   max {1e3 * np.max(kk_times):7.2f} ms"
    )
    print()
    print("targets:")
    print(
        f"  fit_circuit median {1e3 * ours_median:.2f} ms <= {1e3 * TARGET_MEDIAN_S:.0f} ms:"
        f" {verdict(ours_median <= TARGET_MEDIAN_S)}"
    )
    ceiling_rate = ours_ok[ceiling].mean()
    print(
        f"  fit_circuit recovers >= 95 % of the ceiling set ({100 * ceiling_rate:.1f} %):"
        f" {verdict(ceiling_rate >= 0.95)}"
    )
    for name, (ok, times) in results.items():
        if name.startswith("insitu"):
            continue
        speedup = float(np.median(times)) / ours_median
        print(
            f"  vs {name}: {speedup:.1f}x faster (>= {TARGET_SPEEDUP:.0f}x):"
            f" {verdict(speedup >= TARGET_SPEEDUP)}; success {100 * ours_ok[inside].mean():.1f} %"
            f" vs {100 * ok[inside].mean():.1f} % (higher):"
            f" {verdict(ours_ok[inside].mean() > ok[inside].mean())}"
        )
    kk_median = float(np.median(kk_times))
    print(
        f"  kramers_kronig median {1e3 * kk_median:.2f} ms < {1e3 * TARGET_KK_S:.0f} ms:"
        f" {verdict(kk_median < TARGET_KK_S)}"
    )


if __name__ == "__main__":
    main()
