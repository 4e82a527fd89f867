"""In-situ Raman ramps of an LLZO-like film from a generator independent of :mod:`insitu.sim`.

The transition detector must hold on spectra this project did not make. This generator shares
nothing with the simulator but the paper's band positions (``reference/science.md``): its own
band widths and intensity ratios (each drawn per film), its own amorphous bands (3-5 of random
position and width, plus the paper's 91 cm-1 band that grows on relaxation and the broad 143
cm-1 band of the 500-600 C rearrangement, with excess noise there), its own kinetics (JMAK in
temperature, with a tetragonal-then-cubic sequence and a late Li-loss decomposition), its own
fluorescence (1-10x the Raman signal, exponential or polynomial, quenched on heating, with an
etalon ripple), laser drift, cosmic rays of 1-4 pixels, and its own spectrometer axis (1024-2048
pixels linear in wavelength over varying ranges, with a calibration error).

:func:`draw_ramp` draws a :class:`RampSpec` from a seed; :meth:`RampSpec.spectra` renders the
ramp (temperatures, one axis, counts per spectrum, the true phase fractions). The truth gives,
for each flag, the window a detector must hit (:func:`flag_windows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BAND_POSITIONS",
    "FlagVerdict",
    "band_model_mapping",
    "flags_raised",
    "judge",
    "RampSpec",
    "RenderedRamp",
    "draw_ramp",
    "flag_windows",
    "LEVELS",
    "EARLIEST",
]

# The paper's positions (cm-1) and the temperature at which it saw them (C): all this generator
# shares with the rest of the project.
BAND_POSITIONS = {
    "tetragonal": ((389.0, 656.0), 650.0),
    "cubic": ((94.0, 113.0, 240.0, 368.0, 468.0, 651.0), 750.0),
    "pyrochlore": ((275.0, 374.0, 491.0), 850.0),
}
# This generator's own nominal widths (FWHM, cm-1) and relative heights; each film scales them.
_NOMINAL_WIDTH = {
    "tetragonal": (16.0, 22.0),
    "cubic": (10.0, 12.0, 20.0, 22.0, 26.0, 24.0),
    "pyrochlore": (48.0, 55.0, 60.0),
}
_NOMINAL_HEIGHT = {
    "tetragonal": (0.35, 1.0),  # redrawn from the cubic's (same modes)
    "cubic": (0.35, 0.4, 0.45, 0.35, 0.2, 1.0),
    "pyrochlore": (1.0, 0.6, 0.45),
}

# Flag levels of the true fractions, and how early a flag may come (the phase is really there).
LEVELS = {"crystallization_onset": 0.05, "crystallized": 0.95, "decomposition": 0.10}
EARLIEST = {"crystallization_onset": 0.01, "crystallized": 0.90, "decomposition": 0.01}


def _pseudo_voigt(x: np.ndarray, centre: np.ndarray, fwhm: np.ndarray, eta: float) -> np.ndarray:
    u2 = ((x[None, :] - centre[:, None]) / (0.5 * fwhm[:, None])) ** 2
    return eta / (1.0 + u2) + (1.0 - eta) * np.exp(-math.log(2.0) * u2)


@dataclass
class RenderedRamp:
    """A rendered ramp: what a detector sees and what was really there.

    Attributes
    ----------
    temperatures : ndarray
        Temperature of each spectrum (C).
    wavenumber : ndarray
        The spectrometer's (calibrated, slightly wrong) Raman-shift axis (cm-1).
    counts : ndarray
        One spectrum per row.
    crystalline, decomposed : ndarray
        True crystalline (tetragonal + cubic) and decomposed (pyrochlore) fractions.
    """

    temperatures: np.ndarray
    wavenumber: np.ndarray
    counts: np.ndarray
    crystalline: np.ndarray
    decomposed: np.ndarray

    def truth(self, kind: str) -> np.ndarray:
        """The true fraction a flag kind is about."""
        return self.decomposed if kind == "decomposition" else self.crystalline


@dataclass
class RampSpec:
    """One film on one instrument, drawn by :func:`draw_ramp` (all fields are its variation)."""

    seed: int
    end_C: float
    step_C: float
    # instrument
    pixels: int
    axis_start_cm1: float
    axis_stop_cm1: float
    axis_offset_cm1: float
    axis_stretch: float
    read_noise: float
    signal_counts: float  # peak counts of the strongest amorphous band
    cosmic_rate: float  # per spectrum
    laser_drift: float  # +/- relative amplitude
    fluorescence_ratio: float
    fluorescence_shape: str
    fluorescence_params: tuple[float, ...]
    quench_C: float
    ripple: tuple[float, float, float]  # relative amplitude, period (cm-1), phase
    # material
    softening_per_C: float
    broadening_per_C: float
    amorphous_bands: np.ndarray  # rows: position, fwhm, height, drift over the ramp
    band_widths: dict[str, np.ndarray] = field(default_factory=dict)
    band_heights: dict[str, np.ndarray] = field(default_factory=dict)
    crystal_contrast: float = 5.0  # A1g height of a crystalline film / strongest amorphous band
    pyrochlore_contrast: float = 3.0
    relaxation_91: float = 0.5
    rearranged_band: tuple[float, float, float] = (143.0, 80.0, 1.0)  # position, fwhm, height
    rearrangement_noise: float = 1.0
    kinetics: tuple[float, float, float] = (620.0, 60.0, 3.0)  # T0, tau, n of JMAK
    cubic_after_C: float = 30.0
    decomposition: tuple[float, float] = (820.0, 12.0)  # centre, width of a logistic

    # --- truth ---------------------------------------------------------------------------------
    def fractions(self, temperatures: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """True (tetragonal, cubic, pyrochlore) fractions at each temperature."""
        t0, tau, n = self.kinetics
        u = np.maximum(temperatures - t0, 0.0) / tau
        crystallized = 1.0 - np.exp(-(u**n))
        centre, width = self.decomposition
        lost = 1.0 / (1.0 + np.exp(-(temperatures - centre) / width))
        lost = np.where(temperatures < centre - 6 * width, 0.0, lost)
        crystal = crystallized * (1.0 - lost)
        # Tetragonal nanocrystals first, turning cubic over cubic_after_C.
        cubic_share = 1.0 - np.exp(
            -np.maximum(temperatures - t0 - 0.5 * tau, 0.0) / self.cubic_after_C
        )
        return crystal * (1.0 - cubic_share), crystal * cubic_share, crystallized * lost

    # --- rendering -----------------------------------------------------------------------------
    def axis(self) -> tuple[np.ndarray, np.ndarray]:
        """(true axis, reported axis): pixels linear in wavelength at 532 nm."""
        laser = 1e7 / 532.0
        lo, hi = 1e7 / (laser - self.axis_start_cm1), 1e7 / (laser - self.axis_stop_cm1)
        wavelength = np.linspace(lo, hi, self.pixels)
        true_axis = laser - 1e7 / wavelength
        reported = self.axis_offset_cm1 + true_axis * self.axis_stretch
        return true_axis, reported

    def _crystal_lines(self, x, temperature, phase, contrast):
        positions, t_obs = BAND_POSITIONS[phase]
        centre = np.array(positions) - self.softening_per_C * (temperature - t_obs)
        width = self.band_widths[phase] * (1.0 + self.broadening_per_C * (temperature - 25.0))
        heights = self.band_heights[phase] * contrast
        return heights @ _pseudo_voigt(x, centre, width, 0.7)

    def _amorphous(self, x, temperature, end_C, hottest=None):
        # Positions and widths follow the present temperature; the matrix's relaxation and
        # rearrangement (structural, irreversible) the hottest it has been.
        hottest = temperature if hottest is None else hottest
        bands = self.amorphous_bands
        progress = np.clip((hottest - 25.0) / max(end_C - 25.0, 1.0), 0.0, 1.0)
        centre = bands[:, 0] - self.softening_per_C * (temperature - 25.0)
        width = bands[:, 1] * (1.0 + self.broadening_per_C * (temperature - 25.0))
        heights = bands[:, 2] * (1.0 + bands[:, 3] * progress)
        signal = heights @ _pseudo_voigt(x, centre, width, 0.0)
        relax = self.relaxation_91 + (1.0 - self.relaxation_91) * min(
            max((hottest - 25.0) / 375.0, 0.0), 1.0
        )
        signal += (
            0.5
            * relax
            * _pseudo_voigt(
                x,
                np.array([91.0 - self.softening_per_C * (temperature - 400.0)]),
                np.array([22.0]),
                0.5,
            )[0]
        )
        rearranged = 1.0 / (1.0 + math.exp(-(hottest - 540.0) / 15.0))
        pos, fwhm, height = self.rearranged_band
        signal += (
            height
            * rearranged
            * _pseudo_voigt(
                x,
                np.array([pos - self.softening_per_C * (temperature - 550.0)]),
                np.array([fwhm]),
                0.3,
            )[0]
        )
        return signal, rearranged

    def _fluorescence(self, x):
        span = (x - x[0]) / (x[-1] - x[0])
        if self.fluorescence_shape == "exponential":
            decay, rise = self.fluorescence_params
            shape = np.exp(-span / decay) + rise * span
        else:
            a, b, c = self.fluorescence_params
            shape = 1.0 + a * span + b * span**2 + c * span**3
        shape = np.maximum(shape, 0.05) / np.max(shape)
        amplitude, period, phase = self.ripple
        return shape * (1.0 + amplitude * np.sin(2 * np.pi * x / period + phase))

    def standard(
        self, phase_class: str, *, temperature_C: float = 25.0, accumulations: int = 10
    ) -> tuple[np.ndarray, np.ndarray]:
        """A pure-phase standard of this film, measured on this instrument: (axis, stack).

        ``"amorphous"``: the film as deposited; ``"crystalline"``: the film annealed until fully
        crystalline (tetragonal and cubic as at the end of its crystallization); ``"decomposed"``:
        the decomposition product alone. Measured at ``temperature_C`` as ``accumulations``
        spectra with the ramp's noise, fluorescence and cosmic rays (what a lab would have).
        """
        x, reported = self.axis()
        t0, tau, _ = self.kinetics
        done = t0 + 3.0 * tau
        tetragonal, cubic, _ = self.fractions(np.array([done]))
        share = float(cubic[0] / max(tetragonal[0] + cubic[0], 1e-12))
        if phase_class == "amorphous":
            raman = self._amorphous(x, 25.0, self.end_C)[0]
            raman = (
                self._amorphous(x, temperature_C, self.end_C)[0] if temperature_C > 25 else raman
            )
        elif phase_class == "crystalline":
            raman = (1.0 - share) * self._crystal_lines(
                x, temperature_C, "tetragonal", self.crystal_contrast
            ) + share * self._crystal_lines(x, temperature_C, "cubic", self.crystal_contrast)
        elif phase_class == "decomposed":
            raman = self._crystal_lines(x, temperature_C, "pyrochlore", self.pyrochlore_contrast)
        else:
            raise ValueError(f"no standard of class {phase_class!r}")
        rng = np.random.default_rng([self.seed, 104729, len(phase_class)])
        quench = math.exp(-max(temperature_C - 25.0, 0.0) / self.quench_C)
        background = self.fluorescence_ratio * quench * self._fluorescence(x)
        mean = self.signal_counts * (raman + background + 3.0 * np.exp(-(x - x[0]) / 8.0))
        rows = []
        for _ in range(accumulations):
            counts = rng.poisson(np.maximum(mean, 0.0)).astype(float)
            counts += rng.standard_normal(x.size) * self.read_noise
            for _ in range(rng.poisson(self.cosmic_rate)):
                width = int(rng.integers(1, 5))
                start = int(rng.integers(0, x.size - width))
                counts[start : start + width] += self.signal_counts * rng.uniform(0.2, 5.0)
            rows.append(counts)
        return reported, np.array(rows)

    def spectra(self, temperatures: np.ndarray | None = None) -> RenderedRamp:
        """Render the whole ramp (deterministic for a spec).

        ``temperatures`` is the stage's program, one spectrum at each (C): 25 C to ``end_C``
        every ``step_C`` by default; any heating, hold and cool-down otherwise. What the film
        became stays: the phase fractions, the fluorescence's bleaching and the amorphous
        matrix's relaxation follow the hottest temperature so far, band positions and widths
        the present one.
        """
        rng = np.random.default_rng(self.seed + 7919)
        if temperatures is None:
            temperatures = np.arange(25.0, self.end_C + 1e-9, self.step_C)
        temperatures = np.asarray(temperatures, dtype=float)
        hottest = np.maximum.accumulate(temperatures)
        x, reported = self.axis()
        tetragonal, cubic, pyrochlore = self.fractions(hottest)
        fluorescence = self._fluorescence(x)
        edge = np.exp(-(x - x[0]) / 8.0)
        drift_phase = rng.uniform(0, 2 * np.pi)
        drift_period = rng.uniform(30, 120)
        rows = []
        for k, temperature in enumerate(temperatures):
            crystal = tetragonal[k] + cubic[k]
            amorphous, rearranged = self._amorphous(x, temperature, self.end_C, hottest[k])
            amorphous_share = max(1.0 - crystal - pyrochlore[k], 0.0)
            raman = amorphous_share * amorphous
            raman += tetragonal[k] * self._crystal_lines(
                x, temperature, "tetragonal", self.crystal_contrast
            )
            raman += cubic[k] * self._crystal_lines(x, temperature, "cubic", self.crystal_contrast)
            raman += pyrochlore[k] * self._crystal_lines(
                x, temperature, "pyrochlore", self.pyrochlore_contrast
            )
            quench = math.exp(-max(hottest[k] - 25.0, 0.0) / self.quench_C)
            background = self.fluorescence_ratio * quench * fluorescence + 3.0 * edge
            laser = 1.0 + self.laser_drift * math.sin(2 * np.pi * k / drift_period + drift_phase)
            mean = self.signal_counts * laser * (raman + background)
            counts = rng.poisson(np.maximum(mean, 0.0)).astype(float)
            excess = self.rearrangement_noise * rearranged * amorphous_share
            if excess > 0:
                window = 0.5 * (np.tanh((x - 150.0) / 15.0) - np.tanh((x - 550.0) / 15.0))
                counts += rng.standard_normal(x.size) * np.sqrt(mean) * excess * window
            counts += rng.standard_normal(x.size) * self.read_noise
            for _ in range(rng.poisson(self.cosmic_rate)):
                width = int(rng.integers(1, 5))
                start = int(rng.integers(0, x.size - width))
                counts[start : start + width] += (
                    self.signal_counts * rng.uniform(0.2, 5.0) * rng.uniform(0.3, 1.0, width)
                )
            rows.append(counts)
        return RenderedRamp(temperatures, reported, np.array(rows), tetragonal + cubic, pyrochlore)


def draw_ramp(seed: int, end_C: float = 850.0, *, step_C: float | None = None) -> RampSpec:
    """Draw one film-and-instrument variation (the issue's ranges) from ``seed``.

    Parameters
    ----------
    seed : int
        Everything follows from it.
    end_C : float
        Top of the ramp (C); 600 gives ramps through the noisy rearrangement only.
    step_C : float, optional
        Temperature between spectra (C); drawn from 2, 5 and 10 C by default.
    """
    rng = np.random.default_rng(seed)
    n_amorphous = int(rng.integers(3, 6))
    amorphous = np.column_stack(
        [
            rng.uniform(100.0, 900.0, n_amorphous),
            rng.uniform(40.0, 250.0, n_amorphous),
            rng.uniform(0.2, 1.0, n_amorphous),
            rng.uniform(-0.3, 0.3, n_amorphous),
        ]
    )
    widths = {
        phase: np.array(nominal) * rng.uniform(0.6, 1.8, len(nominal))
        for phase, nominal in _NOMINAL_WIDTH.items()
    }
    heights = {
        phase: np.array(nominal) * rng.uniform(0.5, 2.0, len(nominal))
        for phase, nominal in _NOMINAL_HEIGHT.items()
    }
    # The tetragonal bands are the cubic garnet's O-Li-O T2g and O-Zr-O A1g modes, split and
    # shifted by the lower symmetry: one band each, whose height a film draws once.
    heights["tetragonal"] = heights["cubic"][[3, 5]] * rng.uniform(0.8, 1.25, 2)
    crystal_contrast = rng.uniform(2.0, 10.0)
    shape = "exponential" if rng.random() < 0.5 else "polynomial"
    params = (
        (rng.uniform(0.2, 2.0), rng.uniform(0.0, 1.0))
        if shape == "exponential"
        else tuple(rng.uniform(-1.0, 1.5, 3))
    )
    start = rng.uniform(40.0, 85.0)
    t0 = rng.uniform(600.0, 660.0)
    tau = rng.uniform(45.0, 90.0)
    order = rng.uniform(2.0, 4.0)
    centre, width = rng.uniform(800.0, 840.0), rng.uniform(6.0, 15.0)
    # Li loss begins only once the film is fully crystalline (99 % before the decomposition).
    tau = min(tau, (centre - 5.0 * width - t0) / math.log(100.0) ** (1.0 / order))
    spec = RampSpec(
        seed=seed,
        end_C=float(end_C),
        step_C=float(step_C if step_C is not None else rng.choice([2.0, 5.0, 5.0, 10.0])),
        pixels=int(rng.integers(1024, 2049)),
        axis_start_cm1=start,
        axis_stop_cm1=rng.uniform(900.0, 1800.0),
        axis_offset_cm1=rng.uniform(-2.0, 2.0),
        axis_stretch=1.0 + rng.uniform(-0.002, 0.002),
        read_noise=rng.uniform(2.0, 10.0),
        signal_counts=float(np.exp(rng.uniform(np.log(400.0), np.log(4000.0)))),
        cosmic_rate=float(rng.uniform(0.0, 3.0)),
        laser_drift=rng.uniform(0.0, 0.15),
        fluorescence_ratio=rng.uniform(1.0, 10.0),
        fluorescence_shape=shape,
        fluorescence_params=tuple(float(p) for p in params),
        quench_C=rng.uniform(250.0, 1500.0),
        ripple=(rng.uniform(0.0, 0.02), rng.uniform(40.0, 200.0), rng.uniform(0, 2 * np.pi)),
        softening_per_C=rng.uniform(0.01, 0.03),
        broadening_per_C=rng.uniform(2e-4, 8e-4),
        amorphous_bands=amorphous,
        band_widths=widths,
        band_heights=heights,
        crystal_contrast=crystal_contrast,
        # La2Zr2O7's strongest band, against the garnet A1g of the film it grew from.
        pyrochlore_contrast=float(
            crystal_contrast
            * heights["cubic"][5]
            * rng.uniform(0.3, 1.0)
            / heights["pyrochlore"].max()
        ),
        relaxation_91=rng.uniform(0.2, 0.8),
        rearranged_band=(143.0, rng.uniform(50.0, 110.0), rng.uniform(0.3, 1.5)),
        rearrangement_noise=rng.uniform(0.0, 2.5),
        kinetics=(t0, tau, order),
        cubic_after_C=rng.uniform(15.0, 50.0),
        decomposition=(centre, width),
    )
    return spec


def flag_windows(ramp: RenderedRamp) -> dict[str, tuple[int, int]]:
    """For each kind whose level the truth crosses: (earliest, latest) acceptable flag index.

    Earliest: the first spectrum where the phase is really there (:data:`EARLIEST`); latest:
    two spectra after the first whose true fraction exceeds the level (:data:`LEVELS`).
    """
    windows = {}
    for kind, level in LEVELS.items():
        truth = ramp.truth(kind)
        above = np.flatnonzero(truth > level)
        if above.size == 0:
            continue
        earliest = int(np.flatnonzero(truth >= EARLIEST[kind])[0])
        windows[kind] = (earliest, int(above[0]) + 2)
    return windows


@dataclass(frozen=True)
class FlagVerdict:
    """How one flag kind fared on one ramp.

    Attributes
    ----------
    kind : str
        Flag kind.
    verdict : str
        ``ok`` (inside the window), ``early`` (before the phase is really there), ``late``
        (more than 2 spectra after the level), ``missed`` (level crossed, no flag), ``false``
        (flagged before the phase is really there on a ramp that never crosses the level: a
        flag for a phase that is not there), ``quiet`` (neither). A flag on a ramp that never
        crosses the level but raised once the phase is really there (a film that decomposes by
        3 % before the ramp ends) is ``ok``: early flags are welcome when the signal allows.
    index : int or None
        Spectrum that raised the flag.
    window : tuple of int or None
        (earliest, latest) acceptable index; (earliest, None) on a ramp that never crosses the
        level but where the phase is really there.
    latency : int or None
        Flag index minus the first spectrum above the level.
    """

    kind: str
    verdict: str
    index: int | None
    window: tuple[int, int | None] | None
    latency: int | None


def judge(ramp: RenderedRamp, flags: dict[str, int]) -> dict[str, FlagVerdict]:
    """Verdict per kind for the flags a detector raised on a ramp (kind -> spectrum index)."""
    windows = flag_windows(ramp)
    verdicts = {}
    for kind in LEVELS:
        window, index = windows.get(kind), flags.get(kind)
        if window is None:
            there = np.flatnonzero(ramp.truth(kind) >= EARLIEST[kind])
            window = (int(there[0]), None) if there.size else None
            if index is None:
                verdict = "quiet"
            else:
                verdict = "ok" if there.size and index >= there[0] else "false"
            verdicts[kind] = FlagVerdict(kind, verdict, index, window, None)
            continue
        level_index = window[1] - 2
        if index is None:
            verdicts[kind] = FlagVerdict(kind, "missed", None, window, None)
            continue
        verdict = "early" if index < window[0] else "late" if index > window[1] else "ok"
        verdicts[kind] = FlagVerdict(kind, verdict, index, window, index - level_index)
    return verdicts


def band_model_mapping() -> dict:
    """A line-shape reference (this generator's nominal widths and heights, as a YAML-like
    mapping for ``reference_from_mapping``): what the detector before the positions-only one
    needed, kept to time that path in benchmarks and to render synthetic spectra."""
    phases = {
        "amorphous": {
            "class": "amorphous",
            "reference_temperature_C": 25,
            "bands": [
                {"position": 91.0, "fwhm": 22.0, "intensity": 50.0},
                {"position": 480.0, "fwhm": 500.0, "intensity": 45.0, "broad": True},
            ],
        },
        "amorphous_rearranged": {
            "class": "amorphous",
            "reference_temperature_C": 550,
            "bands": [{"position": 143.0, "fwhm": 80.0, "intensity": 90.0}],
        },
    }
    classes = {"tetragonal": "crystalline", "cubic": "crystalline", "pyrochlore": "decomposed"}
    for phase, (positions, temperature) in BAND_POSITIONS.items():
        phases[phase] = {
            "class": classes[phase],
            "reference_temperature_C": temperature,
            "bands": [
                {"position": p, "fwhm": w, "intensity": 600.0 * h, "size_broadened": True}
                for p, w, h in zip(
                    positions, _NOMINAL_WIDTH[phase], _NOMINAL_HEIGHT[phase], strict=True
                )
            ],
        }
    return {
        "material": "LLZO-like film (insitu.testing generator's nominal bands)",
        "thermal_shift_per_C": -2.0e-5,
        "thermal_broadening_per_C": 5.0e-4,
        "phases": phases,
    }


def flags_raised(ramp: RenderedRamp, detector) -> dict[str, int]:
    """Feed a ramp to a detector spectrum by spectrum; kind -> index of the flags it raised."""
    flags = {}
    for temperature, counts in zip(ramp.temperatures, ramp.counts, strict=True):
        for flag in detector.update(ramp.wavenumber, counts, temperature):
            flags[flag.kind] = flag.index
    return flags
