"""Issue 18's unattended campaign: ``map_processing_window`` from the queue, killed and resumed.

Two stations of the same configuration (``insitu serve queue``, simulated at 5000x with held
time) run the same 10-sample campaign side by side: one uninterrupted, the other killed (manager
and worker, SIGKILL) after its fourth sample and resumed from the catalog by a second queue item.
The simulated sample change restarts the instruments (the stage at rest, the noise and drifts
from (seed, sample index)) and virtual time pins every instant an instrument acts at, so the
resumed campaign sees each film as the uninterrupted one did, in another process, and must make
the same choices and find the same boundary. (Side by side, not one after the other on one
station: each station's experiment time passes while the other computes; 175 s alone became
126 s, 187 s in the suite 142-163 s.)
"""

from __future__ import annotations

import math
import secrets
import time

import pytest
from tiled.queries import Key

from insitu.analysis.processing_window import ProcessingWindowAgent, Sample
from insitu.beamline.catalog import close_catalog, open_catalog
from tests.services.test_queue import forget_queue, queue_service

# Not ``alone``: on held time nothing here depends on wall-clock latency, and the station has its
# own ports, Redis prefix and campaign ids, so it runs beside other system tests.
pytestmark = [pytest.mark.services]

DEVICES = ("stage", "raman", "eis")
SAMPLE_KEYS = (
    "anneal_C",
    "dwell_min",
    "crystallized",
    "sigma_30C_S_cm",
    "crystallization_margin",
)
# Fewer spectra and impedance points than the CLI's defaults (every 25 C up, every 15 min of the
# dwell; impedance at two temperatures): the same decisions, a third of the wall time.
CAMPAIGN = {
    "monitor": "raman_flags",
    "samples": 10,
    "seed": 2,
    "every_C": 25,
    "dwell_every_s": 900,
    "eis_temperatures": [150, 250],
    "stabilize_s": 10,
    "eis_rate": 20,
}


def _station(directory, catalog_server, redis_url, name="window"):
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "station.yaml"
    config.write_text(
        "name: window\n"
        f"catalog:\n  location: {catalog_server.uri}\n  api_key: {catalog_server.api_key}\n"
        f"metadata_dir: {directory / 'md'}\n"
        "simulation:\n  speedup: 5000\n  seed: 11\n  virtual_time: true\n"
    )
    return queue_service(config, directory, name, redis_url)


def _runs(catalog, campaign_id):
    found = catalog.search(Key("campaign_id") == campaign_id)
    return [found[uid] for uid in found]


def _films(catalog, campaign_id):
    """{sample_index: [(anneal_C, dwell_min, exit_status), ...]} of the campaign's anneal runs."""
    films: dict[int, list] = {}
    for run in _runs(catalog, campaign_id):
        start = run.metadata["start"]
        if start.get("measurement") == "anneal":
            stop = run.metadata.get("stop") or {}
            films.setdefault(start["sample_index"], []).append(
                (start["anneal_temperature_C"], start["dwell_min"], stop.get("exit_status"))
            )
    return films


def _number(value) -> float:
    """A stored number (JSON null for NaN)."""
    return math.nan if value is None else float(value)


def _window_map(catalog, campaign_id):
    maps = [
        run.metadata["start"]["window_map"]
        for run in _runs(catalog, campaign_id)
        if run.metadata["start"].get("measurement") == "window_map"
    ]
    assert len(maps) == 1, f"campaign {campaign_id}: {len(maps)} window_map runs"
    return maps[0]


def _wait_for_eis_of(catalog, campaign_id, index, timeout=900.0):
    """Until sample ``index``'s impedance run of the campaign is stored with its stop document."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in _runs(catalog, campaign_id):
            start = run.metadata["start"]
            if (
                start.get("measurement") == "eis"
                and start.get("sample_index") == index
                and run.metadata.get("stop")
            ):
                return
        time.sleep(0.5)
    raise AssertionError(f"sample {index + 1} of {campaign_id} never measured in {timeout} s")


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.long
def test_a_queued_campaign_killed_after_four_samples_resumes_to_the_same_boundary(
    tmp_path, catalog_server, redis_url
):
    from bluesky_queueserver_api import BPlan

    whole, cut = f"window-whole-{secrets.token_hex(3)}", f"window-cut-{secrets.token_hex(3)}"
    station = _station(tmp_path / "cut", catalog_server, redis_url)
    # The same configuration (station name, seed) in another directory, on its own ports and
    # Redis prefix: the same films.
    twin = _station(tmp_path / "whole", catalog_server, redis_url, name="window-twin")
    catalog = open_catalog(catalog_server.uri, api_key=catalog_server.api_key)
    try:  # both stopped below whichever of them failed to start
        station.start()
        twin.start()
        with twin.api() as api:
            api.item_add(BPlan("map_processing_window", *DEVICES, campaign_id=whole, **CAMPAIGN))
            api.queue_start()
        with station.api() as api:
            api.item_add(BPlan("map_processing_window", *DEVICES, campaign_id=cut, **CAMPAIGN))
            api.queue_start()
        _wait_for_eis_of(catalog, cut, index=3)
        station.kill()  # a crash after the fourth film: manager and worker, SIGKILL
        station.start()
        with station.api() as api:
            lost = api.history_get()["items"][-1]
            assert lost["kwargs"]["campaign_id"] == cut
            assert lost["result"]["exit_status"] == "unknown", lost["result"]
            api.item_add(
                BPlan("map_processing_window", *DEVICES, campaign_id=cut, resume=True, **CAMPAIGN)
            )
            api.queue_start()
            api.wait_for_idle(timeout=1200)
            history = api.history_get()["items"]
            assert history[-1]["result"]["exit_status"] == "completed", history[-1]["result"]
        with twin.api() as api:
            api.wait_for_idle(timeout=1200)
            history = api.history_get()["items"]
            assert history[-1]["result"]["exit_status"] == "completed", history[-1]["result"]
        whole_films, cut_films = _films(catalog, whole), _films(catalog, cut)
        whole_map, cut_map = _window_map(catalog, whole), _window_map(catalog, cut)
    finally:
        for service in (station, twin):
            service.stop()
            forget_queue(redis_url, service.options["redis_prefix"])
        close_catalog(catalog)

    assert sorted(whole_films) == list(range(10))
    # 10 distinct films, each annealed once to the end: none of the first four annealed again.
    assert sorted(cut_films) == list(range(10))
    for index, anneals in cut_films.items():
        done = [a for a in anneals if a[2] == "success"]
        assert len(done) == 1, (index, anneals)
        if index < 4:
            assert len(anneals) == 1, (index, anneals)
    # The resumed campaign is the uninterrupted agent on what was measured: the same-seed agent,
    # told each film in turn, chooses every film the resumed campaign annealed and reports its
    # boundary exactly.
    chosen = {
        i: next(a[:2] for a in anneals if a[2] == "success") for i, anneals in cut_films.items()
    }
    replay = ProcessingWindowAgent(seed=CAMPAIGN["seed"])
    for index, sample in enumerate(cut_map["samples"]):
        choice = replay.ask()
        assert (choice["anneal_C"], choice["dwell_min"]) == chosen[index], index
        told = {key: sample[key] for key in SAMPLE_KEYS}
        told["crystallization_margin"] = _number(told["crystallization_margin"])
        replay.tell(Sample(**told))
    assert replay.report()["boundary"] == cut_map["boundary"]
    print("films resumed:      ", [(s["anneal_C"], s["dwell_min"]) for s in cut_map["samples"]])
    print("films uninterrupted:", [(s["anneal_C"], s["dwell_min"]) for s in whole_map["samples"]])
    print("margins resumed:      ", [s["crystallization_margin"] for s in cut_map["samples"]])
    print("margins uninterrupted:", [s["crystallization_margin"] for s in whole_map["samples"]])
    print("boundary resumed:      ", cut_map["boundary"])
    print("boundary uninterrupted:", whole_map["boundary"])
    # Against the campaign run uninterrupted, digit for digit: on virtual time every instant an
    # instrument acts at is pinned and the sample change restarts the simulated instruments, so
    # each film's anneal is a function of (seed, sample index, plan) in any process. The same
    # films, called the same with the same margins, and so the same boundary. (sigma(30 C) is
    # not compared digit for digit: impedance sweeps are not pinned yet, and no choice of the
    # agent depends on it.)
    for key in ("anneal_C", "dwell_min", "crystallized", "crystallization_margin"):
        assert [s[key] for s in cut_map["samples"]] == [s[key] for s in whole_map["samples"]], key
    assert cut_map["boundary"] == whole_map["boundary"]
