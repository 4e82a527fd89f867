"""fit_film and conductivity: model choice by information criterion, R_film, sigma in S/cm."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.analysis.eis import (
    FILM_MODELS,
    FilmFit,
    FilmGeometry,
    circuit_impedance,
    conductivity,
    fit_film,
)

FREQUENCY = np.logspace(6, -1, 61)


def noisy(circuit: str, params: dict[str, float], seed: int) -> np.ndarray:
    z = circuit_impedance(circuit, params, FREQUENCY)
    noise = np.random.default_rng(seed).standard_normal((2, z.size))
    return z + 0.01 * np.abs(z) * (noise[0] + 1j * noise[1])


def test_conductivity_of_the_paper_geometry_in_siemens_per_centimetre():
    # 0.25e-3 m / (1e9 Ohm * 3e-3 m * 2e-6 m) = 4.1667e-5 S/m = 4.1667e-7 S/cm
    assert conductivity(1e9, 0.25e-3, 3e-3, 2e-6) == pytest.approx(4.1666667e-7, rel=1e-7)
    assert conductivity(1e9) == pytest.approx(4.1666667e-7, rel=1e-7)  # paper defaults
    np.testing.assert_allclose(conductivity([1e8, 1e9]), [4.1666667e-6, 4.1666667e-7], rtol=1e-7)
    # the paper's 30 C value for the 750 C film, 2.51e-6 S/cm, is a resistance of 1.66e8 Ohm
    assert conductivity(416.6667 / 2.51e-6) == pytest.approx(2.51e-6, rel=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0,), "resistance"),
        ((-5.0,), "resistance"),
        ((np.nan,), "resistance"),
        ((1e6, 0.0, 3e-3, 2e-6), "gap"),
        ((1e6, 0.25e-3, -3e-3, 2e-6), "electrode_length"),
        ((1e6, 0.25e-3, 3e-3, np.inf), "thickness"),
    ],
)
def test_conductivity_rejects_non_positive_values(args, message):
    with pytest.raises(ValueError, match=message):
        conductivity(*args)


def test_geometry_defaults_and_validation():
    geometry = FilmGeometry()
    assert (geometry.gap, geometry.electrode_length, geometry.thickness) == (0.25e-3, 3e-3, 2e-6)
    with pytest.raises(ValueError, match="thickness"):
        FilmGeometry(thickness=0.0)
    with pytest.raises(ValueError, match="metres"):
        FilmGeometry(gap=250.0)  # micrometres by mistake


@pytest.mark.parametrize(
    ("circuit", "params"),
    [
        ("p(R1,CPE1)", {"R1": 1e7, "CPE1_0": 1e-10, "CPE1_1": 0.9}),
        ("R0-p(R1,CPE1)", {"R0": 2e4, "R1": 1e5, "CPE1_0": 1e-10, "CPE1_1": 0.9}),
        (
            "p(R1,CPE1)-CPE2",
            {"R1": 1e6, "CPE1_0": 1e-10, "CPE1_1": 0.9, "CPE2_0": 1e-7, "CPE2_1": 0.75},
        ),
    ],
)
def test_the_information_criterion_picks_the_model_the_data_need(circuit, params):
    result = fit_film(FREQUENCY, noisy(circuit, params, seed=1))
    assert isinstance(result, FilmFit)
    assert result.model == circuit
    assert result.success
    assert set(result.candidates) == set(FILM_MODELS)
    assert result.criterion_values[circuit] == min(result.criterion_values.values())
    assert result.film_resistance == pytest.approx(params["R1"], rel=0.02)
    assert 0 < result.film_resistance_err < 0.02 * params["R1"]
    sigma = conductivity(result.film_resistance)
    assert result.conductivity == pytest.approx(sigma)
    assert result.conductivity_err == pytest.approx(
        sigma * result.film_resistance_err / result.film_resistance
    )
    assert circuit in result.summary() and "S/cm" in result.summary()


def test_an_invisible_series_resistor_does_not_earn_its_parameter():
    params = {"R0": 100.0, "R1": 1e8, "CPE1_0": 3e-11, "CPE1_1": 0.9}
    result = fit_film(FREQUENCY, noisy("R0-p(R1,CPE1)", params, seed=2))
    assert result.model == "p(R1,CPE1)"
    assert result.film_resistance == pytest.approx(1e8, rel=0.02)


def test_geometry_and_criterion_options():
    params = {"R1": 1e7, "CPE1_0": 1e-10, "CPE1_1": 0.9}
    z = noisy("p(R1,CPE1)", params, seed=3)
    thick = fit_film(FREQUENCY, z, FilmGeometry(thickness=4e-6), criterion="aic")
    thin = fit_film(FREQUENCY, z)
    assert thick.criterion == "aic"
    assert thick.conductivity == pytest.approx(thin.conductivity / 2, rel=1e-3)
    np.testing.assert_allclose(thin.predict(FREQUENCY), thin.fit.predict(FREQUENCY))
    with pytest.raises(ValueError, match="criterion"):
        fit_film(FREQUENCY, z, criterion="chi2")
    with pytest.raises(ValueError, match="no film resistance"):
        fit_film(FREQUENCY, z, models=["p(R2,CPE2)"])


def test_bad_spectra_raise_value_errors():
    with pytest.raises(ValueError, match="points"):
        fit_film(FREQUENCY, np.ones(10, dtype=complex))
