"""``step_eis``: the paper's impedance protocol, heating and cooling through set temperatures."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from ophyd import Signal

from insitu.plans import stubs
from insitu.plans.arguments import as_count, as_positive, as_temperatures, check_readable
from insitu.plans.heat_ramp import check_stage_rate

__all__ = ["step_eis", "step_eis_schedule"]


def step_eis_schedule(temperatures, cycles: int) -> list[tuple[int, str, float]]:
    """The measurement order: per cycle, heating up through the temperatures, then cooling down.

    The top temperature is measured once per cycle (at the end of heating); cooling starts at
    the next one down. Returns ``(cycle, direction, temperature)`` tuples, cycles from 1.
    """
    ordered = sorted(temperatures)
    schedule = []
    for cycle in range(1, cycles + 1):
        schedule += [(cycle, "heating", t) for t in ordered]
        schedule += [(cycle, "cooling", t) for t in reversed(ordered[:-1])]
    return schedule


def step_eis(
    stage,
    eis,
    *,
    temperatures,
    stabilize_s: float = 120.0,
    cycles: int = 2,
    rate: float | None = None,
    extra_detectors=(),
    skip=(),
    md: dict | None = None,
):
    """Measure impedance at each temperature, heating then cooling, for ``cycles`` cycles.

    At each temperature: move and settle (the stage's tolerance and settle time), wait
    ``stabilize_s`` on the experiment clock, then measure. Events carry ``cycle`` (from 1) and
    ``direction`` (``"heating"``/``"cooling"``) with the stage temperature.

    Parameters
    ----------
    stage : LinkamStage
    eis : ZahnerEIS (or any triggerable, readable detector)
    temperatures : list of float
        Set temperatures in C (the paper: 100 to 500 C every 50 C).
    stabilize_s : float
        Experiment seconds to wait at each temperature before measuring (the paper: 120 s).
    cycles : int
        Heating-and-cooling cycles (the paper: 2).
    rate : float, optional
        Ramp rate between temperatures in C/min (default: the stage's current rate).
    extra_detectors : list, optional
        Read along with the impedance (e.g. a thermocouple).
    skip : iterable of (cycle, direction, temperature)
        Measurements already stored, to leave out when resuming a campaign.
    md : dict, optional
        Extra run metadata.
    """
    temperatures = as_temperatures(temperatures, "step_eis temperatures")
    for temperature in temperatures:
        stage.check_value(temperature)
    stabilize_s = as_positive(stabilize_s, "step_eis stabilize_s", "s", allow_zero=True)
    cycles = as_count(cycles, "step_eis cycles", minimum=1, maximum=100)
    if rate is not None:
        rate = check_stage_rate(stage, rate)
    detectors = check_readable([eis, *extra_detectors], "step_eis detectors")
    done = {(int(c), str(d), float(t)) for c, d, t in skip}
    schedule = [item for item in step_eis_schedule(temperatures, cycles) if item not in done]

    cycle_signal = Signal(name="cycle", value=0)
    direction_signal = Signal(name="direction", value="")
    _md = {
        "plan_name": "step_eis",
        "plan_args": {
            "stage": stage.name,
            "eis": eis.name,
            "temperatures": temperatures,
            "stabilize_s": stabilize_s,
            "cycles": cycles,
            "rate": rate,
        },
        "eis_temperatures_C": temperatures,
        "eis_cycles": cycles,
        "hints": {"dimensions": [([f"{stage.name}_temperature"], "primary")]},
        **(md or {}),
    }

    @bpp.stage_decorator([*detectors, stage])
    @bpp.run_decorator(md=_md)
    def inner():
        if rate is not None:
            yield from bps.mv(stage.rate, rate)
        for cycle, direction, temperature in schedule:
            yield from bps.mv(stage, temperature)
            yield from stubs.sleep(stabilize_s)
            yield from bps.mv(cycle_signal, cycle, direction_signal, direction)
            yield from bps.trigger_and_read([*detectors, stage, cycle_signal, direction_signal])

    return (yield from inner())
