"""One-off intensity jumps in a stream of spectra: a dark frame, a doubled exposure, a glitch.

A ramp's spectra change smoothly from one to the next: the laser drifts by a few percent, the
fluorescence bleaches, bands grow where a phase forms. A spectrum whose whole intensity jumps
(the shutter closed, one frame at another exposure, the focus lost for a moment) is a fault of
the measurement, not of the film, and read as one it makes growth out of nothing: one dark frame
or one spectrum at three times the intensity in the middle of a crystallization made the
completion flag come 4-24 spectra early on the robustness ramps, and a decomposition flag 36-48
spectra early. :class:`IntensityJumps` compares each spectrum with the pixel-wise median of the
last accepted ones, over the pixels bright enough to carry a ratio: on the robustness and foreign
ramps (120 of them) that ratio stays within 0.82-1.15 from spectrum to spectrum, so a jump is a
ratio outside 1/1.5-1.5. The whole spectrum's sum must have moved the same way, by more than
:data:`WHOLE_RATIO`: on a faint film whose fluorescence has bleached the bright pixels are its
bands, and a decomposition taking them away in one 10 C step read as a jump (0.64 and 0.49 on
the last two spectra of such a film, whose decomposition was then missed; their sums moved by
1 %), while a glitch moves every pixel (a spectrum from the wrong spot: bright pixels 0.45, sum
0.79). A level that stays (the exposure changed for good) is accepted after
:data:`NEW_LEVEL_SPECTRA` spectra that agree with each other, and the spectra from then on are
scaled back to the ramp's level.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["JUMP_RATIO", "NEW_LEVEL_SPECTRA", "WHOLE_RATIO", "IntensityJumps"]

JUMP_RATIO = 1.5
# A ramp's whole-spectrum sum moves by a few percent per spectrum (laser drift, bleaching).
WHOLE_RATIO = 1.2
NEW_LEVEL_SPECTRA = 3
REFERENCE_SPECTRA = 3
BRIGHT_IN_NOISE = 10.0  # pixels of the reference at least this many noise units carry a ratio
MIN_BRIGHT = 50


class IntensityJumps:
    """Flags spectra whose intensity jumps against the last accepted ones.

    Parameters
    ----------
    ratio : float
        A spectrum whose median intensity ratio to the reference is outside
        ``[1 / ratio, ratio]`` has jumped.
    new_level : int
        Consecutive jumped spectra that agree with each other make the new reference.
    """

    def __init__(self, ratio: float = JUMP_RATIO, new_level: int = NEW_LEVEL_SPECTRA):
        if not (math.isfinite(ratio) and ratio > 1.0):
            raise ValueError(f"IntensityJumps ratio {ratio} must be a finite number above 1")
        if int(new_level) != new_level or new_level < 2:
            raise ValueError(f"IntensityJumps new_level {new_level} must be an integer >= 2")
        self.ratio = float(ratio)
        self.new_level = int(new_level)
        self._accepted: deque[np.ndarray] = deque(maxlen=REFERENCE_SPECTRA)
        self._jumps: list[np.ndarray] = []
        self.scale = 1.0

    @staticmethod
    def _ratio(y: np.ndarray, reference: np.ndarray, noise: np.ndarray) -> float:
        bright = reference > BRIGHT_IN_NOISE * noise
        if np.count_nonzero(bright) < MIN_BRIGHT:
            return math.nan  # too faint to tell: accepted
        return float(np.median(y[bright] / reference[bright]))

    def _jumped(self, ratio: float) -> bool:
        return math.isfinite(ratio) and not 1.0 / self.ratio <= ratio <= self.ratio

    def _whole_jumped(self, y: np.ndarray, reference: np.ndarray, ratio: float) -> bool:
        """Whether the spectrum's sum moved like its bright pixels (a glitch moves them all)."""
        total = float(np.sum(reference))
        whole = float(np.sum(y)) / total if total > 0 else math.nan
        if not math.isfinite(whole):
            return True  # no sum to compare (dark-subtracted to nothing): the bright pixels say
        moved = not 1.0 / WHOLE_RATIO <= whole <= WHOLE_RATIO
        return moved and (whole > 1.0) == (ratio > 1.0)

    def check(self, y: np.ndarray, noise: np.ndarray) -> tuple[float, float | None]:
        """The factor that puts this spectrum on the ramp's level, and its intensity ratio to
        the last accepted spectra when it jumped (None when it did not).

        ``y`` and ``noise`` are one despiked spectrum and its noise per pixel, on the same axis
        as every spectrum before. An accepted spectrum joins the reference; a jumped one does
        not (it is not to be tested), unless it completes ``new_level`` jumped spectra in a row
        that agree with each other: the level changed for good, and from that spectrum on the
        factor scales every spectrum back to the ramp's level (the band areas go on from
        where they were).
        """
        y = y * self.scale
        if len(self._accepted) < REFERENCE_SPECTRA:
            self._accepted.append(y)
            return self.scale, None
        reference = _pixelwise_median(self._accepted)
        ratio = self._ratio(y, reference, noise * self.scale)
        if not (self._jumped(ratio) and self._whole_jumped(y, reference, ratio)):
            self._accepted.append(y)
            self._jumps = []
            return self.scale, None
        self._jumps.append(y)
        if len(self._jumps) < self.new_level:
            return self.scale, ratio
        recent = self._jumps[-self.new_level :]
        level = _pixelwise_median(recent)
        if any(self._jumped(self._ratio(s, level, noise * self.scale)) for s in recent):
            return self.scale, ratio
        factor = self._ratio(level, reference, noise * self.scale)
        self.scale /= factor
        self._accepted.clear()
        self._accepted.extend(s / factor for s in recent[-REFERENCE_SPECTRA:])
        self._jumps = []
        return self.scale, None


def _pixelwise_median(spectra) -> np.ndarray:
    """Each pixel's median over ``spectra`` (``np.median(..., axis=0)``); of three, as the
    middle of each pixel's three values (the same numbers, a fifth of np.median's time on every
    spectrum of a ramp)."""
    if len(spectra) == 3:
        a, b, c = spectra
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    return np.median(np.asarray(spectra), axis=0)
