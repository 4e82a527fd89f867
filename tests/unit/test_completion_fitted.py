"""Completion from the growth curves' fit: on a heating ramp, where the slope tests trail."""

import numpy as np
import pytest

from insitu.analysis import completion
from insitu.analysis.completion import CompletionTracker
from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.foreign_ramps import foreign_ramp
from insitu.testing.raman_ramps import flags_raised, judge
from insitu.testing.third_ramps import third_ramp
from tests.unit.test_growth_curve import arrhenius_jmak

ERROR = 2.0e3


def completion_of(common, every, temperatures):
    """The first completion a tracker finds on these growths (values of the two signals)."""
    tracker = CompletionTracker(saturation=0.4, slope_span_C=10.0)
    tracker.record((common[0], ERROR), (every[0], ERROR))
    tracker.begin(0, 0)
    for k in range(1, len(common)):
        found = tracker.check(
            (common[k], ERROR), (every[k], ERROR), temperatures[k], list(temperatures[:k]), k
        )
        if found is not None:
            return k, found
    return None, None


def dense_growth(seed=3, step_C=2.0):
    temperatures = np.arange(600.0, 800.0, step_C)
    truth = arrhenius_jmak(temperatures, 690.0, 3.0, 2.0)
    start = int(np.flatnonzero(truth >= 0.02)[0])
    rng = np.random.default_rng(seed)
    signal = 2.0e5 * truth[start:] + rng.normal(0.0, ERROR, truth.size - start)
    return temperatures[start:], truth[start:], signal


def test_a_dense_ramp_completes_from_its_fit_in_the_window_where_the_slopes_come_late(monkeypatch):
    temperatures, truth, signal = dense_growth()
    index, found = completion_of(signal, 1.2 * signal, temperatures)
    window = (np.flatnonzero(truth >= 0.9)[0], np.flatnonzero(truth > 0.95)[0] + 2)
    assert found.fitted and found.one_spectrum
    assert window[0] <= index <= window[1], (index, window, truth[index])
    assert "growth curves fit a nucleation-and-growth curve" in found.evidence(0.4)
    # Without the fit the slope tests come later, out of the window.
    monkeypatch.setattr(completion, "FITTED_FRACTION", 1.1)
    later, slopes_found = completion_of(signal, 1.2 * signal, temperatures)
    assert not slopes_found.fitted and later > index


def fitted_calls(common, every, temperatures):
    """``CompletionTracker.fitted`` at each spectrum of these growths (None or the fraction),
    up to the first that is not None."""
    tracker = CompletionTracker(saturation=0.4, slope_span_C=10.0)
    tracker.record((common[0], ERROR), (every[0], ERROR))
    tracker.begin(0, 0)
    calls = [None]
    for k in range(1, len(common)):
        earlier = list(temperatures[:k])
        tracker.add((common[k], ERROR), (every[k], ERROR), temperatures[k], earlier, k)
        calls.append(tracker.fitted(temperatures[k], earlier))
        if calls[-1] is not None:
            break
    return calls


def test_no_fitted_completion_in_a_hold_or_while_one_signal_still_grows():
    temperatures, truth, signal = dense_growth()
    end = int(np.flatnonzero(truth > 0.995)[0])  # past the window: enough to see
    temperatures, truth, signal = temperatures[:end], truth[:end], signal[:end]
    on_ramp = fitted_calls(signal, 1.2 * signal, temperatures)
    first = next(k for k, call in enumerate(on_ramp) if call is not None)
    assert truth[first] >= 0.9
    # A ramp stopped at 60 % crystalline where the film stalls: in the hold the signal stops
    # growing as a completed film's would, but the form is one of a ramp, and the fit does not
    # speak (on the ramp's temperatures the same stall reads as a finished curve).
    sixty = int(np.flatnonzero(truth >= 0.6)[0])
    stalled = np.where(np.arange(signal.size) > sixty, signal[sixty], signal)
    held = np.where(np.arange(temperatures.size) > sixty, temperatures[sixty], temperatures)
    assert all(call is None for call in fitted_calls(stalled, 1.2 * stalled, held))
    assert any(call is not None for call in fitted_calls(stalled, 1.2 * stalled, temperatures))
    # The common modes level off early (a polymorph whose common bands are weaker takes over:
    # their curve ends 15 C sooner) while every crystalline band still grows with the film.
    sooner = 2.0e5 * arrhenius_jmak(temperatures + 15.0, 690.0, 3.0, 2.0)
    alone = fitted_calls(sooner, sooner, temperatures)
    first_alone = next(k for k, call in enumerate(alone) if call is not None)
    assert truth[first_alone] < 0.9  # on the common modes alone: early
    both = fitted_calls(sooner, 1.2 * signal, temperatures)
    assert next(k for k, call in enumerate(both) if call is not None) >= first


@pytest.mark.parametrize(
    ("ramp", "name"),
    [
        (lambda: foreign_ramp(1007), "foreign 1007"),
        (lambda: foreign_ramp(1023), "foreign 1023"),
        (lambda: third_ramp(11), "third 11"),
        (lambda: third_ramp(21), "third 21"),
    ],
)
def test_films_of_the_generators_written_apart_complete_in_their_window(ramp, name):
    # Each completed 1-4 spectra past its window on the slope tests alone.
    ramp = ramp()
    verdict = judge(ramp, flags_raised(ramp, RamanTransitionDetector()))["crystallized"]
    assert verdict.verdict == "ok", (name, verdict)
