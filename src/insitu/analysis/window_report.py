"""The report of a processing-window campaign (``insitu optimize``): the map and the decisions."""

from __future__ import annotations

import datetime
import html
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from tiled.queries import Key

from insitu.analysis.report import figure_html, page

__all__ = ["find_window_map", "window_map_figure", "write_window_report"]


def find_window_map(catalog, campaign_id: str) -> dict | None:
    """The agent's report stored by ``map_processing_window`` (None: not such a campaign)."""
    runs = catalog.search(Key("campaign_id") == campaign_id).search(
        Key("measurement") == "window_map"
    )
    for uid in runs:
        return dict(runs[uid].start["window_map"])
    return None


def window_map_figure(window_map: dict) -> Figure:
    """Samples in the (dwell, anneal temperature) plane, the boundary and its band, the best film.

    Amorphous films are circles, crystallized ones crosses, both coloured by sigma(30 C); the
    estimated boundary (the highest amorphous anneal temperature per dwell) is the line, its
    68 % band shaded; the best amorphous film is starred.
    """
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    ax = figure.subplots()
    boundary = [b for b in window_map["boundary"] if b.get("anneal_C") is not None]
    if boundary:
        dwell = np.array([b["dwell_min"] for b in boundary])
        ax.fill_between(
            dwell,
            [b["low_C"] for b in boundary],
            [b["high_C"] for b in boundary],
            color="0.85",
            label="boundary, 68 % band",
        )
        ax.plot(dwell, [b["anneal_C"] for b in boundary], "k-", label="estimated boundary")
    samples = window_map["samples"]
    sigma = np.array([s["sigma_30C_S_cm"] or np.nan for s in samples], dtype=float)
    finite = sigma[np.isfinite(sigma) & (sigma > 0)]
    limits = (np.log10(finite.min()), np.log10(finite.max())) if finite.size else (-10, -5)
    if limits[0] == limits[1]:
        limits = (limits[0] - 0.5, limits[1] + 0.5)
    scatter = None
    for crystallized, marker, label in ((False, "o", "amorphous"), (True, "X", "crystallized")):
        chosen = [i for i, s in enumerate(samples) if bool(s["crystallized"]) == crystallized]
        if not chosen:
            continue
        scatter = ax.scatter(
            [samples[i]["dwell_min"] for i in chosen],
            [samples[i]["anneal_C"] for i in chosen],
            c=np.log10(np.where(np.isfinite(sigma[chosen]), sigma[chosen], 10 ** limits[0])),
            cmap="viridis",
            vmin=limits[0],
            vmax=limits[1],
            marker=marker,
            s=70,
            edgecolors="k",
            label=label,
        )
    for order, sample in enumerate(samples, 1):
        ax.annotate(
            str(order),
            (sample["dwell_min"], sample["anneal_C"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    best = window_map.get("best_amorphous")
    if best:
        ax.plot(
            best["dwell_min"], best["anneal_C"], "*", color="gold", markersize=20,
            markeredgecolor="k", label="best amorphous film",
        )  # fmt: skip
    if scatter is not None:
        figure.colorbar(scatter, ax=ax, label="log10 sigma(30 C) / S cm-1")
    ax.set_xscale("log")
    ax.set_xticks([5, 15, 30, 60, 120], labels=["5", "15", "30", "60", "120"])
    ax.set_xlabel("dwell (min)")
    ax.set_ylabel("anneal temperature (C)")
    ax.set_title("Processing window: films annealed, in the order chosen")
    ax.legend(fontsize=8, loc="upper right", frameon=False)
    return figure


def _decisions_table(window_map: dict) -> str:
    head = (
        "<tr><th>#</th><th>anneal (C)</th><th>dwell (min)</th><th>crystallized</th>"
        "<th>sigma(30 C) (S/cm)</th><th>P(crystallized) predicted</th><th>why</th></tr>"
    )
    rows = []
    samples = window_map["samples"]
    for index, decision in enumerate(window_map.get("decisions", [])):
        sample = samples[index] if index < len(samples) else {}
        probability = decision.get("predicted_crystallized_probability")
        sigma = sample.get("sigma_30C_S_cm")
        crystallized = sample.get("crystallized")
        cells = [
            str(index + 1),
            f"{decision['anneal_C']:.1f}",
            f"{decision['dwell_min']:.0f}",
            "" if crystallized is None else ("yes" if crystallized else "no"),
            "" if sigma is None else f"{sigma:.3g}",
            "" if probability is None else f"{probability:.2f}",
            decision.get("reason", ""),
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def write_window_report(catalog, campaign_id: str, path: str | Path) -> Path:
    """Write the HTML report of a processing-window campaign; return its path.

    Raises
    ------
    KeyError
        If the catalog holds no processing-window map for ``campaign_id``.
    """
    window_map = find_window_map(catalog, campaign_id)
    if window_map is None:
        raise KeyError(f"no processing-window map of campaign {campaign_id!r} in the catalog")
    best = window_map.get("best_amorphous")
    boundary = ", ".join(
        f"{b['dwell_min']:.0f} min: {b['anneal_C']:.0f} C"
        for b in window_map["boundary"]
        if b.get("anneal_C") is not None
    )
    parts = [
        f"<h1>insitu processing window</h1><p>campaign <code>{html.escape(campaign_id)}</code>, "
        f"{len(window_map['samples'])} films, written {datetime.datetime.now():%Y-%m-%d %H:%M}"
        f"; stopped: {html.escape(str(window_map.get('stopped', '')))}</p>",
        f"<p>Highest anneal temperature that keeps the film amorphous: {html.escape(boundary)}."
        + (
            f" Best amorphous film: {best['anneal_C']:.1f} C for {best['dwell_min']:.0f} min, "
            f"sigma(30 C) {best['sigma_30C_S_cm']:.3g} S/cm.</p>"
            if best
            else " No amorphous film was measured.</p>"
        ),
        figure_html(window_map_figure(window_map), "The processing window the agent mapped"),
        "<h2>Decisions</h2>",
        _decisions_table(window_map),
    ]
    return page(f"insitu processing window {campaign_id[:8]}", parts, path)
