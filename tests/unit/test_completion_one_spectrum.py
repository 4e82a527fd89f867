"""Completion from one unmistakable spectrum: where it holds, and where it must not be called."""

import numpy as np
import pytest

from insitu.analysis.completion import COMMON_MODES, CompletionTracker
from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.foreign_ramps import foreign_ramp
from insitu.testing.raman_ramps import draw_ramp, flags_raised, judge


def _completion(ramp):
    return judge(ramp, flags_raised(ramp, RamanTransitionDetector()))["crystallized"]


@pytest.mark.parametrize(
    ("ramp", "name"),
    [
        (lambda: foreign_ramp(1039), "foreign 1039"),
        (lambda: foreign_ramp(1505, 600.0), "foreign 1505"),
        (lambda: draw_ramp(18).spectra(), "raman_ramps 18"),
        (lambda: draw_ramp(52).spectra(), "raman_ramps 52"),
    ],
)
def test_a_growth_that_collapsed_completes_on_its_first_spectrum_in_the_window(ramp, name):
    # Confirmed on two spectra these completions were one spectrum past their window (late 3);
    # the first spectrum's growth had already fallen to under 15 % of the fastest.
    verdict = _completion(ramp())
    assert verdict.verdict == "ok", (name, verdict)


def test_one_spectrum_off_the_growth_does_not_make_the_fastest_growth():
    # A spectrum of the completion signal off the curve made this film's fastest growth; read
    # against it, the next spectra's growth had collapsed and completion came 4 spectra early,
    # at 69 % crystalline (the second fastest is the reference of a one-spectrum completion).
    assert _completion(foreign_ramp(1015)).verdict == "ok"


# A growth that collapsed at its last value (x 1000 counts), each value +/- 100.
COLLAPSED = [0.0, 1.0, 3.0, 7.0, 12.0, 17.0, 20.0, 21.0, 21.1]


def _one_spectrum_call(values, step_C=5.0, tested=None, heating=True, errors=100.0):
    """Whether one spectrum completes on the last of ``values``, the common modes' growth."""
    tracker = CompletionTracker(saturation=0.4, slope_span_C=10.0)
    n = len(values)
    steps = [step_C if heating or k < n - 2 else -step_C for k in range(n)]
    temperatures = list(600.0 + np.cumsum(steps))
    tracker.growth[COMMON_MODES] = [(1000.0 * v, errors) for v in values]
    tracker.at = list(range(n)) if tested is None else tested
    return tracker.unmistakable(temperatures[-1], temperatures[:-1])


def test_a_collapsed_growth_is_called_on_one_spectrum_at_a_spectrum_every_5C():
    assert _one_spectrum_call(COLLAPSED)
    assert _one_spectrum_call(COLLAPSED, step_C=4.0)


def test_no_one_spectrum_call_where_slopes_span_many_spectra_or_the_film_was_not_heating():
    # Every 1 C a slope spans 10 spectra, consecutive slopes share 9: one confirms little.
    assert not _one_spectrum_call(COLLAPSED, step_C=1.0)
    assert not _one_spectrum_call(COLLAPSED, step_C=3.0)
    # Back from a cool-down (the growth's values before it and after it are not neighbours).
    gap = [*range(len(COLLAPSED) - 1), 20]
    assert not _one_spectrum_call(COLLAPSED, tested=gap)
    assert not _one_spectrum_call(COLLAPSED, heating=False)


def test_no_one_spectrum_call_on_an_untested_or_low_or_noisy_last_spectrum():
    assert not _one_spectrum_call([*COLLAPSED[:-2], np.nan, 21.1])
    # Below the last values by more than its own error: a low outlier, not a collapse.
    assert not _one_spectrum_call([*COLLAPSED[:-1], 20.5])
    # A fall that is not 2 standard errors beyond the fastest's selection bias.
    assert not _one_spectrum_call(COLLAPSED, errors=1500.0)
    # A growth that only slowed (to 20 % of the fastest) waits for the second spectrum.
    assert not _one_spectrum_call([*COLLAPSED[:-1], 22.0])


def test_one_fast_slope_of_its_own_is_not_the_fastest_growth():
    # One value far off the curve (a flat frame read as the film) makes one fast slope; read
    # against it an ordinary slowing looks like a collapse.
    slowing = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.6]
    spiked = [*slowing[:3], 40.0, *slowing[4:]]
    assert not _one_spectrum_call(slowing)
    assert not _one_spectrum_call(spiked)
