"""The third ramp generator: reproducible, self-consistent ramps with sane truths.

The seeds are ones of :data:`~insitu.testing.third_ramps.THIRD_SEEDS` with a 10 C step (fast):
3 (850 C, no decomposition), 17 and 29 (850 C, decomposing), 104 (600 C).
"""

from __future__ import annotations

import numpy as np
import pytest

from insitu.testing.third_ramps import (
    THIRD_SEEDS,
    describe_third_film,
    draw_third_film,
    third_evidence,
    third_ramp,
)

HOT_STEADY = (3, 850.0)
HOT_DECOMPOSING = ((17, 850.0), (29, 850.0))
WARM = (104, 600.0)
ALL_TESTED = (HOT_STEADY, *HOT_DECOMPOSING, WARM)


@pytest.fixture(scope="module")
def ramps():
    """One rendered ramp per tested (seed, end temperature)."""
    return {job: third_ramp(*job) for job in ALL_TESTED}


def test_the_seeds_are_the_measured_ones():
    assert len(THIRD_SEEDS) == 50
    assert [seed for seed, end in THIRD_SEEDS if end == 850.0] == list(range(1, 41))
    assert [seed for seed, end in THIRD_SEEDS if end == 600.0] == list(range(101, 111))
    assert set(ALL_TESTED) <= set(THIRD_SEEDS)


def test_the_same_seed_renders_the_same_ramp(ramps):
    again = third_ramp(*HOT_DECOMPOSING[0])
    first = ramps[HOT_DECOMPOSING[0]]
    for name in ("temperatures", "wavenumber", "counts", "crystalline", "decomposed"):
        assert np.array_equal(getattr(again, name), getattr(first, name)), name
    assert draw_third_film(*HOT_DECOMPOSING[0]) == draw_third_film(*HOT_DECOMPOSING[0])


def test_different_seeds_render_different_ramps(ramps):
    one, other = ramps[HOT_DECOMPOSING[0]], ramps[HOT_DECOMPOSING[1]]
    assert draw_third_film(*HOT_DECOMPOSING[0]) != draw_third_film(*HOT_DECOMPOSING[1])
    assert not np.array_equal(one.wavenumber, other.wavenumber)
    assert not np.array_equal(one.temperatures, other.temperatures)
    rows = min(len(one.counts), len(other.counts))
    columns = min(one.counts.shape[1], other.counts.shape[1])
    assert not np.array_equal(one.counts[:rows, :columns], other.counts[:rows, :columns])


@pytest.mark.parametrize("job", ALL_TESTED)
def test_shapes_are_consistent(ramps, job):
    ramp = ramps[job]
    n_spectra = len(ramp.temperatures)
    assert n_spectra > 10
    assert ramp.counts.shape == (n_spectra, len(ramp.wavenumber))
    assert ramp.crystalline.shape == ramp.decomposed.shape == (n_spectra,)
    assert np.all(np.isfinite(ramp.counts))


@pytest.mark.parametrize("job", ALL_TESTED)
def test_the_wavenumber_axis_increases(ramps, job):
    assert np.all(np.diff(ramps[job].wavenumber) > 0)


@pytest.mark.parametrize("job", ALL_TESTED)
def test_truths_are_fractions(ramps, job):
    ramp = ramps[job]
    for truth in (ramp.crystalline, ramp.decomposed, ramp.crystalline + ramp.decomposed):
        assert np.all((truth >= 0.0) & (truth <= 1.0 + 1e-12))


@pytest.mark.parametrize("job", (HOT_STEADY, *HOT_DECOMPOSING))
def test_crystallinity_only_grows_until_decomposition_starts(ramps, job):
    ramp = ramps[job]
    started = np.flatnonzero(ramp.decomposed > 0)
    until = started[0] if len(started) else len(ramp.decomposed)
    assert until > 10
    assert np.all(np.diff(ramp.crystalline[:until]) >= 0)
    assert ramp.crystalline[0] < 0.01


def test_an_850_C_ramp_without_decomposition_ends_crystalline(ramps):
    ramp = ramps[HOT_STEADY]
    assert not draw_third_film(*HOT_STEADY)["decomp"]
    assert np.all(ramp.decomposed == 0)
    assert ramp.crystalline[-1] > 0.99


def test_decomposing_ramps_decompose(ramps):
    for job in HOT_DECOMPOSING:
        assert draw_third_film(*job)["decomp"]
        assert ramps[job].decomposed[-1] > 0.5


def test_600_C_ramps_never_decompose(ramps):
    for seed in (101, 102, 104):
        assert not draw_third_film(seed, 600.0)["decomp"]
    assert np.all(ramps[WARM].decomposed == 0)
    assert ramps[WARM].temperatures[-1] < 610


def test_a_known_film_draws_what_describe_says(ramps):
    film = draw_third_film(*HOT_DECOMPOSING[0])
    assert describe_third_film(film) == {
        "S": 1783,
        "fluo": 2.0,
        "shape": "lorentz",
        "si": True,
        "step": 10,
        "axis": [124, 1029, 1480],
        "Tm": 702,
        "n": 1.0,
        "Ea": 1.83,
        "tet_first": True,
        "decomp": True,
        "Tm_dec": 812,
        "etalon": True,
        "bb": 0.0,
        "burnoff": True,
        "edge": False,
        "cal": 2.4,
    }
    # ... and the rendered ramp is that film's
    ramp = ramps[HOT_DECOMPOSING[0]]
    assert round(ramp.wavenumber[0]) == 124
    assert round(ramp.wavenumber[-1]) == 1029
    assert ramp.counts.shape[1] == 1480
    assert round(float(np.median(np.diff(ramp.temperatures)))) == 10
    transformed = ramp.crystalline + ramp.decomposed
    half_way_C = np.interp(0.5, transformed, ramp.temperatures)
    assert abs(half_way_C - 702) < 10


def test_the_evidence_of_a_phase_is_nothing_before_it_and_grows_with_it(ramps):
    job = HOT_DECOMPOSING[0]
    ramp, evidence = ramps[job], third_evidence(*job)
    for kind, truth in (
        ("crystallization_onset", ramp.crystalline),
        ("decomposition", ramp.decomposed),
    ):
        values = evidence[kind]
        assert values.shape == truth.shape
        # The generator leaves out bands below 1e-4 of their phase: nothing there.
        assert np.all(values[truth <= 1e-4] == 0)
        first = int(np.flatnonzero(truth > 0.01)[0])
        assert 0 < values[first] < values[int(np.argmax(truth))]


def test_the_evidence_is_read_from_the_ramp_the_generator_renders(ramps):
    # Same counts with the parts as without: the bound is of this very ramp, not of a redraw.
    from insitu.testing.third_ramps import _render

    job = HOT_STEADY
    parts = _render(draw_third_film(*job), parts=True)
    assert np.array_equal(parts[2], ramps[job].counts)
    garnet, pyrochlore, expected = parts[5:]
    assert np.all(garnet >= 0) and not pyrochlore.any()
    # The garnet bands are part of the expected counts (with the background under them).
    assert np.all(garnet <= expected + 1e-9)


def test_an_unknown_smooth_background_takes_part_of_the_evidence():
    known = third_evidence(*HOT_STEADY)
    smooth = third_evidence(*HOT_STEADY, background_knots_cm1=150.0)
    for kind in known:
        assert np.all(smooth[kind] <= known[kind] + 1e-9)
    last = known["crystallization_onset"][-1]
    assert 0.3 * last < smooth["crystallization_onset"][-1] < last


def _combined(evidence: np.ndarray, last: int) -> float:
    return float(np.sqrt(np.sum(evidence[: last + 1] ** 2)))


def test_a_bright_film_shows_more_before_1_percent_than_a_faint_one_by_its_deadline():
    # The onset window's bound (README, Known limits): film 35 carries more evidence before it
    # is 1 % crystalline than film 16 by its deadline (2 spectra past 5 %), so no detector that
    # fires at one evidence level, whatever it is, puts both onsets in their windows.
    bright, faint = third_ramp(35), third_ramp(16)
    before = int(np.flatnonzero(bright.crystalline > 0.01)[0]) - 1
    deadline = int(np.flatnonzero(faint.crystalline > 0.05)[0]) + 2
    shown_before = _combined(third_evidence(35)["crystallization_onset"], before)
    shown_by_deadline = _combined(third_evidence(16)["crystallization_onset"], deadline)
    assert shown_before == pytest.approx(14.5, abs=0.1)
    assert shown_by_deadline == pytest.approx(7.7, abs=0.1)
