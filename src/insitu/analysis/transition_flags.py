"""The transitions the Raman analysis flags, and the flag record itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["TRANSITION_KINDS", "TransitionFlag"]

TRANSITION_KINDS = ("crystallization_onset", "crystallized", "decomposition")
_DESCRIPTION = {
    "crystallization_onset": "first crystalline peaks emerge from the amorphous film",
    "crystallized": "the film is fully crystalline",
    "decomposition": "the Li-loss (decomposed) phase appears",
}


@dataclass(frozen=True)
class TransitionFlag:
    """A transition seen in the spectrum sequence.

    Attributes
    ----------
    kind : str
        One of :data:`TRANSITION_KINDS`.
    index : int
        Position of the spectrum that raised it in the sequence (from 0).
    temperature : float
        Temperature given with that spectrum (C).
    confidence : float
        Probability, under the statistic's noise, that the evidence is real (normal
        approximation), 0 to 1.
    evidence : str
        Which statistic, its value and threshold, and which bands carried it.
    value, level, cusum : float
        The statistic, its decision level and the CUSUM when the flag was raised.
    bands : dict
        Phase -> literature positions of the bands that carried the evidence.
    """

    kind: str
    index: int
    temperature: float
    confidence: float
    evidence: str
    value: float = math.nan
    level: float = math.nan
    cusum: float = math.nan
    bands: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def message(self) -> str:
        """One line for a log or a person: what happened, where, how sure, why."""
        return (
            f"Raman transition {self.kind} ({_DESCRIPTION.get(self.kind, self.kind)}) at "
            f"{self.temperature:.1f} C, spectrum {self.index}, confidence {self.confidence:.3f}: "
            f"{self.evidence}"
        )
