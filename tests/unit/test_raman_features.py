"""Raman features against the simulated film: reference table, peaks, phase fractions, noise."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest

from insitu.analysis.raman import (
    LLZO,
    PHASE_CLASSES,
    describe_spectrum,
    load_reference,
    reference_from_mapping,
    unmix_phases,
)
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

AXIS = raman_model.default_axis()
RAMP = ThermalProfile.ramp(25.0, 850.0, 5.0)
FILM = GarnetFilm(RAMP, start_time=0.0)


def measured(temperature: float, seed: int = 0, **options):
    """The 5 C/min film at ``temperature``: (state, counts) at 10 mW, 30 s."""
    state = FILM.state(RAMP.time_at_temperature(temperature))
    options = {"exposure_s": 30.0, "laser_power_mW": 10.0, **options}
    return state, raman_model.spectrum(state, temperature, rng=seed, **options)


# --- the reference table -------------------------------------------------------------------------
def test_the_llzo_reference_has_the_papers_phases_and_peaks():
    assert LLZO.names_of_class("crystalline") == ("tetragonal", "cubic")
    assert LLZO.names_of_class("decomposed") == ("pyrochlore",)
    assert set(LLZO.names_of_class("amorphous")) == {
        "amorphous",
        "amorphous_relaxed",
        "amorphous_rearranged",
    }
    positions = {
        phase.name: tuple(band.position for band in phase.sharp_bands) for phase in LLZO.phases
    }
    assert positions["tetragonal"] == (389.0, 656.0)
    assert positions["cubic"] == (94.0, 113.0, 240.0, 368.0, 468.0, 651.0)
    assert positions["pyrochlore"] == (275.0, 374.0, 491.0)
    assert 143.0 in positions["amorphous_rearranged"] and 91.0 in positions["amorphous"]
    # the cubic A1g sits at 651 cm-1 at 750 C and moves to the blue on cooling
    assert LLZO.band_positions("cubic", 750.0)[-1] == pytest.approx(651.0)
    assert LLZO.band_positions("cubic", 25.0)[-1] > 655.0


def test_rendered_derivatives_match_finite_differences():
    h = 1e-4
    for name in ("tetragonal", "cubic", "pyrochlore"):
        rendered = LLZO.render(name, AXIS, 700.0, shift=0.5, broadening=2.0, derivatives=True)
        plus = LLZO.render(name, AXIS, 700.0, shift=0.5 + h, broadening=2.0).shape
        minus = LLZO.render(name, AXIS, 700.0, shift=0.5 - h, broadening=2.0).shape
        np.testing.assert_allclose(rendered.d_shift, (plus - minus) / (2 * h), atol=1e-4)
        plus = LLZO.render(name, AXIS, 700.0, shift=0.5, broadening=2.0 + h).shape
        minus = LLZO.render(name, AXIS, 700.0, shift=0.5, broadening=2.0 - h).shape
        np.testing.assert_allclose(rendered.d_broadening, (plus - minus) / (2 * h), atol=1e-4)


def test_another_material_is_loaded_from_its_own_file_and_analysed(tmp_path):
    path = tmp_path / "silicon.yaml"
    path.write_text(
        textwrap.dedent(
            """
            material: nanocrystalline silicon film
            thermal_shift_per_C: -2.0e-5
            thermal_broadening_per_C: 0.0
            phases:
              a-Si:
                class: amorphous
                reference_temperature_C: 25
                bands:
                  - {position: 480, fwhm: 70, intensity: 100, lorentz_fraction: 0.2}
              c-Si:
                class: crystalline
                reference_temperature_C: 25
                bands:
                  - {position: 520, fwhm: 6, intensity: 1000, size_broadened: true}
              SiO2:
                class: decomposed
                reference_temperature_C: 25
                bands:
                  - {position: 800, fwhm: 40, intensity: 50}
            """
        )
    )
    silicon = load_reference(path)
    assert silicon.phase_names == ("a-Si", "c-Si", "SiO2")
    rng = np.random.default_rng(0)
    truth = (
        0.3 * silicon.render("c-Si", AXIS, 25.0).shape
        + 0.7 * silicon.render("a-Si", AXIS, 25.0).shape
    )
    counts = rng.poisson(50.0 * truth + 2000.0 + AXIS).astype(float)
    features = describe_spectrum(AXIS, counts, silicon, temperature=25.0)
    assert features.crystalline_fraction == pytest.approx(0.3, abs=0.02)
    assert features.matched_bands(("c-Si",)) == {"c-Si": (520.0,)}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({}, "non-empty 'phases'"),
        ({"phases": {"x": {"class": "glassy", "bands": []}}}, "class 'glassy'"),
        ({"phases": {"x": {"class": "amorphous", "bands": []}}}, "non-empty list of bands"),
        (
            {"phases": {"x": {"class": "amorphous", "bands": [{"position": 1, "fwhm": 2}]}}},
            "missing 'intensity'",
        ),
        (
            {
                "phases": {
                    "x": {
                        "class": "amorphous",
                        "bands": [{"position": 100, "fwhm": -2, "intensity": 1}],
                    }
                }
            },
            r"fwhm -2.0 cm-1 must be > 0",
        ),
        (
            {
                "phases": {
                    "x": {
                        "class": "amorphous",
                        "bands": [{"position": 100, "fwhm": 2, "intensity": 1, "colour": 3}],
                    }
                }
            },
            "unknown keys",
        ),
    ],
)
def test_invalid_reference_tables_are_rejected_with_the_reason(mapping, message):
    with pytest.raises(ValueError, match=message):
        reference_from_mapping(mapping)


def test_an_unknown_phase_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="tetragonal"):
        LLZO.phase("monoclinic")


# --- fractions against the simulated truth -------------------------------------------------------
@pytest.mark.parametrize("temperature", [25.0, 300.0, 550.0, 640.0, 655.0, 690.0, 705.0, 805.0])
def test_class_fractions_follow_the_simulated_film(temperature):
    state, counts = measured(temperature, seed=int(temperature))
    features = describe_spectrum(AXIS, counts, temperature=temperature)
    truth = {
        "crystalline": state.crystalline_fraction,
        "amorphous": state.amorphous_fraction,
        "decomposed": state.pyrochlore,
    }
    for phase_class in PHASE_CLASSES:
        estimate = features.class_fractions[phase_class]
        error = features.class_fraction_errors[phase_class]
        assert math.isfinite(estimate) and error >= 0
        # within 3 of its own standard errors, or 10 % relative / 1.5 % absolute
        tolerance = max(3.0 * error, 0.1 * truth[phase_class], 0.015)
        assert abs(estimate - truth[phase_class]) <= tolerance, (phase_class, estimate, error)
    assert sum(features.class_fractions.values()) == pytest.approx(1.0)
    assert sum(features.phase_fractions.values()) == pytest.approx(1.0)


def test_absent_phases_have_zero_fraction_and_a_detection_limit_as_error():
    _, counts = measured(750.0, seed=2)
    unmixing = unmix_phases(AXIS, counts, temperature=750.0)
    assert "cubic" in unmixing.significant
    assert unmixing.fractions["amorphous_rearranged"] == 0.0
    assert 0.0 < unmixing.class_fraction_errors["amorphous"] < 0.05
    # the fitted model reproduces the spectrum to its noise
    assert unmixing.reduced_chi2 == pytest.approx(1.0, abs=0.3)
    assert unmixing.shifts["cubic"] == pytest.approx(0.0, abs=0.5)


def test_cubic_garnet_peaks_are_found_and_matched_to_the_table():
    _, counts = measured(750.0, seed=1)
    features = describe_spectrum(AXIS, counts, temperature=750.0)
    cubic = [peak for peak in features.peaks if peak.phase == "cubic"]
    assert len(cubic) == 6
    for peak in cubic:
        assert peak.position == pytest.approx(peak.reference_position, abs=3.0)
        # widths at half prominence: overlapping bands (94/113) look narrower than they are
        assert peak.snr > 20 and 5.0 < peak.fwhm < 45.0
    assert features.matched_bands(("cubic",))["cubic"] == (94.0, 113.0, 240.0, 368.0, 468.0, 651.0)


def test_first_tetragonal_crystals_show_their_two_bands():
    _, counts = measured(665.0, seed=3)  # ~10 % crystalline
    features = describe_spectrum(AXIS, counts, temperature=665.0)
    assert set(features.matched_bands(("tetragonal",))["tetragonal"]) == {389.0, 656.0}


def test_crystallinity_index_rises_through_the_transition():
    indices = [
        describe_spectrum(AXIS, measured(t, seed=4)[1], temperature=t).crystallinity_index
        for t in (400.0, 650.0, 680.0, 700.0, 750.0)
    ]
    assert indices[0] == pytest.approx(0.0, abs=0.01)
    assert all(b > a for a, b in zip(indices, indices[1:], strict=False))
    assert indices[-1] > 0.95


def test_the_rearranging_film_is_noisier_in_150_550():
    quiet = describe_spectrum(AXIS, measured(450.0, seed=5)[1], temperature=450.0)
    noisy = describe_spectrum(AXIS, measured(600.0, seed=5)[1], temperature=600.0)
    assert noisy.noise > 2.0 * quiet.noise


def test_cosmic_rays_are_counted_and_do_not_change_the_fractions():
    state = FILM.state(RAMP.time_at_temperature(700.0))
    rng = np.random.default_rng(6)
    clean = raman_model.spectrum(state, 700.0, exposure_s=30.0, rng=6, cosmic_rays=False)
    spiky = clean.copy()
    for start in rng.integers(20, AXIS.size - 20, 6):
        spiky[start : start + 2] += 4000.0
    with_spikes = describe_spectrum(AXIS, spiky, temperature=700.0)
    without = describe_spectrum(AXIS, clean, temperature=700.0)
    assert with_spikes.n_spikes >= 5 and without.n_spikes == 0
    assert with_spikes.crystalline_fraction == pytest.approx(without.crystalline_fraction, abs=0.01)


def test_the_record_is_flat_and_json_ready():
    _, counts = measured(700.0, seed=7)
    record = describe_spectrum(AXIS, counts, temperature=700.0).as_record()
    assert {"crystallinity_index", "crystalline_fraction", "noise", "n_peaks"} <= set(record)
    assert {f"fraction_{name}" for name in LLZO.phase_names} <= set(record)
    assert all(type(value) in (float, int, str) for value in record.values())


def test_without_a_temperature_phases_are_rendered_as_observed():
    _, counts = measured(750.0, seed=8)
    features = describe_spectrum(AXIS, counts)
    assert features.temperature is None
    assert features.crystalline_fraction > 0.95


@pytest.mark.parametrize(
    ("wavenumber", "counts", "message"),
    [
        (AXIS, np.ones(10), "1600 points but counts has 10"),
        (AXIS, np.full(AXIS.size, np.nan), "NaN"),
        (AXIS[::-1].copy()[np.r_[1, 0, 2 : AXIS.size]], np.ones(AXIS.size), "monotonic"),
        (np.zeros(0), np.zeros(0), "at least 32"),
    ],
)
def test_describe_spectrum_rejects_bad_input(wavenumber, counts, message):
    with pytest.raises(ValueError, match=message):
        describe_spectrum(wavenumber, counts)


def test_bad_options_are_rejected():
    _, counts = measured(300.0)
    with pytest.raises(ValueError, match="temperature"):
        unmix_phases(AXIS, counts, temperature=math.nan)
    with pytest.raises(ValueError, match="significance"):
        unmix_phases(AXIS, counts, significance=-1.0)
