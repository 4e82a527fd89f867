"""Leave the heating stage safe if the process dies: plans end by parking it at a safe temperature.

A Linkam controller keeps executing its last command when the computer driving it is gone
(SIGKILL, power loss of the PC, a crashed session): a stage told to hold 750 C holds 750 C until
someone comes. So every plan here keeps two promises, checked by ``tests/faults``:

1. The programmed limit is always a temperature the plan means to reach (its own set points,
   never above the plan's top), so an abandoned ramp ends there and not higher.
2. When the plan ends -- normally, on an error, or on ``RE.abort()``/``RE.stop()`` -- the stage
   is *parked*: told to ramp to a safe temperature (room temperature by default) and the plan
   waits until it has settled there. After a park the controller's last command is "ramp to
   30 C", which is also what it keeps doing if the process dies during the park.

What cannot be made safe from here:

- A dwell: the T95 serial protocol has no command that programs a hold *time* (status 0x40
  "holding the limit time" belongs to profiles programmed on the controller itself; see
  ``reference/linkam_t95.md``). An anneal abandoned during its dwell holds the anneal
  temperature -- the plan's own top, never above -- until the watchdog of a live session or a
  person ends it.
- ``RE.halt()`` skips all cleanup by design (bluesky): nothing is parked.
- The park waits for the cool-down because bluesky's RunEngine calls ``stop()`` on every moved
  device when a plan ends, and ``LinkamStage.stop()`` holds a stage that is still ramping; a
  cool-down left running would be turned into a hold at a hot temperature.
"""

from __future__ import annotations

import logging
import uuid

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import FailedStatus

from insitu.plans.arguments import as_number
from insitu.plans.suspenders import release_temperature_bands

__all__ = ["SAFE_TEMPERATURE_C", "check_park_at", "park", "parked_on_exit"]

logger = logging.getLogger(__name__)

#: Where plans leave the stage by default (C): room temperature, as in the paper's campaign.
SAFE_TEMPERATURE_C = 30.0


def check_park_at(stage, park_at: float | None, what: str) -> float | None:
    """Check a park temperature against the stage limits (None: do not park)."""
    if park_at is None:
        return None
    park_at = as_number(park_at, f"{what} park_at")
    stage.check_value(park_at)
    return park_at


def park(stage, temperature: float, *, rate: float | None = None):
    """Plan stub: ramp the stage to ``temperature`` (at ``rate`` C/min) and wait until settled.

    A move still pending when the park starts (a failed plan's ramp) is superseded by it, and
    its Status fails; the RunEngine reports that failure into the plan as ``FailedStatus``.
    That one is expected and ignored; a failure of the park's own move is raised. A
    temperature-band suspender still installed on the stage is removed first: the park leaves
    the band on purpose.
    """
    yield from release_temperature_bands(stage)
    if rate is not None:
        yield from bps.mv(stage.rate, rate)
    group = f"park-{uuid.uuid4()}"
    try:
        yield from bps.abs_set(stage, temperature, group=group)
    except FailedStatus:
        pass  # the superseded move; the park's own set has been sent (its group is known)
    for _ in range(10):  # more than one superseded Status is not expected; bound it anyway
        try:
            yield from bps.wait(group=group)
            return
        except FailedStatus as error:
            failed = error.args[0] if error.args else None
            if getattr(failed, "target", None) == temperature:
                raise  # the park itself failed


def parked_on_exit(
    plan,
    stage,
    park_at: float | None,
    *,
    rate: float | None = None,
    only_on_failure: bool = False,
):
    """Run ``plan``; then, however it ends, park ``stage`` at ``park_at`` (see the module doc).

    Built on ``bluesky.preprocessors.finalize_wrapper``. If the plan failed and the park fails
    too (e.g. the stage is unplugged), the park's error is logged and the plan's own error is
    the one raised.

    Parameters
    ----------
    plan : generator
        The plan to run.
    stage : LinkamStage
    park_at : float or None
        Safe temperature in C; None runs ``plan`` unchanged (the stage stays where it ended:
        only for an attended stage).
    rate : float, optional
        Cooling rate in C/min for the park (default: the stage's current rate).
    only_on_failure : bool
        Park only if ``plan`` did not finish (for a plan that already ends at ``park_at``).
    """
    if park_at is None:
        return (yield from plan)
    finished: list[bool] = []

    def body():
        result = yield from plan
        finished.append(True)
        return result

    def final():
        if finished and only_on_failure:
            return
        try:
            yield from park(stage, park_at, rate=rate)
        except Exception:
            if finished:
                raise
            logger.exception(
                "%s: could not park at %.1f C after the plan failed", stage.name, park_at
            )

    return (yield from bpp.finalize_wrapper(body(), final))
