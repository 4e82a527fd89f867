"""Write a campaign report: one self-contained HTML page with figures and the results table."""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from insitu.analysis.campaign import PAPER_RESULTS, CampaignSummary, campaign_runs, summarize
from insitu.analysis.eis import fit_film
from insitu.analysis.plots_eis import plot_bode, plot_nyquist
from insitu.analysis.plots_raman import plot_feature_traces, plot_waterfall
from insitu.analysis.ramp_report import analyze_ramp
from insitu.analysis.stored_stream import read_stream

__all__ = ["figure_html", "page", "write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 80em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: right; }
th { background: #eee; font-weight: normal; }
th.group { text-align: center; font-weight: bold; }
td.name { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; max-width: 60em; }
.ours { font-weight: bold; }
.off { color: #b00; }
"""

#: A deviation from the paper above this (%) is shown in red.
_DEVIATION_NOTED_PCT = 15.0


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    # Every report figure is laid out by constrained layout, which keeps its labels inside the
    # canvas; bbox_inches="tight" drew each figure twice to measure it (a third of the report's
    # time, measured on the demo's campaign).
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_html(figure: Figure, caption: str) -> str:
    """A figure as an inline PNG with its caption (the page stands alone)."""
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(figure)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _arrhenius_figure(summary: CampaignSummary) -> Figure:
    """All samples on one Arrhenius plot: one colour per sample, one legend entry each."""
    from matplotlib import colormaps

    figure = Figure(figsize=(7, 5), layout="constrained")
    ax = figure.subplots()
    colours = colormaps["viridis"]
    samples = [s for s in summary.samples if s.eis_points is not None and s.arrhenius]
    for index, sample in enumerate(samples):
        colour = colours(index / max(len(samples) - 1, 1) * 0.9)
        points = sample.eis_points
        good = points[np.isfinite(points["sigma_S_cm"]) & (points["sigma_S_cm"] > 0)]
        temperature_K = good["temperature_C"].to_numpy() + 273.15
        fit = sample.arrhenius
        ordinate = good["sigma_S_cm"].to_numpy() * (temperature_K if fit.form == "sigmaT" else 1)
        ax.plot(1000.0 / temperature_K, np.log10(ordinate), "o", color=colour, markersize=4)
        line_K = np.linspace(temperature_K.min(), temperature_K.max(), 50)
        line = np.asarray(fit.sigma_at(line_K)) * (line_K if fit.form == "sigmaT" else 1.0)
        ax.plot(
            1000.0 / line_K,
            np.log10(line),
            "-",
            color=colour,
            label=f"{sample.anneal_temperature_C:.0f} C anneal: Ea {fit.Ea_eV:.3f} eV",
        )
    form = samples[0].arrhenius.form if samples else "sigmaT"
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("log10(sigma T / S K cm-1)" if form == "sigmaT" else "log10(sigma / S cm-1)")
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda x: 1000.0 / np.maximum(x, 1e-9) - 273.15,
            lambda c: 1000.0 / np.maximum(c + 273.15, 1e-9),
        ),
    )
    top.set_xlabel("T (C)")
    ax.legend(fontsize=9, frameon=False)
    ax.set_title("Arrhenius plot, every impedance point of both cycles")
    return figure


def _nyquist_figures(catalog, summary: CampaignSummary, at_C: float = 300.0) -> list[str]:
    parts = []
    for sample in summary.samples:
        uid = sample.run_uids.get("eis")
        if uid is None:
            continue
        stream = catalog[uid]["primary"]
        temperatures = read_stream(stream, ["stage_temperature"])["stage_temperature"]
        index = int(np.argmin(np.abs(temperatures.astype(float) - at_C)))
        # Only the one spectrum shown: a row of each array, not the whole run.
        frequency = np.asarray(stream["eis_frequency"][index])
        impedance = np.asarray(stream["eis_z_real"][index]) + 1j * np.asarray(
            stream["eis_z_imag"][index]
        )
        film = fit_film(frequency, impedance)
        figure = impedance_figure(
            frequency, impedance, film, title=f"{sample.name} at {temperatures[index]:.0f} C"
        )
        parts.append(
            figure_html(
                figure,
                f"Impedance of {sample.name} at {temperatures[index]:.0f} C: the film's arc "
                f"(Nyquist, zoomed past the blocking-electrode spike) and |Z| and phase over the "
                f"whole sweep, with the fitted {film.model}",
            )
        )
    return parts


def impedance_figure(frequency, impedance, film, *, title: str = "") -> Figure:
    """The film's arc (Nyquist, zoomed to it), Bode |Z| and phase, and the fitted values."""
    f = np.asarray(frequency, dtype=float)
    z = np.asarray(impedance, dtype=complex)
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    grid = figure.add_gridspec(2, 3, width_ratios=[1.1, 1.0, 0.75])
    nyquist = figure.add_subplot(grid[:, 0])
    plot_nyquist(f, z, film, ax=nyquist, title=title or None)
    # The blocking electrodes' low-frequency spike rises far above the arc: show the arc.
    arc_end = float(np.nan_to_num(film.fit.params.get("R0", 0.0))) + film.film_resistance
    if np.isfinite(arc_end) and arc_end > 0:
        nyquist.set_xlim(0.0, 1.3 * arc_end)
        nyquist.set_ylim(0.0, 0.8 * arc_end)
        nyquist.set_aspect("equal", adjustable="box")
    modulus = figure.add_subplot(grid[0, 1])
    phase = figure.add_subplot(grid[1, 1], sharex=modulus)
    plot_bode(f, z, film, axes=(modulus, phase))
    text = figure.add_subplot(grid[:, 2])
    text.axis("off")
    lines = [f"fit: {film.model}"]
    for name, value in film.fit.params.items():
        error = film.fit.stderr.get(name, np.nan)
        shown = "undetermined" if not np.isfinite(value) else f"{value:.3g}"
        if np.isfinite(value) and np.isfinite(error) and error > 0:
            shown += f" +/- {error:.2g}"
        lines.append(f"{name} = {shown}")
    lines.append(f"sigma = {film.conductivity:.3g} S/cm")
    text.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=9)
    return figure


def _waterfall_figures(catalog, summary: CampaignSummary, extra_runs=()) -> list[str]:
    parts = []
    runs = [(s.name, s.run_uids.get("anneal")) for s in summary.samples]
    runs += [(label, uid) for label, uid in extra_runs]
    for label, uid in runs:
        if uid is None:
            continue
        run = catalog[uid]
        primary = run["primary"]  # each lookup of a tiled node is a request: once
        columns = list(primary)
        if "raman_spectrum" not in columns:
            continue
        key = (
            "stage_temperature_mean" if "stage_temperature_mean" in columns else "stage_temperature"
        )
        data = read_stream(primary, ["raman_spectrum", key])
        wavenumber = primary.metadata["configuration"]["raman"]["data"]["raman_wavenumber"]
        flags = []
        if "transitions" in run:
            found = read_stream(run["transitions"], ["kind", "temperature"])
            flags = list(zip(found["kind"], found["temperature"], strict=True))
        spectra = np.asarray(data["raman_spectrum"])
        temperatures = np.asarray(data[key], dtype=float)
        figure = Figure(figsize=(11, 6), layout="constrained")
        waterfall, traces = figure.subplots(1, 2, width_ratios=[1.2, 1.0])
        plot_waterfall(
            np.asarray(wavenumber),
            spectra,
            temperatures,
            flags=flags,
            ax=waterfall,
            title=f"Raman, {label} (baseline removed)",
        )
        if len(temperatures) >= 3:
            report = analyze_ramp(temperatures, spectra, np.asarray(wavenumber))
            plot_feature_traces(report, flags=flags, ax=traces, title="band signals")
        else:
            traces.axis("off")
        parts.append(
            figure_html(
                figure,
                f"Raman of {label}: spectra with their baseline removed, stacked at their "
                "temperature, the live flags marked; beside them the crystalline and "
                "decomposed signals against temperature",
            )
        )
    return parts


def _deviation_pct(ours: float, paper: float | None) -> float:
    if paper is None or not np.isfinite(ours) or not paper:
        return math.nan
    return 100.0 * (ours - paper) / paper


def _cell(value, kind: str = "", css: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        text = ""
    elif kind == "sci":
        text = f"{value:.2e}"
    elif kind == "C":
        text = f"{value:.0f}"
    elif kind == "eV":
        text = f"{value:.3f}"
    elif kind == "pct":
        text = f"{round(value, 1) + 0.0:+.1f}"  # + 0.0: never "-0.0"
        if abs(value) > _DEVIATION_NOTED_PCT:
            css = (css + " off").strip()
    else:
        text = str(value)
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{html.escape(text)}</td>"


def _table_html(summary: CampaignSummary) -> str:
    """The results beside the paper's: units in the headers, deviations in %."""
    head = (
        '<tr><th rowspan="2">sample</th><th rowspan="2">anneal (C)</th>'
        '<th class="group" colspan="3">Raman flags, in-situ ramp (C)</th>'
        '<th class="group" colspan="3">sigma at 30 C (S/cm)</th>'
        '<th class="group" colspan="4">activation energy Ea (eV)</th></tr>'
        "<tr><th>onset</th><th>crystallized</th><th>decomposition</th>"
        "<th>insitu</th><th>paper</th><th>dev. (%)</th>"
        "<th>insitu</th><th>paper</th><th>dev. (%)</th><th>per cycle</th></tr>"
    )
    rows = []
    for sample in summary.samples:
        paper_sigma, paper_ea = PAPER_RESULTS.get(sample.anneal_temperature_C, (None, None))
        ea_error = sample.arrhenius.Ea_stderr_eV if sample.arrhenius else math.nan
        per_cycle = ", ".join(
            f"{label}: {energy:.3f}"
            for label, energy in sorted(sample.Ea_per_cycle().items(), key=str)
        )
        ea = sample.Ea_eV
        cells = [
            f'<td class="name">{html.escape(sample.name)}</td>',
            _cell(sample.anneal_temperature_C, "C"),
            *(
                _cell(sample.transitions.get(kind, math.nan), "C")
                for kind in ("crystallization_onset", "crystallized", "decomposition")
            ),
            _cell(sample.sigma_30C, "sci", "ours"),
            _cell(paper_sigma, "sci"),
            _cell(_deviation_pct(sample.sigma_30C, paper_sigma), "pct"),
            f'<td class="ours">{"" if not np.isfinite(ea) else f"{ea:.3f}"}'
            f"{'' if not np.isfinite(ea_error) else f' &plusmn; {ea_error:.3f}'}</td>",
            _cell(paper_ea, "eV"),
            _cell(_deviation_pct(ea, paper_ea), "pct"),
            f"<td>{html.escape(per_cycle)}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def write_report(
    catalog,
    campaign_id: str,
    path: str | Path,
    *,
    extra_raman_runs=(),
    summary: CampaignSummary | None = None,
) -> Path:
    """Write the campaign report to ``path`` (an .html file); return its path.

    Parameters
    ----------
    catalog : tiled client of the runs container
    campaign_id : str
    path : path
        The HTML file to write (figures are embedded, so the file stands alone).
    extra_raman_runs : list of (label, uid)
        Further Raman runs to show as waterfalls (e.g. an in-situ ramp to 850 C).
    summary : CampaignSummary, optional
        The campaign's :func:`~insitu.analysis.campaign.summarize`, if the caller has it.
    """
    summary = summary or summarize(catalog, campaign_id)
    runs = campaign_runs(catalog, campaign_id)
    parts = [
        f"<h1>insitu campaign report</h1><p>campaign <code>{html.escape(campaign_id)}</code>, "
        f"{len(runs)} runs, written {datetime.datetime.now():%Y-%m-%d %H:%M}</p>",
        "<h2>Results beside Zhu et al., Matter 7 (2024), Table S5</h2>",
        _table_html(summary),
        "<p>Conductivity at 30 C extrapolated from an Arrhenius fit (ln sigma*T against 1/T) of "
        "every impedance point of every heating/cooling cycle (Ea with its standard error; per "
        "cycle in the last column). Deviations beyond "
        f"{_DEVIATION_NOTED_PCT:.0f} % are in red.</p>",
        "<h2>Arrhenius</h2>",
        figure_html(_arrhenius_figure(summary), "Arrhenius plot with fitted lines and Ea"),
        "<h2>Impedance</h2>",
        *_nyquist_figures(catalog, summary),
        "<h2>Raman</h2>",
        *_waterfall_figures(catalog, summary, extra_raman_runs),
    ]
    return page(f"insitu campaign {campaign_id[:8]}", parts, path)


def page(title: str, parts: list[str], path: str | Path) -> Path:
    """Write one self-contained HTML page of ``parts`` (the report's style) to ``path``."""
    document = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>" + "\n".join(parts) + "</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)
    return path
