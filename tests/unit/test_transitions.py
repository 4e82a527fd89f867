"""Transition flags on the simulated 5 C/min ramp: streaming detector and offline report.

The simulator is one instrument among many here (tests/integration/test_transition_robustness.py
runs the detector on a generator that shares nothing with it but the paper's band positions).
The ramp is the paper's in-situ Raman ramp: 25 to 850 C at 5 C/min, one spectrum every 5 C
(one a minute), 30 s exposure at 10 mW (the paper's laser power), one accumulation, cosmic rays
on. The film state of spectrum k is the simulated film at the moment the stage passes its
temperature. A flag must come at most 2 spectra after the first spectrum whose true fraction
exceeds its level (onset 5 % crystalline, crystallized 95 %, decomposition 10 % decomposed) and
not before the phase is really there (1 %, 90 %, 1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from insitu.analysis import transitions
from insitu.analysis.raman import (
    TRANSITION_KINDS,
    RamanTransitionDetector,
    analyze_ramp,
)
from insitu.analysis.transitions import onset_margin
from insitu.sim import raman_model
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

AXIS = raman_model.default_axis()
LEVELS = {"crystallization_onset": 0.05, "crystallized": 0.95, "decomposition": 0.10}
EARLIEST = {"crystallization_onset": 0.01, "crystallized": 0.90, "decomposition": 0.01}


@dataclass
class Ramp:
    temperatures: np.ndarray
    spectra: np.ndarray
    crystalline: np.ndarray
    pyrochlore: np.ndarray
    film: GarnetFilm
    profile: ThermalProfile

    def truth(self, kind: str) -> np.ndarray:
        return self.pyrochlore if kind == "decomposition" else self.crystalline

    def crossing_index(self, kind: str) -> int | None:
        above = np.flatnonzero(self.truth(kind) > LEVELS[kind])
        return int(above[0]) if above.size else None

    def earliest_index(self, kind: str) -> int:
        return int(np.flatnonzero(self.truth(kind) >= EARLIEST[kind])[0])

    def crossing_temperature(self, kind: str) -> float:
        """True temperature of the level crossing, on a 0.25 C grid."""
        grid = np.arange(600.0, float(self.temperatures[-1]) + 0.01, 0.25)
        states = [self.film.state(self.profile.time_at_temperature(t)) for t in grid]
        values = np.array(
            [s.pyrochlore if kind == "decomposition" else s.crystalline_fraction for s in states]
        )
        return float(grid[np.argmax(values > LEVELS[kind])])


def simulate_ramp(end_C: float = 850.0, rate: float = 5.0, seed: int = 2024) -> Ramp:
    profile = ThermalProfile.ramp(25.0, end_C, rate)
    film = GarnetFilm(profile, start_time=0.0)
    temperatures = np.arange(25.0, end_C + 0.01, 5.0)
    rng = np.random.default_rng(seed)
    spectra, crystalline, pyrochlore = [], [], []
    for temperature in temperatures:
        state = film.state(profile.time_at_temperature(temperature))
        spectra.append(
            raman_model.spectrum(
                state, temperature, exposure_s=30.0, laser_power_mW=10.0, rng=rng, cosmic_rays=True
            )
        )
        crystalline.append(state.crystalline_fraction)
        pyrochlore.append(state.pyrochlore)
    return Ramp(
        temperatures,
        np.array(spectra),
        np.array(crystalline),
        np.array(pyrochlore),
        film,
        profile,
    )


@pytest.fixture(scope="module")
def ramp() -> Ramp:
    return simulate_ramp()


def run_detector(ramp: Ramp, detector: RamanTransitionDetector | None = None):
    detector = detector or RamanTransitionDetector()
    flags = []
    for temperature, counts in zip(ramp.temperatures, ramp.spectra, strict=True):
        flags += detector.update(AXIS, counts, temperature)
    return detector, flags


# --- the acceptance test -----------------------------------------------------------------
def test_5C_per_min_ramp_flags_each_transition_within_two_spectra_and_nothing_else(ramp):
    _, flags = run_detector(ramp)
    print("\nkind                   crossing (index, C)   flag (index, C)   latency")
    for flag in flags:
        crossing = ramp.crossing_index(flag.kind)
        print(
            f"{flag.kind:22s} {crossing:4d} {ramp.temperatures[crossing]:6.0f} C       "
            f"{flag.index:4d} {flag.temperature:6.0f} C   {flag.index - crossing} spectra"
        )
    assert [flag.kind for flag in flags] == list(TRANSITION_KINDS)
    for flag in flags:
        crossing = ramp.crossing_index(flag.kind)
        earliest = ramp.earliest_index(flag.kind)
        assert earliest <= flag.index <= crossing + 2, (flag.kind, earliest, crossing, flag.index)
        assert flag.temperature == ramp.temperatures[flag.index]
        assert 0.5 < flag.confidence <= 1.0
        assert flag.kind in flag.message() and f"{flag.temperature:.1f} C" in flag.message()
    onset, crystallized, decomposition = flags
    assert "tetragonal" in onset.bands and "389" in onset.evidence
    assert "stopped growing" in crystallized.evidence
    assert set(decomposition.bands) == {"pyrochlore"} and "275" in decomposition.evidence


def test_the_detector_needs_no_band_width_or_intensity():
    from insitu.analysis.raman import LLZO

    assert not LLZO.has_line_shapes
    assert all(b.fwhm is None and b.intensity is None for p in LLZO.phases for b in p.bands)


def test_completion_and_decomposition_watch_the_bands_the_literature_says_they_can():
    """Completion: the modes both garnet polymorphs have (O-Li-O T2g 368/389, O-Zr-O A1g
    651/656), not the cubic-only bands a tetragonal-to-cubic conversion brings; decomposition:
    La2Zr2O7's 275 cm-1 band alone (its 491 is 23 cm-1 from the garnet's 468); the onset fit has
    no column of the decomposed phase's own bands."""
    detector = RamanTransitionDetector()
    onset = detector._clusters_amorphous
    followed = [
        c.position for c, chosen in zip(onset, detector._completion_clusters, strict=True) if chosen
    ]
    assert followed == [371.0, 389.0, 653.5]
    assert all(c.phase_class != "decomposed" for c in onset)
    decomposed = [
        c.position
        for c in detector._clusters_crystallized
        if c.diagnostic and c.phase_class == "decomposed"
    ]
    assert decomposed == [275.0]


def test_each_kind_is_raised_once_and_reset_starts_a_new_ramp(ramp):
    detector, flags = run_detector(ramp)
    more = []
    for temperature, counts in zip(ramp.temperatures[-10:], ramp.spectra[-10:], strict=True):
        more += detector.update(AXIS, counts, temperature)
    assert more == []
    assert detector.index == ramp.temperatures.size + 10
    detector.reset()
    assert detector.index == 0 and detector.flags == [] and not detector.calibrated
    _, again = run_detector(ramp, detector)
    assert [(f.kind, f.index) for f in again] == [(f.kind, f.index) for f in flags]


# --- what must never raise a flag ----------------------------------------------------------------
@pytest.fixture(scope="module")
def amorphous_ramp() -> Ramp:
    return simulate_ramp(end_C=600.0, seed=7)


def test_a_ramp_to_600C_raises_nothing_through_the_noisy_rearrangement(amorphous_ramp):
    detector, flags = run_detector(amorphous_ramp)
    assert flags == []
    assert max(detector.cusum().values()) < detector.threshold
    noise = [f.noise for f in detector.history]
    assert max(noise[-20:]) > 1.3 * min(noise[:60])  # the stage is noisy, yet no flag


def test_one_outlier_spectrum_cannot_raise_a_flag(amorphous_ramp):
    # a fully crystalline spectrum dropped into the amorphous ramp (a glitch, a wrong spot)
    state = GarnetFilm(ThermalProfile.ramp(25.0, 800.0, 5.0), start_time=0.0).state(
        ThermalProfile.ramp(25.0, 800.0, 5.0).time_at_temperature(760.0)
    )
    outlier = raman_model.spectrum(state, 500.0, exposure_s=30.0, rng=1)
    spectra = amorphous_ramp.spectra.copy()
    # At the intensity of its neighbours (else it is an intensity jump, not tested at all: below)
    spectra[80] = outlier * np.median(spectra[79]) / np.median(outlier)
    detector = RamanTransitionDetector()
    flags = []
    for temperature, counts in zip(amorphous_ramp.temperatures, spectra, strict=True):
        flags += detector.update(AXIS, counts, temperature)
    assert detector.history[80].crystalline_z > 10.0  # seen, but alone
    assert flags == []
    spectra[80] = outlier
    detector = RamanTransitionDetector()
    for temperature, counts in zip(amorphous_ramp.temperatures, spectra, strict=True):
        flags += detector.update(AXIS, counts, temperature)
    assert math.isnan(detector.history[80].crystalline_z) and flags == []


def test_a_cosmic_ray_storm_in_one_spectrum_raises_nothing(amorphous_ramp):
    spectra = amorphous_ramp.spectra.copy()
    rng = np.random.default_rng(3)
    for start in rng.integers(20, AXIS.size - 20, 40):  # 40 spikes, many on top of each other
        spectra[100, start : start + int(rng.integers(1, 4))] += rng.uniform(500.0, 5000.0)
    detector = RamanTransitionDetector()
    flags = []
    for temperature, counts in zip(amorphous_ramp.temperatures, spectra, strict=True):
        flags += detector.update(AXIS, counts, temperature)
    assert detector.history[100].n_spikes > 20
    assert flags == []


def test_a_film_already_crystalline_at_the_start_raises_no_crystallization_flag():
    profile = ThermalProfile.ramp(25.0, 750.0, 5.0)
    state = GarnetFilm(profile, start_time=0.0).state(profile.time_at_temperature(750.0))
    detector = RamanTransitionDetector()
    flags = []
    for i, temperature in enumerate(np.arange(25.0, 200.0, 5.0)):
        counts = raman_model.spectrum(state, temperature, exposure_s=30.0, rng=i)
        flags += detector.update(AXIS, counts, temperature)
    assert detector.calibrated and flags == []


# --- inputs --------------------------------------------------------------------------------------
def test_bad_spectra_and_temperatures_raise_and_leave_the_detector_unchanged(ramp):
    detector = RamanTransitionDetector()
    detector.update(AXIS, ramp.spectra[0], 25.0)
    bad = ramp.spectra[1].copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        detector.update(AXIS, bad, 30.0)
    with pytest.raises(ValueError, match="temperature"):
        detector.update(AXIS, ramp.spectra[1], math.nan)
    with pytest.raises(ValueError, match="1600 points but counts has 10"):
        detector.update(AXIS, ramp.spectra[1][:10], 30.0)
    assert detector.index == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"saturation": 0.0}, "saturation"),
        ({"saturation": 1.5}, "saturation"),
        ({"template_lag_C": -1.0}, "template_lag_C"),
        ({"decomposed_share": math.nan}, "decomposed_share"),
        ({"calibration_spectra": 1}, "calibration_spectra"),
        ({"threshold": 3.0, "max_step": 3.0}, "max_step"),
        ({"drift": -1.0}, "drift"),
        ({"decomposition_drift": math.inf}, "decomposition_drift inf must be >= 0"),
    ],
)
def test_invalid_detector_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        RamanTransitionDetector(**options)


# --- offline report ------------------------------------------------------------------------------
def test_analyze_ramp_finds_the_transition_temperatures_with_honest_uncertainties(ramp):
    report = analyze_ramp(ramp.temperatures, ramp.spectra, AXIS)
    _, flags = run_detector(ramp)
    assert [(f.kind, f.index) for f in report.flags] == [(f.kind, f.index) for f in flags]
    print()
    for kind in TRANSITION_KINDS:
        estimate = report.transitions[kind]
        truth = ramp.crossing_temperature(kind)
        print(
            f"{kind:22s} {estimate.temperature:6.1f} +/- {estimate.uncertainty:.1f} C "
            f"(simulated {truth:.1f} C)"
        )
        assert 0.5 < estimate.uncertainty < 10.0
        # Progress is the band signal over its largest value, not a phase fraction: the
        # temperatures agree with the film's to within a few spectra.
        assert abs(estimate.temperature - truth) < max(3.0 * estimate.uncertainty, 15.0)
        assert ramp.temperatures[estimate.index] >= estimate.temperature
        assert estimate.change_points  # PELT found the regimes of the trace
    assert report.change_points["crystalline"]
    assert "crystallized" in report.summary()
    assert report.trace("crystalline").shape == ramp.temperatures.shape
    assert np.nanmax(report.trace("crystalline")) == pytest.approx(1.0)
    assert report.trace("decomposed")[-1] > 0.5
    assert report.trace("noise").max() > report.trace("noise").min()


def test_analyze_ramp_accepts_pairs_and_per_spectrum_axes(amorphous_ramp):
    pairs = [(AXIS, counts) for counts in amorphous_ramp.spectra]
    report = analyze_ramp(amorphous_ramp.temperatures, pairs)
    assert report.flags == () and report.transitions == {}
    axes = np.tile(AXIS, (amorphous_ramp.temperatures.size, 1))
    report = analyze_ramp(amorphous_ramp.temperatures, amorphous_ramp.spectra, axes)
    assert report.transitions == {}
    assert "not reached" in report.summary()


def test_analyze_ramp_rejects_bad_input(ramp):
    with pytest.raises(ValueError, match="at least 3"):
        analyze_ramp([25.0, 30.0], ramp.spectra[:2], AXIS)
    with pytest.raises(ValueError, match="spectra for"):
        analyze_ramp(ramp.temperatures, ramp.spectra[:-1], AXIS)
    with pytest.raises(ValueError, match="pairs"):
        analyze_ramp(ramp.temperatures[:3], ramp.spectra[:3])
    temperatures = ramp.temperatures[:5].copy()
    temperatures[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        analyze_ramp(temperatures, ramp.spectra[:5], AXIS)


def test_a_long_quiet_run_keeps_a_bounded_learned_state():
    from insitu.analysis.transitions import MAX_POOL

    rng = np.random.default_rng(5)
    detector = RamanTransitionDetector()
    flat = 2000.0 + 500.0 * np.exp(-(((AXIS - 480.0) / 300.0) ** 2))
    for i in range(MAX_POOL + 60):
        detector.update(AXIS, rng.poisson(flat).astype(float), 25.0 + 0.5 * i)
    assert len(detector._amorphous.pool) <= detector.calibration_spectra + MAX_POOL
    assert detector.flags == []


def test_the_onset_margin_is_the_flags_call_continued_and_is_recomputed_from_the_stored_z(ramp):
    """>= 0 exactly from the spectrum the onset is flagged at; tens of noise units once the film
    has crystallized; the same number from the ``crystalline_z`` column alone (what resume
    reads back from the catalog)."""
    detector = RamanTransitionDetector()
    margins, onset_at = [], None
    for index, (temperature, counts) in enumerate(
        zip(ramp.temperatures, ramp.spectra, strict=True)
    ):
        for flag in detector.update(AXIS, counts, temperature):
            if flag.kind == "crystallization_onset":
                onset_at = index
        margins.append(detector.onset_margin())
    assert onset_at is not None
    assert all(math.isnan(m) or m < 0 for m in margins[:onset_at])
    assert any(math.isfinite(m) for m in margins[:onset_at])
    assert all(m >= 0 for m in margins[onset_at:])
    assert margins[-1] > 20.0
    stored = [f.crystalline_z for f in detector.history]
    assert onset_margin(
        stored, threshold=detector.threshold, drift=detector.drift, max_step=detector.max_step
    ) == pytest.approx(margins[-1], abs=0)


def test_a_ramp_that_stays_amorphous_ends_with_a_negative_onset_margin(amorphous_ramp):
    detector, flags = run_detector(amorphous_ramp)
    assert not flags
    assert -detector.threshold <= detector.onset_margin() < 0.0
    assert math.isnan(RamanTransitionDetector().onset_margin())  # nothing analysed yet


def test_the_rest_statistic_is_the_two_width_fit_against_the_start(ramp):
    """``crystalline_start_z`` (what a film at rest is called from) is analysed on every spectrum
    after the calibration, sits at its noise on the amorphous film and stands tens of units
    above it once crystalline; it is its own statistic, not the onset's ``crystalline_z``."""
    detector, _ = run_detector(ramp)
    start = np.array([f.crystalline_start_z for f in detector.history])
    onset = np.array([f.crystalline_z for f in detector.history])
    calibration = detector.calibration_spectra
    assert np.isnan(start[:calibration]).all() and np.isfinite(start[calibration:]).all()
    amorphous = start[calibration:][ramp.crystalline[calibration:] < 1e-4]
    assert amorphous.size > 20 and abs(np.median(amorphous)) < 2.0
    assert np.nanmax(start) > 20.0
    assert not np.allclose(start[calibration:], onset[calibration:])


def test_the_calibration_scatter_is_shrunk_toward_the_noise_units_it_is_measured_in():
    values = [0.0, 1.5, -1.5, 2.0, -2.0]  # a sample scatter of 1.5 after leaving one out
    offset, raw = transitions._null_statistics(values)
    _, shrunk = transitions._null_statistics(values, prior_dof=4.0)
    assert offset == 0.0 and raw > 1.4
    assert 1.0 < shrunk < raw
    # four prior degrees of freedom at 1 against the sample's four: the mean of the variances
    assert shrunk == pytest.approx(((1.0 + raw**2) / 2) ** 0.5)
    # a scatter below the noise units stays at 1 either way
    assert transitions._null_statistics([0.1, -0.1, 0.0], prior_dof=4.0)[1] == 1.0
