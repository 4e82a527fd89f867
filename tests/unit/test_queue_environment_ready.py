"""``insitu serve queue`` says its environment is open only once the manager has the worker's
Run Engine state: before that, ``queue_start`` fails with "Run Engine is not found"."""

from __future__ import annotations

import contextlib
import time

import pytest

from insitu.services import queue_server

pytestmark = pytest.mark.unit


class ScriptedManager:
    """An RE Manager API whose status runs through the states a manager goes through after
    ``environment_open``: the environment exists and the manager is idle a poll before the
    manager has the worker's Run Engine state."""

    def __init__(self):
        self.opened = False
        self.polls_after_open = 0
        self.last = None

    def status(self):
        if not self.opened:
            status = {"worker_environment_exists": False, "manager_state": "idle"}
            status["re_state"] = None
        else:
            self.polls_after_open += 1
            status = {"worker_environment_exists": True, "manager_state": "idle"}
            status["re_state"] = "idle" if self.polls_after_open > 2 else None
        self.last = status
        return status

    def environment_open(self):
        self.opened = True

    def wait_for_condition(self, condition, *, timeout):
        deadline = time.monotonic() + timeout
        while not condition(self.status()):
            assert time.monotonic() < deadline, "condition never met"


def test_the_environment_counts_as_open_only_with_the_run_engine_state(monkeypatch):
    manager = ScriptedManager()
    monkeypatch.setattr(
        queue_server, "manager_api", lambda address, **_: contextlib.nullcontext(manager)
    )
    queue_server._open_environment("tcp://127.0.0.1:1")
    assert manager.opened
    assert manager.last["re_state"] == "idle"


def test_insitu_queue_open_waits_for_the_same_state():
    from insitu.services.queue_client import environment_ready

    assert not environment_ready(
        {"worker_environment_exists": True, "manager_state": "idle", "re_state": None}
    )
    assert environment_ready(
        {"worker_environment_exists": True, "manager_state": "idle", "re_state": "idle"}
    )
