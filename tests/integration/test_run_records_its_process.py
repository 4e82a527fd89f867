"""Each run records the process writing it (``host``, ``pid``); nothing a plan passes changes them.

Crash recovery closes an open run of this host whose ``pid`` is dead: a start document with a
forged pid would get a live run closed as "process died" by the next beamline that starts.
"""

from __future__ import annotations

import os
import socket

import bluesky.plans as bp
import pytest


def test_a_run_started_normally_records_this_process(sim_beamline):
    bl = sim_beamline
    (uid,) = bl.RE(bp.count([bl.stage], num=1))
    bl.flush()
    start = bl.catalog[uid].start
    assert start["pid"] == os.getpid()
    assert start["host"] == socket.gethostname()


@pytest.mark.parametrize("override", [{"pid": 1}, {"host": "elsewhere"}])
def test_no_plan_or_call_metadata_overrides_host_or_pid(sim_beamline, override):
    """bluesky's own plans do not go through the insitu plans' md check: the RunEngine refuses."""
    bl = sim_beamline
    before = len(bl.catalog)
    (key,) = override
    with pytest.raises(ValueError, match=rf"'{key}'.*recorded by the beamline"):
        bl.RE(bp.count([bl.stage], num=1, md=override))
    with pytest.raises(ValueError, match=rf"'{key}'.*recorded by the beamline"):
        bl.RE(bp.count([bl.stage], num=1), **override)
    bl.flush()
    assert len(bl.catalog) == before  # no run was opened
    (uid,) = bl.RE(bp.count([bl.stage], num=1))  # and the RunEngine still runs plans
    bl.flush()
    assert bl.catalog[uid].start["pid"] == os.getpid()
