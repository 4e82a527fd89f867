"""The transition detector on ramps it did not make: an independent generator, wide variation.

The ramps come from :mod:`insitu.testing.raman_ramps`, which shares nothing with ``insitu.sim``
but the paper's band positions: per film, band widths x0.6-1.8 and intensity ratios x0.5-2,
3-5 amorphous bands of random position and width, fluorescence 1-10x the Raman signal
(exponential or polynomial, quenched on heating, with an etalon ripple), laser drift up to
+/-15 %, cosmic rays of 1-4 pixels, axes of 1024-2048 pixels over different ranges with a
calibration error, softening 0.01-0.03 cm-1/C, a spectrum every 2, 5 or 10 C; and ramps that stop
at 600 C through the noisy rearrangement. The detector is built once, with its defaults.

What is asserted is what the detector guarantees today: no false flag on any ramp (nothing is
flagged whose level the film never reaches), every crystallizing ramp raises its onset, and the
flags come in order. How many flags land in the issue's window (from the phase really there to
2 spectra after its level) is printed (``-s``) and measured on 150 ramps by
``benchmarks/bench_raman.py``; it is not yet every flag (see the README's table).
"""

from __future__ import annotations

import collections

import pytest

from insitu.analysis.raman import TRANSITION_KINDS, RamanTransitionDetector
from insitu.testing.raman_ramps import LEVELS, draw_ramp, flags_raised, judge

CRYSTALLIZING_SEEDS = range(20)
AMORPHOUS_SEEDS = range(5000, 5010)


def detect(seed: int, end_C: float):
    ramp = draw_ramp(seed, end_C).spectra()
    detector = RamanTransitionDetector()
    return ramp, detector, judge(ramp, flags_raised(ramp, detector))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ramps_from_another_generator_raise_no_false_flag_and_every_onset():
    outcomes = [detect(seed, 850.0) for seed in CRYSTALLIZING_SEEDS]
    outcomes += [detect(seed, 600.0) for seed in AMORPHOUS_SEEDS]
    table = collections.defaultdict(collections.Counter)
    for _, _, verdicts in outcomes:
        for kind, verdict in verdicts.items():
            table[kind][verdict.verdict] += 1
    print(f"\n{len(outcomes)} ramps; verdicts per flag:")
    for kind in LEVELS:
        print(f"  {kind:22s} {dict(table[kind])}")

    for ramp, detector, verdicts in outcomes:
        assert not [v for v in verdicts.values() if v.verdict == "false"], verdicts
        kinds = [flag.kind for flag in detector.flags]
        assert kinds == [k for k in TRANSITION_KINDS if k in kinds]  # in order, once each
        if ramp.crystalline.max() > 0.5:
            assert verdicts["crystallization_onset"].index is not None
    assert table["crystallization_onset"]["early"] == 0
    assert table["crystallization_onset"]["ok"] >= 0.9 * len(CRYSTALLIZING_SEEDS)


def test_an_amorphous_film_whose_fit_drifts_with_temperature_raises_no_early_onset():
    # Seed 8: against its learned state this film's crystalline statistic creeps ~2 noise units
    # above the calibration's offset by 450-520 C (a 90 cm-1 amorphous band under the 389 cm-1
    # line grows); a variant of the statistic that also counted the 368 cm-1 band flagged the
    # onset at 515 C, 30 spectra before the first crystals.
    ramp, _, verdicts = detect(8, 850.0)
    assert verdicts["crystallization_onset"].verdict == "ok", verdicts
    assert verdicts["crystallized"].verdict != "early", verdicts


@pytest.mark.parametrize(
    "seed, kind, why",
    [
        (18, "crystallization_onset", "the 491 cm-1 column beside 468 doubled the onset's error"),
        (59, "crystallization_onset", "the same, on a film that crystallizes fast"),
        (97, "crystallized", "the tetragonal-to-cubic conversion kept the 468 cm-1 band growing"),
        (78, "crystallized", "the same, a conversion over 40 C"),
        (61, "decomposition", "491 cm-1 traded counts with the weakening 468 band: missed"),
        (89, "decomposition", "the same: 10 spectra late"),
    ],
)
def test_flags_the_detector_once_put_out_of_their_window_come_in_it(seed, kind, why):
    """Films whose flag came out of its window before the onset fit lost its decomposed columns,
    completion was followed on the modes both crystalline phases have, and decomposition was
    watched at 275 cm-1 alone; each of these fails on the code before its change."""
    _, _, verdicts = detect(seed, 850.0)
    assert verdicts[kind].verdict == "ok", (why, verdicts[kind])
