"""Plans: bluesky's own, and every insitu plan (heat ramps, step EIS, campaigns, parking).

The insitu plans come in their queue-facing form (``insitu.services.queue_plans.QUEUE_PLANS``:
``anneal``, ``anneal_and_measure``, ``heat_ramp``, ``park``, ``pause_for_sample_change``,
``ramp_until``, ``step_eis``): the same plans, annotated so that the queueserver can turn JSON
strings into the objects they need (``change_sample="change_sample"``,
``monitor="raman_flags"``). Called here in a session they behave as the ``insitu.plans`` ones.
"""

import bluesky.plan_stubs as bps  # noqa: F401
import bluesky.plans as bp  # noqa: F401
from bluesky.plans import count  # noqa: F401  (queueable: count(["stage", "raman"], num=3))
from bluesky_queueserver import is_re_worker_active

from insitu.plans import stubs as ips  # noqa: F401  (ips.sleep: experiment-time wait)
from insitu.services.queue_plans import QUEUE_PLANS, sample_change_plan

globals().update(QUEUE_PLANS)  # every plan of insitu.plans.__all__, by its name

if is_re_worker_active():
    # Unattended: the queue's mv never takes the stage above QUEUE_END_MAX_C (queue_plans).
    from insitu.services.queue_plans import mv  # noqa: F401  (queueable: mv("stage", 30))
else:
    from bluesky.plan_stubs import mv  # noqa: F401  (a person at the session moves freely)

# Campaigns resume from bl.catalog, flushed first: load() registered it (insitu.plans.resume).
raman_flags = bl.raman_flags  # noqa: F821  (live transition flags: ramp_until(monitor=raman_flags))
# How a campaign changes samples here (a queued anneal_and_measure's default): the simulated
# beamline loads a fresh virtual film; a real one pauses for a person (RE.resume(), or
# `insitu queue resume`).
change_sample = sample_change_plan(bl)  # noqa: F821
