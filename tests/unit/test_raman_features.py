"""Raman references and the band-model unmixing: tables, line shapes, fractions, peaks.

The LLZO reference is the paper's: band positions only. Unmixing needs line shapes, so it is
tested here on a band-model reference written in this file (a made-up three-phase material
whose spectra are rendered from that same table): a test of the algebra of the unmixing, not of
a material.
"""

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

AXIS = np.linspace(50.0, 1000.0, 1600)
MODEL = reference_from_mapping(
    {
        "material": "a made-up film",
        "thermal_shift_per_C": -1.0e-5,
        "thermal_broadening_per_C": 4.0e-4,
        "phases": {
            "glass": {
                "class": "amorphous",
                "reference_temperature_C": 25,
                "bands": [
                    {"position": 180, "fwhm": 60, "intensity": 60, "lorentz_fraction": 0.2},
                    {"position": 520, "fwhm": 300, "intensity": 40, "broad": True},
                ],
            },
            "crystal": {
                "class": "crystalline",
                "reference_temperature_C": 25,
                "bands": [
                    {"position": 330, "fwhm": 12, "intensity": 500, "size_broadened": True},
                    {"position": 610, "fwhm": 18, "intensity": 900, "size_broadened": True},
                ],
            },
            "oxide": {
                "class": "decomposed",
                "reference_temperature_C": 25,
                "bands": [{"position": 450, "fwhm": 40, "intensity": 300}],
            },
        },
    }
)


def measured(fractions: dict[str, float], seed: int = 0, scale: float = 30.0) -> np.ndarray:
    """Counts of a film with these phase fractions: the model's shapes, a background, noise."""
    truth = sum(share * MODEL.render(name, AXIS, 25.0).shape for name, share in fractions.items())
    background = 3000.0 * (1.0 + 0.5 * (AXIS - 50.0) / 950.0)
    return np.random.default_rng(seed).poisson(scale * truth + background).astype(float)


# --- the reference table -------------------------------------------------------------------------
def test_the_llzo_reference_is_the_papers_table_positions_only():
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
    assert positions["amorphous_rearranged"] == (143.0,) and positions["amorphous"] == (91.0,)
    assert all(band.assignment for phase in LLZO.phases for band in phase.bands)
    assert not LLZO.has_line_shapes
    assert LLZO.band_positions("cubic", 750.0)[-1] == pytest.approx(651.0)


def test_a_positions_only_reference_cannot_be_rendered_and_says_why():
    with pytest.raises(ValueError, match="band positions only"):
        LLZO.render("cubic", AXIS, 700.0)
    with pytest.raises(ValueError, match="band positions only"):
        unmix_phases(AXIS, measured({"glass": 1.0}), LLZO)


def test_rendered_derivatives_match_finite_differences():
    h = 1e-4
    for name in ("crystal",):
        rendered = MODEL.render(name, AXIS, 700.0, shift=0.5, broadening=2.0, derivatives=True)
        plus = MODEL.render(name, AXIS, 700.0, shift=0.5 + h, broadening=2.0).shape
        minus = MODEL.render(name, AXIS, 700.0, shift=0.5 - h, broadening=2.0).shape
        np.testing.assert_allclose(rendered.d_shift, (plus - minus) / (2 * h), atol=1e-4)
        plus = MODEL.render(name, AXIS, 700.0, shift=0.5, broadening=2.0 + h).shape
        minus = MODEL.render(name, AXIS, 700.0, shift=0.5, broadening=2.0 - h).shape
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
            "both or neither",
        ),
        (
            {"phases": {"x": {"class": "amorphous", "bands": [{"fwhm": 2, "intensity": 1}]}}},
            "missing 'position'",
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


# --- the unmixing on a band-model reference ------------------------------------------------------
@pytest.mark.parametrize(
    "fractions",
    [
        {"glass": 1.0},
        {"glass": 0.7, "crystal": 0.3},
        {"glass": 0.05, "crystal": 0.95},
        {"crystal": 0.6, "oxide": 0.4},
    ],
)
def test_class_fractions_are_recovered(fractions):
    features = describe_spectrum(AXIS, measured(fractions, seed=1), MODEL, temperature=25.0)
    classes = {"glass": "amorphous", "crystal": "crystalline", "oxide": "decomposed"}
    for phase_class in PHASE_CLASSES:
        truth = sum(share for name, share in fractions.items() if classes[name] == phase_class)
        estimate = features.class_fractions[phase_class]
        error = features.class_fraction_errors[phase_class]
        assert math.isfinite(estimate) and error >= 0
        assert abs(estimate - truth) <= max(3.0 * error, 0.02), (phase_class, estimate, error)
    assert sum(features.class_fractions.values()) == pytest.approx(1.0)


def test_absent_phases_have_zero_fraction_and_a_detection_limit_as_error():
    unmixing = unmix_phases(AXIS, measured({"crystal": 1.0}, seed=2), MODEL, temperature=25.0)
    assert "crystal" in unmixing.significant
    assert unmixing.fractions["oxide"] == 0.0
    assert 0.0 < unmixing.class_fraction_errors["amorphous"] < 0.05
    assert unmixing.reduced_chi2 == pytest.approx(1.0, abs=0.3)
    assert unmixing.shifts["crystal"] == pytest.approx(0.0, abs=0.5)


def test_crystal_peaks_are_found_and_matched_to_the_table():
    features = describe_spectrum(AXIS, measured({"crystal": 1.0}, seed=3), MODEL, temperature=25.0)
    assert features.matched_bands(("crystal",)) == {"crystal": (330.0, 610.0)}
    assert features.crystallinity_index > 0.95


def test_cosmic_rays_are_counted_and_do_not_change_the_fractions():
    clean = measured({"glass": 0.5, "crystal": 0.5}, seed=6)
    spiky = clean.copy()
    for start in np.random.default_rng(6).integers(20, AXIS.size - 20, 6):
        spiky[start : start + 2] += 4000.0
    with_spikes = describe_spectrum(AXIS, spiky, MODEL, temperature=25.0)
    without = describe_spectrum(AXIS, clean, MODEL, temperature=25.0)
    assert with_spikes.n_spikes >= 5 and without.n_spikes == 0
    assert with_spikes.crystalline_fraction == pytest.approx(without.crystalline_fraction, abs=0.01)


def test_the_record_is_flat_and_json_ready():
    record = describe_spectrum(AXIS, measured({"glass": 1.0}), MODEL, temperature=25.0).as_record()
    assert {"crystallinity_index", "crystalline_fraction", "noise", "n_peaks"} <= set(record)
    assert {f"fraction_{name}" for name in MODEL.phase_names} <= set(record)
    assert all(type(value) in (float, int, str) for value in record.values())


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
        describe_spectrum(wavenumber, counts, MODEL)


def test_bad_options_are_rejected():
    counts = measured({"glass": 1.0})
    with pytest.raises(ValueError, match="temperature"):
        unmix_phases(AXIS, counts, MODEL, temperature=math.nan)
    with pytest.raises(ValueError, match="significance"):
        unmix_phases(AXIS, counts, MODEL, significance=-1.0)
