"""``ramp_until``: ramp while live Raman analysis watches; act when a transition is flagged."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import FailedStatus

from insitu.plans.arguments import (
    as_metadata,
    as_number,
    as_temperature_step,
    check_readable,
    check_stage,
)
from insitu.plans.heat_ramp import RampSignals, check_stage_rate, ramp_acquisition
from insitu.plans.safe_state import SAFE_TEMPERATURE_C, check_park_at, parked_on_exit

__all__ = ["ramp_until", "ACTIONS", "TRANSITIONS"]

ACTIONS = ("hold", "stop", "fine")
TRANSITIONS = ("crystallization_onset", "crystallized", "decomposition")


def ramp_until(
    stage,
    raman,
    *,
    monitor,
    stop: float,
    rate: float,
    on: str = "crystallization_onset",
    action: str = "hold",
    every_C: float = 5.0,
    fine_every_C: float = 1.0,
    fine_rate: float = 1.0,
    park_at: float | None = SAFE_TEMPERATURE_C,
    md: dict | None = None,
):
    """Ramp toward ``stop`` acquiring Raman spectra; when the flag ``on`` is raised, act.

    After each spectrum the plan waits for the live analysis of that spectrum (the monitor's
    ``analysed`` signal) and reads the monitor's ``transition`` signal. On the flag:

    - ``"hold"``: hold the current temperature (the film is kept at the edge of the transition);
    - ``"stop"``: hold, then ramp back down to the start temperature at ``rate``;
    - ``"fine"``: go on to ``stop`` at ``fine_rate`` with a spectrum every ``fine_every_C``.

    Parameters
    ----------
    stage, raman : devices
    monitor : RamanTransitionCallback
        The live analysis subscribed to the RunEngine (``beamline.raman_flags``).
    stop, rate : float
        Where the ramp would end (C) and its rate (C/min).
    on : str
        One of ``crystallization_onset``, ``crystallized``, ``decomposition``.
    action : str
        One of ``hold``, ``stop``, ``fine``.
    park_at : float or None
        After the run (and if the plan fails or is aborted) the stage is parked here at
        ``rate`` (C, default room temperature; see :mod:`insitu.plans.safe_state`). With
        ``action="hold"`` pass None to leave the film held at the edge after the plan: attended
        use only, since the stage then stays hot if this process dies.

    Returns
    -------
    float or None
        The stage temperature when the flag came, or None if it never came.
    """
    if on not in TRANSITIONS:
        raise ValueError(f"ramp_until on={on!r} is not a transition: use one of {TRANSITIONS}")
    if action not in ACTIONS:
        raise ValueError(f"ramp_until action={action!r} is not allowed: use one of {ACTIONS}")
    if not (hasattr(monitor, "analysed") and hasattr(monitor, "transition")):
        raise TypeError(
            f"ramp_until monitor {monitor!r} must be the live RamanTransitionCallback "
            "(with 'analysed' and 'transition' signals)"
        )
    stage = check_stage(stage, "ramp_until stage")
    check_readable([raman], "ramp_until raman", exclude=[stage])
    md = as_metadata(md, "ramp_until md")
    stop = as_number(stop, "ramp_until stop")
    stage.check_value(stop)
    rate = check_stage_rate(stage, rate)
    every_C = as_temperature_step(every_C, "ramp_until every_C")
    fine_every_C = as_temperature_step(fine_every_C, "ramp_until fine_every_C")
    fine_rate = check_stage_rate(stage, fine_rate)
    park_at = check_park_at(stage, park_at, "ramp_until")

    signals = RampSignals(stage.name)
    flagged: list[float] = []
    _md = {
        "plan_name": "ramp_until",
        "plan_args": {
            "stop": stop,
            "rate": rate,
            "on": on,
            "action": action,
            "every_C": every_C,
            "park_at": park_at,
        },
        "ramp_rate_C_per_min": rate,
        "hints": {"dimensions": [([f"{stage.name}_temperature_mean"], "primary")]},
        **(md or {}),
    }

    def flag_seen():
        yield from bps.mv(monitor.analysed, 0)  # wait until the latest spectrum is analysed
        kind = yield from bps.rd(monitor.transition)
        if kind == on:
            temperature = yield from bps.rd(stage.temperature)
            flagged.append(float(temperature))
            return True
        return False

    @bpp.stage_decorator([raman, stage])
    @bpp.run_decorator(md=_md)
    def inner():
        start = yield from bps.rd(stage.temperature)
        ramp = yield from ramp_acquisition(
            stage, [raman], stop=stop, rate=rate, every_C=every_C, every_s=None,
            signals=signals, should_stop=flag_seen,
        )  # fmt: skip
        if not flagged:
            yield from bps.wait(group="ramp")
            return
        if ramp is not None and not ramp.done:
            try:  # hold here; the ramp's Status ends as interrupted, which is what we asked for
                yield from bps.stop(stage)
                yield from bps.wait(group="ramp")
            except FailedStatus:
                pass
        if action == "stop":
            yield from bps.mv(stage, float(start))
        elif action == "fine":
            yield from ramp_acquisition(
                stage, [raman], stop=stop, rate=fine_rate, every_C=fine_every_C, every_s=None,
                signals=signals, group="fine-ramp",
            )  # fmt: skip
            yield from bps.wait(group="fine-ramp")

    yield from parked_on_exit(inner(), stage, park_at, rate=rate)
    return flagged[0] if flagged else None
