"""The crystallized state follows the film, so a decomposition is read against the film of late."""

import math

import pytest

from insitu.analysis.transitions import CRYSTALLIZED_LAG_C, RamanTransitionDetector
from insitu.testing.foreign_ramps import foreign_ramp
from insitu.testing.raman_ramps import draw_ramp, flags_raised, judge


@pytest.mark.parametrize(
    ("seed", "before"),
    [
        (1034, "missed: z -6 to -10 before anything decomposed"),
        (1024, "late 3: z -3 before anything decomposed"),
    ],
)
def test_a_film_that_goes_on_changing_after_completion_decomposes_in_its_window(seed, before):
    # Both films were tetragonal first and still converting to cubic when completion came; read
    # against the state they completed in, their decomposed z drifted negative (``before``).
    ramp = foreign_ramp(seed)
    verdict = judge(ramp, flags_raised(ramp, RamanTransitionDetector()))["decomposition"]
    assert verdict.verdict == "ok", (seed, before, verdict)


def test_only_spectra_without_decomposition_evidence_join_the_crystallized_state():
    ramp = draw_ramp(3).spectra()
    detector = RamanTransitionDetector()
    flags = flags_raised(ramp, detector)
    assert "decomposition" in flags
    kept = {k.index for k in detector._crystallized.pool}
    tested = {
        i: f.decomposed_z
        for i, f in enumerate(detector.history)
        if math.isfinite(f.decomposed_z) and i < flags["decomposition"]
    }
    assert kept, "no spectrum joined the crystallized state"
    assert kept <= set(tested)
    assert all(tested[i] <= detector.decomposition_drift for i in kept)
    evidence = {i for i, z in tested.items() if z > detector.decomposition_drift}
    assert evidence and not evidence & kept
    # ... and a spectrum is read against spectra at least CRYSTALLIZED_LAG_C from it.
    stage = detector._crystallized
    last = max(tested)
    temperature = float(ramp.temperatures[last])
    template = stage.template(
        detector._axis, last, temperature, CRYSTALLIZED_LAG_C, detector.template_spectra, first=0
    )
    assert template is not None
    assert all(
        abs(temperature - k.temperature) >= CRYSTALLIZED_LAG_C
        for k in stage.pool
        if k.index in template.indices
    )
