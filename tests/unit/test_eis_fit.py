"""fit_circuit: real Zahner data, randomized thin-film spectra, undetermined parameters, errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import least_squares
from zahner_analysis.file_import.ism_import import IsmImport

from insitu.analysis.eis import CircuitFit, circuit_impedance, fit_circuit, parse_circuit

ZAHNER_DIR = Path(__file__).parents[1] / "data" / "zahner"
ZAHNER_R_OHM = 9.8866e7  # Zahner's own fit of rc-data.ism (rc-data.fit_result.json)
ZAHNER_C_F = 1.4784e-10

FREQUENCY = np.logspace(6, -1, 61)  # 1 MHz to 0.1 Hz, 61 points
FILM_PARAMETERS = ("R1", "CPE1_0", "CPE1_1")


def random_thin_film(rng: np.random.Generator, variant: int) -> tuple[str, dict[str, float]]:
    """The issue's thin film: R1 1e5-1e9 Ohm, Q 1e-11-1e-9, alpha 0.8-0.95; variant 1 and 3
    add a 10-1000 Ohm series resistor, 2 and 3 a blocking-electrode CPE."""
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


def with_noise(z: np.ndarray, rng: np.random.Generator, relative: float = 0.01) -> np.ndarray:
    noise = rng.standard_normal((2, z.size))
    return z + relative * np.abs(z) * (noise[0] + 1j * noise[1])


def arc_apex_hz(params: dict[str, float]) -> float:
    return 1 / (2 * np.pi * (params["R1"] * params["CPE1_0"]) ** (1 / params["CPE1_1"]))


def fit_from_true_values(circuit: str, params: dict[str, float], z: np.ndarray) -> dict:
    """The noise ceiling: the same weighted log-parameter least squares, started at the truth."""
    compiled = parse_circuit(circuit)
    names = compiled.param_names
    low = np.log10([compiled.default_bounds[n][0] for n in names])
    high = np.log10([compiled.default_bounds[n][1] for n in names])
    x0 = np.clip(np.log10([params[n] for n in names]), low + 1e-9, high - 1e-9)
    omega, weight = 2 * np.pi * FREQUENCY, 1 / np.abs(z)

    def residuals(x):
        model, _ = compiled.impedance_and_jacobian(10**x, omega, with_jacobian=False)
        relative = (model - z) * weight
        return np.concatenate([relative.real, relative.imag])

    result = least_squares(residuals, x0, bounds=(low, high), method="trf", x_scale="jac")
    return dict(zip(names, 10**result.x, strict=True))


def film_recovered(estimate: dict[str, float], truth: dict[str, float]) -> bool:
    return all(abs(estimate[name] / truth[name] - 1) < 0.02 for name in FILM_PARAMETERS)


def read_zahner_measurement() -> tuple[np.ndarray, np.ndarray]:
    path = ZAHNER_DIR / "rc-data.ism"
    assert path.is_file(), f"the real Zahner measurement is missing: {path.resolve()}"
    measurement = IsmImport(str(path))
    return (
        np.asarray(measurement.getFrequencyArray(), dtype=float),
        np.asarray(measurement.getComplexImpedanceArray(), dtype=complex),
    )


def test_real_zahner_measurement_matches_zahners_own_fit_within_1_percent():
    frequency, impedance = read_zahner_measurement()
    fit = fit_circuit("p(R1,C1)", frequency, impedance)
    assert fit.success
    assert fit.params["R1"] == pytest.approx(ZAHNER_R_OHM, rel=0.01)
    assert fit.params["C1"] == pytest.approx(ZAHNER_C_F, rel=0.01)
    assert fit.undetermined == ()


@pytest.mark.allow_slow("400 random spectra, each fitted twice: the statistic needs them all")
def test_randomized_thin_films_recover_r_q_alpha_as_often_as_a_fit_from_the_truth():
    rng = np.random.default_rng(2024)
    n_spectra = 400
    counted = recovered = ceiling_misses = outside_window = 0
    missed = []
    elapsed = []
    for index in range(n_spectra):
        circuit, truth = random_thin_film(rng, variant=index % 4)
        z = with_noise(circuit_impedance(circuit, truth, FREQUENCY), rng)
        if not FREQUENCY.min() < arc_apex_hz(truth) < FREQUENCY.max():
            outside_window += 1
            continue
        if not film_recovered(fit_from_true_values(circuit, truth, z), truth):
            ceiling_misses += 1
            continue
        counted += 1
        started = time.perf_counter()
        fit = fit_circuit(circuit, FREQUENCY, z)  # no initial guess
        elapsed.append(time.perf_counter() - started)
        if fit.success and film_recovered(fit.model_params, truth):
            recovered += 1
        else:
            missed.append((circuit, truth, fit.summary()))
    rate = recovered / counted
    print(
        f"\nrandomized thin films: {n_spectra} spectra, {outside_window} with the apex outside"
        f" the window, {ceiling_misses} missed by the fit from the truth; of the {counted} left"
        f" fit_circuit recovered R1, Q, alpha within 2 % in {recovered} ({100 * rate:.1f} %),"
        f" median {1e3 * np.median(elapsed):.1f} ms per fit"
    )
    assert counted >= 300
    assert rate >= 0.95, f"recovered {recovered}/{counted}; first misses: {missed[:3]}"


def test_series_resistor_in_front_of_a_large_film_is_reported_undetermined():
    rng = np.random.default_rng(1)
    truth = {"R0": 100.0, "R1": 1e8, "CPE1_0": 3e-11, "CPE1_1": 0.9}
    z = with_noise(circuit_impedance("R0-p(R1,CPE1)", truth, FREQUENCY), rng)
    fit = fit_circuit("R0-p(R1,CPE1)", FREQUENCY, z)
    assert fit.success
    assert fit.undetermined == ("R0",)
    assert np.isnan(fit.params["R0"]) and np.isnan(fit.stderr["R0"])
    assert "R0 undetermined" in fit.summary()
    for name in FILM_PARAMETERS:
        assert fit.params[name] == pytest.approx(truth[name], rel=0.02)
        assert 0 < fit.stderr[name] < 0.02 * truth[name]


def test_noise_free_spectrum_is_recovered_exactly():
    truth = {"R0": 50.0, "R1": 3e5, "CPE1_0": 2e-10, "CPE1_1": 0.87, "CPE2_0": 1e-7, "CPE2_1": 0.7}
    circuit = "R0-p(R1,CPE1)-CPE2"
    z = circuit_impedance(circuit, truth, FREQUENCY)
    fit = fit_circuit(circuit, FREQUENCY, z)
    assert fit.residual_rms < 1e-8
    for name, value in truth.items():
        assert fit.model_params[name] == pytest.approx(value, rel=1e-6)


def test_two_separated_arcs_need_no_guess():
    truth = {"R0": 20.0, "R1": 1e4, "C1": 1e-10, "R2": 1e6, "CPE2_0": 1e-7, "CPE2_1": 0.85}
    circuit = "R0-p(R1,C1)-p(R2,CPE2)"
    z = with_noise(circuit_impedance(circuit, truth, FREQUENCY), np.random.default_rng(5))
    fit = fit_circuit(circuit, FREQUENCY, z)
    for name in ("R1", "C1", "R2", "CPE2_0", "CPE2_1"):
        assert fit.params[name] == pytest.approx(truth[name], rel=0.03)


def test_reported_standard_errors_match_the_scatter_over_noise_realizations():
    truth = {"R1": 1e7, "CPE1_0": 1e-10, "CPE1_1": 0.9}
    clean = circuit_impedance("p(R1,CPE1)", truth, FREQUENCY)
    rng = np.random.default_rng(11)
    fits = [fit_circuit("p(R1,CPE1)", FREQUENCY, with_noise(clean, rng)) for _ in range(60)]
    for name in FILM_PARAMETERS:
        scatter = np.std([fit.params[name] for fit in fits], ddof=1)
        reported = np.median([fit.stderr[name] for fit in fits])
        assert 0.6 < reported / scatter < 1.6, name


def test_fixed_parameters_bounds_and_initial_guess_are_honoured():
    truth = {"R1": 1e7, "CPE1_0": 1e-10, "CPE1_1": 0.9}
    z = with_noise(circuit_impedance("p(R1,CPE1)", truth, FREQUENCY), np.random.default_rng(3))

    fixed = fit_circuit("p(R1,CPE1)", FREQUENCY, z, fixed={"CPE1_1": 0.9})
    assert fixed.params["CPE1_1"] == 0.9 and fixed.stderr["CPE1_1"] == 0.0
    assert fixed.fixed == ("CPE1_1",) and fixed.n_free == 2
    assert fixed.params["R1"] == pytest.approx(1e7, rel=0.02)

    bounded = fit_circuit("p(R1,CPE1)", FREQUENCY, z, bounds={"R1": (1e3, 1e6)})
    assert 1e3 <= bounded.model_params["R1"] <= 1e6

    by_name = fit_circuit(
        "p(R1,CPE1)", FREQUENCY, z, initial_guess={"R1": 1e6, "CPE1_0": 1e-9, "CPE1_1": 0.8}
    )
    in_order = fit_circuit("p(R1,CPE1)", FREQUENCY, z, initial_guess=[1e6, 1e-9, 0.8])
    assert by_name.params["R1"] == pytest.approx(1e7, rel=0.02)
    assert in_order.params["R1"] == pytest.approx(by_name.params["R1"], rel=1e-6)


def test_result_predicts_summarizes_and_scores():
    truth = {"R1": 1e6, "C1": 1e-9}
    z = with_noise(circuit_impedance("p(R1,C1)", truth, FREQUENCY), np.random.default_rng(8))
    fit = fit_circuit("p(R1,C1)", FREQUENCY[::-1], z[::-1])  # descending order is fine
    assert isinstance(fit, CircuitFit)
    np.testing.assert_allclose(
        fit.predict(FREQUENCY), circuit_impedance("p(R1,C1)", fit.params, FREQUENCY)
    )
    assert fit.residuals_real.shape == fit.residuals_imag.shape == (FREQUENCY.size,)
    assert fit.chi2 == pytest.approx(np.sum(fit.residuals_real**2) + np.sum(fit.residuals_imag**2))
    assert fit.residual_rms == pytest.approx(0.01, rel=0.25)
    assert fit.noise_estimate == pytest.approx(0.01, rel=0.35)
    assert fit.reduced_chi2 == pytest.approx(1e-4, rel=0.5)
    line = fit.summary()
    assert "\n" not in line and line.startswith("p(R1,C1): R1=") and "ok" in line
    assert fit.bic > fit.aic  # ln(122) > 2


def test_fitting_is_fast():
    truth = {"R0": 100.0, "R1": 1e7, "CPE1_0": 1e-10, "CPE1_1": 0.9}
    rng = np.random.default_rng(9)
    spectra = [
        with_noise(circuit_impedance("R0-p(R1,CPE1)", truth, FREQUENCY), rng) for _ in range(30)
    ]
    fit_circuit("R0-p(R1,CPE1)", FREQUENCY, spectra[0])
    times = []
    for z in spectra:
        started = time.perf_counter()
        fit_circuit("R0-p(R1,CPE1)", FREQUENCY, z)
        times.append(time.perf_counter() - started)
    assert np.median(times) < 0.02  # the benchmark holds the 5 ms target; this guards regressions


@pytest.mark.parametrize(
    ("circuit", "frequency", "impedance", "kwargs", "message"),
    [
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 + 1j, 2 + 1j], {}, "3 points but impedance has 2"),
        ("p(R1,C1)", [1.0, -2.0, 3.0], [1 - 1j] * 3, {}, "finite and > 0 Hz"),
        ("p(R1,C1)", [1.0, np.inf, 3.0], [1 - 1j] * 3, {}, "finite and > 0 Hz"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j, np.nan, 1], {}, "NaN"),
        ("R0-p(R1,CPE1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {}, "cannot determine 4 free"),
        ("p(R1,X1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {}, "unknown element 'X1'"),
        ("p(R1,C1", [1.0, 2.0, 3.0], [1 - 1j] * 3, {}, "expected"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {"fixed": {"R2": 1.0}}, "unknown parameter"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {"fixed": {"R1": -1.0}}, "outside"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {"bounds": {"R1": (5, 1)}}, "0 < low < high"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {"bounds": {"R1": (0, 1)}}, "0 < low < high"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {"bounds": {"Q": (1, 2)}}, "unknown parameter"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {"initial_guess": [1.0]}, "free parameters"),
        ("p(R1,C1)", [1.0, 2.0, 3.0], [1 - 1j] * 3, {"initial_guess": {"R1": 1}}, "no value"),
        (
            "p(R1,C1)",
            [1.0, 2.0, 3.0],
            [1 - 1j] * 3,
            {"fixed": {"R1": 1.0, "C1": 1e-9}},
            "nothing to fit",
        ),
    ],
)
def test_bad_input_raises_a_clear_value_error(circuit, frequency, impedance, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_circuit(circuit, frequency, impedance, **kwargs)
