"""A simulated queue station for the services tests: its config, its service, its queue."""

from __future__ import annotations

import contextlib
import secrets
import socket
import sys
import time

from insitu.services.queue_service import QueueService

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


@contextlib.contextmanager
def running_station(directory, name, catalog_server, redis, **config_options):
    """A started :func:`queue_station`; stopped and its Redis keys deleted after."""
    service = queue_station(directory, name, catalog_server, redis, **config_options)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        forget_queue(redis, service.options["redis_prefix"])
