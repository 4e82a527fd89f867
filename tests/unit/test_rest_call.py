"""The processing-window call from a film's spectra at rest after its anneal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from insitu.analysis.rest_call import REST_LEVEL, rest_call
from insitu.analysis.transitions import onset_margin

ONSET = {"threshold": 6.0, "drift": 2.0, "max_step": 4.0}


def _anneal(rng, *, offset=0.0, excursion=0.0, after_shift=0.0, after=12, calibration=5):
    """A stored anneal's crystalline_z: calibration NaNs, 43 spectra up and through the dwell,
    then ``after`` spectra at rest; ``excursion`` lifts spectra 20-34 (a stretch of the ramp)."""
    z = rng.normal(offset, 1.0, 43 + after)
    z[20:35] += excursion
    z[43:] += after_shift
    return np.concatenate([np.full(calibration, np.nan), z])


def test_an_amorphous_film_with_an_offset_calibration_is_called_amorphous():
    rng = np.random.default_rng(1)
    calls = [rest_call(_anneal(rng, offset=1.0), 12) for _ in range(200)]
    assert all(c.usable and c.n_before == 8 and c.n_after == 12 for c in calls)
    assert sum(c.crystallized for c in calls) <= 2  # t >= 4 on a null: well under 1 %
    assert np.median([c.margin for c in calls]) == pytest.approx(-REST_LEVEL, abs=0.5)


def test_a_film_whose_crystals_stay_at_rest_is_called_crystallized_by_its_margin():
    rng = np.random.default_rng(2)
    margins = [rest_call(_anneal(rng, after_shift=4.0), 12).margin for _ in range(200)]
    # 4 units of noise above its start on 12 spectra: Welch's t about 8.9 against a level of 4
    assert min(margins) > 0.0
    weak = [rest_call(_anneal(rng, after_shift=1.0), 12).margin for _ in range(200)]
    assert np.median(weak) < np.median(margins) - 5.0


def test_a_stretch_of_the_ramp_above_its_start_is_not_crystals_at_rest():
    """The bench's false call (seed 0, -40 C, a film 0.3 % crystalline): spectra 2-4 units of
    noise above the start through part of the ramp raise the onset CUSUM past its threshold,
    and the film at rest, the same as its start, is called amorphous."""
    rng = np.random.default_rng(3)
    z = _anneal(rng, offset=0.5, excursion=2.5)
    assert onset_margin(z, **ONSET) >= 0.0  # the live onset would call it
    call = rest_call(z, 12)
    assert not call.crystallized and call.margin < -2.0


def test_failed_and_calibration_spectra_are_skipped_and_too_few_is_not_usable():
    rng = np.random.default_rng(4)
    z = _anneal(rng, after_shift=4.0)
    z[-3] = math.nan  # a spectrum at rest that could not be analysed
    call = rest_call(z, 12)
    assert call.n_after == 11 and call.crystallized
    assert not rest_call(z, 2).usable  # two spectra at rest: too few
    assert not rest_call(np.full(20, np.nan), 12).usable
    assert not rest_call(z, 0).usable
    with pytest.raises(ValueError, match="after_spectra -1"):
        rest_call(z, -1)


def test_a_film_that_decomposed_in_its_dwell_is_not_amorphous():
    """Garnet bands gone at rest (the crystalline statistic back at its start) and the decomposed
    phase's bands tens of units above it: called by the decomposed statistic (the bench's grid
    film at 750 C, 120 min, -40 C: t_c -1.0, t_d 29.9 offline). An amorphous film relaxed by its
    anneal, the decomposed columns one to five units above its start (t 3-12), stays amorphous."""
    rng = np.random.default_rng(5)
    crystalline = _anneal(rng)
    decomposed = _anneal(rng, after_shift=30.0)
    call = rest_call(crystalline, 12, decomposed_start_z=decomposed)
    assert not rest_call(crystalline, 12).crystallized  # the crystalline statistic alone
    assert call.crystallized and call.margin == pytest.approx(call.decomposed_statistic - 20.0)
    relaxed = [
        rest_call(_anneal(rng), 12, decomposed_start_z=_anneal(rng, after_shift=1.2))
        for _ in range(200)
    ]
    assert not any(c.crystallized for c in relaxed)
    # ... and one moved five units (t about 11: bench_optimize seed 1, a film 0.28 % crystalline
    # after 5 min at 553.5 C, t 11.8, called crystallized at the first level, 10)
    moved = [
        rest_call(_anneal(rng), 12, decomposed_start_z=_anneal(rng, after_shift=5.0))
        for _ in range(200)
    ]
    assert not any(c.crystallized for c in moved)
    # where the crystalline statistic is the clearer, the margin is its own
    grown = rest_call(_anneal(rng, after_shift=6.0), 12, decomposed_start_z=_anneal(rng))
    assert grown.margin == pytest.approx(grown.statistic - REST_LEVEL)


def test_a_film_is_called_from_its_rest_statistic_and_an_older_catalog_from_its_onset_z():
    """The processing window calls a film from ``crystalline_start_z`` (the statistic the level
    was set on), not from the onset's ``crystalline_z`` beside it; a catalog written before that
    column was stored has ``crystalline_z`` alone (then the same two-width statistic)."""
    from insitu.plans.processing_window import _call

    rng = np.random.default_rng(6)
    moved, still = _anneal(rng, after_shift=6.0), _anneal(rng)
    both = {"crystalline_z": moved, "crystalline_start_z": still}
    crystallized, margin = _call([], both, 12, 1.0)
    assert not crystallized and margin < 0.0
    crystallized, margin = _call([], {"crystalline_z": moved}, 12, -1.0)
    assert crystallized and margin > 0.0
    # without spectra at rest: the live flags and the onset margin
    assert _call(["crystallization_onset"], {"crystalline_start_z": still}, 0, 2.5) == (True, 2.5)
