"""Plans: bluesky's own, and insitu's in-situ plans (heat ramps, step EIS, campaigns)."""

import bluesky.plan_stubs as bps  # noqa: F401
import bluesky.plans as bp  # noqa: F401

from insitu.plans import (  # noqa: F401
    anneal,
    anneal_and_measure,
    heat_ramp,
    ramp_until,
    step_eis,
)
from insitu.plans import stubs as ips  # noqa: F401  (ips.sleep: experiment-time wait)

raman_flags = bl.raman_flags  # noqa: F821  (live transition flags: ramp_until(monitor=raman_flags))
