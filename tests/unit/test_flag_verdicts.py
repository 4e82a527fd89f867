"""The robustness suites' judge: a flag is false only when the phase is not there."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.testing.raman_ramps import RenderedRamp, judge

pytestmark = pytest.mark.unit


def _ramp(decomposed: np.ndarray) -> RenderedRamp:
    n = decomposed.size
    crystalline = np.clip(np.linspace(-1.0, 3.0, n), 0.0, 1.0) * (1.0 - decomposed)
    return RenderedRamp(
        temperatures=np.linspace(500.0, 850.0, n),
        wavenumber=np.linspace(100.0, 1000.0, 8),
        counts=np.zeros((n, 8)),
        crystalline=crystalline,
        decomposed=decomposed,
    )


def test_a_decomposition_the_ramp_ends_before_its_level_is_ok_once_the_phase_is_there():
    """Decomposed 0 -> 4 % by the end: the 10 % level is never crossed. A flag at 2 % is a
    true detection (early flags are welcome when the signal allows), one at 0.5 % is false."""
    decomposed = np.concatenate([np.zeros(30), np.linspace(0.0, 0.04, 10)])
    ramp = _ramp(decomposed)
    there = int(np.flatnonzero(decomposed >= 0.01)[0])
    verdict = judge(ramp, {"decomposition": there})["decomposition"]
    assert verdict.verdict == "ok" and verdict.window == (there, None), verdict
    assert judge(ramp, {"decomposition": there - 1})["decomposition"].verdict == "false"
    assert judge(ramp, {"decomposition": 5})["decomposition"].verdict == "false"
    assert judge(ramp, {})["decomposition"].verdict == "quiet"


def test_a_ramp_without_the_phase_calls_any_flag_false():
    ramp = _ramp(np.zeros(40))
    verdict = judge(ramp, {"decomposition": 39})["decomposition"]
    assert verdict.verdict == "false" and verdict.window is None, verdict


def test_a_ramp_that_crosses_the_level_keeps_its_window():
    decomposed = np.concatenate([np.zeros(30), np.linspace(0.0, 0.3, 10)])
    ramp = _ramp(decomposed)
    earliest = int(np.flatnonzero(decomposed >= 0.01)[0])
    level = int(np.flatnonzero(decomposed > 0.10)[0])
    assert judge(ramp, {"decomposition": level + 2})["decomposition"].verdict == "ok"
    assert judge(ramp, {"decomposition": level + 3})["decomposition"].verdict == "late"
    assert judge(ramp, {"decomposition": earliest - 1})["decomposition"].verdict == "early"
