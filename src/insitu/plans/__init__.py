"""bluesky plans for in-situ experiments: heat ramps, step EIS, anneals, campaigns, closed loops.

Plans (one run each, ``plan_args`` in the metadata) and plan stubs (no run) in a flat namespace::

    from insitu.plans import heat_ramp, step_eis, anneal, anneal_and_measure, ramp_until

Every plan leaves the stage parked at a safe temperature when it ends, fails or is aborted
(:mod:`insitu.plans.safe_state`); campaigns resume from the catalog
(:mod:`insitu.plans.resume`, ``resume=True``).
"""

from insitu.plans.anneal import anneal
from insitu.plans.campaign import anneal_and_measure, pause_for_sample_change
from insitu.plans.closed_loop import ramp_until
from insitu.plans.heat_ramp import heat_ramp
from insitu.plans.processing_window import map_processing_window
from insitu.plans.resume import CampaignProgress, campaign_progress, use_catalog
from insitu.plans.safe_state import SAFE_TEMPERATURE_C, park
from insitu.plans.step_eis import step_eis, step_eis_schedule

__all__ = [
    "SAFE_TEMPERATURE_C",
    "CampaignProgress",
    "anneal",
    "anneal_and_measure",
    "campaign_progress",
    "heat_ramp",
    "map_processing_window",
    "park",
    "pause_for_sample_change",
    "ramp_until",
    "step_eis",
    "step_eis_schedule",
    "use_catalog",
]
