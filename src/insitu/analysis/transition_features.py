"""What the transition detector reports for each spectrum, as a record for documents and plots.

A :class:`TransitionFeatures` holds the statistics of one spectrum as the streaming detector
(:class:`~insitu.analysis.transitions.RamanTransitionDetector`) saw it: the crystalline and
decomposed band signals (summed areas of the diagnostic bands, relative to the state the detector
learned from the ramp, with their standard errors and in units of their noise), the amplitude of
that learned state, and the spectrum's noise, cosmic-ray spikes and new peaks.
:meth:`TransitionFeatures.as_record` is the flat mapping stored in the ``raman_analysis`` stream;
:data:`RECORD_KEYS` lists its keys.

There are no phase fractions here: without standards, band areas cannot be turned into phase
fractions (the intensity of a phase per unit amount is what a standard measures). The signals
are what the detector decides on, in units any instrument shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["TransitionFeatures", "RECORD_KEYS"]

RECORD_KEYS = (
    "crystalline_signal",
    "crystalline_signal_err",
    "crystalline_total",
    "crystalline_total_err",
    "crystalline_z",
    "decomposed_signal",
    "decomposed_signal_err",
    "decomposed_z",
    "decomposed_start_z",
    "crystalline_start_z",
    "template_amplitude",
    "noise",
    "n_peaks",
    "n_spikes",
    "reduced_chi2",
    "peak_positions",
)


@dataclass(frozen=True)
class TransitionFeatures:
    """The detector's view of one spectrum.

    Attributes
    ----------
    temperature : float
        Measurement temperature (C).
    crystalline_signal, crystalline_signal_err : float
        Summed area (counts x cm-1) of the diagnostic crystalline bands against the learned
        amorphous state, and its standard error. NaN during the calibration spectra.
    crystalline_total, crystalline_total_err : float
        The same for every crystalline band far from the amorphous bands, shared ones included
        (what completion watches).
    crystalline_z : float
        ``crystalline_signal`` in units of its noise, after the calibration spectra's offset and
        scatter (what the onset CUSUM adds up).
    decomposed_signal, decomposed_signal_err, decomposed_z : float
        The decomposed phase's bands against the crystallized state (NaN before it is learned).
    decomposed_start_z : float
        The decomposed phase's diagnostic bands against the learned amorphous state (the film's
        start), in units of their noise after the calibration scatter: what a film at rest after
        an anneal is compared with (:func:`~insitu.analysis.rest_call.rest_call`).
    crystalline_start_z : float
        The crystalline diagnostic bands against the learned amorphous state fitted with two
        line widths per band (the completion's fit), in units of their noise after the
        calibration scatter: what :func:`~insitu.analysis.rest_call.rest_call` calls crystals at
        rest from (its level was set on this statistic, not on the onset's ``crystalline_z``,
        which has one line width per band).
    template_amplitude : float
        Amplitude of the learned state in this spectrum (1: as much as when it was learned).
    noise : float
        Median noise standard deviation of the spectrum (counts).
    n_spikes : int
        Cosmic-ray spikes removed.
    peaks : tuple of float
        Positions (cm-1) of peaks the learned state does not have.
    reduced_chi2 : float
        Quality of the fit (about 1 when the model and the noise estimate are right).
    """

    temperature: float
    crystalline_signal: float = math.nan
    crystalline_signal_err: float = math.nan
    crystalline_total: float = math.nan
    crystalline_total_err: float = math.nan
    crystalline_z: float = math.nan
    decomposed_signal: float = math.nan
    decomposed_signal_err: float = math.nan
    decomposed_z: float = math.nan
    decomposed_start_z: float = math.nan
    crystalline_start_z: float = math.nan
    template_amplitude: float = math.nan
    noise: float = math.nan
    n_spikes: int = 0
    peaks: tuple[float, ...] = ()
    reduced_chi2: float = math.nan

    @property
    def n_peaks(self) -> int:
        """Number of new peaks."""
        return len(self.peaks)

    def as_record(self) -> dict[str, Any]:
        """Flat JSON-ready mapping (numbers and strings) with the :data:`RECORD_KEYS`."""
        record: dict[str, Any] = {
            key: float(getattr(self, key))
            for key in RECORD_KEYS
            if key not in ("n_peaks", "n_spikes", "peak_positions")
        }
        record.update(
            n_peaks=int(self.n_peaks),
            n_spikes=int(self.n_spikes),
            peak_positions=" ".join(f"{p:.1f}" for p in self.peaks),
        )
        return record
