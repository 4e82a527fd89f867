"""Intensity jumps: a dark frame or a spectrum at another exposure is not tested, a level that
stays is scaled back, and the transition flags come as on the ramp without the fault."""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
import pytest

from insitu.analysis.intensity_jumps import IntensityJumps, _pixelwise_median
from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.raman_ramps import draw_ramp, flags_raised, judge


def _spectra(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, 800)
    light = 3000.0 * (1.0 + 0.5 * np.sin(6 * x)) * (1.0 + 0.002 * np.arange(n))[:, None]
    return rng.poisson(light).astype(float), np.sqrt(light)


def test_one_off_jumps_are_flagged_and_a_lasting_level_is_scaled_back():
    spectra, noise = _spectra(14)
    spectra[5] *= 3.0  # one frame at three times the exposure
    spectra[7] = 300.0 + 0 * spectra[7]  # a dark frame
    spectra[10:] *= 0.5  # the exposure halved for good
    jumps = IntensityJumps()
    results = [jumps.check(y, s) for y, s in zip(spectra, noise, strict=True)]
    jumped = [k for k, (_, ratio) in enumerate(results) if ratio is not None]
    assert jumped == [5, 7, 10, 11]  # the new level is taken at its third spectrum
    assert results[5][1] == pytest.approx(3.0, rel=0.02)
    assert results[12][0] == pytest.approx(2.0, rel=0.02) and results[13][0] == results[12][0]
    assert all(scale == 1.0 for scale, _ in results[:12])


def test_a_smooth_ramp_has_no_jump():
    spectra, noise = _spectra(60)
    jumps = IntensityJumps()
    assert all(jumps.check(y, s)[1] is None for y, s in zip(spectra, noise, strict=True))


def test_bands_vanishing_from_a_faint_spectrum_are_not_a_jump():
    """Where the bands are the only bright pixels, the film losing them is not a glitch."""
    x = np.linspace(100.0, 900.0, 1200)
    noise = np.full(x.size, 8.0)
    baseline = np.full(x.size, 60.0)
    bands = sum(400.0 * np.exp(-0.5 * ((x - c) / 6.0) ** 2) for c in (240.0, 370.0, 650.0))
    jumps = IntensityJumps()
    for _ in range(4):
        assert jumps.check(baseline + bands, noise)[1] is None
    assert jumps.check(baseline + 0.4 * bands, noise)[1] is None  # a decomposition's step
    glitch = jumps.check(0.3 * (baseline + 0.4 * bands), noise)[1]  # then the shutter
    assert glitch is not None and glitch < 1.0 / 1.5


def test_a_faint_film_decomposing_is_tested_through_its_decomposition(caplog):
    # 95 counts at the strongest amorphous band, the fluorescence bleached by 835 C: its last
    # two spectra read as intensity jumps (0.64, 0.49) and the decomposition was missed.
    spec = draw_ramp(21, 850.0)
    spec = dataclasses.replace(spec, signal_counts=spec.signal_counts * 0.2)
    ramp = spec.spectra()
    with caplog.at_level(logging.WARNING, logger="insitu.analysis.transitions"):
        flags = flags_raised(ramp, RamanTransitionDetector())
    assert "glitch" not in caplog.text
    assert judge(ramp, flags)["decomposition"].verdict == "ok"


@pytest.mark.parametrize("ratio, new_level", [(1.0, 3), (float("nan"), 3), (1.5, 1), (1.5, 2.5)])
def test_bad_settings_are_refused(ratio, new_level):
    with pytest.raises(ValueError, match="IntensityJumps"):
        IntensityJumps(ratio, new_level)


def _dark_frame(counts: np.ndarray, k: int) -> None:
    counts[k] = 300.0


def _one_frame_x3(counts: np.ndarray, k: int) -> None:
    counts[k] *= 3.0


def _two_frames_halved(counts: np.ndarray, k: int) -> None:
    counts[k : k + 2] *= 0.5


@pytest.fixture(scope="module")
def clean_ramps():
    ramps = [draw_ramp(seed, 850.0).spectra() for seed in (7, 21)]
    return [(ramp, flags_raised(ramp, RamanTransitionDetector())) for ramp in ramps]


@pytest.mark.parametrize("fault", [_dark_frame, _one_frame_x3, _two_frames_halved])
def test_a_glitch_mid_crystallization_does_not_move_the_flags(fault, clean_ramps, caplog):
    # Read as the film, each of these made the completion 2-11 spectra early on these ramps.
    for ramp, clean in clean_ramps:
        counts = ramp.counts.copy()
        fault(counts, int(np.argmax(ramp.crystalline > 0.5)))
        detector = RamanTransitionDetector()
        with caplog.at_level(logging.WARNING, logger="insitu.analysis.transitions"):
            for temperature, row in zip(ramp.temperatures, counts, strict=True):
                detector.update(ramp.wavenumber, row, temperature)
        assert "not tested (a shutter, exposure or focus glitch?)" in caplog.text
        glitched = {flag.kind: flag.index for flag in detector.flags}
        assert glitched.keys() == clean.keys()
        assert all(abs(glitched[kind] - clean[kind]) <= 2 for kind in clean), (clean, glitched)
        verdicts = {kind: v.verdict for kind, v in judge(ramp, glitched).items()}
        assert verdicts == {kind: v.verdict for kind, v in judge(ramp, clean).items()}


def test_an_exposure_halved_for_good_mid_crystallization_keeps_the_flags(clean_ramps, caplog):
    ramp, clean = clean_ramps[0]
    counts = ramp.counts.copy()
    counts[int(np.argmax(ramp.crystalline > 0.5)) :] *= 0.5
    detector = RamanTransitionDetector()
    with caplog.at_level(logging.WARNING, logger="insitu.analysis.transitions"):
        for temperature, row in zip(ramp.temperatures, counts, strict=True):
            detector.update(ramp.wavenumber, row, temperature)
    assert re.search(r"changed for good, to 0\.(4[6-9]|5)", caplog.text), caplog.text
    assert {flag.kind: flag.index for flag in detector.flags} == clean


@pytest.mark.parametrize("n", [2, 3, 4])
def test_the_pixelwise_median_is_numpys(n):
    spectra = list(np.random.default_rng(n).normal(size=(n, 200)))
    spectra[0][:5] = spectra[1][:5]  # ties
    assert np.array_equal(_pixelwise_median(spectra), np.median(np.asarray(spectra), axis=0))
