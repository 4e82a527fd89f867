"""Calibrated Raman references: band widths and heights measured on a lab's own standard spectra.

The transition detector needs only the literature's band positions. A lab that has measured
pure-phase standards on its own spectrometer (an as-deposited film, a film annealed until fully
crystalline, the decomposition product) can tell it more: how wide each band is on that
instrument and film. :func:`reference_from_spectra` measures, in each standard, every band the
literature lists for that class of phase, and returns the reference with the widths and heights
of the bands it found (``standards`` names the classes measured). Given such a reference,
:class:`~insitu.analysis.transitions.RamanTransitionDetector` weights the crystalline bands of its
onset statistic by the areas the crystalline standard showed (a generalized least-squares
amplitude of that pattern, instead of the plain sum of areas): on the robustness ramps every
onset comes in its window and earlier; ``benchmarks/bench_raman.py`` prints both tables. (Fitting
each band with one line of its measured width instead of the detector's generic pair was tried:
worse, 16 ramps out of window against 13, and a false onset; the widths are kept in the
reference, for rendering and unmixing.)

What is measured, per standard (despiked; several accumulations are averaged):

* the bands of the class's phases, merged where closer than
  :data:`~insitu.analysis.band_growth.CLUSTER_CM1`, are fitted together with a smooth
  background (the detector's B-splines and laser-edge tails), each as one unit-area
  pseudo-Voigt line. The standard's temperature and the instrument's axis being unknown, one
  offset (and one width) for all lines is found first (every band softens alike); then each
  line's width and its own offset within 6 cm-1 of that are chosen from a grid, band after
  band, twice over;
* a band whose area is below ``min_z`` standard errors, or whose line ran to the end of its
  grid (onto a neighbour, or a broad background feature), is not in the standard: it keeps the
  literature's position only.

Positions stay the literature's: one standard at one temperature cannot separate the
instrument's axis error from the band's thermal softening, and the detector follows positions
a few cm-1 off anyway. Widths are stored at each phase's reference temperature, converted with
:data:`ASSUMED_BROADENING_PER_C` (the relative anharmonic broadening), as a band-model reference
keeps them; the detector compares areas (height x width) at one temperature, where the
assumption cancels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from insitu.analysis.band_growth import (
    CLUSTER_CM1,
    SOFTENING_PER_C,
    background_rows,
    unit_area_lines,
    weighted_least_squares,
)
from insitu.analysis.raman_preprocess import check_spectrum, local_noise, remove_spikes
from insitu.analysis.raman_reference import (
    LLZO,
    PHASE_CLASSES,
    RamanReference,
    ReferenceBand,
)

__all__ = [
    "ASSUMED_BROADENING_PER_C",
    "MeasuredBand",
    "measure_bands",
    "reference_from_spectra",
]

# Relative FWHM increase per C (anharmonic broadening): oxides broaden by roughly half again
# between room temperature and 1000 C. Only used to carry a standard's widths to the ramp's
# temperature; a standard measured at the ramp's temperature needs none of it.
ASSUMED_BROADENING_PER_C = 5.0e-4
MIN_Z = 5.0
WIDTH_GRID_CM1 = tuple(float(w) for w in np.geomspace(4.0, 120.0, 25))
OFFSET_GRID_CM1 = tuple(float(o) for o in np.arange(-20.0, 20.01, 1.0))
LOCAL_OFFSET_CM1 = 6.0
COMMON_WIDTHS_CM1 = (8.0, 16.0, 32.0, 64.0)
# Pseudo-Voigt mixing of the fitted lines (as the detector's columns: half Lorentzian).
_AREA_PER_HEIGHT = 0.5 * (0.5 * math.pi) + 0.5 * (0.5 * math.sqrt(math.pi / math.log(2.0)))


@dataclass(frozen=True)
class MeasuredBand:
    """One band (or cluster of close bands) as a standard shows it.

    Attributes
    ----------
    literature_position : float
        Mean literature position of the band(s) at the standard's temperature (cm-1).
    position : float
        Where the fit put it (cm-1, on the standard's axis).
    fwhm : float
        Width found (cm-1).
    area, area_error : float
        Fitted area (counts x cm-1) and its standard error.
    bands : tuple of (str, int)
        (phase name, index of the band in the phase) of each literature band in it.
    common_offset : float
        The offset (cm-1) found for all the class's bands together, around which each band's
        own was searched.
    """

    literature_position: float
    position: float
    fwhm: float
    area: float
    area_error: float
    bands: tuple[tuple[str, int], ...]
    common_offset: float = 0.0

    @property
    def z(self) -> float:
        """Area in units of its standard error."""
        return self.area / self.area_error if self.area_error > 0 else math.nan

    @property
    def found(self) -> bool:
        """Neither width nor position at the end of its grid (a line the fit could not place,
        e.g. taking up a broad background feature instead of a band)."""
        offset = self.position - self.literature_position
        return (
            WIDTH_GRID_CM1[0] < self.fwhm < WIDTH_GRID_CM1[-1]
            and OFFSET_GRID_CM1[0] < offset < OFFSET_GRID_CM1[-1]
            and abs(offset - self.common_offset) < LOCAL_OFFSET_CM1
        )

    @property
    def height(self) -> float:
        """Peak height (counts) of the fitted line."""
        return self.area / (self.fwhm * _AREA_PER_HEIGHT)


def _mean_spectrum(
    wavenumber: ArrayLike, spectra: ArrayLike, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Increasing axis, despiked mean of one or several accumulations, its noise per pixel."""
    rows = np.asarray(spectra, dtype=float)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError(f"the {what} standard must be one spectrum or a 2-D stack of them")
    clean = []
    for row in rows:
        x, counts = check_spectrum(wavenumber, row, name=f"{what} standard")
        clean.append(remove_spikes(counts).counts)
    mean = np.mean(clean, axis=0)
    noise = local_noise(mean)
    return x, mean, np.maximum(noise, 1e-12 + float(np.max(np.abs(mean))) * 1e-9)


def _groups(
    reference: RamanReference, phase_class: str, temperature: float
) -> list[tuple[float, tuple[tuple[str, int], ...]]]:
    """The class's sharp bands, merged where closer than CLUSTER_CM1, at ``temperature``."""
    bands = sorted(
        (
            band.position - SOFTENING_PER_C * (temperature - phase.reference_temperature_C),
            phase.name,
            k,
        )
        for phase in reference.phases
        if phase.phase_class == phase_class
        for k, band in enumerate(phase.bands)
        if not band.broad
    )
    groups: list[list[tuple[float, str, int]]] = []
    for band in bands:
        if groups and band[0] - groups[-1][-1][0] < CLUSTER_CM1:
            groups[-1].append(band)
        else:
            groups.append([band])
    return [
        (float(np.mean([b[0] for b in group])), tuple((b[1], b[2]) for b in group))
        for group in groups
    ]


def _best_candidate(candidates, fixed, y, weights) -> int | None:
    """Index of the candidate line (row) that, added to the ``fixed`` rows, leaves the smallest
    weighted residual with a positive area; None if none has one. All candidates at once: the
    fixed part is projected out once (QR), each candidate costs one projection."""
    q, _ = np.linalg.qr((fixed * weights).T)
    b = y * weights
    b_res = b - q @ (q.T @ b)
    a = candidates * weights
    a_res = a - (a @ q) @ q.T
    norm = np.einsum("ij,ij->i", a_res, a_res)
    projection = a_res @ b_res
    gain = np.where((norm > 0) & (projection > 0), projection**2 / np.maximum(norm, 1e-300), -1)
    best = int(np.argmax(gain))
    return best if gain[best] > 0 else None


def _lines(x, centres, widths) -> np.ndarray:
    """One unit-area line per (centre, width), as rows."""
    return np.vstack(
        [unit_area_lines(x, np.array([c]), w)[0] for c, w in zip(centres, widths, strict=True)]
    )


def _fit(x, y, weights, background, centres, widths):
    design = np.vstack([_lines(x, centres, widths), background])
    residuals: list[np.ndarray] = []
    coef, covariance, _ = weighted_least_squares(design, y, weights, residuals)
    return coef, covariance, float(residuals[0] @ residuals[0])


def measure_bands(
    wavenumber: ArrayLike,
    counts: ArrayLike,
    reference: RamanReference,
    phase_class: str,
    temperature_C: float = 25.0,
) -> list[MeasuredBand]:
    """Fit the bands of one class's phases in a standard spectrum (see the module doc).

    Parameters
    ----------
    wavenumber : array_like
        Increasing Raman-shift axis (cm-1).
    counts : array_like
        One spectrum, or a 2-D stack of accumulations (averaged after despiking).
    reference : RamanReference
        Where the literature puts the bands.
    phase_class : str
        ``"amorphous"``, ``"crystalline"`` or ``"decomposed"``.
    temperature_C : float
        Temperature the standard was measured at (C).

    Returns
    -------
    list of MeasuredBand
        One per band cluster inside the axis, significant or not.
    """
    if phase_class not in PHASE_CLASSES:
        raise ValueError(f"phase class {phase_class!r} is not one of {PHASE_CLASSES}")
    x, y, noise = _mean_spectrum(wavenumber, counts, phase_class)
    lo, hi = x[0] + 10.0, x[-1] - 10.0
    groups = [g for g in _groups(reference, phase_class, temperature_C) if lo <= g[0] <= hi]
    if not groups:
        return []
    weights = 1.0 / noise
    background = background_rows(x.tobytes())
    literature = np.array([g[0] for g in groups])
    widths = np.full(len(groups), 15.0)
    # First one offset for all (the standard's temperature and the axis move every band alike),
    # so that no line starts on its neighbour; then each band within LOCAL_OFFSET_CM1 of it.
    common, width = min(
        ((o, w) for o in OFFSET_GRID_CM1 for w in COMMON_WIDTHS_CM1),
        key=lambda ow: _fit(
            x, y, weights, background, literature + ow[0], np.full_like(widths, ow[1])
        )[2],
    )
    literature = literature + common
    widths[:] = width
    centres = literature.copy()
    local = [o for o in OFFSET_GRID_CM1 if abs(o) <= LOCAL_OFFSET_CM1]
    grid_width, grid_offset = np.meshgrid(WIDTH_GRID_CM1, local, indexing="ij")
    grid_width, grid_offset = grid_width.ravel(), grid_offset.ravel()
    for _ in range(2):
        for k in range(len(groups)):
            others = [j for j in range(len(groups)) if j != k]
            fixed = (
                np.vstack([_lines(x, centres[others], widths[others]), background])
                if others
                else background
            )
            k_centres = literature[k] + grid_offset
            candidates = np.vstack(
                [unit_area_lines(x, k_centres[grid_width == w], w)[0] for w in WIDTH_GRID_CM1]
            )
            best = _best_candidate(candidates, fixed, y, weights)
            if best is not None:
                centres[k], widths[k] = k_centres[best], grid_width[best]
    coef, covariance, _ = _fit(x, y, weights, background, centres, widths)
    return [
        MeasuredBand(
            literature_position=literature[k] - common,
            position=centres[k],
            fwhm=widths[k],
            area=float(coef[k]),
            area_error=math.sqrt(max(float(covariance[k, k]), 0.0)),
            bands=groups[k][1],
            common_offset=float(common),
        )
        for k in range(len(groups))
    ]


def reference_from_spectra(
    wavenumber: ArrayLike,
    standards: Mapping[str, ArrayLike],
    *,
    temperature_C: float | Mapping[str, float] = 25.0,
    base: RamanReference = LLZO,
    min_z: float = MIN_Z,
    broadening_per_C: float = ASSUMED_BROADENING_PER_C,
) -> RamanReference:
    """A calibrated reference: ``base`` with the widths and heights its standards show.

    Parameters
    ----------
    wavenumber : array_like
        The standards' Raman-shift axis (cm-1), increasing.
    standards : mapping
        Phase class -> its standard spectrum (one spectrum, or a 2-D stack of accumulations):
        e.g. ``{"crystalline": annealed_film, "decomposed": pyrochlore}``. Any subset of
        ``"amorphous"``, ``"crystalline"`` and ``"decomposed"``; an amorphous standard that
        shows sharp bands at most crystalline positions is refused (it is not what the label
        says).
    temperature_C : float or mapping
        Temperature each standard was measured at (C); one number for all.
    base : RamanReference
        The literature's reference (positions and assignments).
    min_z : float
        A band counts as measured when its area is this many standard errors.
    broadening_per_C : float
        Relative anharmonic broadening per C, to carry the widths to other temperatures.

    Returns
    -------
    RamanReference
        ``base`` with ``fwhm`` and ``intensity`` on every band its standard showed, and
        ``standards`` naming the classes measured.

    Raises
    ------
    ValueError
        On an unknown class, an empty mapping, a standard that shows none of its class's bands,
        or an amorphous standard that shows crystalline bands.
    """
    if not isinstance(standards, Mapping) or not standards:
        raise ValueError(
            f"standards must map phase classes {PHASE_CLASSES} to spectra; got {standards!r}"
        )
    unknown = sorted(set(standards) - set(PHASE_CLASSES))
    if unknown:
        raise ValueError(f"standards for {unknown}: phase classes are {PHASE_CLASSES}")
    if not (math.isfinite(min_z) and min_z > 0):
        raise ValueError(f"reference_from_spectra.min_z {min_z} must be > 0")
    if not (math.isfinite(broadening_per_C) and 0.0 <= broadening_per_C <= 1e-2):
        raise ValueError(
            f"reference_from_spectra.broadening_per_C {broadening_per_C} is outside 0 to 0.01"
        )

    def temperature_of(phase_class: str) -> float:
        value = (
            temperature_C.get(phase_class, 25.0)
            if isinstance(temperature_C, Mapping)
            else temperature_C
        )
        value = float(value)
        if not (math.isfinite(value) and -273.15 < value < 2000.0):
            raise ValueError(f"{phase_class} standard temperature {value} C is not plausible")
        return value

    calibrated = dataclasses.replace(base, thermal_broadening_per_C=float(broadening_per_C))

    def factor(temperature: float) -> float:  # as RamanReference's widths scale
        return 1.0 + broadening_per_C * (temperature - 25.0)

    found: dict[tuple[str, int], tuple[float, float]] = {}
    measured_classes = []
    for phase_class, spectra in standards.items():
        temperature = temperature_of(phase_class)
        bands = measure_bands(wavenumber, spectra, base, phase_class, temperature)
        seen = [band for band in bands if band.z >= min_z and band.found]
        if phase_class == "amorphous":
            crystalline = measure_bands(wavenumber, spectra, base, "crystalline", temperature)
            # One amorphous band may sit near a crystalline position; a crystalline film shows
            # sharp bands at most of them.
            strong = [b for b in crystalline if b.z >= 2 * min_z and b.found and b.fwhm < 40.0]
            if crystalline and len(strong) >= max(2, math.ceil(len(crystalline) / 2)):
                where = ", ".join(f"{b.position:.0f}" for b in strong)
                raise ValueError(
                    f"the amorphous standard shows crystalline bands at {where} cm-1 "
                    f"(z >= {2 * min_z:g}, FWHM < 40 cm-1): it is not amorphous"
                )
        if not seen and phase_class != "amorphous":
            raise ValueError(
                f"the {phase_class} standard shows none of its bands at z >= {min_z:g} "
                f"(literature positions {[round(b.literature_position) for b in bands]} cm-1)"
            )
        if phase_class != "amorphous" or seen:
            measured_classes.append(phase_class)
        for band in seen:
            for key in band.bands:
                found[key] = (band.fwhm / factor(temperature), band.height)
    phases = []
    for phase in base.phases:
        bands = []
        for k, band in enumerate(phase.bands):
            if (phase.name, k) in found:
                bulk, height = found[(phase.name, k)]
                band = ReferenceBand(
                    **{
                        **dataclasses.asdict(band),
                        "fwhm": bulk * factor(phase.reference_temperature_C),
                        "intensity": height,
                    }
                )
            bands.append(band)
        phases.append(dataclasses.replace(phase, bands=tuple(bands)))
    return dataclasses.replace(
        calibrated,
        phases=tuple(phases),
        standards=tuple(c for c in PHASE_CLASSES if c in measured_classes),
        source=f"{base.source}; widths and heights from standards ({', '.join(measured_classes)})",
    )
