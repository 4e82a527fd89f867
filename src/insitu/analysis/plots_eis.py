"""Impedance plots: Nyquist with the fitted circuit, Bode, and Arrhenius with Ea in the legend.

Each function draws on a given matplotlib ``Axes`` (for live use or a figure of several panels)
or, without one, on a new ``matplotlib.figure.Figure``; with ``path`` it also saves the figure.
Only the object-oriented API is used (no pyplot state), so this works in worker threads and on
headless machines (the Agg canvas).
"""

from __future__ import annotations

from os import PathLike
from typing import Protocol

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from insitu.analysis.arrhenius import CELSIUS_ZERO_K, ArrheniusFit


class _Predicts(Protocol):
    def predict(self, frequency: ArrayLike) -> np.ndarray: ...


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=(5.0, 4.0), layout="constrained").add_subplot()


def save_figure(figure: Figure, path: str | PathLike[str], dpi: int = 150) -> None:
    """Save ``figure`` to ``path``; the format follows the suffix (``.png``, ``.pdf``, ``.svg``)."""
    figure.savefig(path, dpi=dpi)


def _fit_curve(fit: _Predicts, frequency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dense = np.logspace(np.log10(frequency.min()), np.log10(frequency.max()), 400)
    return dense, fit.predict(dense)


def plot_nyquist(
    frequency: ArrayLike,
    impedance: ArrayLike,
    fit: _Predicts | None = None,
    *,
    ax: Axes | None = None,
    label: str = "measured",
    title: str | None = None,
    path: str | PathLike[str] | None = None,
) -> Axes:
    """Nyquist plot (-Z'' against Z', equal scales), with the fitted circuit as a line.

    Parameters
    ----------
    frequency : array_like
        Frequencies in Hz.
    impedance : array_like
        Complex impedance in Ohm.
    fit : CircuitFit or FilmFit, optional
        Anything with ``predict(frequency)``; drawn over the measured range.
    ax : Axes, optional
        Draw here; default: a new figure.
    label, title : str
        Legend label of the data; axes title.
    path : path, optional
        Save the figure here.

    Returns
    -------
    Axes
    """
    f = np.asarray(frequency, dtype=float)
    z = np.asarray(impedance, dtype=complex)
    ax = _axes(ax)
    ax.plot(z.real, -z.imag, "o", markersize=3, label=label)
    if fit is not None:
        _, z_fit = _fit_curve(fit, f)
        ax.plot(z_fit.real, -z_fit.imag, "-", label=getattr(fit, "model", None) or "fit")
    ax.set_xlabel("Z' (Ohm)")
    ax.set_ylabel("-Z'' (Ohm)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.ticklabel_format(style="sci", scilimits=(-3, 4))
    ax.legend()
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(ax.figure, path)
    return ax


def plot_bode(
    frequency: ArrayLike,
    impedance: ArrayLike,
    fit: _Predicts | None = None,
    *,
    axes: tuple[Axes, Axes] | None = None,
    title: str | None = None,
    path: str | PathLike[str] | None = None,
) -> tuple[Axes, Axes]:
    """Bode plot: |Z| and phase against frequency, with the fitted circuit as lines.

    Parameters
    ----------
    frequency, impedance : array_like
        Frequencies (Hz) and complex impedance (Ohm).
    fit : CircuitFit or FilmFit, optional
        Anything with ``predict(frequency)``.
    axes : (Axes, Axes), optional
        Axes for modulus and phase; default: a new figure with two panels.
    title : str, optional
    path : path, optional
        Save the figure here.

    Returns
    -------
    (Axes, Axes)
        Modulus and phase axes.
    """
    f = np.asarray(frequency, dtype=float)
    z = np.asarray(impedance, dtype=complex)
    if axes is None:
        figure = Figure(figsize=(5.0, 5.5), layout="constrained")
        modulus_ax, phase_ax = figure.subplots(2, 1, sharex=True)
    else:
        modulus_ax, phase_ax = axes
    modulus_ax.loglog(f, np.abs(z), "o", markersize=3, label="measured")
    phase_ax.semilogx(f, np.degrees(np.angle(z)), "o", markersize=3)
    if fit is not None:
        dense, z_fit = _fit_curve(fit, f)
        modulus_ax.loglog(dense, np.abs(z_fit), "-", label=getattr(fit, "model", None) or "fit")
        phase_ax.semilogx(dense, np.degrees(np.angle(z_fit)), "-")
    modulus_ax.set_ylabel("|Z| (Ohm)")
    phase_ax.set_ylabel("phase (deg)")
    phase_ax.set_xlabel("frequency (Hz)")
    modulus_ax.legend()
    if title:
        modulus_ax.set_title(title)
    if path is not None:
        save_figure(modulus_ax.figure, path)
    return modulus_ax, phase_ax


def plot_arrhenius(
    temperature_K: ArrayLike,
    sigma: ArrayLike,
    fit: ArrheniusFit | None = None,
    *,
    ax: Axes | None = None,
    label: str = "measured",
    title: str | None = None,
    path: str | PathLike[str] | None = None,
) -> Axes:
    """Arrhenius plot: log10 of sigma*T (or sigma) against 1000/T, the fit with Ea in the legend.

    Parameters
    ----------
    temperature_K, sigma : array_like
        Temperatures (K) and conductivities (S/cm).
    fit : ArrheniusFit, optional
        Its ``form`` decides the ordinate; default ``sigmaT`` without a fit.
    ax : Axes, optional
    label, title : str
    path : path, optional
        Save the figure here.

    Returns
    -------
    Axes
    """
    t = np.asarray(temperature_K, dtype=float)
    s = np.asarray(sigma, dtype=float)
    form = fit.form if fit is not None else "sigmaT"
    ordinate = s * t if form == "sigmaT" else s
    ax = _axes(ax)
    ax.plot(1000.0 / t, np.log10(ordinate), "o", label=label)
    if fit is not None:
        line_t = np.linspace(t.min(), t.max(), 100)
        line = np.asarray(fit.sigma_at(line_t)) * (line_t if form == "sigmaT" else 1.0)
        ax.plot(
            1000.0 / line_t,
            np.log10(line),
            "-",
            label=f"Ea = {fit.Ea_eV:.3f} \u00b1 {fit.Ea_stderr_eV:.3f} eV",
        )
        for cycle_label, cycle_fit in fit.per_cycle.items():
            ax.plot(
                1000.0 / cycle_fit.temperature_K,
                np.log10(cycle_fit.sigma * (cycle_fit.temperature_K if form == "sigmaT" else 1.0)),
                ".",
                label=f"{cycle_label}: Ea = {cycle_fit.Ea_eV:.3f} eV",
            )
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("log10(sigma T / S K cm-1)" if form == "sigmaT" else "log10(sigma / S cm-1)")
    celsius_axis = ax.secondary_xaxis(
        "top",
        functions=(
            lambda x: 1000.0 / np.maximum(x, 1e-9) - CELSIUS_ZERO_K,
            lambda c: 1000.0 / np.maximum(c + CELSIUS_ZERO_K, 1e-9),
        ),
    )
    celsius_axis.set_xlabel("T (C)")
    ax.legend()
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(ax.figure, path)
    return ax
