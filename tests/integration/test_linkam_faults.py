"""Injected emulator faults reach the stage as their specific exceptions; the stage recovers."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import pytest

from insitu.devices.linkam import (
    LinkamConnectionError,
    LinkamErrorFlags,
    LinkamProtocolError,
    LinkamStageError,
    LinkamTimeout,
)

ORIGINAL_TARGET = 200.0
RECOVERY_TARGET = 210.0
EXPECTED = {
    "no_reply": {"pty": LinkamTimeout, "tcp": LinkamTimeout},
    "garbage": {"pty": LinkamProtocolError, "tcp": LinkamProtocolError},
    "truncated": {"pty": LinkamProtocolError, "tcp": LinkamProtocolError},
    "unplugged": {"pty": LinkamStageError, "tcp": LinkamStageError},
    # A pulled serial cable is silence; a dropped TCP connection is seen as closed.
    "disconnect": {"pty": LinkamTimeout, "tcp": LinkamConnectionError},
}


@pytest.mark.parametrize("fault", list(EXPECTED))
def test_fault_gives_its_exception_and_the_stage_works_after_it_clears(
    linkam_rig, linkam_transport, linkam_run_engine, fault
):
    expected = EXPECTED[fault][linkam_transport]
    rig = linkam_rig(linkam_transport, rate=150.0, settle_time=2.0)
    stage, emulator = rig.stage, rig.emulator
    move = stage.set(ORIGINAL_TARGET)
    emulator.inject_fault(fault)

    # The pending move fails with the fault's own exception...
    with pytest.raises(expected) as caught:
        move.wait(timeout=10)
    # ...and so does a direct exchange with the controller.
    with pytest.raises(expected):
        stage.driver.status()
    if fault == "unplugged":
        assert caught.value.flags == LinkamErrorFlags.OPEN_CIRCUIT
        assert stage.errors.get() == "OPEN_CIRCUIT"
    else:
        # A failed poll makes read() fail rather than serve a stale reading.
        with pytest.raises(expected):
            stage.trigger().wait(timeout=10)
        with pytest.raises(expected):
            stage.read()

    emulator.clear_fault()
    stage.trigger().wait(timeout=10)
    assert stage.errors.get() == ""
    # Above anything the first move could have reached: a heating move whatever the timing.
    linkam_run_engine(bps.mv(stage, RECOVERY_TARGET))
    assert stage.position == pytest.approx(RECOVERY_TARGET, abs=1.0)
    assert stage.read()["linkam_temperature"]["value"] == pytest.approx(RECOVERY_TARGET, abs=1.0)
