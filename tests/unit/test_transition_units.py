"""The transition flags on spectra as other instruments' files give them: counts per second,
dark-subtracted (negative) counts, float32 or integer counts and a decreasing axis raise the same
flags at the same spectra; spectra normalized one by one are named in a warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.raman_ramps import draw_ramp, flags_raised


@pytest.fixture(scope="module")
def ramp():
    return draw_ramp(7, 850.0).spectra()


@pytest.fixture(scope="module")
def as_counts(ramp):
    detector = RamanTransitionDetector()
    flags = flags_raised(ramp, detector)
    assert set(flags) == {"crystallization_onset", "crystallized", "decomposition"}
    assert detector.scale_warning is None
    return flags


def _flags(ramp, wavenumber, counts) -> dict[str, int]:
    detector = RamanTransitionDetector()
    flags = {}
    for temperature, row in zip(ramp.temperatures, counts, strict=True):
        for flag in detector.update(wavenumber, row, temperature):
            flags[flag.kind] = flag.index
    return flags


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda c: c * 1e-4, id="counts per second"),
        pytest.param(lambda c: c - 1.2 * c.min(), id="dark-subtracted, negative"),
        pytest.param(lambda c: c.astype(np.float32), id="float32"),
        pytest.param(lambda c: np.round(c).astype(np.int64), id="integer"),
    ],
)
def test_other_units_offsets_and_dtypes_raise_the_same_flags(ramp, as_counts, convert):
    assert _flags(ramp, ramp.wavenumber, convert(ramp.counts)) == as_counts


def test_a_decreasing_axis_raises_the_same_flags(ramp, as_counts):
    assert _flags(ramp, ramp.wavenumber[::-1], ramp.counts[:, ::-1]) == as_counts


def test_spectra_normalized_one_by_one_are_named_in_a_warning(ramp, caplog):
    normalized = ramp.counts / ramp.counts.max(axis=1, keepdims=True)
    detector = RamanTransitionDetector()
    with caplog.at_level(logging.WARNING, logger="insitu.analysis.transitions"):
        for temperature, row in zip(ramp.temperatures[:6], normalized[:6], strict=True):
            detector.update(ramp.wavenumber, row, temperature)
    assert detector.scale_warning is not None and "same maximum (1)" in detector.scale_warning
    assert "one intensity scale" in caplog.text
    detector.reset()
    assert detector.scale_warning is None
