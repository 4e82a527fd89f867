"""bluesky plans for in-situ experiments: heat ramps, step EIS, anneals, campaigns, closed loop.

Plans (one run each, ``plan_args`` in the metadata) and plan stubs (no run) in a flat namespace::

    from insitu.plans import heat_ramp, step_eis, anneal, anneal_and_measure, ramp_until
"""

from insitu.plans.anneal import anneal
from insitu.plans.campaign import anneal_and_measure, pause_for_sample_change
from insitu.plans.closed_loop import ramp_until
from insitu.plans.heat_ramp import heat_ramp
from insitu.plans.step_eis import step_eis, step_eis_schedule

__all__ = [
    "anneal",
    "anneal_and_measure",
    "heat_ramp",
    "pause_for_sample_change",
    "ramp_until",
    "step_eis",
    "step_eis_schedule",
]
