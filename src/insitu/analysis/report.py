"""Write a campaign report: one self-contained HTML page with figures and the results table."""

from __future__ import annotations

import base64
import datetime
import html
import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from insitu.analysis.campaign import CampaignSummary, campaign_runs, summarize
from insitu.analysis.eis import fit_film
from insitu.analysis.plots_eis import plot_arrhenius, plot_nyquist
from insitu.analysis.plots_raman import plot_waterfall

__all__ = ["write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
th { background: #eee; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; }
.ours { font-weight: bold; }
"""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_html(figure: Figure, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(figure)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _arrhenius_figure(summary: CampaignSummary) -> Figure:
    figure = Figure(figsize=(6, 4.5))
    ax = figure.subplots()
    for sample in summary.samples:
        points = sample.eis_points
        if points is None or sample.arrhenius is None:
            continue
        good = points[np.isfinite(points["sigma_S_cm"]) & (points["sigma_S_cm"] > 0)]
        plot_arrhenius(
            good["temperature_C"].to_numpy() + 273.15,
            good["sigma_S_cm"].to_numpy(),
            sample.arrhenius,
            ax=ax,
            label=f"{sample.anneal_temperature_C:.0f} C anneal",
        )
    ax.set_title("Arrhenius plot, all samples")
    return figure


def _nyquist_figures(catalog, summary: CampaignSummary, at_C: float = 300.0) -> list[str]:
    parts = []
    for sample in summary.samples:
        uid = sample.run_uids.get("eis")
        if uid is None:
            continue
        data = catalog[uid]["primary"].read()
        temperatures = np.asarray(data["stage_temperature"], dtype=float)
        index = int(np.argmin(np.abs(temperatures - at_C)))
        frequency = np.asarray(data["eis_frequency"])[index]
        impedance = (
            np.asarray(data["eis_z_real"])[index] + 1j * np.asarray(data["eis_z_imag"])[index]
        )
        film = fit_film(frequency, impedance)
        figure = Figure(figsize=(4.5, 4))
        plot_nyquist(
            frequency,
            impedance,
            film,
            ax=figure.subplots(),
            title=f"{sample.name} at {temperatures[index]:.0f} C",
        )
        parts.append(_figure_html(figure, f"Nyquist, {sample.name}, fit {film.model}"))
    return parts


def _waterfall_figures(catalog, summary: CampaignSummary, extra_runs=()) -> list[str]:
    parts = []
    runs = [(s.name, s.run_uids.get("anneal")) for s in summary.samples]
    runs += [(label, uid) for label, uid in extra_runs]
    for label, uid in runs:
        if uid is None:
            continue
        run = catalog[uid]
        if "raman_spectrum" not in run["primary"].read().data_vars:
            continue
        data = run["primary"].read()
        key = "stage_temperature_mean" if "stage_temperature_mean" in data else "stage_temperature"
        wavenumber = run["primary"].metadata["configuration"]["raman"]["data"]["raman_wavenumber"]
        flags = []
        if "transitions" in run:
            found = run["transitions"].read()
            flags = list(zip(found["kind"].values, found["temperature"].values, strict=True))
        figure = Figure(figsize=(6, 6))
        plot_waterfall(
            np.asarray(wavenumber),
            np.asarray(data["raman_spectrum"]),
            np.asarray(data[key]),
            flags=flags,
            ax=figure.subplots(),
            title=f"Raman, {label}",
        )
        parts.append(_figure_html(figure, f"Raman waterfall, {label}, transitions marked"))
    return parts


def _table_html(summary: CampaignSummary) -> str:
    table = summary.table()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for _, row in table.iterrows():
        cells = []
        for column, value in row.items():
            if isinstance(value, float):
                text = "" if not np.isfinite(value) else f"{value:.3g}"
            else:
                text = "" if value is None else str(value)
            css = ' class="ours"' if column in ("sigma_30C_S_cm", "Ea_eV") else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_report(catalog, campaign_id: str, path: str | Path, *, extra_raman_runs=()) -> Path:
    """Write the campaign report to ``path`` (an .html file); return its path.

    Parameters
    ----------
    catalog : tiled client of the runs container
    campaign_id : str
    path : path
        The HTML file to write (figures are embedded, so the file stands alone).
    extra_raman_runs : list of (label, uid)
        Further Raman runs to show as waterfalls (e.g. an in-situ ramp to 850 C).
    """
    summary = summarize(catalog, campaign_id)
    runs = campaign_runs(catalog, campaign_id)
    parts = [
        f"<h1>insitu campaign report</h1><p>campaign <code>{html.escape(campaign_id)}</code>, "
        f"{len(runs)} runs, written {datetime.datetime.now():%Y-%m-%d %H:%M}</p>",
        "<h2>Results beside Zhu et al., Matter 7 (2024), Table S5</h2>",
        _table_html(summary),
        "<p>Conductivity at 30 C extrapolated from an Arrhenius fit (ln sigma*T against 1/T) of "
        "all impedance points, 100-500 C, both cycles; Ea per cycle in the last columns.</p>",
        "<h2>Arrhenius</h2>",
        _figure_html(_arrhenius_figure(summary), "Arrhenius plot with fitted lines and Ea"),
        "<h2>Impedance</h2>",
        *_nyquist_figures(catalog, summary),
        "<h2>Raman</h2>",
        *_waterfall_figures(catalog, summary, extra_raman_runs),
    ]
    document = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>insitu campaign "
        f"{html.escape(campaign_id[:8])}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)
    return path
