"""Raman plots render to files on the headless Agg canvas, alone, on given axes, and live."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from insitu.analysis.plots_raman import LiveRamanPlot, plot_feature_traces, plot_waterfall
from insitu.analysis.raman import RamanTransitionDetector, TransitionFlag, analyze_ramp
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

AXIS = raman_model.default_axis()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ramp():
    """A short, fast 600-760 C stretch of the 5 C/min ramp: onset and full crystallization."""
    profile = ThermalProfile.ramp(25.0, 760.0, 5.0)
    film = GarnetFilm(profile, start_time=0.0)
    temperatures = np.arange(600.0, 760.01, 5.0)
    spectra = np.array(
        [
            raman_model.spectrum(
                film.state(profile.time_at_temperature(t)), t, exposure_s=30.0, rng=i
            )
            for i, t in enumerate(temperatures)
        ]
    )
    return temperatures, spectra


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


def test_waterfall_marks_the_flagged_spectra(tmp_path, ramp):
    temperatures, spectra = ramp
    report = analyze_ramp(temperatures, spectra, AXIS)
    assert report.flags
    ax = plot_waterfall(
        AXIS, spectra, temperatures, flags=report.flags, every=2, path=tmp_path / "w.png"
    )
    assert is_png(tmp_path / "w.png")
    texts = [text.get_text() for text in ax.texts]
    for flag in report.flags:
        assert any(text.startswith(flag.kind) for text in texts)
    assert ax.get_ylabel().startswith("temperature")
    # the vertical axis reads in C: curves sit at their temperatures
    lows = sorted(float(np.median(line.get_ydata())) for line in ax.lines)
    assert lows[0] == pytest.approx(temperatures[0], abs=5.0)
    assert lows[-1] == pytest.approx(temperatures[-1], abs=5.0)


def test_feature_traces_from_a_report_and_from_features(tmp_path, ramp):
    temperatures, spectra = ramp
    report = analyze_ramp(temperatures, spectra, AXIS)
    ax = plot_feature_traces(report, path=tmp_path / "traces.pdf", title="ramp")
    assert (tmp_path / "traces.pdf").read_bytes()[:4] == b"%PDF"
    labels = ax.get_legend_handles_labels()[1]
    assert "crystalline band signal" in labels
    assert any(label.startswith("flag: crystallization_onset") for label in labels)
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert plot_feature_traces(temperatures, report.features, ax=left, show_noise=False) is left
    assert plot_waterfall(AXIS, spectra, temperatures, ax=right, baseline_removed=False) is right
    figure.savefig(tmp_path / "panels.png")
    assert is_png(tmp_path / "panels.png")


def test_live_plot_follows_the_detector_and_saves(tmp_path, ramp):
    temperatures, spectra = ramp
    live = LiveRamanPlot(every=3)
    detector = RamanTransitionDetector()
    for temperature, counts in zip(temperatures, spectra, strict=True):
        flags = detector.update(AXIS, counts, temperature)
        live.update(AXIS, counts, temperature, detector.last_features, flags)
    assert len(live.spectra) == temperatures.size
    assert [f.kind for f in live.flags] == [f.kind for f in detector.flags]
    live.save(tmp_path / "live.png")
    assert is_png(tmp_path / "live.png")


def test_plots_reject_bad_input(ramp):
    temperatures, spectra = ramp
    with pytest.raises(ValueError, match="spectra for"):
        plot_waterfall(AXIS, spectra[:-1], temperatures)
    with pytest.raises(ValueError, match="every"):
        plot_waterfall(AXIS, spectra, temperatures, every=0)
    with pytest.raises(ValueError, match="one TransitionFeatures per temperature"):
        plot_feature_traces(temperatures, [])
    # a flag index outside the drawn spectra is ignored, not an error
    stray = TransitionFlag("crystallized", 10_000, 900.0, 1.0, "test")
    plot_waterfall(AXIS, spectra[:3], temperatures[:3], flags=[stray])


def test_flags_read_back_from_a_catalog_as_kind_and_temperature_pairs(ramp):
    temperatures, spectra = ramp
    ax = plot_waterfall(AXIS, spectra, temperatures, flags=[("crystallized", 716.0)])
    (text,) = ax.texts
    assert text.get_text() == "crystallized (715 C)"  # the spectrum nearest 716 C
    ax = plot_feature_traces(
        temperatures,
        analyze_ramp(temperatures, spectra, AXIS).features,
        flags=[("crystallized", 716.0)],
    )
    assert "flag: crystallized" in ax.get_legend_handles_labels()[1]
