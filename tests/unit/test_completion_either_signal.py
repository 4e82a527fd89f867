"""Completion when either signal stops growing: the common modes' area or every band's."""

import numpy as np
import pytest

from insitu.analysis.completion import COMMON_MODES, EVERY_BAND, CompletionTracker
from insitu.analysis.transitions import RamanTransitionDetector
from insitu.testing.foreign_ramps import foreign_ramp
from insitu.testing.raman_ramps import flags_raised, judge


@pytest.mark.parametrize(
    ("seed", "before"),
    [
        (1031, "missed"),
        (1018, "late 3"),
        (1032, "late 3"),
    ],
)
def test_a_film_whose_common_modes_go_on_growing_completes_in_its_window(seed, before):
    # Read from the common modes alone these completions were ``before``: on 1031, a faint film,
    # their growth never rose 10 units of noise; on 1018 and 1032 their growth fell to 0.41-0.44
    # of its fastest at 99-100 % crystalline. The area of every crystalline band (with the cubic
    # 468 cm-1 band) saw the growth stop in the window.
    ramp = foreign_ramp(seed)
    detector = RamanTransitionDetector()
    verdict = judge(ramp, flags_raised(ramp, detector))["crystallized"]
    assert verdict.verdict == "ok", (seed, before, verdict)
    flag = next(f for f in detector.flags if f.kind == "crystallized")
    # Not the common modes alone: every band's area, or both signals' growth curves.
    assert "stopped growing (the area of every crystalline band)" in flag.evidence or (
        "both signals' growth curves" in flag.evidence
    ), flag.evidence


# A growth that stopped (x 1000 counts, each +/- 100) and one that goes on.
STOPPED = [0.0, 1.0, 3.0, 7.0, 12.0, 17.0, 20.0, 21.0, 21.2, 21.3, 21.3]
GOING_ON = [0.0, 1.0, 3.0, 7.0, 12.0, 17.0, 22.0, 27.0, 32.0, 37.0, 42.0]


def _completion_after(common, total):
    """What the completion test says on the last of a growth of both signals (every 5 C)."""
    tracker = CompletionTracker(saturation=0.4, slope_span_C=10.0)
    temperatures = list(600.0 + 5.0 * np.arange(len(common)))
    for k, (c, t) in enumerate(zip(common, total, strict=True)):
        found = tracker.check(
            (1000.0 * c, 100.0), (1000.0 * t, 100.0), temperatures[k], temperatures[:k], k
        )
        if found is not None:
            return found
    return None


def test_completion_needs_one_signal_stopped_not_both():
    assert _completion_after(GOING_ON, STOPPED).signal == EVERY_BAND
    assert _completion_after(STOPPED, GOING_ON).signal == COMMON_MODES
    assert _completion_after(GOING_ON, GOING_ON) is None


def _one_spectrum_after(monkeypatch, saturated_signal):
    """The completion test on a spectrum that leaves no doubt (``unmistakable``), where only
    ``saturated_signal`` has saturated and nothing had on the spectrum before."""
    tracker = CompletionTracker(saturation=0.4, slope_span_C=10.0)
    monkeypatch.setattr(tracker, "unmistakable", lambda temperature, temperatures: True)
    monkeypatch.setattr(tracker, "fitted", lambda temperature, temperatures: None)
    temperatures = list(600.0 + 5.0 * np.arange(len(STOPPED)))
    for k, value in enumerate(STOPPED):
        tracker.add((1000.0 * value, 100.0), (1000.0 * value, 100.0), temperatures[k], [], k)
    monkeypatch.setattr(
        tracker,
        "saturated",
        lambda growth, temperatures: growth is tracker.growth[saturated_signal],
    )
    last = (21300.0, 100.0)
    return tracker.check(last, last, temperatures[-1] + 5.0, temperatures, len(STOPPED))


def test_one_spectrum_completes_only_where_the_common_modes_saturated(monkeypatch):
    # The one-spectrum rule reads the common modes alone: the other signal's saturation does
    # not stand in for theirs (it let a common growth that had not risen beyond the noise,
    # which the two-spectrum test refuses, complete on one spectrum).
    assert _one_spectrum_after(monkeypatch, EVERY_BAND) is None
    found = _one_spectrum_after(monkeypatch, COMMON_MODES)
    assert found is not None and found.signal == COMMON_MODES and found.one_spectrum


def test_a_growth_measured_again_replaces_the_records_and_unmeasured_ones_leave_it():
    # At an onset found at another band reading the detector measures the evidence's spectra
    # again there (rerecord); a spectrum it no longer has is left out (NaN), not kept at the
    # first reading.
    tracker = CompletionTracker(saturation=0.4, slope_span_C=10.0)
    tracker.record()  # a calibration spectrum
    for value in (1.0, 2.0, 3.0, 4.0):
        tracker.record((value, 0.1), (value, 0.1))
    tracker.rerecord(2, (20.0, 0.1), (30.0, 0.1))
    tracker.rerecord(3, (np.nan, np.nan), (np.nan, np.nan))
    tracker.begin(1, 4)
    assert tracker.at == [1, 2, 4]
    assert [v for v, _ in tracker.growth[COMMON_MODES]] == [1.0, 20.0, 4.0]
    assert [v for v, _ in tracker.growth[EVERY_BAND]] == [1.0, 30.0, 4.0]
