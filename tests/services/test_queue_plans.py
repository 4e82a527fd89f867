"""The plan queue: every insitu plan is queueable and runs from the queue, the CLI's errors, what
the station refuses, two stations at once. Nothing here depends on wall-clock timing (held
experiment time, subprocesses that are waited for), so it runs beside other tests.

One station (``insitu serve queue`` on the test Redis, with its own key prefix and ports)
writing to the shared PostgreSQL-backed catalog serves the module.
"""

from __future__ import annotations

import inspect
import secrets
import subprocess

import pytest
from tiled.queries import Key

from insitu.services.queue_plans import QUEUE_PLANS
from tests.services.queue_station import (
    INSITU,
    forget_queue,
    free_port,
    queue_station,
    run_queue,
    running_station,
    stored_run,
)

pytestmark = [pytest.mark.services]


@pytest.fixture(scope="module")
def station(tmp_path_factory, catalog_server, redis_url):
    directory = tmp_path_factory.mktemp("station")
    with running_station(
        directory, "queue-a", catalog_server, redis_url, virtual_time=True
    ) as service:
        yield service


def test_every_insitu_plan_is_allowed_with_its_parameters(api):
    allowed = api.plans_allowed()["plans_allowed"]
    assert "park" in QUEUE_PLANS and "anneal_and_measure" in QUEUE_PLANS
    for name, plan in QUEUE_PLANS.items():
        assert name in allowed, f"{name} is not queueable"
        listed = [p["name"] for p in allowed[name]["parameters"]]
        assert listed == list(inspect.signature(plan).parameters), name
    campaign = {p["name"]: p for p in allowed["anneal_and_measure"]["parameters"]}
    assert campaign["change_sample"]["default"] == "'change_sample'"
    assert campaign["change_sample"]["annotation"]["plans"] == {
        "SampleChange": ["change_sample", "pause_for_sample_change"]
    }
    assert {"change_sample", "count", "mv"} <= set(allowed)  # the station's sample change too
    assert set(api.devices_allowed()["devices_allowed"]) == {"stage", "raman", "eis"}


@pytest.mark.timeout(300)
def test_small_plans_run_from_the_queue_into_the_catalog(api, shared_catalog):
    tag = secrets.token_hex(4)
    md = {"test_tag": tag}
    history = run_queue(
        api,
        [
            ("count", [["stage", "raman"]], {"num": 3, "md": md}),
            ("mv", ["stage", 40], {}),
            (
                "heat_ramp",
                ["stage", ["raman"]],
                {"start": 40, "stop": 80, "rate": 20, "every_C": 10, "md": md},
            ),  # fmt: skip
            (
                "ramp_until",
                ["stage", "raman"],
                {"monitor": "raman_flags", "stop": 120, "rate": 20, "every_C": 20, "md": md},
            ),  # fmt: skip
            (
                "step_eis",
                ["stage", "eis"],
                {"temperatures": [100, 150], "cycles": 1, "stabilize_s": 5, "md": md},
            ),  # fmt: skip
            ("park", ["stage", 30], {}),
        ],
    )
    assert [h["result"]["exit_status"] for h in history] == ["completed"] * 6, [
        h["result"]["msg"] for h in history
    ]
    uids = [uid for h in history for uid in h["result"]["run_uids"]]
    assert len(uids) == 4  # count, heat_ramp, ramp_until, step_eis; mv and park make no run
    plans = {}
    for uid in uids:
        run = stored_run(shared_catalog, uid)
        assert run.start["beamline"] == "queue-a" and run.start["test_tag"] == tag
        assert run.stop["exit_status"] == "success"
        plans[run.start["plan_name"]] = run
    assert set(plans) == {"count", "heat_ramp", "ramp_until", "step_eis"}
    assert len(plans["count"]["primary"].read()["raman_spectrum"]) == 3
    assert len(plans["step_eis"]["primary"].read()["eis_z_real"]) == 3  # 100, 150, back to 100


def test_a_bad_argument_is_refused_when_queued_not_when_run(api):
    from bluesky_queueserver_api import BPlan

    with pytest.raises(api.RequestFailedError, match="start"):
        api.item_add(BPlan("heat_ramp", "stage", ["raman"], start="hot", stop=80, rate=20))


def _insitu_queue(station, *args):
    return subprocess.run(
        [*INSITU, "queue", *args, "--zmq-control", station.zmq_control],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_add_status_history(station):
    added = _insitu_queue(station, "add", "count", "--json", '{"detectors": ["stage"], "num": 2}')
    assert added.returncode == 0, added.stderr
    assert "added count(detectors=" in added.stdout
    status = _insitu_queue(station, "status")
    assert status.returncode == 0, status.stderr
    assert "manager: idle; environment: idle; queue: 1 item(s)" in status.stdout
    started = _insitu_queue(station, "start", "--wait")
    assert started.returncode == 0, started.stderr
    history = _insitu_queue(station, "history", "--last", "1")
    assert "completed  1 run(s)  count(" in history.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["heat_ramp", "--json", '{"stage": "stage",'], "is not valid JSON"),
        (["heat_ramp", "--json", '["stage"]'], "must be a JSON object"),
        (["heat_ramp", "--args", '{"a": 1}'], "must be a JSON array"),
        (["no_such_plan"], "unknown plan 'no_such_plan': the queue takes anneal, "),
        (["heat_ramp", "--json", '{"stage": "stage"}'], "missing a required argument"),
    ],
)
def test_cli_add_refuses_bad_input_with_exit_code_2(station, arguments, message):
    result = _insitu_queue(station, "add", *arguments)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_without_a_manager_says_so(tmp_path):
    result = subprocess.run(
        [*INSITU, "queue", "status", "--zmq-control", f"tcp://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no RE Manager answers at tcp://127.0.0.1:" in result.stderr
    bad_json = subprocess.run(
        [*INSITU, "queue", "add", "count", "--json", "{", "--zmq-control", "tcp://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad_json.returncode == 2 and "is not valid JSON" in bad_json.stderr


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("script_upload", {"script": "open({marker!r}, 'w').close()"}),
        ("permissions_set", {"user_group_permissions": {"user_groups": {}}}),
        ("environment_destroy", {}),
    ],
)
def test_unsafe_control_methods_are_refused_by_default(api, tmp_path, method, params):
    marker = str(tmp_path / "script-ran")
    params = {k: v.format(marker=marker) if isinstance(v, str) else v for k, v in params.items()}
    with pytest.raises(api.RequestFailedError, match=f"{method} is refused by this station"):
        api.send_request(method=method, params=params)
    assert not (tmp_path / "script-ran").exists()
    assert api.status()["worker_environment_exists"]  # not destroyed


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("heat_ramp", ["stage", ["raman"]], {"start": 40, "stop": 80, "rate": 20, "park_at": None}),
        ("heat_ramp", ["stage", ["raman"]], {"start": 40, "stop": 80, "rate": 20, "park_at": 300}),
        (
            "ramp_until",
            ["stage", "raman"],
            {"monitor": "raman_flags", "stop": 120, "park_at": None},
        ),
        ("step_eis", ["stage", "eis"], {"temperatures": [100], "park_at": 200}),
        ("anneal", ["stage"], {"temperature": 300, "cool_to": 250}),
        ("park", ["stage", 200], {}),
    ],
)
def test_a_queued_plan_that_would_leave_the_stage_hot_is_refused_when_added(
    api, name, args, kwargs
):
    from bluesky_queueserver_api import BPlan

    with pytest.raises(api.RequestFailedError) as refused:
        api.item_add(BPlan(name, *args, **kwargs))
    assert "50" in str(refused.value) or "None" in str(refused.value), str(refused.value)
    assert api.queue_get()["items"] == []


def test_a_queued_mv_never_takes_the_stage_above_the_unattended_limit(api):
    (refused,) = run_queue(api, [("mv", ["stage", 300], {})])
    assert refused["result"]["exit_status"] == "failed"
    assert "allowed is at most 50 C" in refused["result"]["traceback"]
    api.queue_clear()
    (allowed,) = run_queue(api, [("mv", ["stage", 35], {})])
    assert allowed["result"]["exit_status"] == "completed"


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
