"""SIGKILL at a random point of a simulated campaign, restart with resume: same results, no loss.

One kill per run of the suite, at a random point (seeded, printed; the many-points twin is
``test_resume.py::test_a_crash_after_any_document_resumes_...``): a child process runs the
reduced campaign (``campaign_child.CAMPAIGN``: two films, three impedance temperatures, one
cycle, 400x) on an embedded catalog; the test SIGKILLs it, snapshots what the catalog holds
right after the kill, starts a new process that loads the beamline, closes the interrupted runs
and resumes the campaign, then checks:

- no event stored before the kill is missing afterwards (same run uids, same seq_nums and
  timestamps in every stream);
- the cut-off run is readable and has a stop document written on restart that says the
  process died (exit_status "fail");
- the final summary table (``insitu.analysis.campaign.summarize``) equals an uninterrupted
  campaign's within the tolerances below.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiled.queries import Key

from insitu.analysis.campaign import summarize
from insitu.beamline.catalog import close_catalog, open_catalog

CHILD = Path(__file__).with_name("campaign_child.py")
# A new kill point on every run of the suite, printed; INSITU_KILL_SEED=<seed> replays one.
SEED = int(os.environ.get("INSITU_KILL_SEED", time.time_ns() % 1_000_000_007))
# One real kill per run of the suite, at a random point (seeded, printed). The many kill points
# are covered fast by ``test_resume.py::test_a_crash_after_any_document_resumes_...``, which
# cuts the same campaign after every third document; this test proves it holds for a real
# SIGKILL of a real process (torn writes, a dead process's runs closed on restart).
KILLS = 1
SPEEDUP = 2000.0  # on held time: the films do not depend on the speed-up or the load

# Tolerances, from the scatter between uninterrupted campaigns with the same seed (measured
# here on the loaded 2-core machine, two runs of campaign_child at 400x): sigma(30 C) differed
# by 0.5 % (1.811e-9 vs 1.803e-9 S/cm), Ea by 0.0002 eV, the crystallization onset by 25 C (one
# Raman step: raman_every_C = 25 C, and a stall of the machine moves the spectra along the
# ramp). A resumed film differs a little more: an impedance point measured after the restart
# sees a film rebuilt from the nominal anneal program (the virtual film died with the process;
# a real one stays on the stage) and a fresh noise stream. Hence: sigma within 3 %, Ea within
# 0.005 eV (Table S5 quotes Ea to 0.001-0.01 eV), onset within two Raman steps.
SIGMA_REL = 0.03
EA_ABS = 0.005
ONSET_ABS = 50.0


def _child(catalog, md, campaign_id, *, resume=False):
    command = [
        sys.executable, str(CHILD), "--catalog", str(catalog), "--md", str(md),
        "--campaign-id", campaign_id, "--speedup", str(SPEEDUP), "--progress",
    ]  # fmt: skip
    if resume:
        command.append("--resume")
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=catalog.parent)


def _run_to_end(catalog, md, campaign_id, *, resume=False):
    """Run a child to its end; return its output and the wall seconds from ``ready`` to done."""
    child = _child(catalog, md, campaign_id, resume=resume)
    lines = []
    ready_at = None
    for line in child.stdout:
        lines.append(line)
        if line.strip() == "ready":
            ready_at = time.monotonic()
    child.wait(60)
    child.stdout.close()
    output = "".join(lines)
    assert child.returncode == 0, output
    assert "done" in output.split() and ready_at is not None, output
    return output, time.monotonic() - ready_at


def _snapshot(catalog_dir, campaign_id):
    """uid -> stream -> (seq_nums, times) of everything stored for the campaign."""
    runs = open_catalog(catalog_dir)
    try:
        found = runs.search(Key("campaign_id") == campaign_id)
        stored = {}
        for uid in found:
            run = found[uid]
            stored[uid] = {
                stream: (
                    list(run[stream]["seq_num"].read()),
                    list(run[stream]["time"].read()),
                )
                for stream in run
                if "seq_num" in run[stream]
            }
        return stored
    finally:
        close_catalog(runs)


def _table(catalog_dir, campaign_id):
    runs = open_catalog(catalog_dir)
    try:
        return summarize(runs, campaign_id).table().set_index("anneal_C")
    finally:
        close_catalog(runs)


def _same(a, b, *, rel=0.0, abs_=0.0):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(abs_, rel * abs(b))


@pytest.mark.long
@pytest.mark.alone
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_results(tmp_path):
    catalog = tmp_path / "catalog"
    md = tmp_path / "md"
    output, reference_wall = _run_to_end(catalog, md, "reference")
    documents = output.split().count("doc")
    reference = _table(catalog, "reference")
    print(
        f"reference campaign: {documents} documents, {reference_wall:.0f} s wall after ready\n"
        f"{reference}"
    )

    rng = random.Random(SEED)
    for kill in range(KILLS):
        campaign_id = f"killed-{kill}"
        # One random point in each of KILLS equal parts of 3-73 % of the campaign's documents,
        # so several kills land in different phases (anneals, sample 0's impedance, ...), then up
        # to 1.5 wall s more, so the kill can land inside a write or a long impedance sweep
        # (few documents, seconds apart). Counted in documents, not wall seconds: a run slower
        # or faster than the reference (the machine's load changed) is still killed mid-way.
        width = 0.70 / KILLS
        low = 0.03 + width * kill
        kill_after_documents = max(1, round(rng.uniform(low, low + width) * documents))
        kill_after_s = rng.uniform(0.0, 1.5)
        print(
            f"kill {kill}: SIGKILL {kill_after_s:.2f} s after document {kill_after_documents} "
            f"of {documents} (replay with INSITU_KILL_SEED={SEED})",
            flush=True,
        )
        child = _child(catalog, md, campaign_id)
        try:
            seen = 0
            for line in child.stdout:
                seen += line.strip() == "doc"
                if seen >= kill_after_documents:
                    break
            time.sleep(kill_after_s)  # wall time on purpose: a random moment of the child's life
            if child.poll() is not None:
                pytest.fail(f"kill {kill}: the campaign ended before the kill point")
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait(30)
            child.stdout.close()

        before = _snapshot(catalog, campaign_id)
        output, _ = _run_to_end(catalog, md, campaign_id, resume=True)
        after = _snapshot(catalog, campaign_id)

        for uid, streams in before.items():
            assert uid in after, f"kill {kill}: run {uid} is gone after the resume"
            for stream, (seq_nums, times) in streams.items():
                kept_seq, kept_times = after[uid][stream]
                assert kept_seq[: len(seq_nums)] == seq_nums, (kill, uid, stream)
                assert kept_times[: len(times)] == times, (kill, uid, stream)
        runs = open_catalog(catalog)
        try:
            found = runs.search(Key("campaign_id") == campaign_id)
            stops = {uid: found[uid].metadata.get("stop") for uid in found}
            assert all(stop is not None for stop in stops.values()), f"kill {kill}: open run"
            died = [uid for uid, stop in stops.items() if "process died" in stop.get("reason", "")]
            restored = [line for line in output.splitlines() if line.startswith("restored")]
            print(f"kill {kill}: closed on restart {died}; {restored}")
            for uid in died:
                assert stops[uid]["exit_status"] == "fail"
                counted = stops[uid]["num_events"]
                # Complete events: a kill mid-write may leave the last event torn (one array
                # column longer than another); that one is not counted. A stream with a
                # descriptor and no event counts 0, as in bluesky's own stop documents.
                for stream, (seq_nums, _) in after[uid].items():
                    assert 0 <= len(seq_nums) - counted.get(stream, 0) <= 1, (kill, uid, stream)
        finally:
            close_catalog(runs)

        resumed = _table(catalog, campaign_id)
        print(f"kill {kill}: resumed\n{resumed}")
        assert list(resumed.index) == list(reference.index)
        for anneal_C, row in reference.iterrows():
            got = resumed.loc[anneal_C]
            where = (
                f"kill {kill} (after document {kill_after_documents} + {kill_after_s:.2f} s), "
                f"{anneal_C} C film"
            )
            assert _same(got["sigma_30C_S_cm"], row["sigma_30C_S_cm"], rel=SIGMA_REL), where
            assert _same(got["Ea_eV"], row["Ea_eV"], abs_=EA_ABS), where
            assert _same(got["onset_C"], row["onset_C"], abs_=ONSET_ABS), where
