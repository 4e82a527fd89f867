"""Raman reference tables: the bands of each phase of a material, as data, and their line shapes.

A :class:`RamanReference` lists the phases of one material (for LLZO: three amorphous states,
tetragonal and cubic garnet, La2Zr2O7 pyrochlore), each with the class of the phase
(``"amorphous"``, ``"crystalline"`` or ``"decomposed"``: what the transition detector watches),
the temperature at which its bands were observed, and its bands: a position and an assignment,
which is what the literature gives and all the transition detector needs.

A band may also carry a line shape (FWHM, peak height per unit phase fraction, Lorentzian share
of a pseudo-Voigt): such a *band-model* reference renders a phase's spectrum at a measurement
temperature (anharmonic shift and broadening from two material coefficients), with an optional
extra shift and an extra broadening of the bands marked ``size_broadened`` (phonon confinement in
nanocrystals), and the derivatives of that spectrum with respect to both, for the linear
unmixing of :mod:`insitu.analysis.raman_features` (phase fractions, when a lab has such a table).
A positions-only reference refuses to render, saying why.

The table is a YAML file; :data:`LLZO` (positions only, the paper's table) is loaded from the
package's ``data/llzo_raman.yaml``, and :func:`load_reference` reads another material's file of
the same form, e.g. this band-model one::

    material: my film
    thermal_shift_per_C: -1.0e-5
    thermal_broadening_per_C: 4.0e-4
    phases:
      glass:
        class: amorphous
        reference_temperature_C: 25
        bands:
          - {position: 480, fwhm: 120, intensity: 40}
      crystal:
        class: crystalline
        reference_temperature_C: 25
        bands:
          - {position: 520, fwhm: 8, intensity: 600, size_broadened: true}

Bands marked ``broad: true`` (e.g. an amorphous hump hundreds of cm-1 wide) cannot be told apart
from a fluorescence background, so the unmixing does not fit them; they count in the phase's
integrated intensity (the crystallinity index).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from insitu.checks import as_finite

__all__ = [
    "PHASE_CLASSES",
    "ReferenceBand",
    "ReferencePhase",
    "RamanReference",
    "RenderedPhase",
    "load_reference",
    "reference_from_mapping",
    "reference_to_mapping",
    "save_reference",
    "pseudo_voigt",
    "LLZO",
]

PHASE_CLASSES = ("amorphous", "crystalline", "decomposed")
_LN2 = math.log(2.0)
# Narrowest width a fitted extra broadening may leave a band (cm-1).
MIN_FWHM_CM1 = 0.5


def pseudo_voigt(
    wavenumber: np.ndarray, position: float, fwhm: float, lorentz_fraction: float
) -> np.ndarray:
    """Unit-height pseudo-Voigt line: ``eta * Lorentzian + (1 - eta) * Gaussian`` of one FWHM."""
    u2 = ((np.asarray(wavenumber, dtype=float) - position) / (0.5 * fwhm)) ** 2
    return lorentz_fraction / (1.0 + u2) + (1.0 - lorentz_fraction) * np.exp(-_LN2 * u2)


def _pseudo_voigt_area(fwhm: np.ndarray, lorentz_fraction: np.ndarray) -> np.ndarray:
    half = 0.5 * fwhm
    return lorentz_fraction * math.pi * half + (1.0 - lorentz_fraction) * half * math.sqrt(
        math.pi / _LN2
    )


@dataclass(frozen=True)
class ReferenceBand:
    """One band of a phase.

    Attributes
    ----------
    position : float
        Raman shift (cm-1) at the phase's reference temperature.
    fwhm : float or None
        Full width at half maximum (cm-1) at the reference temperature; None when only the
        position is known (the literature's case; enough for the transition detector).
    intensity : float or None
        Peak height for a film made entirely of this phase (one arbitrary unit per reference);
        None when unknown.
    lorentz_fraction : float
        Pseudo-Voigt mixing, 1 Lorentzian to 0 Gaussian.
    broad : bool
        A band too broad to separate from a smooth background (not fitted; counted in areas).
    size_broadened : bool
        Whether the band broadens in small crystallites (its width is fitted).
    assignment : str
        Mode assignment, for reports.
    """

    position: float
    fwhm: float | None = None
    intensity: float | None = None
    lorentz_fraction: float = 0.5
    broad: bool = False
    size_broadened: bool = False
    assignment: str = ""


@dataclass(frozen=True)
class ReferencePhase:
    """A phase of the material: its class, the temperature its bands were seen at, its bands."""

    name: str
    phase_class: str
    reference_temperature_C: float
    bands: tuple[ReferenceBand, ...]
    description: str = ""

    @property
    def sharp_bands(self) -> tuple[ReferenceBand, ...]:
        """The bands the unmixing fits (all but ``broad`` ones)."""
        return tuple(band for band in self.bands if not band.broad)

    @property
    def size_broadened(self) -> bool:
        """Whether any of its fitted bands broadens with crystallite size."""
        return any(band.size_broadened for band in self.sharp_bands)


@dataclass(frozen=True)
class RenderedPhase:
    """A phase's spectrum on an axis, for a unit phase fraction, and its derivatives.

    ``d_shift`` and ``d_broadening`` are None unless derivatives were asked for; ``d_broadening``
    is None too for a phase without size-broadened bands.
    """

    shape: np.ndarray
    d_shift: np.ndarray | None
    d_broadening: np.ndarray | None


@dataclass(frozen=True, repr=False)
class RamanReference:
    """Phases and bands of one material, with its anharmonic temperature coefficients.

    Attributes
    ----------
    material : str
        Name of the material.
    phases : tuple of ReferencePhase
        In the order the material goes through them on heating.
    thermal_shift_per_C : float
        Relative band shift per C away from each phase's reference temperature.
    thermal_broadening_per_C : float
        Relative FWHM increase per C above 25 C.
    source : str
        Where the numbers come from.
    standards : tuple of str
        Phase classes whose band widths and intensities were measured on the lab's own standard
        spectra (:func:`insitu.analysis.raman_standards.reference_from_spectra`); the transition
        detector uses the widths of those bands, and only of those.
    """

    material: str
    phases: tuple[ReferencePhase, ...]
    thermal_shift_per_C: float = 0.0
    thermal_broadening_per_C: float = 0.0
    source: str = ""
    standards: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"RamanReference({self.material!r}, phases={self.phase_names})"

    @property
    def has_line_shapes(self) -> bool:
        """Whether every band has a width and an intensity (needed to render or unmix)."""
        return all(
            band.fwhm is not None and band.intensity is not None
            for phase in self.phases
            for band in phase.bands
        )

    def _require_line_shapes(self, what: str) -> None:
        if not self.has_line_shapes:
            raise ValueError(
                f"{what} needs band widths and intensities, and the {self.material} reference "
                "gives band positions only (as the literature does); the transition detector "
                "needs nothing more, and insitu.analysis.raman_standards builds a calibrated "
                "reference from measured standard spectra"
            )

    @property
    def phase_names(self) -> tuple[str, ...]:
        """Phase names in table order."""
        return tuple(phase.name for phase in self.phases)

    def phase(self, name: str) -> ReferencePhase:
        """The phase called ``name``.

        Raises
        ------
        KeyError
            If the reference has no such phase (the message lists the known ones).
        """
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(
            f"{self.material} reference has no phase {name!r}; it has {self.phase_names}"
        )

    def names_of_class(self, phase_class: str) -> tuple[str, ...]:
        """Names of the phases of one class (``amorphous``, ``crystalline``, ``decomposed``)."""
        if phase_class not in PHASE_CLASSES:
            raise ValueError(f"phase class {phase_class!r} is not one of {PHASE_CLASSES}")
        return tuple(phase.name for phase in self.phases if phase.phase_class == phase_class)

    # --- band geometry at a measurement temperature ---------------------------------------------
    def _positions(self, phase: ReferencePhase, temperature: float, bands) -> np.ndarray:
        scale = 1.0 + self.thermal_shift_per_C * (temperature - phase.reference_temperature_C)
        return np.array([band.position for band in bands]) * scale

    def _thermal_factor(self, temperature: float) -> float:
        return 1.0 + self.thermal_broadening_per_C * (temperature - 25.0)

    def _widths(
        self, phase: ReferencePhase, temperature: float, bands, broadening: float
    ) -> np.ndarray:
        at_reference = self._thermal_factor(phase.reference_temperature_C)
        bulk = np.array([band.fwhm for band in bands]) / at_reference
        extra = np.array([broadening if band.size_broadened else 0.0 for band in bands])
        return np.maximum(bulk + extra, MIN_FWHM_CM1) * self._thermal_factor(temperature)

    def measured_width(
        self, phase: ReferencePhase, band: ReferenceBand, temperature: float
    ) -> float | None:
        """FWHM (cm-1) of ``band`` at ``temperature`` (C) when it was measured on a standard
        (its phase's class is in :attr:`standards` and it has a width), else None."""
        if phase.phase_class not in self.standards or band.fwhm is None:
            return None
        at_reference = self._thermal_factor(phase.reference_temperature_C)
        return float(band.fwhm / at_reference * self._thermal_factor(float(temperature)))

    def band_positions(self, name: str, temperature: float) -> np.ndarray:
        """Expected positions (cm-1) of a phase's fitted bands at ``temperature`` (C)."""
        phase = self.phase(name)
        return self._positions(phase, float(temperature), phase.sharp_bands)

    def band_widths(self, name: str, temperature: float, broadening: float = 0.0) -> np.ndarray:
        """Expected FWHM (cm-1) of a phase's fitted bands at ``temperature`` (C)."""
        self._require_line_shapes("band_widths")
        phase = self.phase(name)
        return self._widths(phase, float(temperature), phase.sharp_bands, float(broadening))

    def render(
        self,
        name: str,
        wavenumber: np.ndarray,
        temperature: float,
        *,
        shift: float = 0.0,
        broadening: float = 0.0,
        derivatives: bool = False,
    ) -> RenderedPhase:
        """Spectrum of a unit fraction of phase ``name`` (its fitted bands) on ``wavenumber``.

        Parameters
        ----------
        name : str
            Phase name.
        wavenumber : ndarray
            Raman-shift axis (cm-1).
        temperature : float
            Measurement temperature (C): sets the anharmonic shift and broadening.
        shift : float
            Extra shift of all bands (cm-1).
        broadening : float
            Extra FWHM (cm-1, at 25 C) of the size-broadened bands.
        derivatives : bool
            Also return the derivatives with respect to ``shift`` and ``broadening``.

        Returns
        -------
        RenderedPhase
        """
        self._require_line_shapes("rendering a phase")
        phase = self.phase(name)
        bands = phase.sharp_bands
        x = np.asarray(wavenumber, dtype=float)
        if not bands:
            zero = np.zeros_like(x)
            return RenderedPhase(zero, zero if derivatives else None, None)
        positions = self._positions(phase, float(temperature), bands) + shift
        widths = self._widths(phase, float(temperature), bands, float(broadening))
        heights = np.array([band.intensity for band in bands])
        eta = np.array([band.lorentz_fraction for band in bands])[:, None]
        half = 0.5 * widths[:, None]
        u = (x[None, :] - positions[:, None]) / half
        u2 = u * u
        lorentz = 1.0 / (1.0 + u2)
        gauss = np.exp(-_LN2 * u2)
        shape = heights @ (eta * lorentz + (1.0 - eta) * gauss)
        if not derivatives:
            return RenderedPhase(shape, None, None)
        d_du = -2.0 * u * (eta * lorentz * lorentz + (1.0 - eta) * _LN2 * gauss)
        d_shift = heights @ (-d_du / half)
        d_broadening = None
        if phase.size_broadened:
            dwidth = np.array([1.0 if band.size_broadened else 0.0 for band in bands])
            dwidth = dwidth * self._thermal_factor(float(temperature))
            d_broadening = heights @ (d_du * (-u / widths[:, None]) * dwidth[:, None])
        return RenderedPhase(shape, d_shift, d_broadening)

    def phase_area(self, name: str, temperature: float, broadening: float = 0.0) -> float:
        """Integrated intensity of a unit fraction of the phase, broad bands included."""
        self._require_line_shapes("phase_area")
        phase = self.phase(name)
        temperature = float(temperature)
        widths = self._widths(phase, temperature, phase.bands, float(broadening))
        heights = np.array([band.intensity for band in phase.bands])
        eta = np.array([band.lorentz_fraction for band in phase.bands])
        return float(np.sum(heights * _pseudo_voigt_area(widths, eta)))


# --- loading -------------------------------------------------------------------------------------
_BAND_KEYS = {
    "position",
    "fwhm",
    "intensity",
    "lorentz_fraction",
    "broad",
    "size_broadened",
    "assignment",
}


def _number(value: Any, where: str, *, positive: bool = False, unit: str = "") -> float:
    # A table is rejected with ValueError whatever is wrong in it, a non-number included.
    try:
        number = as_finite(value, where, unit=unit)
    except TypeError as error:
        raise ValueError(str(error)) from None
    if positive and number <= 0:
        suffix = f" {unit}" if unit else ""
        raise ValueError(f"{where} {number}{suffix} must be > 0")
    return number


def _band_from_mapping(data: Any, where: str) -> ReferenceBand:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a mapping with position, fwhm and intensity")
    unknown = set(data) - _BAND_KEYS
    if unknown:
        raise ValueError(
            f"{where} has unknown keys {sorted(unknown)}; allowed: {sorted(_BAND_KEYS)}"
        )
    if "position" not in data:
        raise ValueError(f"{where} is missing 'position'")
    if ("fwhm" in data) != ("intensity" in data):
        raise ValueError(f"{where} gives one of fwhm and intensity: give both or neither")
    eta = _number(data.get("lorentz_fraction", 0.5), f"{where}.lorentz_fraction")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"{where}.lorentz_fraction {eta} is outside 0 to 1")
    return ReferenceBand(
        position=_number(data["position"], f"{where}.position", positive=True, unit="cm-1"),
        fwhm=(
            _number(data["fwhm"], f"{where}.fwhm", positive=True, unit="cm-1")
            if "fwhm" in data
            else None
        ),
        intensity=(
            _number(data["intensity"], f"{where}.intensity", positive=True)
            if "intensity" in data
            else None
        ),
        lorentz_fraction=eta,
        broad=bool(data.get("broad", False)),
        size_broadened=bool(data.get("size_broadened", False)),
        assignment=str(data.get("assignment", "")),
    )


def _phase_from_mapping(name: str, data: Any) -> ReferencePhase:
    where = f"phase {name!r}"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a mapping with class, reference_temperature_C, bands")
    phase_class = data.get("class")
    if phase_class not in PHASE_CLASSES:
        raise ValueError(f"{where} class {phase_class!r} is not one of {PHASE_CLASSES}")
    bands_data = data.get("bands")
    if not isinstance(bands_data, list) or not bands_data:
        raise ValueError(f"{where} needs a non-empty list of bands")
    bands = tuple(
        _band_from_mapping(band, f"{where} band {i}") for i, band in enumerate(bands_data)
    )
    if all(band.broad for band in bands):
        raise ValueError(f"{where} has only broad bands; at least one must be fitted")
    temperature = _number(
        data.get("reference_temperature_C", 25.0), f"{where}.reference_temperature_C"
    )
    return ReferencePhase(
        name=str(name),
        phase_class=str(phase_class),
        reference_temperature_C=temperature,
        bands=bands,
        description=str(data.get("description", "")),
    )


def reference_from_mapping(data: Mapping[str, Any]) -> RamanReference:
    """Build a :class:`RamanReference` from a parsed YAML/JSON mapping (see the module doc).

    Raises
    ------
    ValueError
        If a field is missing, not a number, out of range, or of an unknown class.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a Raman reference must be a mapping, got {type(data).__name__}")
    phases_data = data.get("phases")
    if not isinstance(phases_data, Mapping) or not phases_data:
        raise ValueError("a Raman reference needs a non-empty 'phases' mapping")
    phases = tuple(_phase_from_mapping(name, value) for name, value in phases_data.items())
    shift = _number(data.get("thermal_shift_per_C", 0.0), "thermal_shift_per_C")
    broadening = _number(data.get("thermal_broadening_per_C", 0.0), "thermal_broadening_per_C")
    if abs(shift) > 1e-3 or not 0.0 <= broadening <= 1e-2:
        raise ValueError(
            f"thermal coefficients shift {shift}/C and broadening {broadening}/C are implausible "
            "(allowed: |shift| <= 1e-3, 0 <= broadening <= 1e-2 per C)"
        )
    standards = data.get("standards", [])
    if not isinstance(standards, list) or any(c not in PHASE_CLASSES for c in standards):
        raise ValueError(
            f"standards {standards!r} must be a list of phase classes out of {PHASE_CLASSES}"
        )
    return RamanReference(
        material=str(data.get("material", "unnamed material")),
        phases=phases,
        thermal_shift_per_C=shift,
        thermal_broadening_per_C=broadening,
        source=str(data.get("source", "")),
        standards=tuple(standards),
    )


def load_reference(path: str | PathLike[str]) -> RamanReference:
    """Read a Raman reference from a YAML (or JSON) file.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If its content is not a valid reference.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"Raman reference {path} is not valid YAML: {error}") from error
    return reference_from_mapping(data)


def reference_to_mapping(reference: RamanReference) -> dict[str, Any]:
    """The mapping :func:`reference_from_mapping` reads back into ``reference`` (for YAML)."""

    def band_mapping(band: ReferenceBand) -> dict[str, Any]:
        data: dict[str, Any] = {"position": float(band.position)}
        if band.fwhm is not None and band.intensity is not None:
            data.update(fwhm=float(band.fwhm), intensity=float(band.intensity))
        if band.lorentz_fraction != 0.5:
            data["lorentz_fraction"] = float(band.lorentz_fraction)
        for key in ("broad", "size_broadened"):
            if getattr(band, key):
                data[key] = True
        if band.assignment:
            data["assignment"] = band.assignment
        return data

    phases = {
        phase.name: {
            "class": phase.phase_class,
            "description": phase.description,
            "reference_temperature_C": float(phase.reference_temperature_C),
            "bands": [band_mapping(band) for band in phase.bands],
        }
        for phase in reference.phases
    }
    return {
        "material": reference.material,
        "source": reference.source,
        "thermal_shift_per_C": float(reference.thermal_shift_per_C),
        "thermal_broadening_per_C": float(reference.thermal_broadening_per_C),
        "standards": list(reference.standards),
        "phases": phases,
    }


def save_reference(reference: RamanReference, path: str | PathLike[str]) -> Path:
    """Write ``reference`` as a YAML file :func:`load_reference` reads back (e.g. a reference
    calibrated on a lab's standards, measured once and used in every run). Returns the path."""
    target = Path(path)
    target.write_text(
        yaml.safe_dump(reference_to_mapping(reference), sort_keys=False), encoding="utf-8"
    )
    return target


def _load_packaged(name: str) -> RamanReference:
    text = resources.files("insitu.analysis").joinpath("data", name).read_text(encoding="utf-8")
    return reference_from_mapping(yaml.safe_load(text))


LLZO: RamanReference = _load_packaged("llzo_raman.yaml")
"""The Al-doped LLZO garnet film (``data/llzo_raman.yaml``)."""
