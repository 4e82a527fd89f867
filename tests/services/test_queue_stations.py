"""Queue stations started by the test itself: a two-sample campaign through manager restarts,
two stations sharing one catalog, a station stopped mid-plan.

Apart from ``test_queue.py`` (whose tests share one station) so that the parallel workers of
the ``alone`` tier can take them beside that module's.
"""

from __future__ import annotations

import secrets
import time

import pytest
from tiled.queries import Key

from insitu.beamline.catalog import close_catalog, open_catalog
from tests.services.test_queue import (
    forget_queue,
    free_port,
    queue_service,
    queue_station,
    stored_run,
)

pytestmark = [pytest.mark.services, pytest.mark.alone]


def _wait_until_answering(station, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        with station.api(timeout=5) as api:
            try:
                return api.status()
            except api.RequestTimeoutError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(1)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_queued_two_sample_campaign_survives_manager_restarts(
    tmp_path, catalog_server, redis_url
):
    """The issue's done-when: ``anneal_and_measure`` for two samples, queued as one item per
    sample (the second resumes the campaign from the catalog), with two restarts:

    - during the first item, the RE Manager process dies (queueserver's ``manager_kill``): its
      watchdog starts a new one, which finds the worker and the running item and goes on;
    - between the items, the whole service (manager and worker) is stopped and started again:
      the second item is still queued and the first is in the history, both read from Redis.

    Both samples' results end up in the PostgreSQL-backed catalog, readable with the key only.
    """
    import httpx
    from bluesky_queueserver_api import BPlan

    from insitu.analysis.campaign import summarize

    station = queue_station(tmp_path, "campaign", catalog_server, redis_url, speedup=400, seed=5)
    campaign_id = f"queued-{secrets.token_hex(4)}"
    reduced = {
        "anneal_temperatures": [650, 750],
        "sample_names": ["S-650", "S-750"],
        # 20 C/min: well inside the safety watchdog's rate limit (1.5 x the stage's 50 C/min),
        # which measures over 30 experiment seconds, i.e. 75 ms of wall time at 400x. 400x,
        # not faster: the first item must outlast the manager's restart (at 2000x it did not).
        "rate": 20,
        "dwell_s": 60,
        "raman_every_C": 25,
        "eis_temperatures": [150, 250, 350],
        "stabilize_s": 10,
        "cycles": 1,
        "eis_rate": 20,
        "campaign_id": campaign_id,
    }
    devices = ("stage", "raman", "eis")
    not_sample_1 = [[1, "anneal"], [1, "raman_rt"], [1, "eis"]]
    station.start()
    try:
        with station.api() as api:
            first = api.item_add(
                BPlan("anneal_and_measure", *devices, skip=not_sample_1, **reduced)
            )
            second = api.item_add(BPlan("anneal_and_measure", *devices, resume=True, **reduced))
            first_uid, second_uid = first["item"]["item_uid"], second["item"]["item_uid"]
            api.queue_start()
            api.wait_for_condition(lambda s: s["running_item_uid"] == first_uid, timeout=120)
            # Stop after the running item (a restart between the items), asked before the kill:
            # the manager keeps the pending stop in Redis and its restart restores it, so it
            # holds however long the restart takes (asked after it, an item that ended during
            # a slow restart let the new manager start the second one).
            api.queue_stop()
        with station.api(timeout=3) as api, pytest.raises(api.RequestTimeoutError):
            api.send_request(method="manager_kill")  # blocks the manager's loop for good
        status = _wait_until_answering(station)
        with station.api() as api:
            if status["manager_state"] == "executing_queue":
                assert status["running_item_uid"] == first_uid  # picked up where it was
                assert status["queue_stop_pending"]  # restored from Redis by the restart
            api.wait_for_idle(timeout=900)
            assert [i["item_uid"] for i in api.queue_get()["items"]] == [second_uid]
            done = api.history_get()["items"][-1]
            assert done["item_uid"] == first_uid, done
            assert done["result"]["exit_status"] == "completed", done["result"]["msg"]
        assert "RE Manager malfunctioned and must be restarted" in station.log_text()

        assert station.stop() == 0
        station.start()
        with station.api() as api:
            assert [i["item_uid"] for i in api.queue_get()["items"]] == [second_uid]
            assert api.history_get()["items"][-1]["item_uid"] == first_uid
            api.queue_start()
            api.wait_for_idle(timeout=900)
            history = api.history_get()["items"]
            assert history[-1]["item_uid"] == second_uid
            assert history[-1]["result"]["exit_status"] == "completed", history[-1]["result"]
    finally:
        station.stop()
        forget_queue(redis_url, station.options["redis_prefix"])

    first_runs, second_runs = done["result"]["run_uids"], history[-1]["result"]["run_uids"]
    runs = open_catalog(catalog_server.uri, api_key=catalog_server.api_key)
    try:
        summary = summarize(runs, campaign_id)
        print(summary)
        assert [s.name for s in summary.samples] == ["S-650", "S-750"]
        for sample, item_runs in zip(summary.samples, (first_runs, second_runs), strict=True):
            assert set(sample.run_uids) == {"anneal", "raman_rt", "eis"}
            assert set(sample.run_uids.values()) <= set(item_runs)  # each item its own sample
            assert sample.sigma_30C > 0 and 0.1 < sample.Ea_eV < 1.5, sample
            for uid in sample.run_uids.values():
                assert runs[uid].start["beamline"] == "campaign"
                assert runs[uid].stop["exit_status"] == "success"
        uid = summary.samples[1].run_uids["eis"]
    finally:
        close_catalog(runs)
    url = f"{catalog_server.uri}/api/v1/metadata/runs/{uid}"
    for headers in ({}, {"Authorization": "Apikey wrongkey0123"}):
        assert httpx.get(url, headers=headers).status_code in (401, 403)
    good = {"Authorization": f"Apikey {catalog_server.api_key}"}
    assert httpx.get(url, headers=good).is_success
    with pytest.raises(Exception, match="(?i)api key|401"):
        open_catalog(catalog_server.uri)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_stations_one_queue_each_one_shared_catalog(
    tmp_path, catalog_server, redis_url, shared_catalog
):
    """Two simulated beamlines, each with its own RE Manager (own ports and Redis prefix; the
    second on a Redis the service starts itself), run their queues at the same time into one
    catalog: complete, separate runs."""
    from bluesky_queueserver_api import BPlan

    own_redis = f"redis://127.0.0.1:{free_port()}"
    stations = {
        # Held time: a 10 C step at 20 C/min is 75 ms of wall time at 400x, and with two
        # stations loading two cores CI once stored 6 of 10 spectra on free-running time; held,
        # the ramp waits for the RunEngine that is busy with a spectrum.
        "station-1": queue_station(
            tmp_path / "s1", "station-1", catalog_server, redis_url, virtual_time=True
        ),
        "station-2": queue_station(
            tmp_path / "s2", "station-2", catalog_server, own_redis, virtual_time=True
        ),
    }
    tag = secrets.token_hex(4)
    histories = {}
    try:
        for station in stations.values():
            station.start()
        assert "(Redis started here)" in stations["station-2"].log_text()
        for name, station in stations.items():
            with station.api() as api:
                md = {"test_tag": tag, "station": name}
                api.item_add(BPlan("count", ["stage", "raman"], num=5, md=md))
                api.item_add(
                    BPlan(
                        "heat_ramp",
                        "stage",
                        ["raman"],
                        start=40,
                        stop=140,
                        rate=20,
                        every_C=10,
                        md=md,
                    )  # fmt: skip
                )
                api.item_add(BPlan("count", ["eis"], num=2, md=md))
        for station in stations.values():  # both queues run at once
            with station.api() as api:
                api.queue_start()
        for name, station in stations.items():
            with station.api() as api:
                api.wait_for_idle(timeout=600)
                histories[name] = api.history_get()["items"][-3:]
    finally:
        for station in stations.values():
            station.stop()
        forget_queue(redis_url, stations["station-1"].options["redis_prefix"])
    assert not (tmp_path / "s1" / "state" / "redis").exists()  # station-1 used the shared Redis

    seen: set[str] = set()
    for name, history in histories.items():
        assert [h["result"]["exit_status"] for h in history] == ["completed"] * 3
        uids = [uid for h in history for uid in h["result"]["run_uids"]]
        assert len(uids) == 3 and not seen & set(uids)
        seen |= set(uids)
        expected_events = [5, None, 2]
        for uid, expected in zip(uids, expected_events, strict=True):
            run = stored_run(shared_catalog, uid, timeout=5)  # stopping the station flushed it
            assert run.start["beamline"] == name and run.start["station"] == name
            assert run.stop["exit_status"] == "success"
            stored = len(run["primary"].read()["time"])
            assert stored == run.stop["num_events"]["primary"]
            if expected is not None:
                assert stored == expected
            else:
                assert stored >= 8  # a spectrum every 10 C over 100 C
    found = shared_catalog.search(Key("test_tag") == tag)
    assert sorted(found) == sorted(seen)


@pytest.mark.timeout(600)
def test_stopping_the_queue_mid_plan_aborts_it_and_parks_the_stage(
    tmp_path, catalog_server, redis_url
):
    """``insitu serve queue`` stopped (Ctrl-C/SIGTERM) while a plan heats a stage served over
    TCP: the plan is aborted, its cleanup parks the stage, the worker closes in order."""
    from bluesky_queueserver_api import BPlan

    from insitu import clock
    from insitu.devices.linkam import LinkamStatus
    from insitu.sim.linkam_t95 import LinkamT95Emulator

    clock.reset()
    linkam = LinkamT95Emulator("TS1500", seed=4)
    port = linkam.serve_tcp()
    config = tmp_path / "station.yaml"
    config.write_text(
        "name: queue-stop\n"
        f"catalog:\n  location: {catalog_server.uri}\n  api_key: {catalog_server.api_key}\n"
        f"metadata_dir: {tmp_path / 'md'}\n"
        f"stage:\n  address: TCPIP::127.0.0.1::{port}::SOCKET\n"
    )
    service = queue_service(config, tmp_path, "stop", redis_url)
    try:
        service.start()
        with service.api() as api:
            item = api.item_add(
                BPlan("heat_ramp", "stage", [], start=60, stop=300, rate=50, every_C=50)
            )["item"]
            api.queue_start()
            deadline = time.monotonic() + 120
            while linkam.status_byte() != LinkamStatus.HEATING:  # toward the ramp's start
                assert time.monotonic() < deadline, (
                    list(linkam.received_commands)[-20:],
                    service.log_text()[-3000:],
                )
                time.sleep(0.2)
            time.sleep(2.0)  # well inside the ramp
        assert service.stop() == 0, service.log_text()[-3000:]
        log = service.log_text()
        assert "aborting the running plan" in log, log[-3000:]
        limits = [c for c in linkam.received_commands if c.startswith(b"L1")]
        assert int(limits[-1][2:]) <= 300, limits  # parked at 30 C (the limit is in 0.1 C)
        assert linkam.status_byte() != LinkamStatus.HEATING or linkam.temperature() <= 50
        runs = open_catalog(catalog_server.uri, api_key=catalog_server.api_key)
        try:
            run = (
                runs.search(Key("plan_name") == "heat_ramp")
                .search(Key("beamline") == "queue-stop")
                .values()
                .last()
            )
            assert run.metadata["stop"]["exit_status"] == "abort"
        finally:
            close_catalog(runs)
        assert "park_at" not in item["kwargs"]  # the default park, nothing special asked
    finally:
        service.kill()
        forget_queue(redis_url, service.options["redis_prefix"])
        linkam.close()
        clock.reset()
