"""``close_interrupted_runs`` reads the open runs from one listing: a run another living process
closes while the listing is read is not looked up again (that lookup raised KeyError and a
restarting queue station failed to load beside a second station on the same host)."""

from __future__ import annotations

import pytest

from insitu.beamline.recovery import close_interrupted_runs

pytestmark = pytest.mark.unit


class FakeRun:
    def __init__(self, uid, pid, started):
        self.metadata = {"start": {"uid": uid, "pid": pid, "time": started, "host": "lab"}}

    def __iter__(self):
        return iter(())  # no streams: num_events is {}

    def update_metadata(self, metadata, drop_revision):
        self.metadata.update(metadata)


class OpenRuns:
    """The open runs as listed; a lookup by uid finds none of them any more (each one was
    closed by its writer right after the listing)."""

    def __init__(self, runs):
        self.runs = runs

    def search(self, query):
        return self

    def items(self):
        return iter(self.runs.items())

    def __iter__(self):
        return iter(self.runs)

    def __getitem__(self, uid):
        raise KeyError(f"No match for partial_uid {uid}")


def test_runs_closed_while_listed_are_not_looked_up_again():
    living = FakeRun("living", pid=101, started=1.0)
    dead = FakeRun("dead", pid=102, started=2.0)
    closed = close_interrupted_runs(
        OpenRuns({"living": living, "dead": dead}), host="lab", is_alive=lambda pid: pid == 101
    )
    assert closed == ["dead"]
    assert dead.metadata["stop"]["exit_status"] == "fail"
    assert "process died (pid 102 on host lab)" in dead.metadata["stop"]["reason"]
    assert "stop" not in living.metadata
