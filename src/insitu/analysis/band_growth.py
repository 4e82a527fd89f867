"""Growth of sharp bands at literature positions, against a state learned from the ramp itself.

The transition detector (:mod:`insitu.analysis.transitions`) knows only where a phase's bands are
(the paper's table: positions and assignments, no widths, no intensities). Everything else comes
from the data. One spectrum is fitted, by weighted linear least squares, as

* a **template**: the film's own earlier spectrum (the mean of a few spectra the detector chose,
  smoothed), with its first and second derivatives along the axis, so that the bands of that
  state may scale, shift and broaden a little with temperature;
* a **smooth background** (cubic B-splines every 150 cm-1 and four exponential tails of the laser
  edge filter): fluorescence that drifts, quenches or changes shape;
* **band columns** at each watched band cluster (bands of the watched phases closer than 12 cm-1
  merged), at the position expected at the measurement temperature: two unit-area line shapes of
  different widths (their combination follows any width in between) and the derivative of a
  middle width (a position a few cm-1 off).

The **signal** of a phase class is the summed area of its *diagnostic* clusters: those made of
that class's bands only and far from every band of the classes it must be told apart from (an
amorphous band, for instance, or a crystalline one for the decomposed class). Its standard error
comes from the fit's covariance, with weights from the spectrum's own noise (shot and read noise
per pixel, from the median absolute second difference in blocks of 40 pixels), so ``signal /
error`` is in units of the spectrum's noise on any instrument. Given the areas a class's clusters
are expected to grow by (a ``pattern``, e.g. measured on a standard), the signal is instead the
generalized least-squares amplitude of that pattern, each cluster weighted through the inverse of
the areas' covariance. The template's amplitude, relative to the state it was taken from, is how
much of that state remains.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import BSpline
from scipy.ndimage import convolve1d
from scipy.signal import savgol_coeffs

__all__ = [
    "BandCluster",
    "GrowthFit",
    "Template",
    "band_clusters",
    "fit_growth",
    "fit_growth_nested",
    "crystalline_z_scan",
    "unit_area_lines",
    "weighted_least_squares",
    "WeightedSpectrum",
    "SOFTENING_PER_C",
]

# Bands soften on heating by up to ~0.03 cm-1 per C; positions are expected at the middle of that
# range from the temperature the literature saw them at, and the derivative column takes the rest.
SOFTENING_PER_C = 0.015
CLUSTER_CM1 = 12.0
BACKGROUND_KNOT_SPACING_CM1 = 150.0
EDGE_TAIL_DECAYS_CM1 = (3.0, 5.0, 8.0, 12.0)
TEMPLATE_SMOOTHING_CM1 = 5.0
# Unit-area line shapes per class of band (FWHM, cm-1): narrow, wide, and the derivative's width.
LINE_WIDTHS_CM1 = {"crystalline": (8.0, 24.0), "decomposed": (25.0, 60.0)}
_LN2 = math.log(2.0)
POSITION_GRID_CM1 = 0.25
SCAN_GRID_CM1 = 1.0


@dataclass(frozen=True)
class BandCluster:
    """Bands of the watched phases that lie too close together to be told apart.

    Attributes
    ----------
    position : float
        Mean literature position (cm-1) at ``temperature_C``.
    temperature_C : float
        Temperature at which the literature saw the bands (C).
    phase_class : str
        ``"crystalline"``, ``"decomposed"`` or ``"mixed"`` (bands of both).
    phases : tuple of str
        Phases whose bands are in it.
    diagnostic : bool
        Counts in its class's signal (single class, far from the bands it must be told from).
    isolated : bool
        Far from the bands the crystalline class must be told from (a mixed crystalline and
        decomposed cluster may be, and then counts in the ``crystalline_total`` signal).
    softening_per_C : float
        How fast (cm-1 per C) the bands move down from ``position`` as the temperature rises
        above ``temperature_C``.
    """

    position: float
    temperature_C: float
    phase_class: str
    phases: tuple[str, ...]
    diagnostic: bool
    isolated: bool = False
    softening_per_C: float = SOFTENING_PER_C

    def expected_position(self, temperature: float) -> float:
        """Where the cluster sits at ``temperature`` (C), softened from the literature's."""
        return self.position - self.softening_per_C * (temperature - self.temperature_C)

    def softened_from(self, temperature_C: float, per_C: float) -> BandCluster:
        """The same bands read as at ``temperature_C``, softening ``per_C`` (cm-1 per C)."""
        return dataclasses.replace(self, temperature_C=temperature_C, softening_per_C=per_C)


def band_clusters(
    bands: Sequence[tuple[float, float, str, str]],
    avoid: dict[str, Sequence[float]],
    *,
    guard_cm1: dict[str, float],
) -> tuple[BandCluster, ...]:
    """Group watched bands into clusters and mark the diagnostic ones.

    Parameters
    ----------
    bands : sequence of (position, temperature_C, phase, phase_class)
        Bands of the crystalline and decomposed phases.
    avoid : dict
        Class -> positions its diagnostic clusters must stay away from.
    guard_cm1 : dict
        Class -> the smallest distance (cm-1) to those positions.
    """
    ordered = sorted(bands)
    groups: list[list[tuple[float, float, str, str]]] = []
    for band in ordered:
        if groups and band[0] - groups[-1][-1][0] < CLUSTER_CM1:
            groups[-1].append(band)
        else:
            groups.append([band])
    clusters = []
    for group in groups:
        classes = {b[3] for b in group}
        phase_class = classes.pop() if len(classes) == 1 else "mixed"
        position = float(np.mean([b[0] for b in group]))
        diagnostic = phase_class != "mixed" and all(
            abs(position - other) >= guard_cm1.get(phase_class, 0.0)
            for other in avoid.get(phase_class, ())
        )
        isolated = all(
            abs(position - other) >= guard_cm1.get("crystalline", 0.0)
            for other in avoid.get("crystalline", ())
        )
        clusters.append(
            BandCluster(
                position=position,
                temperature_C=float(np.mean([b[1] for b in group])),
                phase_class=phase_class,
                phases=tuple(sorted({b[2] for b in group})),
                diagnostic=diagnostic,
                isolated=isolated and phase_class in ("crystalline", "mixed"),
            )
        )
    return tuple(clusters)


def _pixels(x: np.ndarray, width_cm1: float) -> int:
    return max(int(round(width_cm1 / _axis_step(np.asarray(x, dtype=float).tobytes()))), 1)


@functools.lru_cache(maxsize=16)
def _axis_step(x_bytes: bytes) -> float:
    """The axis' median step (cm-1): one axis serves a whole ramp, and the median of its
    steps, taken three times per learned state, was a tenth of the state's time."""
    return float(np.median(np.diff(np.frombuffer(x_bytes, dtype=float))))


@functools.lru_cache(maxsize=16)
def _savgol(window: int, deriv: int) -> np.ndarray:
    """Cubic Savitzky-Golay coefficients for ``convolve1d`` (unit spacing)."""
    coefficients = savgol_coeffs(window, 3, deriv=deriv, use="conv")
    coefficients.flags.writeable = False
    return coefficients


@dataclass(frozen=True)
class Template:
    """A state of the film learned from its own spectra: smoothed mean and its derivatives."""

    shape: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    temperature: float
    indices: tuple[int, ...] = ()

    @classmethod
    def from_spectra(
        cls,
        x: np.ndarray,
        spectra: Sequence[np.ndarray],
        temperature: float,
        indices: Sequence[int] = (),
    ) -> Template:
        """Mean of despiked spectra on one axis, Savitzky-Golay smoothed over ~5 cm-1."""
        mean = np.mean(np.asarray(spectra, dtype=float), axis=0)
        window = max(_pixels(x, TEMPLATE_SMOOTHING_CM1) | 1, 5)
        step = _axis_step(np.asarray(x, dtype=float).tobytes())
        # Savitzky-Golay by convolution with "mirror" edges: ~50x faster than scipy's default
        # polynomial fit of the edges, and the first few pixels (the laser-edge tail) carry no
        # band anyway; the coefficients are cached (scipy recomputes them on every call).
        shape = convolve1d(mean, _savgol(window, 0), mode="mirror")
        d_window = max(_pixels(x, 2.0 * TEMPLATE_SMOOTHING_CM1) | 1, 7)
        d1 = convolve1d(mean, _savgol(d_window, 1), mode="mirror") / step
        d2 = convolve1d(mean, _savgol(d_window, 2), mode="mirror") / step**2
        return cls(shape, d1, d2, float(temperature), tuple(indices))


@functools.lru_cache(maxsize=8)
def background_rows(
    x_bytes: bytes, knot_spacing_cm1: float = BACKGROUND_KNOT_SPACING_CM1
) -> np.ndarray:
    """Smooth-background basis, one row per function: cubic B-splines every
    ``knot_spacing_cm1`` and four exponential tails of the laser-edge filter (cached per axis)."""
    x = np.frombuffer(x_bytes, dtype=float)
    lo, hi = float(x[0]), float(x[-1])
    intervals = max(1, math.ceil((hi - lo) / knot_spacing_cm1))
    inner = np.linspace(lo, hi, intervals + 1)
    knots = np.concatenate([[lo] * 3, inner, [hi] * 3])
    splines = BSpline.design_matrix(x, knots, 3).toarray()
    tails = np.exp(-(x[:, None] - lo) / np.array(EDGE_TAIL_DECAYS_CM1)[None, :])
    rows = np.ascontiguousarray(np.hstack([splines, tails]).T)
    rows.flags.writeable = False
    return rows


def unit_area_lines(x: np.ndarray, centres: np.ndarray, fwhm: float) -> np.ndarray:
    """Pseudo-Voigt (half Lorentzian) lines of unit area, and their derivative in position."""
    half = 0.5 * fwhm
    u = (x[None, :] - centres[:, None]) / half
    u2 = u * u
    lorentz = 1.0 / (1.0 + u2)
    gauss = np.exp(-_LN2 * u2)
    area = 0.5 * math.pi * half + 0.5 * half * math.sqrt(math.pi / _LN2)
    shape = (0.5 * lorentz + 0.5 * gauss) / area
    d_shape = (u * (lorentz * lorentz + _LN2 * gauss)) / (half * area)  # d/d(centre)
    return shape, d_shape


class _Layout:
    """What fits need of a set of clusters and a table of line widths, whatever the spectrum:
    each cluster's widths, its widest and middle width, its reach for the local misfit (twice
    its widest line), its position model, and which clusters each class's signal sums."""

    def __init__(self, clusters: Sequence[BandCluster], line_widths: dict):
        self.clusters = tuple(clusters)
        self.line_widths = line_widths
        self._leading: dict[int, _Layout] = {}
        self.widths = [_widths_of(c, line_widths) for c in clusters]
        self.widest = [max(own) for own in self.widths]
        self.middle = [_middle(own) for own in self.widths]
        self.reach = 2.0 * np.array(self.widest, dtype=float)
        self.position = np.array([c.position for c in clusters], dtype=float)
        self.temperature_C = np.array([c.temperature_C for c in clusters], dtype=float)
        self.softening = np.array([c.softening_per_C for c in clusters], dtype=float)
        self.classes = {
            phase_class: np.array(
                [c.diagnostic and c.phase_class == phase_class for c in clusters], dtype=bool
            )
            for phase_class in ("crystalline", "decomposed")
        }
        self.classes["crystalline_total"] = np.array([c.isolated for c in clusters], dtype=bool)

    def centres(self, temperature: float) -> np.ndarray:
        """Each cluster's :meth:`BandCluster.expected_position` (the same arithmetic)."""
        return self.position - self.softening * (temperature - self.temperature_C)

    def leading(self, n: int) -> _Layout:
        """The layout of the first ``n`` clusters (kept: a nested fit asks every spectrum)."""
        if n == len(self.clusters):
            return self
        if n not in self._leading:
            self._leading[n] = _Layout(self.clusters[:n], self.line_widths)
        return self._leading[n]


def _middle(widths: tuple[float, ...]) -> float:
    ordered = sorted(widths)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else 0.5 * (ordered[half - 1] + ordered[half])


_LAYOUTS: dict[tuple, tuple[Sequence[BandCluster], _Layout]] = {}


def _layout(clusters: Sequence[BandCluster], line_widths: dict) -> _Layout:
    """The :class:`_Layout` of ``clusters`` and ``line_widths``, kept for a tuple of clusters
    and a table keyed by class only (both immutable in what the key holds): the detector fits
    the same few sets four times per spectrum, and reading every cluster's fields again was a
    tenth of a fit's time."""
    if not (type(clusters) is tuple and all(type(key) is str for key in line_widths)):
        return _Layout(clusters, line_widths)
    try:
        key = (id(clusters), tuple((name, tuple(w)) for name, w in line_widths.items()))
        kept = _LAYOUTS.get(key)
    except TypeError:  # widths that are not a sequence of numbers: _Layout says what is wrong
        return _Layout(clusters, line_widths)
    if kept is None or kept[0] is not clusters:
        if len(_LAYOUTS) >= 256:
            _LAYOUTS.clear()
        # the entry holds the tuple itself: its id cannot be reused while it is kept
        kept = _LAYOUTS[key] = (clusters, _Layout(clusters, line_widths))
    return kept[1]


def _band_columns(
    x: np.ndarray,
    clusters: Sequence[BandCluster],
    temperature: float,
    line_widths: dict,
    grid: float = POSITION_GRID_CM1,
    derivatives: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Columns per cluster (one line shape per width, then the derivative of the middle width
    in position, unless not ``derivatives``) and, per column, the index of the cluster whose
    area it carries (-1: none); centres on a ``grid`` (cm-1).

    Returned as rows (one per column, pixels along the row): the least squares stacks them.
    A cluster less than its widest line from either end of the axis gets no column (its area
    is 0): what is left of it on the axis is a tail, as smooth as the background and the laser
    edge's, and fitting it took counts from its neighbours (LLZO's 94 and 113 cm-1 bands on an
    axis from 130 cm-1 had areas of 1e9 and made the 275 cm-1 band's error as large as the
    240 cm-1 band's area).
    """
    centres, widths, derivative, owners = [], [], [], []
    lo, hi = float(x[0]), float(x[-1])
    layout = _layout(clusters, line_widths)
    at = layout.centres(temperature).tolist()
    for k, (centre, own, widest, middle) in enumerate(
        zip(at, layout.widths, layout.widest, layout.middle, strict=True)
    ):
        if not lo + widest <= centre <= hi - widest:
            continue
        for width in (*own, middle) if derivatives else own:
            centres.append(centre)
            widths.append(width)
        derivative += [False] * len(own) + [True] * derivatives
        owners += [k] * len(own) + [-1] * derivatives
    # Positions move by ~0.015 cm-1 per C: on a 0.25 cm-1 grid the columns of one ramp repeat
    # (the derivative column takes the rest), and computing them is most of a fit's time.
    key = tuple(
        (round(c / grid) * grid, w, d) for c, w, d in zip(centres, widths, derivative, strict=True)
    )
    if not key:
        return np.zeros((0, x.size)), np.zeros(0, dtype=int)
    return _line_rows(x.tobytes(), key), np.array(owners)


@functools.lru_cache(maxsize=64)
def _line_rows(x_bytes: bytes, lines: tuple[tuple[float, float, bool], ...]) -> np.ndarray:
    """Unit-area pseudo-Voigt (half Lorentzian) rows, or their derivative in position."""
    rows = np.vstack([_line_row(x_bytes, *line) for line in lines])
    rows.flags.writeable = False
    return rows


# Per line: a fit's set of lines changes whenever any one of its clusters crosses a grid step,
# about every spectrum on a ramp, while each line stays for several (3 fits per spectrum missed
# the per-set cache 40 % of the time, a sixth of the whole path).
@functools.lru_cache(maxsize=1024)
def _line_row(x_bytes: bytes, centre: float, width: float, derivative: bool) -> np.ndarray:
    x = np.frombuffer(x_bytes, dtype=float)
    half = 0.5 * width
    u = (x - centre) / half
    u2 = u * u
    lorentz = 1.0 / (1.0 + u2)
    # The Gaussian half only within 10 half-widths: beyond, it is below 1e-30 of its peak and
    # below the last bit of the Lorentzian half, so the row is the same to the bit (test), and
    # the exponential over the whole axis was a third of the row's time.
    lo, hi = np.searchsorted(x, (centre - 10.0 * half, centre + 10.0 * half))
    area = half * (0.5 * math.pi + 0.5 * math.sqrt(math.pi / _LN2))
    if derivative:
        inner = lorentz * lorentz
        inner[lo:hi] += _LN2 * np.exp(-_LN2 * u2[lo:hi])
        return u * inner / (half * area)
    row = 0.5 * lorentz
    row[lo:hi] += 0.5 * np.exp(-_LN2 * u2[lo:hi])
    return row / area


@dataclass(frozen=True)
class GrowthFit:
    """What :func:`fit_growth` found in one spectrum.

    Attributes
    ----------
    areas : ndarray
        Fitted area of each band cluster (counts x cm-1).
    signal : dict
        ``crystalline``, ``decomposed``: summed area of the class's diagnostic clusters;
        ``crystalline_total``: of every isolated cluster with crystalline bands.
    signal_error : dict
        Standard errors of those sums (NaN for a class without such clusters), scaled by the
        misfit near the bands.
    template_amplitude, template_error : float
        Amplitude of the template (1 = as much as when it was taken) and its standard error.
    reduced_chi2 : float
        Weighted residual sum of squares per degree of freedom.
    background : ndarray
        The fitted smooth background (for plots and peak finding).
    """

    areas: np.ndarray
    signal: dict[str, float]
    signal_error: dict[str, float]
    template_amplitude: float
    template_error: float
    reduced_chi2: float
    background: np.ndarray = field(repr=False)

    def z(self, phase_class: str) -> float:
        """The class's signal in units of its standard error (NaN without diagnostic bands)."""
        error = self.signal_error.get(phase_class, math.nan)
        return self.signal.get(phase_class, math.nan) / error if error > 0 else math.nan


WIDTH_GRID_CM1 = (4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 27.0, 36.0, 48.0, 64.0)


def learn_widths(
    x: np.ndarray,
    y: np.ndarray,
    noise: np.ndarray,
    clusters: Sequence[BandCluster],
    temperature: float,
    *,
    window_cm1: float = 50.0,
    min_z: float = 0.0,
) -> dict[BandCluster, float]:
    """The width (FWHM, cm-1) each cluster's band shows in one spectrum, from a grid.

    Each cluster is fitted on its own, within ``window_cm1`` of its expected position, as one
    unit-area line (and its derivative in position) on a quadratic background; the width of the
    smallest weighted residual wins. Used on the spectrum that completed the crystallization,
    whose crystalline bands are strong: the widths are the film's own, not a table's. A band
    whose area there is below ``min_z`` standard errors has shown no width and is left out.
    """
    found = {}
    for cluster in clusters:
        centre = cluster.expected_position(temperature)
        inside = np.abs(x - centre) <= window_cm1
        if np.count_nonzero(inside) < 12:
            continue
        xs, ys, ws = x[inside], y[inside], 1.0 / noise[inside]
        u = (xs - centre) / window_cm1
        best, best_rss, best_fit = None, math.inf, None
        for width in WIDTH_GRID_CM1:
            shape, d_shape = unit_area_lines(xs, np.array([centre]), width)
            design = np.column_stack([shape[0], d_shape[0], np.ones_like(u), u, u * u])
            a = design * ws[:, None]
            coef, *_ = np.linalg.lstsq(a, ys * ws, rcond=None)
            if coef[0] <= 0:
                continue
            residual = ys * ws - a @ coef
            rss = float(residual @ residual)
            if rss < best_rss:
                best, best_rss, best_fit = width, rss, (a, coef[0])
        if best is None:
            continue
        if min_z > 0:
            a, area = best_fit
            variance = np.linalg.pinv(a.T @ a)[0, 0] * max(best_rss / max(ys.size - 5, 1), 1.0)
            if not (variance > 0 and area / math.sqrt(variance) >= min_z):
                continue
        found[cluster] = best
    return found


def _normal_block(
    rows: np.ndarray, weights: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows weighted (not scaled), their norms (1 where 0), and the Gram matrix and product
    with ``b`` of the rows scaled to unit norm (the normal equations stay well conditioned).

    The small products are scaled instead of the rows: two passes over the rows fewer, and
    the same normalized equations to rounding.
    """
    a = rows * weights[None, :]
    gram = a @ a.T
    scale = np.sqrt(np.diagonal(gram))
    scale[scale == 0] = 1.0
    inverse = 1.0 / scale
    gram *= inverse[:, None]
    gram *= inverse[None, :]
    return a, scale, gram, (a @ b) * inverse


def _solve_normal(gram, rhs, blocks, b, scale):
    """Coefficients, covariance, reduced chi-square and weighted residual of normal equations
    in rows scaled by ``scale`` to unit norm, whose weighted rows (not scaled) are ``blocks``
    stacked in order."""
    try:
        inverse = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(gram)
    coef = (inverse @ rhs) / scale
    residual = b.copy()
    start = 0
    for block in blocks:
        residual -= coef[start : start + block.shape[0]] @ block
        start += block.shape[0]
    dof = max(b.size - gram.shape[0], 1)
    chi2 = float(residual @ residual) / dof
    covariance = inverse * max(chi2, 1.0) / np.outer(scale, scale)
    return coef, covariance, chi2, residual


def weighted_least_squares(design: np.ndarray, y: np.ndarray, weights: np.ndarray, residuals=None):
    """Weighted least squares: coefficients, their covariance (scaled by the reduced chi-square
    when above 1: never more precise than the noise says), the reduced chi-square; the weighted
    residuals go into ``residuals`` (a list) when one is given.

    ``design`` is given transposed (one row per column of the model, C-contiguous): weighting
    and scaling rows is cheaper than columns of a Fortran-ordered copy.
    """
    b = y * weights
    a, scale, gram, rhs = _normal_block(design, weights, b)
    coef, covariance, chi2, residual = _solve_normal(gram, rhs, [a], b, scale)
    if residuals is not None:
        residuals.append(residual)
    return coef, covariance, chi2


class WeightedSpectrum:
    """One despiked spectrum weighted by its noise, with the parts of the normal equations that
    every fit against the same template shares.

    The detector fits each spectrum three times against one template (the onset's, the
    completion's and the rest call's band columns): the weighted template and background rows,
    their Gram block and their product with the data are the same in all three, and computing
    them was about a third of each fit.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, noise: np.ndarray):
        self.x = x
        self.data = (x, y, noise)
        self.weights = 1.0 / noise
        self.b = y * self.weights
        self._fixed: dict[int, tuple] = {}

    def fixed(self, template: Template) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Weighted rows of the template (shape, d1, d2) and the background, their norms,
        and the Gram block and product with the weighted data of the rows scaled to unit norm
        (kept per template)."""
        kept = self._fixed.get(id(template))
        if kept is None or kept[0] is not template:
            rows = np.vstack(
                [template.shape, template.d1, template.d2, background_rows(self.x.tobytes())]
            )
            block = _normal_block(rows, self.weights, self.b)
            kept = self._fixed[id(template)] = (template, *block)
        return kept[1:]

    def normal_equations(self, template: Template, bands: np.ndarray) -> tuple:
        """Normal equations of the template, background and ``bands`` rows, in that order: Gram
        matrix and right-hand side of the rows scaled to unit norm, weighted rows (fixed block,
        band block) and their norms."""
        fixed, fixed_scale, fixed_gram, fixed_rhs = self.fixed(template)
        a, scale, band_gram, band_rhs = _normal_block(bands, self.weights, self.b)
        f, k = fixed.shape[0], a.shape[0]
        gram = np.empty((f + k, f + k))
        gram[:f, :f] = fixed_gram
        cross = (a @ fixed.T) / np.outer(scale, fixed_scale)
        gram[f:, :f] = cross
        gram[:f, f:] = cross.T
        gram[f:, f:] = band_gram
        rhs = np.concatenate([fixed_rhs, band_rhs])
        return gram, rhs, (fixed, a), np.concatenate([fixed_scale, scale])

    def solve(self, template: Template, bands: np.ndarray):
        """Least squares of the template, background and ``bands`` rows: coefficients and
        covariance in that order (template 3, background, bands), reduced chi-square, residual."""
        return self.solve_equations(self.normal_equations(template, bands))

    def solve_equations(self, equations: tuple, leading: int | None = None):
        """:meth:`solve` of :meth:`normal_equations` already built, or of their first
        ``leading`` band rows (a nested model: its equations are the leading block of these)."""
        gram, rhs, (fixed, a), scale = equations
        if leading is not None:
            n = fixed.shape[0] + leading
            gram, rhs, a, scale = gram[:n, :n], rhs[:n], a[:leading], scale[:n]
        return _solve_normal(gram, rhs, [fixed, a], self.b, scale)


def crystalline_z_scan(
    spectrum: WeightedSpectrum,
    template: Template,
    cluster_sets: Sequence[Sequence[BandCluster]],
    temperature: float,
    line_widths: dict,
) -> list[float]:
    """The crystalline z of :func:`fit_growth` for each of several cluster sets, in one batch.

    Equal to ``fit_growth(..., grid=SCAN_GRID_CM1, derivatives=False).z("crystalline")`` (no
    pattern) for each set: sets that differ in where their bands are (the transition
    detector's position models), solved together as one stack of normal equations, one line
    shape per width and no derivative column, centres on a 1 cm-1 grid (the sets' columns then
    repeat over several spectra of a ramp). The detector does this for every spectrum until the
    onset: a full fit per set cost as much as the rest of its path.
    """
    x, _, _ = spectrum.data
    options = {"grid": SCAN_GRID_CM1, "derivatives": False}
    columns = [
        _band_columns(x, clusters, temperature, line_widths, **options) for clusters in cluster_sets
    ]
    if len({rows.shape for rows, _ in columns}) != 1 or columns[0][0].shape[0] == 0:
        # Sets whose columns differ in number (a band near an axis end in one set only).
        return [
            fit_growth(
                *spectrum.data, template, c, temperature, line_widths, spectrum=spectrum, **options
            ).z("crystalline")
            for c in cluster_sets
        ]
    fixed, fixed_scale, fixed_gram, fixed_rhs = spectrum.fixed(template)
    blocks = [
        _normal_block(rows, spectrum.weights, spectrum.b) for rows, _ in columns
    ]  # per set: faster than one batched product of a transpose
    a = np.stack([block[0] for block in blocks])
    scale = np.stack([block[1] for block in blocks])
    m, k, f = a.shape[0], a.shape[1], fixed.shape[0]
    gram = np.empty((m, f + k, f + k))
    gram[:, :f, :f] = fixed_gram
    cross = (a @ fixed.T) / (scale[:, :, None] * fixed_scale[None, None, :])
    gram[:, f:, :f] = cross
    gram[:, :f, f:] = cross.transpose(0, 2, 1)
    gram[:, f:, f:] = np.stack([block[2] for block in blocks])
    rhs = np.concatenate(
        [np.broadcast_to(fixed_rhs, (m, f)), np.stack([block[3] for block in blocks])], axis=1
    )
    try:
        inverse = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(gram)
    coef = np.einsum("mij,mj->mi", inverse, rhs)
    residual = (
        spectrum.b
        - (coef[:, :f] / fixed_scale) @ fixed
        - np.einsum("mi,min->mn", coef[:, f:] / scale, a)
    )
    dof = max(spectrum.b.size - (f + k), 1)
    chi2 = np.einsum("mn,mn->m", residual, residual) / dof
    # Per set: the diagnostic crystalline columns (the sets differ in positions, not in
    # which columns they have), their summed area and its variance; fit_growth's covariance
    # carries max(chi2, 1) and divides it out again: the local misfit scales the error instead.
    layouts = [_layout(clusters, line_widths) for clusters in cluster_sets]
    indicators = (
        np.stack(
            [
                np.where(owners >= 0, layout.classes["crystalline"][owners], False)
                for layout, (_, owners) in zip(layouts, columns, strict=True)
            ]
        ).astype(float)
        / scale
    )
    signals = np.einsum("mi,mi->m", indicators, coef[:, f:])
    variances = np.einsum("mi,mij,mj->m", indicators, inverse[:, f:, f:], indicators)
    squares = np.concatenate([np.zeros((m, 1)), np.cumsum(residual * residual, axis=1)], axis=1)
    zs = []
    for j, layout in enumerate(layouts):
        if not indicators[j].any():
            zs.append(math.nan)
            continue
        chosen = layout.classes["crystalline"]
        local = _mean_square_near(
            x, squares[j], layout.centres(temperature)[chosen], layout.reach[chosen]
        )
        if local is None:
            local = max(float(chi2[j]), 1.0)
        error = math.sqrt(max(float(variances[j]) * max(local, 1.0), 0.0))
        zs.append(float(signals[j]) / error if error > 0 else math.nan)
    return zs


def _widths_of(cluster: BandCluster, line_widths: dict) -> tuple[float, ...]:
    # A cluster's own entry wins; most tables have only classes, and hashing a cluster (all its
    # fields) for each lookup was a tenth of a fit's time.
    if all(type(key) is str for key in line_widths):
        return line_widths.get(cluster.phase_class, line_widths["crystalline"])
    return line_widths.get(
        cluster, line_widths.get(cluster.phase_class, line_widths["crystalline"])
    )


def _mean_square_near(
    x: np.ndarray, squares: np.ndarray, centres: np.ndarray, reaches: np.ndarray
) -> float | None:
    """Mean of the squared residual over the pixels within ``reaches`` of any of ``centres``
    (None if there are none); ``squares`` is the residual's squares' cumulative sum with a
    leading 0. Intervals on the sorted axis instead of a mask per band: this ran for every
    class of every fit."""
    starts = np.searchsorted(x, centres - reaches, "left")
    ends = np.searchsorted(x, centres + reaches, "right")
    order = np.lexsort((ends, starts))
    total, count, end = 0.0, 0, 0
    for lo, hi in zip(starts[order].tolist(), ends[order].tolist(), strict=True):
        lo = max(lo, end)
        if hi > lo:
            total += squares[hi] - squares[lo]
            count += hi - lo
            end = hi
    return total / count if count else None


def _pattern_combination(owners, chosen, expected, band_cov, indicator) -> np.ndarray:
    """Band-column weights giving the GLS amplitude of the ``expected`` cluster areas (scaled
    to their total); ``indicator`` (the plain sum) when no chosen cluster has an expectation."""
    members = [
        k for k in range(len(chosen)) if chosen[k] and expected[k] > 0 and np.any(owners == k)
    ]
    if not members:
        return indicator
    o = np.zeros((owners.size, len(members)))
    for j, k in enumerate(members):
        o[:, j] = owners == k
    mu = np.asarray([expected[k] for k in members], dtype=float)
    mu /= mu.sum()
    c = o.T @ band_cov @ o
    try:
        c_inv_mu = np.linalg.solve(c, mu)
    except np.linalg.LinAlgError:
        return indicator
    return o @ (c_inv_mu / float(mu @ c_inv_mu))


def fit_growth(
    x: np.ndarray,
    y: np.ndarray,
    noise: np.ndarray,
    template: Template,
    clusters: Sequence[BandCluster],
    temperature: float,
    line_widths: dict | None = None,
    pattern: dict[str, np.ndarray] | None = None,
    sums: dict[str, Sequence[bool]] | None = None,
    spectrum: WeightedSpectrum | None = None,
    *,
    grid: float = POSITION_GRID_CM1,
    derivatives: bool = True,
) -> GrowthFit:
    """Fit one despiked spectrum as template + smooth background + band clusters (module doc).

    Parameters
    ----------
    x, y : ndarray
        Increasing axis (cm-1) and despiked counts.
    noise : ndarray
        Noise standard deviation per pixel (> 0).
    template : Template
        The learned state, on the same axis.
    clusters : sequence of BandCluster
        Watched band clusters.
    temperature : float
        Measurement temperature (C), for the expected band positions.
    line_widths : dict, optional
        Class name or cluster -> FWHM (cm-1) of its unit-area line shapes (a cluster's own entry
        wins); :data:`LINE_WIDTHS_CM1` by default.
    pattern : dict, optional
        Class -> expected area of each cluster (measured on a standard; 0 where unknown). The
        class's signal is then the generalized-least-squares amplitude of that pattern over the
        class's clusters with a positive expected area (in the units of their summed area), not
        the plain sum of the areas: the clusters are weighted by what they are expected to carry.
    sums : dict, optional
        Further signals: name -> which clusters' areas it sums (one flag per cluster); each gets
        its ``signal`` and ``signal_error`` like the classes'.
    spectrum : WeightedSpectrum, optional
        The same ``x``, ``y`` and ``noise`` already weighted, to share the template and background
        part of the normal equations between fits of one spectrum (made here when not given).
    grid : float
        Band centres are placed on this grid (cm-1); the derivative columns take the rest.
    derivatives : bool
        Give each cluster the derivative of its middle line shape in position (a shift of a few
        cm-1); without, one column per line width.

    Returns
    -------
    GrowthFit
    """
    widths = LINE_WIDTHS_CM1 if line_widths is None else line_widths
    bands, owners = _band_columns(x, clusters, temperature, widths, grid, derivatives)
    if spectrum is None:
        spectrum = WeightedSpectrum(x, y, noise)
    solved = spectrum.solve(template, bands)
    layout = _layout(clusters, widths)
    return _growth_fit(x, layout, temperature, owners, solved, pattern, sums)


def fit_growth_nested(
    spectrum: WeightedSpectrum,
    template: Template,
    clusters: Sequence[BandCluster],
    leading: int,
    temperature: float,
    line_widths: dict | None = None,
    *,
    sums: dict[str, Sequence[bool]] | None = None,
    leading_sums: dict[str, Sequence[bool]] | None = None,
) -> tuple[GrowthFit, GrowthFit]:
    """:func:`fit_growth` of ``clusters`` and of their first ``leading`` clusters, from one set
    of normal equations.

    A cluster's columns follow the clusters before it, so the model of the leading clusters is
    the leading block of the whole model's normal equations: the rows, their weights and their
    products, most of a fit's time, are computed once. Equal to two :func:`fit_growth` calls
    (the Gram block's last bits aside; test).

    Parameters
    ----------
    spectrum : WeightedSpectrum
        The weighted spectrum.
    template : Template
        The learned state, on the same axis.
    clusters : sequence of BandCluster
        Watched band clusters, those of the nested fit first.
    leading : int
        How many of ``clusters`` the nested fit has.
    temperature : float
        Measurement temperature (C).
    line_widths : dict, optional
        As for :func:`fit_growth`.
    sums, leading_sums : dict, optional
        :func:`fit_growth`'s ``sums`` for the whole fit and for the nested one (flags over its
        ``leading`` clusters).

    Returns
    -------
    tuple of GrowthFit
        The whole fit's and the nested fit's.
    """
    if not 0 <= leading <= len(clusters):
        raise ValueError(
            f"fit_growth_nested: leading {leading} is outside 0 to {len(clusters)} clusters"
        )
    widths = LINE_WIDTHS_CM1 if line_widths is None else line_widths
    x = spectrum.x
    bands, owners = _band_columns(x, clusters, temperature, widths)
    # Each cluster's columns start with its own line shapes (owner k): the nested fit's columns
    # end where the first column of a cluster past ``leading`` begins.
    past = np.flatnonzero(owners >= leading)
    columns = int(past[0]) if past.size else owners.size
    equations = spectrum.normal_equations(template, bands)
    layout = _layout(clusters, widths)
    whole = _growth_fit(
        x, layout, temperature, owners, spectrum.solve_equations(equations), None, sums
    )
    nested = _growth_fit(
        x,
        layout.leading(leading),
        temperature,
        owners[:columns],
        spectrum.solve_equations(equations, columns),
        None,
        leading_sums,
    )
    return whole, nested


def _growth_fit(x, layout: _Layout, temperature, owners, solved, pattern, sums) -> GrowthFit:
    """The :class:`GrowthFit` of a solved fit (``solved``: :meth:`WeightedSpectrum.solve`'s)."""
    coef, covariance, chi2, residual = solved
    s2 = max(chi2, 1.0)
    first_band = coef.size - owners.size
    band_coef = coef[first_band:]
    band_cov = covariance[first_band:, first_band:]
    n_clusters = len(layout.clusters)
    mine = owners >= 0
    areas = np.bincount(owners[mine], weights=band_coef[mine], minlength=n_clusters)
    squares = np.concatenate([[0.0], np.cumsum(residual * residual)])
    signal, error = {}, {}
    centres = layout.centres(temperature)
    selections = {**layout.classes, **(sums or {})}
    for phase_class, selection in selections.items():
        chosen = np.asarray(selection, dtype=bool)
        indicator = chosen[owners] if owners.size else np.zeros(0, dtype=bool)
        indicator = np.where(mine, indicator, False).astype(float)
        weights_of = None if pattern is None else pattern.get(phase_class)
        if weights_of is not None and indicator.any():
            indicator = _pattern_combination(owners, chosen, weights_of, band_cov, indicator)
        signal[phase_class] = float(indicator @ band_coef)
        if not indicator.any():
            error[phase_class] = math.nan
            continue
        # The misfit that matters is the one around these bands (a strong band elsewhere that
        # the template follows imperfectly must not hide a weak one here).
        local = _mean_square_near(x, squares, centres[chosen], layout.reach[chosen])
        if local is None:
            local = s2
        variance = float(indicator @ band_cov @ indicator) / s2 * max(local, 1.0)
        error[phase_class] = math.sqrt(max(variance, 0.0))
    return GrowthFit(
        areas=areas,
        signal=signal,
        signal_error=error,
        template_amplitude=float(coef[0]),
        template_error=math.sqrt(max(float(covariance[0, 0]), 0.0)),
        reduced_chi2=float(s2),
        background=coef[3:first_band] @ background_rows(x.tobytes()),
    )
