"""Cosmic-ray removal: median across accumulations, or Whitaker-Hayes despiking of one spectrum.

Written here rather than taken from a package: the two well-known methods are a few lines of
numpy, and the packages that ship them (e.g. ramanspy) pull in far larger stacks than the
device needs. References: median filtering of repeated exposures is the classical CCD approach;
D. A. Whitaker and K. Hayes, Chemometr. Intell. Lab. Syst. 179 (2018) 82-84, for the modified
z-score on the first difference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["median_of_accumulations", "remove_spikes_whitaker_hayes"]


def median_of_accumulations(frames: np.ndarray) -> np.ndarray:
    """Pixel-wise median of separately acquired accumulations, shape (n, N) -> (N,).

    A spike is in one frame only, so with three or more frames the median drops it.

    Raises
    ------
    ValueError
        With fewer than 3 frames (the median of two is their mean and keeps the spike).
    """
    stack = np.asarray(frames, dtype=float)
    if stack.ndim != 2 or stack.shape[0] < 3:
        raise ValueError(
            f"median cosmic-ray removal needs at least 3 accumulations, got shape {stack.shape}"
        )
    return np.median(stack, axis=0)


def remove_spikes_whitaker_hayes(
    counts: np.ndarray, *, threshold: float = 8.0, neighbours: int = 3
) -> np.ndarray:
    """Replace cosmic-ray spikes in one spectrum (Whitaker-Hayes modified z-score).

    Parameters
    ----------
    counts : ndarray, shape (N,)
        The spectrum.
    threshold : float
        Modified z-score of the first difference above which a pixel is a spike.
    neighbours : int
        Half width of the window of clean pixels whose mean replaces a spike pixel.

    Returns
    -------
    ndarray
        A copy with spike pixels (and their immediate neighbours) replaced.
    """
    y = np.asarray(counts, dtype=float).copy()
    if y.ndim != 1 or y.size < 5:
        raise ValueError(f"despiking needs a 1-D spectrum of at least 5 points, got {y.shape}")
    diff = np.diff(y)
    mad = np.median(np.abs(diff - np.median(diff)))
    if mad == 0:
        return y
    z = 0.6745 * (diff - np.median(diff)) / mad
    spikes = np.zeros(y.size, dtype=bool)
    jumps = np.abs(z) > threshold
    spikes[1:] |= jumps
    spikes[:-1] |= jumps
    # Grow by one pixel so spike shoulders go too.
    grown = spikes.copy()
    grown[1:] |= spikes[:-1]
    grown[:-1] |= spikes[1:]
    spikes = grown
    clean = ~spikes
    for i in np.flatnonzero(spikes):
        lo, hi = max(0, i - neighbours - 3), min(y.size, i + neighbours + 4)
        window = np.arange(lo, hi)
        good = window[clean[window]]
        if good.size:
            y[i] = y[good].mean()
    return y
