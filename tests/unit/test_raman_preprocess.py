"""Raman preprocessing: input checks, spike removal, pybaselines baselines, smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.analysis.raman_preprocess import (
    BASELINE_METHODS,
    check_spectrum,
    estimate_baseline,
    local_noise,
    median_of_rows,
    noise_sigma,
    preprocess,
    remove_spikes,
    smooth,
)
from insitu.analysis.raman_reference import pseudo_voigt
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

AXIS = raman_model.default_axis()
RAMP = ThermalProfile.ramp(25.0, 850.0, 5.0)
FILM = GarnetFilm(RAMP, start_time=0.0)


def film_spectrum(temperature: float, seed: int, **options) -> np.ndarray:
    state = FILM.state(RAMP.time_at_temperature(temperature))
    options = {"exposure_s": 30.0, "cosmic_rays": False, **options}
    return raman_model.spectrum(state, temperature, rng=seed, **options)


def add_spikes(counts: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    spiky = counts.copy()
    mask = np.zeros(counts.size, dtype=bool)
    for _ in range(n):
        width = int(rng.integers(1, 4))
        start = int(rng.integers(10, counts.size - 10))
        spiky[start : start + width] += rng.uniform(1500.0, 5000.0) * rng.uniform(0.5, 1.0, width)
        mask[start : start + width] = True
    return spiky, mask


# --- input checks --------------------------------------------------------------------------------
def test_check_spectrum_rejects_bad_input_with_a_message_naming_it():
    y = np.ones(AXIS.size)
    with pytest.raises(ValueError, match="1600 points but counts has 1599"):
        check_spectrum(AXIS, y[:-1])
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="1 NaN/inf"):
        check_spectrum(AXIS, bad)
    with pytest.raises(ValueError, match="at least 32"):
        check_spectrum(AXIS[:5], y[:5])
    with pytest.raises(ValueError, match="1-D"):
        check_spectrum(AXIS, np.ones((2, AXIS.size)))
    shuffled = AXIS.copy()
    shuffled[[10, 11]] = shuffled[[11, 10]]
    with pytest.raises(ValueError, match="not strictly monotonic"):
        check_spectrum(shuffled, y)
    with pytest.raises(ValueError, match="wavenumber contains NaN"):
        check_spectrum(np.where(AXIS > 500, np.nan, AXIS), y)


def test_a_decreasing_axis_is_reversed_together_with_the_counts():
    y = np.arange(AXIS.size, dtype=float)
    x, counts = check_spectrum(AXIS[::-1], y)
    assert np.all(np.diff(x) > 0)
    assert counts[0] == y[-1] and counts[-1] == y[0]


def test_noise_estimates_match_white_noise_and_ignore_band_slopes():
    rng = np.random.default_rng(1)
    sigma = 50.0
    bands = 20000.0 * pseudo_voigt(AXIS, 400.0, 15.0, 0.7) + 5.0 * AXIS
    noisy = bands + rng.normal(0.0, sigma, AXIS.size)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.1)
    local = local_noise(noisy)
    assert local.shape == noisy.shape
    assert np.median(local) == pytest.approx(sigma, rel=0.15)


@pytest.mark.parametrize("shape", [(1598,), (1599,), (40, 40), (7, 9), (1,), (3, 1)])
def test_the_median_of_rows_is_numpys_to_the_bit(shape):
    values = np.random.default_rng(sum(shape)).normal(size=shape) ** 2
    assert np.array_equal(median_of_rows(values), np.median(values, axis=-1))
    values.flat[1 % values.size] = np.nan  # a NaN makes its row's median NaN, as numpy's
    assert np.array_equal(median_of_rows(values), np.median(values, axis=-1), equal_nan=True)


def test_noise_of_a_spectrum_with_a_nan_or_too_few_points_is_nan():
    counts = np.random.default_rng(0).normal(100.0, 5.0, 200)
    counts[50] = np.nan
    assert np.isnan(noise_sigma(counts))
    assert np.isnan(local_noise(counts)).all()
    with pytest.warns(RuntimeWarning):  # numpy's "mean of empty slice"
        assert np.isnan(local_noise(np.array([1.0, 2.0]))).all()


def test_the_despiking_gives_the_local_noise_of_the_spectrum_it_was_given():
    rng = np.random.default_rng(2)
    clean = film_spectrum(700.0, seed=2)
    for counts in (clean, add_spikes(clean, rng, 4)[0]):
        removal = remove_spikes(counts)
        assert np.array_equal(removal.noise, local_noise(counts))
    # with nothing replaced, that is the despiked spectrum's noise too
    assert not remove_spikes(clean).mask.any()


def test_a_spike_on_the_third_pixel_is_found_against_an_oddly_reflected_edge():
    # The edges are continued by odd reflection (np.pad's "reflect", "odd", written out): a
    # sloped edge stays a slope, and a spike 3 pixels in is seen against it.
    x = np.arange(200.0)
    y = 1000.0 + 20.0 * x + np.random.default_rng(4).normal(0.0, 3.0, x.size)
    y[2] += 400.0
    y[-3] += 400.0
    removal = remove_spikes(y)
    assert removal.mask[2] and removal.mask[-3]
    assert removal.n_spikes == 2


# --- spikes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [300.0, 575.0, 680.0, 750.0, 840.0])
def test_spikes_are_removed_and_the_rest_is_left_alone(temperature):
    rng = np.random.default_rng(int(temperature))
    clean = film_spectrum(temperature, seed=int(temperature))
    spiky, truth = add_spikes(clean, rng, 8)
    removal = remove_spikes(spiky)
    # shot and read noise, or the excess noise of the rearranging film where it is larger
    sigma = np.maximum(np.sqrt(np.maximum(clean, 1.0)) + 5.0, local_noise(clean))
    error = np.abs(removal.counts - clean) / sigma
    assert error[truth].max() < 6.0  # every spike pixel is back near the clean spectrum
    assert error[~truth].max() < 6.0  # nothing else was damaged
    assert 6 <= removal.n_spikes <= 9  # touching spikes may merge into one
    assert removal.mask[truth].all()


def test_strong_narrow_bands_in_a_low_noise_spectrum_are_not_spikes():
    # cubic garnet at room temperature: 7-9 cm-1 (12-15 pixel) bands, signal-to-noise ~ 300
    for temperature in (750.0, 800.0):
        clean = film_spectrum(temperature, seed=3, exposure_s=300.0, accumulations=10)
        removal = remove_spikes(clean)
        assert removal.n_spikes == 0


def test_a_spike_on_the_flank_of_a_strong_band_is_found():
    clean = film_spectrum(750.0, seed=5)
    spiky = clean.copy()
    flank = int(np.argmin(np.abs(AXIS - 640.0)))  # 11 cm-1 below the 651 cm-1 A1g top
    spiky[flank] += 2500.0
    removal = remove_spikes(spiky)
    assert removal.mask[flank]
    assert abs(removal.counts[flank] - clean[flank]) < 5.0 * np.sqrt(clean[flank])


def test_remove_spikes_rejects_bad_input():
    with pytest.raises(ValueError, match="finite 1-D spectrum"):
        remove_spikes(np.ones(10))
    with pytest.raises(ValueError, match="threshold"):
        remove_spikes(np.ones(100), threshold=0.0)


# --- baselines -----------------------------------------------------------------------------------
def synthetic(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sharp bands on a sloped fluorescence with a thermal rise; returns counts, truth, noise."""
    rng = np.random.default_rng(seed)
    background = 3000.0 * (1.0 + 0.8 * (AXIS - 50.0) / 950.0) + 2000.0 * np.exp(
        (AXIS - 1000.0) / 250.0
    )
    bands = sum(
        rng.uniform(2000.0, 15000.0) * pseudo_voigt(AXIS, position, width, 0.7)
        for position, width in ((113.0, 12.0), (240.0, 20.0), (368.0, 25.0), (651.0, 28.0))
    )
    counts = rng.poisson(background + bands).astype(float)
    return counts, background, np.sqrt(background)


@pytest.mark.parametrize("method", sorted(BASELINE_METHODS))
def test_every_baseline_method_follows_a_smooth_background(method):
    counts, background, noise = synthetic(0)
    baseline = estimate_baseline(AXIS, counts, method)
    inside = AXIS > 90.0
    rms = np.sqrt(np.mean(((baseline - background) / noise)[inside] ** 2))
    assert rms < 12.0, f"{method}: baseline RMS error {rms:.1f} noise units"


def test_default_baseline_is_accurate_and_decimation_changes_little():
    counts, background, noise = synthetic(1)
    inside = AXIS > 90.0
    default = estimate_baseline(AXIS, counts)
    full = estimate_baseline(AXIS, counts, decimate=1)
    for baseline in (default, full):
        assert np.sqrt(np.mean(((baseline - background) / noise)[inside] ** 2)) < 5.0
    # the corrected spectrum keeps the bands
    corrected = counts - default
    assert corrected[np.argmin(np.abs(AXIS - 651.0))] > 1500.0


def test_estimate_baseline_rejects_unknown_methods_and_options():
    counts, _, _ = synthetic(2)
    with pytest.raises(ValueError, match="not one of"):
        estimate_baseline(AXIS, counts, "magic")
    with pytest.raises(ValueError, match="decimate"):
        estimate_baseline(AXIS, counts, decimate=0)


# --- smoothing and the pipeline ------------------------------------------------------------------
def test_smoothing_lowers_noise_and_checks_its_window():
    rng = np.random.default_rng(4)
    noisy = 1000.0 * pseudo_voigt(AXIS, 500.0, 40.0, 0.5) + rng.normal(0.0, 30.0, AXIS.size)
    smoothed = smooth(AXIS, noisy, window_cm1=8.0)
    assert noise_sigma(smoothed) < 0.5 * noise_sigma(noisy)
    assert smoothed.max() == pytest.approx(1000.0, rel=0.1)
    with pytest.raises(ValueError, match="must be > 0"):
        smooth(AXIS, noisy, window_cm1=0.0)
    with pytest.raises(ValueError, match="not shorter"):
        smooth(AXIS, noisy, window_cm1=2000.0)


def test_preprocess_despikes_removes_the_baseline_and_optionally_smooths():
    clean = film_spectrum(750.0, seed=7)
    spiky, truth = add_spikes(clean, np.random.default_rng(7), 3)
    result = preprocess(AXIS, spiky)
    assert result.n_spikes >= 2
    assert np.array_equal(result.raw, spiky)
    assert result.spike_mask[truth].all()
    np.testing.assert_allclose(result.corrected, result.despiked - result.baseline)
    smoothed = preprocess(AXIS, spiky, smoothing_cm1=5.0)
    assert noise_sigma(smoothed.corrected) < noise_sigma(result.corrected)
    untouched = preprocess(AXIS, spiky, despike=False)
    assert untouched.n_spikes == 0 and np.array_equal(untouched.despiked, spiky)
