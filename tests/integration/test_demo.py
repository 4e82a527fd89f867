"""``insitu demo``: the paper's whole protocol on the simulated beamline, its table and report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from insitu.testing.browser import page_width, screenshot

INSITU = [sys.executable, "-m", "insitu.cli"]


def _run(args, tmp_path):
    return subprocess.run(
        # Within the test's own 600 s: the demo is CPU-bound on held time, 184-222 s on the
        # loaded CI machine (a 300 s limit left a third of margin).
        args,
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=540,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.long
def test_demo_prints_the_table_and_writes_the_report_then_report_rewrites_it(tmp_path, sim_config):
    # One film, not a new one each run: the detector flags the onset of ~6 % of the demo's
    # random films (13 of 200, bright ones) a spectrum before 1 % crystalline, which positions
    # alone cannot tell from 1 % (README, known limits; bench_raman.py counts it on 200 films).
    # The seed is the first one drawn, not chosen for its verdict.
    config = Path(sim_config)
    settings = yaml.safe_load(config.read_text())
    settings["simulation"]["seed"] = 0
    config.write_text(yaml.safe_dump(settings))
    demo = _run([*INSITU, "--config", config, "demo"], tmp_path)
    assert demo.returncode == 0, demo.stderr[-3000:]
    for text in ("LLZO-500C", "LLZO-750C", "paper_sigma_30C_S_cm", "report:"):
        assert text in demo.stdout
    # Issue 17's bar, at the demo's own speed-up (held time): sigma(30 C) within 15 % of the
    # paper for all four anneals, Ea within 0.02 eV for 650 and 750 C.
    rows = {
        line.split()[0]: line.split()
        for line in demo.stdout.splitlines()
        if line.startswith("LLZO-") and len(line.split()) >= 10
    }
    assert set(rows) == {"LLZO-500C", "LLZO-600C", "LLZO-650C", "LLZO-750C"}, demo.stdout
    for name, row in rows.items():
        sigma, paper_sigma = float(row[5]), float(row[6])
        assert abs(sigma / paper_sigma - 1.0) < 0.15, (name, sigma, paper_sigma)
    for name in ("LLZO-650C", "LLZO-750C"):
        ea, paper_ea = float(rows[name][7]), float(rows[name][8])
        assert abs(ea - paper_ea) < 0.02, (name, ea, paper_ea)
    _the_demo_catalog_holds_the_papers_numbers(tmp_path / "data", demo.stdout)
    report = Path(demo.stdout.split("report:")[1].split()[0])
    page = report.read_text()
    assert page.count("<img") >= 1 + 4 + 5  # Arrhenius, four Nyquist, five Raman waterfalls
    assert "Table S5" in page
    assert "sigma at 30 C (S/cm)" in page and "dev. (%)" in page  # units, deviations
    # As a scientist opens it: 1400 px wide, nothing runs off to the right.
    width = page_width(report, width=1400)
    assert width.content <= width.window, width
    shot = screenshot(report, tmp_path / "report.png", width=1400)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.width == 1400 and image.getextrema() != ((255, 255), (255, 255), (255, 255))

    campaign_id = demo.stdout.split("campaign ")[1].split()[0]
    again = _run(
        [*INSITU, "--config", config, "report", campaign_id, "--output", "again/report.html"],
        tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "again" / "report.html").is_file()
    assert "LLZO-650C" in again.stdout


def _the_demo_catalog_holds_the_papers_numbers(location: Path, stdout: str) -> None:
    """The demo runs the paper's whole protocol on held time (its ramp at 2000x, its campaign at
    4000x): its catalog holds the paper's numbers (read back from the catalog alone), a spectrum
    every 5 C of the in-situ ramp (no stretch of the ramp lost to a stall while the RunEngine
    waited for a spectrum) and the ramp's three flags in the paper's windows."""
    from insitu.analysis.campaign import summarize
    from insitu.analysis.stored_stream import read_stream
    from insitu.beamline.catalog import close_catalog, open_catalog
    from insitu.testing.paper_numbers import assert_the_papers_numbers

    runs = open_catalog(location, create=False)
    try:
        ramp_uid = stdout.split("in-situ ramp run:")[1].split()[0]
        ramp = runs[ramp_uid]
        temperature = read_stream(ramp["primary"], ["stage_temperature_mean"])
        steps = np.diff(temperature["stage_temperature_mean"])
        assert len(steps) > 150 and steps.max() < 10.0, (len(steps), steps.max())
        flags = ramp["transitions"].read()
        assert list(flags["kind"].values) == [
            "crystallization_onset",
            "crystallized",
            "decomposition",
        ]
        onset, crystallized, decomposition = flags["temperature"].values
        # The film's truth on a 5 C/min ramp: 1 % crystalline at 633 C, 90 % at 708 C; 1 %
        # decomposed (pyrochlore) at 763 C, 10 % (the decomposition flag's level, as in the
        # robustness suite's windows: insitu.testing.raman_ramps.LEVELS) at 802.5 C, and a flag
        # may come up to two spectra after the first spectrum past its level.
        assert 630 <= onset <= 690, onset
        assert 700 <= crystallized <= 780, crystallized
        means = temperature["stage_temperature_mean"]
        past_level = int(np.argmax(means >= 802.5))
        assert 760 <= decomposition <= means[past_level + 2], (decomposition, means[past_level:])

        summary = summarize(runs, stdout.split("campaign ")[1].split()[0])
        assert_the_papers_numbers(summary)
    finally:
        close_catalog(runs)
