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
"""

from __future__ import annotations

import inspect
from typing import Any

from bluesky_queueserver import parameter_annotation_decorator

from insitu import plans

__all__ = [
    "QUEUE_PLANS",
    "SAMPLE_CHANGE_PLANS",
    "anneal",
    "anneal_and_measure",
    "heat_ramp",
    "pause_for_sample_change",
    "ramp_until",
    "sample_change_plan",
    "step_eis",
]

#: Plan names a queued campaign may give as ``change_sample``; the first is the default.
SAMPLE_CHANGE_PLANS = ("change_sample", "pause_for_sample_change")

anneal_and_measure = parameter_annotation_decorator(
    {
        "parameters": {
            "change_sample": {
                "description": (
                    "Plan run before each anneal, by name: 'change_sample' (the beamline's "
                    "sample change: a fresh film on the simulated beamline, a pause for a "
                    "person on a real one) or 'pause_for_sample_change'."
                ),
                "annotation": "SampleChange",
                "plans": {"SampleChange": list(SAMPLE_CHANGE_PLANS)},
                "default": SAMPLE_CHANGE_PLANS[0],
            }
        }
    }
)(plans.anneal_and_measure)

ramp_until = parameter_annotation_decorator(
    {
        "parameters": {
            "monitor": {
                "description": "The live Raman transition callback, by name: 'raman_flags'.",
                "annotation": "__CALLABLE__",
            }
        }
    }
)(plans.ramp_until)

# The rest take JSON values and device names as they are.
anneal = plans.anneal
heat_ramp = plans.heat_ramp
step_eis = plans.step_eis
pause_for_sample_change = plans.pause_for_sample_change

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
