"""The plan queue: every insitu plan is queueable and runs from the queue; the CLI's errors; what
a crash during an item does to the queue and the history.

One station (``insitu serve queue`` on the test Redis, with its own key prefix and ports)
writing to the shared PostgreSQL-backed catalog serves the whole module.
"""

from __future__ import annotations

import inspect
import secrets
import socket
import subprocess
import sys
import time

import pytest

from insitu.services.queue_plans import QUEUE_PLANS
from insitu.services.queue_service import QueueService

pytestmark = [pytest.mark.services, pytest.mark.alone]

INSITU = [sys.executable, "-m", "insitu.cli"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_station_config(
    directory, name, catalog_server, *, speedup=400, seed=1, virtual_time=False
):
    """A simulated station writing to the shared catalog server (``virtual_time``: held
    experiment time, so a loaded machine costs no ramp or dwell)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "station.yaml"
    config.write_text(
        f"name: {name}\n"
        f"catalog:\n  location: {catalog_server.uri}\n  api_key: {catalog_server.api_key}\n"
        f"metadata_dir: {directory / 'md'}\n"
        f"simulation:\n  speedup: {speedup}\n  seed: {seed}\n"
        f"  virtual_time: {str(virtual_time).lower()}\n"
    )
    return config


def queue_station(directory, name, catalog_server, redis, **config_options) -> QueueService:
    """A not yet started ``insitu serve queue`` for a station, on free ports, own prefix."""
    config = write_station_config(directory, name, catalog_server, **config_options)
    return queue_service(config, directory, name, redis)


def queue_service(config, directory, name, redis) -> QueueService:
    """A not yet started ``insitu serve queue`` of ``config``, on free ports, own prefix."""
    return QueueService(
        config,
        directory / "serve.log",
        redis=redis,
        redis_prefix=f"qs_test_{name}_{secrets.token_hex(3)}",
        zmq_control=f"tcp://127.0.0.1:{free_port()}",
        zmq_info=f"tcp://127.0.0.1:{free_port()}",
        state_dir=directory / "state",
    )


def forget_queue(redis_url: str, prefix: str) -> None:
    """Delete a test station's keys from the shared Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


def run_queue(api, items, timeout=300):
    """Add plan items, run the queue until idle, return their history entries."""
    from bluesky_queueserver_api import BPlan

    for name, args, kwargs in items:
        api.item_add(BPlan(name, *args, **kwargs))
    history_before = api.status()["items_in_history"]
    api.queue_start()
    api.wait_for_idle(timeout=timeout)
    return api.history_get()["items"][history_before:]


def stored_run(catalog, uid, timeout=120.0):
    """The run ``uid`` once the station's analysis and catalog writer have stored its stop
    document (a running station writes within seconds, longer under load)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            run = catalog[uid]
            if run.metadata.get("stop"):
                return run
        except KeyError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"run {uid} has no stop document after {timeout} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def station(tmp_path_factory, catalog_server, redis_url):
    service = queue_station(
        tmp_path_factory.mktemp("station"), "queue-a", catalog_server, redis_url
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()
        forget_queue(redis_url, service.options["redis_prefix"])


@pytest.fixture
def api(station):
    with station.api() as client:
        client.queue_clear()  # a failed test leaves nothing behind for the next
        yield client


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


@pytest.mark.timeout(600)
def test_a_crash_during_an_item_records_it_as_lost_and_keeps_the_rest(station, shared_catalog):
    """Manager and worker killed during an item: after the restart the item is in the history
    with exit status 'unknown' (not re-run), the items behind it are still queued."""
    from bluesky_queueserver_api import BPlan

    with station.api() as api:
        long_ramp = api.item_add(
            BPlan("heat_ramp", "stage", ["raman"], start=40, stop=400, rate=5, every_C=20)
        )["item"]
        behind = api.item_add(BPlan("count", ["stage"], num=2))["item"]
        api.queue_start()
        api.wait_for_condition(
            lambda s: s["manager_state"] == "executing_queue" and s["running_item_uid"],
            timeout=60,
        )
        time.sleep(3)  # well inside the ~70 experiment-minute ramp
    station.kill()
    station.start()
    with station.api() as api:
        history = api.history_get()["items"]
        lost = history[-1]
        assert lost["name"] == "heat_ramp" and lost["kwargs"] == long_ramp["kwargs"]
        assert lost["result"]["exit_status"] == "unknown"
        assert "lost due to restart" in lost["result"]["msg"]
        queue = api.queue_get()["items"]
        assert [item["item_uid"] for item in queue] == [behind["item_uid"]]
        api.queue_start()
        api.wait_for_idle(timeout=120)
        assert api.history_get()["items"][-1]["result"]["exit_status"] == "completed"


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
