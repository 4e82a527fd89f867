"""Raman plots: a waterfall of spectra against temperature with flags, and the feature traces.

Each function draws on a given matplotlib ``Axes`` (for a live figure or one of several panels)
or, without one, on a new ``matplotlib.figure.Figure``; with ``path`` it also saves the figure.
Only the object-oriented API is used (no pyplot state), so this works in worker threads and on
headless machines. :class:`LiveRamanPlot` keeps a two-panel figure up to date spectrum by
spectrum (give it a figure from ``plt.figure()`` for an interactive window; matplotlib figures
must be drawn from the thread that owns the GUI, so feed it from there, not from the callback's
worker thread).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from os import PathLike

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from insitu.analysis.plots_eis import save_figure
from insitu.analysis.raman_preprocess import check_spectrum, estimate_baseline, remove_spikes
from insitu.analysis.ramp_report import PROGRESS_LEVELS, RampReport, progress
from insitu.analysis.transition_features import TransitionFeatures
from insitu.analysis.transitions import TransitionFlag

__all__ = ["plot_waterfall", "plot_feature_traces", "LiveRamanPlot", "save_figure"]

FLAG_COLOURS = {
    "crystallization_onset": "tab:orange",
    "crystallized": "tab:green",
    "decomposition": "tab:red",
}
DEFAULT_LEVELS = {
    trace: tuple(level for name, level in PROGRESS_LEVELS.values() if name == trace)
    for trace in ("crystalline", "decomposed")
}


FlagLike = TransitionFlag | tuple[str, float]


def _flag_markers(flags: Sequence[FlagLike], temperatures: np.ndarray) -> dict[int, str]:
    """Spectrum position -> flag kind; ``(kind, temperature)`` pairs (as read back from a
    ``transitions`` stream) go to the spectrum nearest that temperature."""
    markers: dict[int, str] = {}
    for flag in flags:
        if isinstance(flag, TransitionFlag):
            kind, index = flag.kind, flag.index
        else:
            kind, temperature = flag
            index = int(np.argmin(np.abs(temperatures - float(temperature))))
        if 0 <= index < temperatures.size:
            markers[index] = str(kind)
    return markers


def _flag_temperatures(flags: Sequence[FlagLike]) -> list[tuple[str, float]]:
    return [
        (flag.kind, flag.temperature)
        if isinstance(flag, TransitionFlag)
        else (str(flag[0]), float(flag[1]))
        for flag in flags
    ]


def _axes(ax: Axes | None, size: tuple[float, float] = (6.0, 7.0)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def _pairs(
    wavenumber: ArrayLike | Sequence[ArrayLike],
    spectra: ArrayLike | Sequence[ArrayLike],
    n: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    counts = [np.asarray(y, dtype=float) for y in spectra]
    if len(counts) != n:
        raise ValueError(f"plot: {len(counts)} spectra for {n} temperatures")
    if isinstance(wavenumber, (list, tuple)) and len(wavenumber) and np.ndim(wavenumber[0]) == 1:
        axes = [np.asarray(x, dtype=float) for x in wavenumber]
    else:
        axis = np.asarray(wavenumber, dtype=float)
        axes = [axis] * n if axis.ndim == 1 else list(axis)
    if len(axes) != n:
        raise ValueError(f"plot: {len(axes)} wavenumber axes for {n} spectra")
    return [
        check_spectrum(x, y, name=f"spectrum {i}")
        for i, (x, y) in enumerate(zip(axes, counts, strict=True))
    ]


def plot_waterfall(
    wavenumber: ArrayLike | Sequence[ArrayLike],
    spectra: ArrayLike | Sequence[ArrayLike],
    temperatures: ArrayLike,
    *,
    flags: Sequence[FlagLike] = (),
    baseline_removed: bool = True,
    height: float | None = None,
    every: int = 1,
    ax: Axes | None = None,
    cmap: str = "viridis",
    title: str | None = None,
    path: str | PathLike[str] | None = None,
) -> Axes:
    """Spectra stacked at their temperature (the vertical axis reads in C), flags marked.

    Parameters
    ----------
    wavenumber : array_like
        One axis for all spectra (cm-1), or one per spectrum.
    spectra : array_like or sequence
        Counts, one spectrum per temperature.
    temperatures : array_like
        Temperature of each spectrum (C).
    flags : sequence of TransitionFlag or (kind, temperature) pairs
        Flagged spectra are drawn thick in the flag's colour and labelled: a TransitionFlag marks
        spectrum ``flag.index``, a ``(kind, temperature)`` pair (e.g. read back from a
        ``transitions`` stream) the spectrum nearest that temperature.
    baseline_removed : bool
        Despike and subtract the pybaselines baseline before drawing.
    height : float, optional
        Height (C) of the tallest spectrum; default four temperature steps.
    every : int
        Draw every ``every``-th spectrum (flagged ones always).
    ax : Axes, optional
        Draw here; default: a new figure.
    cmap, title : str
        Colour map over temperature; axes title.
    path : path, optional
        Save the figure here (format from the suffix).

    Returns
    -------
    Axes
    """
    t = np.asarray(temperatures, dtype=float)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError("plot_waterfall: temperatures must be a non-empty 1-D finite array")
    if int(every) != every or every < 1:
        raise ValueError(f"plot_waterfall: every {every} must be an integer >= 1")
    pairs = _pairs(wavenumber, spectra, t.size)
    curves = []
    for x, y in pairs:
        if baseline_removed:
            y = remove_spikes(y).counts
            y = y - estimate_baseline(x, y)
        curves.append((x, y))
    peak = max(float(np.max(np.abs(y))) for _, y in curves) or 1.0
    step = float(np.median(np.abs(np.diff(t)))) if t.size > 1 else 1.0
    scale = (4.0 * (step or 1.0) if height is None else float(height)) / peak
    flagged = _flag_markers(flags, t)
    colours = colormaps[cmap]
    span = (float(t.min()), float(t.max())) if t.size > 1 else (float(t[0]), float(t[0]) + 1.0)
    ax = _axes(ax)
    for i, ((x, y), temperature) in enumerate(zip(curves, t, strict=True)):
        kind = flagged.get(i)
        if kind is None and i % every:
            continue
        if kind is None:
            share = (temperature - span[0]) / ((span[1] - span[0]) or 1.0)
            ax.plot(x, temperature + scale * y, color=colours(share), linewidth=0.6)
            continue
        colour = FLAG_COLOURS.get(kind, "black")
        ax.plot(x, temperature + scale * y, color=colour, linewidth=1.8, label=kind)
        ax.annotate(
            f"{kind} ({temperature:.0f} C)",
            xy=(float(x[-1]), temperature),
            xytext=(4, 0),
            textcoords="offset points",
            color=colour,
            fontsize=8,
            va="center",
        )
    ax.set_xlabel("Raman shift (cm$^{-1}$)")
    ax.set_ylabel("temperature (C); spectra offset")
    if flagged:
        ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(ax.figure, path)
    return ax


def plot_feature_traces(
    temperatures: ArrayLike | RampReport,
    features: Sequence[TransitionFeatures] | None = None,
    *,
    flags: Sequence[FlagLike] | None = None,
    levels: dict[str, tuple[float, ...]] | None = None,
    show_noise: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
    path: str | PathLike[str] | None = None,
) -> Axes:
    """Crystalline and decomposed progress (with 1-sigma bands) against temperature, and flags.

    Progress is each band signal over its largest value in the ramp (see
    :func:`~insitu.analysis.ramp_report.progress`); the crystalline signal in units of its
    noise (what the onset CUSUM adds up) is drawn on a second axis.

    Parameters
    ----------
    temperatures : array_like or RampReport
        Temperature of each spectrum (C); or a :class:`RampReport`, which brings its features,
        flags and transition temperatures (drawn as shaded bands of +/- one uncertainty).
    features : sequence of TransitionFeatures, optional
        Per spectrum (not needed with a RampReport).
    flags : sequence of TransitionFlag or (kind, temperature) pairs, optional
        Drawn as vertical lines at their temperature.
    levels : dict, optional
        Dashed horizontal levels per trace; default the offline report's (0.05, 0.95, 0.10).
    show_noise : bool
        Also draw the crystalline signal in units of noise on a second axis.
    ax : Axes, optional
        Draw here; default: a new figure.
    title : str, optional
    path : path, optional
        Save the figure here.

    Returns
    -------
    Axes
        The progress axes (the noise-unit axis is its twin).
    """
    report = temperatures if isinstance(temperatures, RampReport) else None
    if report is not None:
        t = report.temperatures
        features = report.features
        flags = report.flags if flags is None else flags
    else:
        t = np.asarray(temperatures, dtype=float)
    if features is None or len(features) != t.size:
        raise ValueError("plot_feature_traces: give one TransitionFeatures per temperature")
    ax = _axes(ax, (7.0, 4.5))
    colours = {"crystalline": "tab:blue", "decomposed": "tab:red"}
    for name, colour in colours.items():
        values, errors = progress(features, name)
        if not np.any(np.isfinite(values)):
            continue
        ax.plot(t, values, "o-", markersize=2.5, color=colour, label=f"{name} band signal")
        ax.fill_between(t, values - errors, values + errors, color=colour, alpha=0.2)
    for name, values in (DEFAULT_LEVELS if levels is None else levels).items():
        for level in values:
            ax.axhline(level, color=colours.get(name, "black"), linestyle=":", linewidth=0.8)
    for kind, temperature in _flag_temperatures(flags or ()):
        colour = FLAG_COLOURS.get(kind, "black")
        ax.axvline(temperature, color=colour, linewidth=1.2, label=f"flag: {kind}")
    if report is not None:
        for estimate in report.transitions.values():
            ax.axvspan(
                estimate.temperature - estimate.uncertainty,
                estimate.temperature + estimate.uncertainty,
                color=FLAG_COLOURS.get(estimate.kind, "black"),
                alpha=0.15,
            )
    ax.set_xlabel("temperature (C)")
    ax.set_ylabel("band signal / its largest value")
    ax.set_ylim(-0.1, 1.1)
    if show_noise:
        z_ax = ax.twinx()
        z = np.array([f.crystalline_z for f in features], dtype=float)
        z_ax.plot(t, z, color="tab:brown", linewidth=0.8, alpha=0.7)
        z_ax.set_yscale("symlog", linthresh=10.0)
        finite = z[np.isfinite(z)]
        if finite.size:  # at least -5..10: a film where nothing grows reads as noise about 0
            z_ax.set_ylim(min(-5.0, 1.2 * finite.min()), max(10.0, 1.2 * finite.max()))
        z_ax.set_ylabel("crystalline signal / noise", color="tab:brown")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="center left", fontsize=7)
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(ax.figure, path)
    return ax


class LiveRamanPlot:
    """A waterfall and the feature traces, redrawn as each spectrum is analysed.

    Parameters
    ----------
    figure : Figure, optional
        Draw into this figure (e.g. ``plt.figure()`` for a window); default a new
        ``matplotlib.figure.Figure`` (headless, save it with :meth:`save`).
    every : int
        Waterfall: draw every ``every``-th spectrum.

    Examples
    --------
    >>> live = LiveRamanPlot()  # doctest: +SKIP
    >>> for temperature, counts in ramp:  # doctest: +SKIP
    ...     flags = detector.update(axis, counts, temperature)
    ...     live.update(axis, counts, temperature, detector.last_features, flags)
    >>> live.save("ramp.png")  # doctest: +SKIP
    """

    def __init__(self, figure: Figure | None = None, *, every: int = 1) -> None:
        self.figure = (
            Figure(figsize=(11.0, 6.0), layout="constrained") if figure is None else figure
        )
        self.figure.clear()
        self.waterfall_ax, self.traces_ax = self.figure.subplots(1, 2)
        self.every = every
        self.wavenumbers: list[np.ndarray] = []
        self.spectra: list[np.ndarray] = []
        self.temperatures: list[float] = []
        self.features: list[TransitionFeatures] = []
        self.flags: list[TransitionFlag] = []

    def update(
        self,
        wavenumber: ArrayLike,
        counts: ArrayLike,
        temperature: float,
        features: TransitionFeatures,
        flags: Sequence[TransitionFlag] = (),
    ) -> None:
        """Add one analysed spectrum (and the flags it raised) and redraw.

        Only the spectra given here are drawn, so the flags are re-indexed to this plot.
        """
        x, y = check_spectrum(wavenumber, counts)
        self.wavenumbers.append(x)
        self.spectra.append(y)
        self.temperatures.append(float(temperature))
        self.features.append(features)
        # The plot keeps its own list of spectra: index the flags by position in it.
        position = len(self.spectra) - 1
        self.flags.extend(dataclasses.replace(flag, index=position) for flag in flags)
        self.redraw()

    def redraw(self) -> None:
        """Draw both panels from the data held so far."""
        for ax in self.figure.axes[2:]:
            ax.remove()  # the noise twin axis of the previous draw
        self.waterfall_ax.clear()
        self.traces_ax.clear()
        if not self.spectra:
            return
        plot_waterfall(
            self.wavenumbers,
            self.spectra,
            self.temperatures,
            flags=self.flags,
            every=self.every,
            ax=self.waterfall_ax,
        )
        plot_feature_traces(self.temperatures, self.features, flags=self.flags, ax=self.traces_ax)
        self.figure.canvas.draw_idle()

    def save(self, path: str | PathLike[str], dpi: int = 150) -> None:
        """Save the figure (format from the suffix)."""
        save_figure(self.figure, path, dpi=dpi)
