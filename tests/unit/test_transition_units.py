"""The transition flags on spectra as other instruments' files give them: counts per second,
dark-subtracted (negative) counts, float32 or integer counts and a decreasing axis raise the same
flags at the same spectra; a recalibrated axis keeps its noise; spectra normalized one by one, or
clipped at full scale, are named in a warning (the clipped pixels get no weight), a hot pixel is
not; an axis without the bands a flag is read from is named at the first spectrum."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from insitu.analysis.raman_preprocess import saturated_pixels
from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.raman_ramps import draw_ramp, flags_raised, judge


@pytest.fixture(scope="module")
def ramp():
    return draw_ramp(7, 850.0).spectra()


@pytest.fixture(scope="module")
def as_counts(ramp):
    detector = RamanTransitionDetector()
    flags = flags_raised(ramp, detector)
    assert set(flags) == {"crystallization_onset", "crystallized", "decomposition"}
    assert detector.scale_warning is None
    return flags


def _flags(ramp, wavenumber, counts) -> dict[str, int]:
    detector = RamanTransitionDetector()
    flags = {}
    for temperature, row in zip(ramp.temperatures, counts, strict=True):
        for flag in detector.update(wavenumber, row, temperature):
            flags[flag.kind] = flag.index
    return flags


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda c: c * 1e-4, id="counts per second"),
        pytest.param(lambda c: c - 1.2 * c.min(), id="dark-subtracted, negative"),
        pytest.param(lambda c: c.astype(np.float32), id="float32"),
        pytest.param(lambda c: np.round(c).astype(np.int64), id="integer"),
    ],
)
def test_other_units_offsets_and_dtypes_raise_the_same_flags(ramp, as_counts, convert):
    assert _flags(ramp, ramp.wavenumber, convert(ramp.counts)) == as_counts


def test_a_decreasing_axis_raises_the_same_flags(ramp, as_counts):
    assert _flags(ramp, ramp.wavenumber[::-1], ramp.counts[:, ::-1]) == as_counts


def test_spectra_normalized_one_by_one_are_named_in_a_warning(ramp, caplog):
    normalized = ramp.counts / ramp.counts.max(axis=1, keepdims=True)
    detector = RamanTransitionDetector()
    with caplog.at_level(logging.WARNING, logger="insitu.analysis.transitions"):
        for temperature, row in zip(ramp.temperatures[:6], normalized[:6], strict=True):
            detector.update(ramp.wavenumber, row, temperature)
    assert detector.scale_warning is not None and "same maximum (1)" in detector.scale_warning
    assert "one intensity scale" in caplog.text
    detector.reset()
    assert detector.scale_warning is None


def test_a_hot_pixel_in_every_spectrum_is_not_taken_for_a_normalization(ramp, as_counts):
    # One pixel stuck at 5x the brightest band gave the first spectra one maximum, read as a
    # normalization (the flags were right, the warning was not): a maximum that is a spike at
    # the same pixel in every spectrum is a hot pixel.
    counts = ramp.counts.copy()
    counts[:, 300] = 5.0 * ramp.counts.max()
    detector = RamanTransitionDetector()
    flags = {}
    for temperature, row in zip(ramp.temperatures, counts, strict=True):
        for flag in detector.update(ramp.wavenumber, row, temperature):
            flags[flag.kind] = flag.index
    assert detector.scale_warning is None
    verdicts = {kind: v.verdict for kind, v in judge(ramp, flags).items()}
    assert verdicts == {kind: v.verdict for kind, v in judge(ramp, as_counts).items()}


def test_an_axis_without_a_flags_bands_is_named_at_the_first_spectrum(ramp, caplog):
    # From 300 cm-1 the decomposition's band (La2Zr2O7, 275 cm-1) is off the axis: the onset and
    # completion come as on the whole axis, the decomposition cannot, and the warning says so.
    on = ramp.wavenumber >= 300.0
    cut = dataclasses.replace(ramp, wavenumber=ramp.wavenumber[on], counts=ramp.counts[:, on])
    detector = RamanTransitionDetector()
    with caplog.at_level(logging.WARNING, logger="insitu.analysis.transitions"):
        detector.update(cut.wavenumber, cut.counts[0], float(cut.temperatures[0]))
    assert detector.axis_warning is not None
    assert "decomposition (bands at 275 cm-1" in detector.axis_warning
    assert "crystallization_onset" not in detector.axis_warning
    assert "holds none of the bands" in caplog.text
    verdicts = judge(cut, flags_raised(cut, detector))
    assert [verdicts[k].verdict for k in ("crystallization_onset", "crystallized")] == ["ok"] * 2
    assert verdicts["decomposition"].verdict == "missed"
    # Up to 360 cm-1 no crystalline band is on it: no flag can come at all.
    low = ramp.wavenumber <= 360.0
    detector = RamanTransitionDetector()
    detector.update(ramp.wavenumber[low], ramp.counts[0, low], float(ramp.temperatures[0]))
    assert "crystallization_onset" in detector.axis_warning
    assert "no flag can come" in detector.axis_warning
    # The whole axis holds them all.
    detector = RamanTransitionDetector()
    detector.update(ramp.wavenumber, ramp.counts[0], float(ramp.temperatures[0]))
    assert detector.axis_warning is None


def test_an_axis_without_the_common_modes_still_follows_the_growth_without_warnings():
    # 420-640 cm-1: neither common mode (368/389, 651/656 cm-1) is on it, the garnet's 468 is;
    # completion can be read from every crystalline band's area, and the common modes' empty
    # signal (an area of 0 with no error) made a RuntimeWarning at every spectrum after the
    # onset (this film's onset comes from 468 alone).
    ramp = draw_ramp(3, 850.0).spectra()
    on = (ramp.wavenumber >= 420.0) & (ramp.wavenumber <= 640.0)
    cut = dataclasses.replace(ramp, wavenumber=ramp.wavenumber[on], counts=ramp.counts[:, on])
    detector = RamanTransitionDetector()
    flags = flags_raised(cut, detector)  # warnings are errors in this suite
    assert "crystallization_onset" in flags
    assert "crystallized" not in (detector.axis_warning or "")
    assert "decomposition (bands at 275 cm-1" in detector.axis_warning


def _flat_spectrum(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    light = 2000.0 + 800.0 * np.exp(-(((x - 600.0) / 300.0) ** 2))
    return rng.poisson(light).astype(float)


def test_a_recalibrated_axis_keeps_the_noise_its_pixels_have():
    # The same light, read on an axis half a pixel away (a recalibration): the noise must be
    # measured on the spectrum's own pixels. Read from second differences after interpolation
    # onto the first axis it came out several times too small, and every z with it.
    rng = np.random.default_rng(11)
    x = np.linspace(100.0, 1200.0, 1600)
    shifted = x + 0.5 * (x[1] - x[0])
    detector = RamanTransitionDetector()
    detector.update(x, _flat_spectrum(x, rng), 25.0)
    detector.update(shifted, _flat_spectrum(shifted, rng), 25.0)
    first, second = (features.noise for features in detector.history)
    assert second == pytest.approx(first, rel=0.1)


def test_an_axis_a_few_cm1_short_of_the_first_is_filled_and_more_is_refused():
    rng = np.random.default_rng(12)
    x = np.linspace(100.0, 1200.0, 1600)  # 0.69 cm-1 per pixel
    detector = RamanTransitionDetector()
    detector.update(x, _flat_spectrum(x, rng), 25.0)
    detector.update(x[10:], _flat_spectrum(x[10:], rng), 25.0)  # 6.9 cm-1 short
    detector.update(x[:-10], _flat_spectrum(x[:-10], rng), 25.0)
    assert detector.index == 3
    with pytest.raises(ValueError, match=r"20\.6 cm-1 short at an end \(at most 10 cm-1"):
        detector.update(x[30:], _flat_spectrum(x[30:], rng), 25.0)
    assert detector.index == 3


def test_a_flat_top_is_saturated_and_chance_ties_of_faint_counts_are_not():
    y = np.random.default_rng(13).poisson(np.full(400, 5000.0)).astype(float)
    y[100:106] = y.max() + 10.0
    assert np.flatnonzero(saturated_pixels(y)).tolist() == list(range(100, 106))
    rng = np.random.default_rng(14)
    faint = rng.poisson(30.0 + 20.0 * np.sin(np.linspace(0, 6, 1600)), size=(2000, 1600))
    assert not any(saturated_pixels(row.astype(float)) is not None for row in faint)


def test_a_ramp_clipped_at_full_scale_is_named_and_its_clipped_pixels_get_no_weight(caplog):
    # Early spectra clipped at 90 % of the first one's maximum (a strong fluorescence): with the
    # clipped pixels weighed as measured, the completion came 5 spectra before 90 % crystalline.
    ramp = draw_ramp(12, 850.0).spectra()
    clipped = dataclasses.replace(ramp, counts=np.minimum(ramp.counts, 0.9 * ramp.counts[0].max()))
    with caplog.at_level(logging.WARNING, logger="insitu.analysis.transitions"):
        verdicts = judge(clipped, flags_raised(clipped, RamanTransitionDetector()))
    assert "is saturated at" in caplog.text and "shorten the exposure" in caplog.text
    assert verdicts["crystallized"].verdict == "ok", verdicts["crystallized"]
