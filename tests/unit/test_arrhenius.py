"""fit_arrhenius: Ea within 0.005 eV, both forms, extrapolation to 30 C, per-cycle fits, errors."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.analysis.arrhenius import BOLTZMANN_EV_PER_K, CELSIUS_ZERO_K
from insitu.analysis.eis import ArrheniusFit, fit_arrhenius

# the paper's protocol: a spectrum every 50 C from 100 C to 500 C
TEMPERATURES_K = np.arange(100.0, 501.0, 50.0) + CELSIUS_ZERO_K
ROOM_K = 30.0 + CELSIUS_ZERO_K


def sigma_t_law(temperature_k, ea_ev: float, sigma_30c: float) -> np.ndarray:
    """sigma*T = A exp(-Ea/kT), with A set so that sigma(30 C) = sigma_30c."""
    t = np.asarray(temperature_k, dtype=float)
    return sigma_30c * (ROOM_K / t) * np.exp(-ea_ev / BOLTZMANN_EV_PER_K * (1 / t - 1 / ROOM_K))


@pytest.mark.parametrize(
    ("ea_ev", "sigma_30c"), [(0.36, 5.59e-9), (0.343, 2.51e-6), (0.7, 1.44e-9)]
)
def test_activation_energy_is_recovered_within_5_meV_from_noisy_conductivities(ea_ev, sigma_30c):
    rng = np.random.default_rng(1)
    exact = sigma_t_law(TEMPERATURES_K, ea_ev, sigma_30c)
    # 1 % scatter: the film resistance's standard error from a 1 %-noise spectrum is 0.2-1 %
    for _ in range(200):
        fit = fit_arrhenius(TEMPERATURES_K, exact * np.exp(rng.normal(0, 0.01, 9)))
        assert abs(fit.Ea_eV - ea_ev) < 0.005
        assert fit.r2 > 0.999
    # 3 % scatter: still within 5 meV nearly always, and the reported error is the real one
    fits = [
        fit_arrhenius(TEMPERATURES_K, exact * np.exp(rng.normal(0, 0.03, 9))) for _ in range(400)
    ]
    errors = np.array([fit.Ea_eV - ea_ev for fit in fits])
    assert np.mean(np.abs(errors) < 0.005) > 0.97
    assert np.median([fit.Ea_stderr_eV for fit in fits]) == pytest.approx(np.std(errors), rel=0.2)


def test_exact_data_give_exact_energy_prefactor_and_extrapolation():
    sigma = sigma_t_law(TEMPERATURES_K, 0.36, 5.59e-9)
    fit = fit_arrhenius(TEMPERATURES_K, sigma)
    assert isinstance(fit, ArrheniusFit) and fit.form == "sigmaT"
    assert fit.Ea_eV == pytest.approx(0.36, abs=1e-12)
    assert fit.Ea_stderr_eV == pytest.approx(0.0, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.sigma_at(ROOM_K) == pytest.approx(5.59e-9, rel=1e-9)
    assert fit.prefactor == pytest.approx(
        5.59e-9 * ROOM_K * np.exp(0.36 / BOLTZMANN_EV_PER_K / ROOM_K)
    )
    np.testing.assert_allclose(fit.sigma_at(TEMPERATURES_K), sigma, rtol=1e-9)
    assert fit.n_points == 9
    assert "Ea = 0.360" in fit.summary()


def test_plain_sigma_form():
    sigma = 1e2 * np.exp(-0.5 / (BOLTZMANN_EV_PER_K * TEMPERATURES_K))
    fit = fit_arrhenius(TEMPERATURES_K, sigma, form="sigma")
    assert fit.Ea_eV == pytest.approx(0.5, abs=1e-12)
    assert fit.prefactor == pytest.approx(1e2)
    assert fit.sigma_at(600.0) == pytest.approx(1e2 * np.exp(-0.5 / (BOLTZMANN_EV_PER_K * 600.0)))
    # the same data read as sigma*T give a slightly different energy (by about k<T>)
    assert fit_arrhenius(TEMPERATURES_K, sigma).Ea_eV > 0.5


def test_separate_fits_per_cycle_and_direction():
    heating = sigma_t_law(TEMPERATURES_K, 0.40, 1e-9)
    cooling = sigma_t_law(TEMPERATURES_K[::-1], 0.36, 2e-9)
    temperatures = np.concatenate([TEMPERATURES_K, TEMPERATURES_K[::-1]] * 2)
    sigma = np.concatenate([heating, cooling] * 2)
    cycle = [1] * 18 + [2] * 18
    direction = (["heating"] * 9 + ["cooling"] * 9) * 2
    fit = fit_arrhenius(temperatures, sigma, cycle=cycle, direction=direction)
    assert set(fit.per_cycle) == {(1, "heating"), (1, "cooling"), (2, "heating"), (2, "cooling")}
    for (_, way), part in fit.per_cycle.items():
        assert part.Ea_eV == pytest.approx(0.40 if way == "heating" else 0.36, abs=1e-9)
        assert part.n_points == 9
    by_cycle = fit_arrhenius(temperatures, sigma, cycle=cycle)
    assert set(by_cycle.per_cycle) == {1, 2}
    by_direction = fit_arrhenius(temperatures, sigma, direction=direction)
    assert by_direction.per_cycle["cooling"].Ea_eV == pytest.approx(0.36, abs=1e-9)
    lonely = fit_arrhenius(TEMPERATURES_K, heating, cycle=[1] * 8 + [2])
    assert set(lonely.per_cycle) == {1} and lonely.groups_too_small == (2,)


@pytest.mark.parametrize(
    ("temperature", "sigma", "kwargs", "message"),
    [
        ([300.0, 400.0], [1e-6], {}, "2 temperatures but 1"),
        ([300.0], [1e-6], {}, "at least 2 points"),
        ([-10.0, 400.0], [1e-6, 1e-5], {}, "> 0 K"),
        ([300.0, 400.0], [0.0, 1e-5], {}, "> 0 S/cm"),
        ([300.0, 400.0], [np.nan, 1e-5], {}, "> 0 S/cm"),
        ([300.0, 300.0], [1e-6, 1e-5], {}, "distinct temperatures"),
        ([300.0, 400.0], [1e-6, 1e-5], {"form": "log"}, "form 'log'"),
        ([300.0, 400.0], [1e-6, 1e-5], {"cycle": [1]}, "1 labels for 2 points"),
    ],
)
def test_bad_input_raises_a_clear_value_error(temperature, sigma, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_arrhenius(temperature, sigma, **kwargs)


def test_extrapolation_needs_a_positive_temperature():
    fit = fit_arrhenius(TEMPERATURES_K, sigma_t_law(TEMPERATURES_K, 0.36, 5.59e-9))
    with pytest.raises(ValueError, match="> 0"):
        fit.sigma_at(0.0)
