"""A plan's ``md`` cannot override the ``host``/``pid`` the beamline records for crash recovery.

Crash recovery (:func:`insitu.beamline.recovery.close_interrupted_runs`) closes a run as "process
died" when the process its start document names (``pid`` on ``host``) is gone: a plan that could
put another pid there would get a live run closed under it.
"""

from __future__ import annotations

import pytest
from ophyd import Signal

from insitu.plans import anneal, anneal_and_measure, heat_ramp, ramp_until, step_eis
from insitu.plans.arguments import as_metadata
from insitu.testing.devices import FakeDetector, FakeStage


def _plans(md):
    stage = FakeStage(name="stage")
    detector = FakeDetector(name="raman")
    eis = FakeDetector(name="eis")
    monitor = type(
        "Monitor",
        (),
        {
            "analysed": Signal(name="raman_analysed", value=0),
            "transition": Signal(name="raman_transition", value=""),
        },
    )()
    return {
        "heat_ramp": lambda: heat_ramp(
            stage, [detector], start=30.0, stop=100.0, rate=10.0, every_C=10.0, md=md
        ),
        "anneal": lambda: anneal(stage, temperature=300.0, detectors=[detector], md=md),
        "step_eis": lambda: step_eis(stage, eis, temperatures=[100.0, 200.0], md=md),
        "ramp_until": lambda: ramp_until(
            stage, detector, monitor=monitor, stop=300.0, rate=10.0, md=md
        ),
        "anneal_and_measure": lambda: anneal_and_measure(
            stage, detector, eis, anneal_temperatures=[300.0], eis_temperatures=[100.0], md=md
        ),
    }


PLAN_NAMES = ["heat_ramp", "anneal", "step_eis", "ramp_until", "anneal_and_measure"]


@pytest.mark.parametrize("md", [{"pid": 1}, {"host": "x"}, {"sample": "LLZO", "pid": 4242}])
@pytest.mark.parametrize("plan_name", PLAN_NAMES)
def test_every_plan_refuses_pid_and_host_before_its_first_message(plan_name, md):
    plan = _plans(md)[plan_name]()
    key = "pid" if "pid" in md else "host"
    with pytest.raises(ValueError) as error:
        next(plan)  # not one message: the refusal comes before anything is yielded
    message = str(error.value)
    assert f"{plan_name} md" in message
    assert repr(key) in message
    assert "recorded by the beamline" in message


@pytest.mark.parametrize("plan_name", PLAN_NAMES)
def test_other_md_still_reaches_the_plan(plan_name):
    plan = _plans({"sample": "LLZO", "hostname_note": "x", "pids": [1]})[plan_name]()
    try:
        assert next(plan).command  # the same call without pid/host starts
    finally:
        plan.close()


@pytest.mark.parametrize("key", ["pid", "host"])
def test_the_shared_md_check_names_the_key_and_why(key):
    with pytest.raises(
        ValueError, match=rf"p md key '{key}' \(1\) is not allowed: .*recorded by the beamline"
    ):
        as_metadata({key: 1}, "p md")
    assert as_metadata({"sample": "LLZO"}, "p md") == {"sample": "LLZO"}
