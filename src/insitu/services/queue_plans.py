"""insitu's plans in their queue-facing form: every argument can come from JSON via the queue.

bluesky-queueserver sends plan arguments as JSON and turns strings naming devices or plans of
the worker's namespace into those objects. Two arguments of insitu's plans are neither JSON nor
devices, and get a queueserver annotation (``parameter_annotation_decorator``, which wraps the
plan without changing what it does when called directly):

- ``anneal_and_measure(change_sample=...)``: a plan *name*, ``"change_sample"`` (the beamline's
  own sample change, the default from the queue) or ``"pause_for_sample_change"`` (pause for a
  person whatever the beamline). The function default, which pauses, cannot be described in
  JSON; called directly, the plan keeps it.
- ``ramp_until(monitor=...)``: the name of the live Raman callback in the namespace,
  ``"raman_flags"`` (the queueserver evaluates it there: ``__CALLABLE__``).

A queued plan can never leave the stage hot: unattended, nobody would notice. Where a plan
ends (``park_at`` of ``heat_ramp``, ``ramp_until`` and ``step_eis``, ``cool_to`` of ``anneal``,
``room_temperature`` of ``anneal_and_measure``, ``temperature`` of ``park``) must be a number
no higher than :data:`QUEUE_END_MAX_C` (``park_at=None``, "do not park", is refused when the
item is added), and the queue's ``mv`` refuses to move the stage above it: heating goes through
the plans that cool down when they end, fail or are aborted.
"""

from __future__ import annotations

import inspect
from typing import Any

from bluesky import plan_stubs
from bluesky_queueserver import parameter_annotation_decorator

from insitu import plans
from insitu.plans.arguments import as_number

__all__ = [
    "QUEUE_END_MAX_C",
    "QUEUE_PLANS",
    "SAMPLE_CHANGE_PLANS",
    "anneal",
    "anneal_and_measure",
    "heat_ramp",
    "map_processing_window",
    "mv",
    "park",
    "pause_for_sample_change",
    "ramp_until",
    "sample_change_plan",
    "step_eis",
]

#: Plan names a queued campaign may give as ``change_sample``; the first is the default.
SAMPLE_CHANGE_PLANS = ("change_sample", "pause_for_sample_change")

#: The highest temperature (C) a queued plan may leave the stage at: a film at 50 C is safe to
#: leave unattended (the paper's room temperature is 30 C).
QUEUE_END_MAX_C = 50.0


def _ends_cold(name: str, description: str) -> dict:
    return {
        name: {
            "description": f"{description} (C, at most {QUEUE_END_MAX_C:g} from the queue)",
            "annotation": "float",
            "max": QUEUE_END_MAX_C,
        }
    }


def _queue_form(plan, parameters: dict):
    return parameter_annotation_decorator({"parameters": parameters})(plan)


anneal_and_measure = _queue_form(
    plans.anneal_and_measure,
    {
        "change_sample": {
            "description": (
                "Plan run before each anneal, by name: 'change_sample' (the beamline's "
                "sample change: a fresh film on the simulated beamline, a pause for a "
                "person on a real one) or 'pause_for_sample_change'."
            ),
            "annotation": "SampleChange",
            "plans": {"SampleChange": list(SAMPLE_CHANGE_PLANS)},
            "default": SAMPLE_CHANGE_PLANS[0],
        },
        **_ends_cold("room_temperature", "Where the stage is parked between and after anneals"),
    },
)

ramp_until = _queue_form(
    plans.ramp_until,
    {
        "monitor": {
            "description": "The live Raman transition callback, by name: 'raman_flags'.",
            "annotation": "__CALLABLE__",
        },
        **_ends_cold("park_at", "Where the stage is parked when the plan ends"),
    },
)

map_processing_window = _queue_form(
    plans.map_processing_window,
    {
        "monitor": {
            "description": "The live Raman transition callback, by name: 'raman_flags'.",
            "annotation": "__CALLABLE__",
        },
        "change_sample": {
            "description": (
                "Plan run before each anneal, by name: 'change_sample' (a fresh film on the "
                "simulated beamline, a pause for a person on a real one) or "
                "'pause_for_sample_change'."
            ),
            "annotation": "SampleChange",
            "plans": {"SampleChange": list(SAMPLE_CHANGE_PLANS)},
            "default": SAMPLE_CHANGE_PLANS[0],
        },
        **_ends_cold("room_temperature", "Where the stage is parked between and after anneals"),
    },
)

heat_ramp = _queue_form(
    plans.heat_ramp, _ends_cold("park_at", "Where the stage is parked when the plan ends")
)
step_eis = _queue_form(
    plans.step_eis, _ends_cold("park_at", "Where the stage is parked when the plan ends")
)
anneal = _queue_form(plans.anneal, _ends_cold("cool_to", "Where the anneal cools down to"))
park = _queue_form(plans.park, _ends_cold("temperature", "The park temperature"))
pause_for_sample_change = plans.pause_for_sample_change


def mv(*args, **kwargs):
    """bluesky's ``mv`` from the queue: the stage only to :data:`QUEUE_END_MAX_C` or below.

    Raises
    ------
    ValueError
        Before any message, if a target of the stage is above :data:`QUEUE_END_MAX_C`.
    """
    from insitu.devices.linkam import LinkamStage

    for device, target in zip(args[::2], args[1::2], strict=False):
        if isinstance(device, LinkamStage):
            value = as_number(target, f"mv {device.name} target")
            if value > QUEUE_END_MAX_C:
                raise ValueError(
                    f"mv {device.name} to {value:g} C from the queue: allowed is at most "
                    f"{QUEUE_END_MAX_C:g} C, a temperature the stage may be left at unattended; "
                    "heat with heat_ramp, anneal, step_eis or ramp_until, which cool down when "
                    "they end"
                )
    return (yield from plan_stubs.mv(*args, **kwargs))


#: Every plan of ``insitu.plans.__all__`` (generator functions; ``step_eis_schedule`` is a plain
#: function), by name, in its queue-facing form (a plan added there later comes as it is).
QUEUE_PLANS: dict[str, Any] = {
    name: globals().get(name, getattr(plans, name))
    for name in plans.__all__
    if inspect.isgeneratorfunction(getattr(plans, name))
}


def sample_change_plan(beamline):
    """The plan a campaign changes samples with on ``beamline``, ``(index, temperature)``.

    A simulated beamline loads a fresh virtual film (``SimulatedLab.change_sample``); a real one
    pauses for a person (:func:`insitu.plans.pause_for_sample_change`).
    """
    simulation = getattr(beamline, "simulation", None)
    if simulation is not None:
        return simulation.change_sample
    return plans.pause_for_sample_change
