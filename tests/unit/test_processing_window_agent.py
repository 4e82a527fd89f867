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


def _margin(fraction: float, onset_fraction: float) -> float:
    """A stand-in for the live onset margin: 0 at the onset fraction, 8 units of noise per
    decade of crystalline fraction (the detector's z grows with the crystals' band area)."""
    return 8.0 * math.log10(max(fraction, 1e-9) / onset_fraction)


def _campaign(
    agent, shift: float, onset_fraction: float, samples: int = 10, *, margins: bool = False
):
    for _ in range(samples):
        (decision,) = agent.suggest(1)
        film, state = annealed_state(
            decision["anneal_C"], decision["dwell_min"], crystallization_shift_C=shift
        )
        sigma = 10.0 ** film.conductivity_law(state).log10_sigma_30
        outcome = {
            "crystallized": state.crystalline_fraction >= onset_fraction,
            "sigma_30C_S_cm": sigma,
        }
        if margins:
            outcome["crystallization_margin"] = _margin(state.crystalline_fraction, onset_fraction)
        agent.ingest([{**decision, **outcome}])
    return agent


def _misses(agent, truth) -> list[float]:
    """How far (C) the estimate at each reported dwell lies outside [t1 - 5, t5 + 5]."""
    misses = []
    for estimate, band in zip(agent.boundary(), truth.boundary, strict=True):
        low, high = band.t1_C - 5.0, band.t5_C + 5.0
        value = estimate.anneal_C
        misses.append(0.0 if low <= value <= high else min(abs(value - low), abs(value - high)))
    return misses


@pytest.mark.parametrize("margins", [False, True], ids=["labels", "margins"])
@pytest.mark.parametrize("shift", [-40.0, -20.0, 0.0, 20.0, 40.0])
@pytest.mark.parametrize("onset_fraction", [0.012, 0.03])
def test_ten_films_pin_the_boundary_at_every_dwell(shift, onset_fraction, margins):
    truth = window_truth(crystallization_shift_C=shift)
    agent = _campaign(ProcessingWindowAgent(seed=3), shift, onset_fraction, margins=margins)
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


def _boundary(samples) -> list[float]:
    agent = ProcessingWindowAgent(seed=3)
    for sample in samples:
        agent.tell(sample)
    return [b.anneal_C for b in agent.boundary()]


@pytest.mark.parametrize("shift", [-20.0, 0.0, 20.0])
def test_a_film_called_the_other_way_by_a_hair_moves_the_boundary_by_a_hair(shift):
    """The film of a campaign closest to the flag's threshold (where the agent puts films),
    measured again with its onset evidence 0.3 units of noise to the other side of the
    threshold (its call flipped): with margins the boundary moves by about a degree at most
    (measured 0.8-1.1 C), a fraction of the 5 C it must be within; as bare labels the same flip
    moves it by ten times that (measured 11-13 C)."""
    agent = _campaign(ProcessingWindowAgent(seed=3), shift, 0.02, margins=True)
    samples = list(agent.samples)
    index = min(range(len(samples)), key=lambda i: abs(samples[i].crystallization_margin))
    film = samples[index]
    margin = 0.3 if film.crystallization_margin < 0 else -0.3
    flipped = Sample(film.anneal_C, film.dwell_min, margin >= 0, film.sigma_30C_S_cm, margin)
    again = [*samples[:index], flipped, *samples[index + 1 :]]
    soft = max(abs(a - b) for a, b in zip(_boundary(samples), _boundary(again), strict=True))

    def bare(films):
        return [Sample(s.anneal_C, s.dwell_min, s.crystallized, s.sigma_30C_S_cm) for s in films]

    hard = max(
        abs(a - b) for a, b in zip(_boundary(bare(samples)), _boundary(bare(again)), strict=True)
    )
    print(f"margin {film.crystallization_margin:+.2f}: moves {soft:.2f} C soft, {hard:.2f} C bare")
    assert soft < 2.0
    assert hard > 5.0 * soft


def test_a_film_without_a_margin_counts_as_its_call_and_a_clear_one_as_its_call_too():
    assert Sample(600.0, 15.0, True).weight_crystallized == 1.0
    assert Sample(600.0, 15.0, False).weight_crystallized == 0.0
    assert Sample(600.0, 15.0, True, 1e-9, 30.0).weight_crystallized == pytest.approx(1.0)
    assert Sample(600.0, 15.0, False, 1e-9, -6.0).weight_crystallized < 0.002
    assert Sample(600.0, 15.0, True, 1e-9, 0.0).weight_crystallized == pytest.approx(0.5)


def test_a_boundary_the_films_say_is_flat_stays_uncertain_where_no_film_was_annealed():
    """Films at 5 and 15 min whose calls say the boundary *rises* with dwell (noise at the
    boundary): the fit is refitted flat, but a flat fit must not make the 120 min boundary as
    certain as the measured 5 min one (with its slope's variance zeroed, every band was 31.7 C
    wide and the agent never left the short dwells: a -20 C film's boundary 21 C off at 120 min).
    The next film goes to the long dwell."""
    agent = ProcessingWindowAgent(seed=0)
    for anneal_C, dwell_min, crystallized in [
        (650, 20, True),
        (575, 20, False),
        (591, 5, True),
        (581, 5, False),
        (586, 15, False),
        (596, 15, True),
    ]:
        agent.tell(Sample(anneal_C, dwell_min, crystallized))
    assert agent.posterior().mean[2] == 0.0  # flat refit
    widths = {b.dwell_min: b.width_C for b in agent.boundary()}
    assert widths[120.0] > 1.5 * widths[5.0]
    assert widths[120.0] > widths[60.0] > widths[30.0] > widths[15.0]
    assert agent.ask()["dwell_min"] == 120.0
