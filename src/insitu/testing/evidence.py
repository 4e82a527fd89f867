"""What an ideal observer sees of a phase's bands in a generated ramp: the matched-filter bound.

The generators that know their films' true band profiles (:mod:`insitu.testing.foreign_ramps`,
:mod:`insitu.testing.third_ramps`) weigh each spectrum's new-phase bands by the true noise,
``sqrt(sum(bands**2 / variance))`` over the pixels. An observer that knows every shape but not
the fluorescence must fit a smooth background beside the bands; only the part of the bands no
such background can mimic is evidence then (:func:`beyond_smooth_background`).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

__all__ = ["beyond_smooth_background", "matched_filter"]


def matched_filter(
    bands: np.ndarray,
    variance: np.ndarray,
    axis: np.ndarray,
    background_knots_cm1: float | None = None,
) -> np.ndarray:
    """Noise units the ``bands`` (one row per spectrum) carry against ``variance`` (same shape).

    With ``background_knots_cm1``, only what is left of them beside a smooth background fitted
    with cubic B-splines that far apart (see :func:`beyond_smooth_background`).
    """
    weighted = bands / np.sqrt(variance)
    if background_knots_cm1 is not None:
        weighted = beyond_smooth_background(weighted, variance, axis, background_knots_cm1)
    return np.sqrt(np.sum(weighted**2, axis=1))


def beyond_smooth_background(
    weighted: np.ndarray, variance: np.ndarray, axis: np.ndarray, knots_cm1: float
) -> np.ndarray:
    """Each row of noise-weighted bands less its weighted least-squares fit by cubic B-splines
    with knots ``knots_cm1`` apart over the increasing ``axis``."""
    # Its own splines, not the detector's background_rows: the generators read nothing of the
    # analysis, so the bound does not move when the detector's background does.
    intervals = max(1, int(np.ceil((axis[-1] - axis[0]) / knots_cm1)))
    inner = np.linspace(axis[0], axis[-1], intervals + 1)
    knots = np.concatenate([[axis[0]] * 3, inner, [axis[-1]] * 3])
    splines = BSpline.design_matrix(axis, knots, 3).toarray()
    residual = np.empty_like(weighted)
    for i, (row, var) in enumerate(zip(weighted, variance, strict=True)):
        design = splines / np.sqrt(var)[:, None]
        coef, *_ = np.linalg.lstsq(design, row, rcond=None)
        residual[i] = row - design @ coef
    return residual
