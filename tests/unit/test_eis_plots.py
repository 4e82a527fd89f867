"""EIS plots render to PNG files on the headless Agg canvas, alone or on given axes."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from insitu.analysis.eis import circuit_impedance, fit_arrhenius, fit_circuit, fit_film
from insitu.analysis.plots_eis import plot_arrhenius, plot_bode, plot_nyquist, save_figure

FREQUENCY = np.logspace(6, -1, 61)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def spectrum() -> np.ndarray:
    params = {"R1": 1e7, "CPE1_0": 1e-10, "CPE1_1": 0.9, "CPE2_0": 1e-7, "CPE2_1": 0.7}
    z = circuit_impedance("p(R1,CPE1)-CPE2", params, FREQUENCY)
    noise = np.random.default_rng(0).standard_normal((2, z.size))
    return z + 0.01 * np.abs(z) * (noise[0] + 1j * noise[1])


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


def test_nyquist_and_bode_with_fits_render_to_png(tmp_path):
    z = spectrum()
    film = fit_film(FREQUENCY, z)
    axes = plot_nyquist(FREQUENCY, z, film, path=tmp_path / "nyquist.png", title="film")
    assert is_png(tmp_path / "nyquist.png")
    assert len(axes.lines) == 2 and "p(R1,CPE1)-CPE2" in axes.get_legend_handles_labels()[1]
    modulus_ax, phase_ax = plot_bode(
        FREQUENCY, z, fit_circuit("p(R1,CPE1)-CPE2", FREQUENCY, z), path=tmp_path / "bode.png"
    )
    assert is_png(tmp_path / "bode.png")
    assert modulus_ax.get_xscale() == "log" and phase_ax.get_ylabel() == "phase (deg)"
    plot_nyquist(FREQUENCY, z, path=tmp_path / "data-only.png")
    assert is_png(tmp_path / "data-only.png")


def test_arrhenius_plot_has_the_energy_in_its_legend(tmp_path):
    temperatures = np.arange(373.15, 774.0, 50.0)
    sigma = 1e3 / temperatures * np.exp(-0.36 / (8.617333262e-5 * temperatures))
    fit = fit_arrhenius(temperatures, sigma, cycle=[1] * 5 + [2] * 4)
    axes = plot_arrhenius(temperatures, sigma, fit, path=tmp_path / "arrhenius.png")
    assert is_png(tmp_path / "arrhenius.png")
    labels = axes.get_legend_handles_labels()[1]
    assert any(label.startswith("Ea = 0.360") for label in labels)
    assert any(label.startswith("1: Ea =") for label in labels)


def test_plots_draw_on_given_axes_for_multi_panel_figures(tmp_path):
    z = spectrum()
    figure = Figure(figsize=(10, 4))
    left, middle, right = figure.subplots(1, 3)
    assert plot_nyquist(FREQUENCY, z, ax=left) is left
    plot_bode(FREQUENCY, z, axes=(middle, right))
    assert len(middle.lines) == 1 and len(right.lines) == 1
    save_figure(figure, tmp_path / "panels.png")
    assert is_png(tmp_path / "panels.png")
