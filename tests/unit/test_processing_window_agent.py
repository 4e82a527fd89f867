"""The processing-window agent against the virtual film's truth (no beamline: the film's model
decides each anneal's outcome, as the live flags would, at an onset threshold the agent is not
told)."""

from __future__ import annotations

import json
import math

import pytest

from insitu.analysis.processing_window import (
    REPORTED_DWELLS_MIN,
    GridAgent,
    ProcessingWindowAgent,
    Sample,
)
from insitu.sim.processing_window_truth import annealed_state, window_truth


def _campaign(agent, shift: float, onset_fraction: float, samples: int = 10):
    for _ in range(samples):
        (decision,) = agent.suggest(1)
        film, state = annealed_state(
            decision["anneal_C"], decision["dwell_min"], crystallization_shift_C=shift
        )
        sigma = 10.0 ** film.conductivity_law(state).log10_sigma_30
        agent.ingest(
            [
                {
                    **decision,
                    "crystallized": state.crystalline_fraction >= onset_fraction,
                    "sigma_30C_S_cm": sigma,
                }
            ]
        )
    return agent


def _misses(agent, truth) -> list[float]:
    """How far (C) the estimate at each reported dwell lies outside [t1 - 5, t5 + 5]."""
    misses = []
    for estimate, band in zip(agent.boundary(), truth.boundary, strict=True):
        low, high = band.t1_C - 5.0, band.t5_C + 5.0
        value = estimate.anneal_C
        misses.append(0.0 if low <= value <= high else min(abs(value - low), abs(value - high)))
    return misses


@pytest.mark.parametrize("shift", [-40.0, -20.0, 0.0, 20.0, 40.0])
@pytest.mark.parametrize("onset_fraction", [0.012, 0.03])
def test_ten_films_pin_the_boundary_at_every_dwell(shift, onset_fraction):
    truth = window_truth(crystallization_shift_C=shift)
    agent = _campaign(ProcessingWindowAgent(seed=3), shift, onset_fraction)
    assert _misses(agent, truth) == [0.0] * len(REPORTED_DWELLS_MIN), agent.report()["boundary"]
    best = agent.best_amorphous()
    assert abs(best.sigma_30C_S_cm / truth.best_amorphous_sigma_30C_S_cm - 1.0) < 0.10
    for sample in agent.samples:  # the truth is a real bound on what each film showed
        (band,) = [
            b
            for b in window_truth(
                crystallization_shift_C=shift, dwells_min=[sample.dwell_min]
            ).boundary
        ]
        if sample.crystallized:
            assert sample.anneal_C > band.t1_C
        else:
            assert sample.anneal_C < band.t5_C


def test_a_paper_grid_of_ten_misses_a_shifted_film_the_agent_pins():
    """Why an agent: the same ten films on a grid leave the boundary unknown between points."""
    shift = -40.0
    truth = window_truth(crystallization_shift_C=shift)
    grid = GridAgent(anneals_C=(550, 600, 650, 700, 750), dwells_min=(5, 120))
    _campaign(grid, shift, 0.03)
    assert max(_misses(grid, truth)) > 5.0
    assert [(s.anneal_C, s.dwell_min) for s in grid.samples[:3]] == [
        (550, 5),
        (600, 5),
        (650, 5),
    ]


def test_the_agent_is_seeded_speaks_bluesky_adaptive_and_explains_each_choice():
    from bluesky_adaptive.protocols import Optimizer

    first = _campaign(ProcessingWindowAgent(seed=5), 0.0, 0.03, samples=4)
    second = _campaign(ProcessingWindowAgent(seed=5), 0.0, 0.03, samples=4)
    assert isinstance(first, Optimizer)
    assert first.report() == second.report()
    report = json.loads(json.dumps(first.report()))  # JSON-able as it is stored
    reasons = [d["reason"] for d in report["decisions"]]
    assert reasons[0].startswith("bisection") and reasons[-1].startswith("level set")
    last = report["decisions"][-1]
    assert 0.0 <= last["predicted_crystallized_probability"] <= 1.0
    assert last["boundary_band_C"][0] <= last["boundary_C"] <= last["boundary_band_C"][1]
    (best,) = first.get_best_points()
    assert best[2]["crystallized"] is False


def test_before_both_kinds_of_film_the_agent_brackets_and_bisects():
    agent = ProcessingWindowAgent()
    assert agent.ask()["anneal_C"] == 650.0
    agent.tell(Sample(650.0, 20.0, True, 1e-8))
    assert agent.ask()["anneal_C"] == 575.0
    bracket = agent.boundary()[0]
    assert math.isnan(bracket.anneal_C) and bracket.high_C == 650.0
    agent.tell(Sample(575.0, 20.0, False, 1.8e-9))
    estimates = agent.boundary()
    assert all(575.0 < b.anneal_C < 650.0 for b in estimates)
    # the boundary never rises with the dwell
    assert all(a.anneal_C >= b.anneal_C for a, b in zip(estimates[:-1], estimates[1:], strict=True))
