"""Plans: bluesky's own, and insitu's experiment-time stubs."""

import bluesky.plan_stubs as bps  # noqa: F401
import bluesky.plans as bp  # noqa: F401

from insitu.plans import stubs as ips  # noqa: F401  (ips.sleep: experiment-time wait)
