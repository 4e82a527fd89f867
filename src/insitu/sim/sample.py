"""The virtual sample: an Al-doped LLZO garnet film whose phases follow its thermal history.

:class:`GarnetFilm` is the one sample of a simulated beamline. The stage emulator tells it the
true temperature through ``temperature_at(t)``; the film integrates its kinetics lazily, from the
last time it was asked up to the requested time, on a fine time grid (vectorized numpy, so a 3 h
ramp takes about a millisecond). The Raman and impedance emulators measure the same film.

Phases (Zhu et al., Matter 7 (2024), ``reference/science.md``), in the order they appear:

* ``amorphous``: as deposited; the network relaxes up to ~400 C (the 91 cm-1 band grows).
* ``rearranged``: amorphous matrix after local rearrangement, 500-600 C (broad 143 cm-1 band).
* ``tetragonal``: Li-garnet nanocrystals from ~650 C; they take Li, so the matrix loses Li.
* ``cubic``: cubic garnet, complete by 750 C at 5 C/min.
* ``pyrochlore``: La2Zr2O7 after Li loss, dominant at 850 C.

The kinetics (Arrhenius rates, JMAK in the additivity form, all parameters and how they were
calibrated) are in :mod:`insitu.sim.sample_kinetics`; the electrical law and its calibration to
the paper's Table S5 in :mod:`insitu.sim.sample_conductivity`.

Phase bookkeeping from the transformed fractions (s relaxation, r rearrangement, x
crystallization, c cubic share of the crystals, p Li loss)::

    amorphous  = (1 - x)(1 - p)(1 - r)        tetragonal = x (1 - c)(1 - p)
    rearranged = (1 - x)(1 - p) r             cubic      = x c (1 - p)
    pyrochlore = p

Li per formula unit (La3 basis): the film holds 6.25 (Li6.25Al0.25La3Zr2O12) times (1 - p);
tetragonal crystals hold 7 and cubic 6.25, so the matrix is left with
``6.25 - 0.75 * tetragonal / (amorphous + rearranged)`` (the "Li-depleted matrix").
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from insitu import clock
from insitu.checks import as_positive, in_range
from insitu.sim import sample_kinetics as kinetics
from insitu.sim.sample_conductivity import ConductivityLaw, film_law
from insitu.sim.thermal_profile import ROOM_TEMPERATURE_C, ThermalProfile

__all__ = [
    "FilmState",
    "FilmGeometry",
    "FILM_GEOMETRY",
    "GarnetFilm",
    "post_annealed_film",
    "LI_NOMINAL",
    "LI_TETRAGONAL",
]

LI_NOMINAL = 6.25  # Li6.25Al0.25La3Zr2O12
LI_TETRAGONAL = 7.0  # Li7La3Zr2O12
PHASES = ("amorphous", "rearranged", "tetragonal", "cubic", "pyrochlore")
# Past queries replay from the nearest stored checkpoint; keep one at most this often.
_CHECKPOINT_SPACING_S = 10.0
# Most temperature samples taken in one evaluation (bounds time and memory).
_MAX_POINTS = 200_000


@dataclass(frozen=True)
class FilmGeometry:
    """In-plane electrode geometry of the EIS measurement (science.md).

    sigma = gap / (R * electrode_length * thickness).
    """

    gap_mm: float = 0.25
    electrode_length_mm: float = 3.0
    thickness_um: float = 2.0

    @property
    def cell_constant_per_cm(self) -> float:
        """``gap / (electrode_length * thickness)`` in 1/cm: R = cell_constant / sigma."""
        gap_cm = self.gap_mm / 10.0
        area_cm2 = (self.electrode_length_mm / 10.0) * (self.thickness_um * 1e-4)
        return gap_cm / area_cm2

    def resistance_ohm(self, conductivity_S_per_cm: ArrayLike) -> np.ndarray | float:
        """Film resistance (ohm) for a conductivity (S/cm)."""
        r = self.cell_constant_per_cm / np.asarray(conductivity_S_per_cm, dtype=float)
        return float(r) if np.ndim(r) == 0 else r

    def conductivity_S_per_cm(self, resistance_ohm: ArrayLike) -> np.ndarray | float:
        """Conductivity (S/cm) from a film resistance (ohm)."""
        s = self.cell_constant_per_cm / np.asarray(resistance_ohm, dtype=float)
        return float(s) if np.ndim(s) == 0 else s


FILM_GEOMETRY = FilmGeometry()


@dataclass(frozen=True)
class FilmState:
    """The film at one instant.

    Attributes
    ----------
    time : float
        Experiment time (s).
    temperature : float
        True film temperature (C).
    amorphous, rearranged, tetragonal, cubic, pyrochlore : float
        Volume fractions of the phases; they sum to 1.
    crystallite_size_nm : float
        Mean size of the nanocrystals in the film (pyrochlore nuclei in the amorphous stage,
        garnet crystallites once they form).
    li_content : float
        Li per formula unit (La3 basis) of the whole film: 6.25 as deposited, falling with Li loss.
    matrix_li_content : float
        Li per formula unit left in the amorphous matrix (0 when no matrix is left).
    amorphous_order : float
        Relaxation of the amorphous network, 0 as deposited to 1 (drives the 91 cm-1 band).
    """

    time: float
    temperature: float
    amorphous: float
    rearranged: float
    tetragonal: float
    cubic: float
    pyrochlore: float
    crystallite_size_nm: float
    li_content: float
    matrix_li_content: float
    amorphous_order: float

    @property
    def crystalline_fraction(self) -> float:
        """Garnet crystals (tetragonal + cubic) as a fraction of the film."""
        return self.tetragonal + self.cubic

    @property
    def amorphous_fraction(self) -> float:
        """Amorphous matrix (as deposited + rearranged) as a fraction of the film."""
        return self.amorphous + self.rearranged

    @property
    def dominant_phase(self) -> str:
        """Name of the largest phase fraction."""
        return max(PHASES, key=lambda name: getattr(self, name))

    def fractions(self) -> dict[str, float]:
        """Phase fractions by name."""
        return {name: getattr(self, name) for name in PHASES}

    def as_dict(self) -> dict[str, float]:
        """All fields plus ``crystalline_fraction`` (handy for metadata and logs)."""
        return {**asdict(self), "crystalline_fraction": self.crystalline_fraction}

    # --- shares used by the conductivity law ---------------------------------------------
    @property
    def rearranged_share(self) -> float:
        """Share of the amorphous matrix that has rearranged."""
        matrix = self.amorphous_fraction
        return self.rearranged / matrix if matrix > 1e-12 else 1.0

    @property
    def cubic_share(self) -> float:
        """Cubic share of the garnet crystals."""
        crystals = self.crystalline_fraction
        return self.cubic / crystals if crystals > 1e-12 else 0.0

    @property
    def garnet_crystalline_fraction(self) -> float:
        """Crystalline fraction of the part of the film that is not pyrochlore."""
        rest = 1.0 - self.pyrochlore
        return self.crystalline_fraction / rest if rest > 1e-12 else 1.0


def _state_from_extents(time: float, temperature: float, extents: np.ndarray) -> FilmState:
    s, r, x, c, p = (float(v) for v in kinetics.transformed_fractions(extents))
    amorphous = (1 - x) * (1 - p) * (1 - r)
    rearranged = (1 - x) * (1 - p) * r
    tetragonal = x * (1 - c) * (1 - p)
    cubic = x * c * (1 - p)
    matrix = amorphous + rearranged
    matrix_li = (
        max(LI_NOMINAL - (LI_TETRAGONAL - LI_NOMINAL) * tetragonal / matrix, 0.0)
        if matrix > 1e-12
        else 0.0
    )
    return FilmState(
        time=float(time),
        temperature=float(temperature),
        amorphous=amorphous,
        rearranged=rearranged,
        tetragonal=tetragonal,
        cubic=cubic,
        pyrochlore=p,
        crystallite_size_nm=kinetics.crystallite_size_nm(extents),
        li_content=LI_NOMINAL * (1 - p),
        matrix_li_content=matrix_li,
        amorphous_order=s,
    )


class GarnetFilm:
    """A Li6.25Al0.25La3Zr2O12 thin film whose structure follows its thermal history.

    Parameters
    ----------
    temperature_at : callable, optional
        ``temperature_at(t) -> C``: the true stage temperature at experiment time ``t`` (s).
        Vectorized callables (accepting a numpy array) are used as such; scalar-only ones are
        called point by point. Defaults to room temperature (25 C) at all times.
    start_time : float, optional
        Experiment time at which the film is as deposited; defaults to ``clock.now()``.
    seed : int, optional
        Seeds the film-to-film variation of the kinetics when ``variability`` > 0.
    variability : float
        Log-normal spread of each process's rate between films (0 = the nominal film).
    max_step_s : float
        Largest integration step (experiment seconds) when sampling ``temperature_at``; one
        evaluation takes at most 200 000 samples, so a span of more than ~2 days since the last
        query is integrated on a coarser grid.
    crystallization_shift_C : float
        Film-to-film variation (issue 18): every transformation of this film happens this many
        C higher (the kinetics see the stage temperature minus the shift); 0 is the paper's film.
    conductivity_scale : float
        Multiplies the film's conductivity at every temperature (1 is the paper's film).

    Examples
    --------
    >>> from insitu.sim.thermal_profile import ThermalProfile
    >>> ramp = ThermalProfile.ramp(25.0, 850.0, 5.0)
    >>> film = GarnetFilm(ramp, start_time=0.0)
    >>> film.state(ramp.time_at_temperature(750.0)).cubic > 0.95
    True
    """

    def __init__(
        self,
        temperature_at: Callable[[float], float] | None = None,
        *,
        start_time: float | None = None,
        seed: int | None = None,
        variability: float = 0.0,
        max_step_s: float = 1.0,
        crystallization_shift_C: float = 0.0,
        conductivity_scale: float = 1.0,
    ) -> None:
        max_step_s = as_positive(max_step_s, "GarnetFilm.max_step_s", unit="s")
        self.crystallization_shift_C = in_range(
            crystallization_shift_C, -200.0, 200.0, "GarnetFilm.crystallization_shift_C", unit="C"
        )
        self.conductivity_scale = in_range(
            conductivity_scale, 1e-3, 1e3, "GarnetFilm.conductivity_scale"
        )
        variability = in_range(variability, 0.0, 1.0, "GarnetFilm.variability")
        if temperature_at is not None and not callable(temperature_at):
            raise TypeError(f"GarnetFilm.temperature_at {temperature_at!r} is not callable")
        self._temperature_at = temperature_at or ThermalProfile.constant(ROOM_TEMPERATURE_C)
        self._max_step_s = float(max_step_s)
        rng = np.random.default_rng(seed)
        self._rate_scale = (
            np.exp(rng.normal(0.0, variability, size=len(kinetics.PROCESSES)))
            if variability > 0
            else None
        )
        self._vectorized: bool | None = None
        self._lock = threading.RLock()
        self.film_geometry = FILM_GEOMETRY
        self.reset(start_time)

    # --- history --------------------------------------------------------------------------
    def reset(self, start_time: float | None = None) -> None:
        """Return the film to as deposited at ``start_time`` (``clock.now()`` by default)."""
        t0 = clock.now() if start_time is None else float(start_time)
        if not math.isfinite(t0):
            raise ValueError(f"GarnetFilm.start_time {start_time} is not a finite time")
        with self._lock:
            self.start_time = t0
            self._last_time = t0
            self._extents = np.zeros(len(kinetics.PROCESSES))
            self._checkpoint_times = [t0]
            self._checkpoint_extents = [self._extents.copy()]

    def temperature_at(self, t: float) -> float:
        """True film temperature (C) at experiment time ``t``."""
        return float(self._temperatures(np.array([float(t)]))[0])

    def _temperatures(self, times: np.ndarray) -> np.ndarray:
        if self._vectorized is not False:
            try:
                values = np.asarray(self._temperature_at(times), dtype=float)
                if values.ndim == 0:  # a callable that ignores t: the same at every time
                    values = np.full(times.shape, float(values))
                if values.shape == times.shape:
                    self._vectorized = True
                    return values
            except (TypeError, ValueError):
                pass
            self._vectorized = False
        return np.array([float(self._temperature_at(float(t))) for t in times])

    def _advance(self, extents: np.ndarray, t_from: float, t_to: float) -> np.ndarray:
        """Extents at ``t_to`` given ``extents`` at ``t_from`` (does not touch the cache)."""
        extents = extents.copy()
        span = t_to - t_from
        if span <= 0:
            return extents
        # Steps of max_step_s, but never more than _MAX_POINTS per evaluation: a film left
        # alone for months is integrated on a coarser grid (exact for a constant temperature).
        n_steps = min(max(1, math.ceil(span / self._max_step_s)), _MAX_POINTS)
        grid = np.linspace(t_from, t_to, n_steps + 1)
        kinetic_temperatures = self._temperatures(grid) - self.crystallization_shift_C
        extents += kinetics.integrate_extents(grid, kinetic_temperatures, self._rate_scale)
        return extents

    def _extents_at(self, t: float) -> np.ndarray:
        with self._lock:
            if t >= self._last_time:
                self._extents = self._advance(self._extents, self._last_time, t)
                self._last_time = t
                if t - self._checkpoint_times[-1] >= _CHECKPOINT_SPACING_S:
                    self._checkpoint_times.append(t)
                    self._checkpoint_extents.append(self._extents.copy())
                return self._extents.copy()
            index = bisect.bisect_right(self._checkpoint_times, t) - 1
            return self._advance(self._checkpoint_extents[index], self._checkpoint_times[index], t)

    # --- public state ---------------------------------------------------------------------
    def state(self, t: float | None = None) -> FilmState:
        """The film at experiment time ``t`` (``clock.now()`` by default).

        Parameters
        ----------
        t : float, optional
            Experiment time (s), not before ``start_time``. Earlier times than the last query
            are allowed (replayed from a stored checkpoint).

        Raises
        ------
        ValueError
            If ``t`` is not finite or is before the film was deposited.
        """
        t = clock.now() if t is None else float(t)
        if not math.isfinite(t):
            raise ValueError(f"GarnetFilm.state time {t} is not a finite time")
        if t < self.start_time:
            raise ValueError(
                f"GarnetFilm.state time {t} is before the film's start time {self.start_time}"
            )
        extents = self._extents_at(t)
        return _state_from_extents(t, self.temperature_at(t), extents)

    # --- electrical law for the impedance emulator ---------------------------------------------
    def conductivity_law(self, state: FilmState | None = None) -> ConductivityLaw:
        """The Arrhenius law (sigma at 30 C, Ea) of the film in ``state`` (now by default)."""
        state = self.state() if state is None else state
        law = film_law(
            state.rearranged_share,
            state.garnet_crystalline_fraction,
            state.cubic_share,
            state.pyrochlore,
        )
        if self.conductivity_scale == 1.0:
            return law
        return dataclasses.replace(
            law, log10_sigma_30=law.log10_sigma_30 + math.log10(self.conductivity_scale)
        )

    def conductivity(
        self, temperature_C: ArrayLike, state: FilmState | None = None
    ) -> np.ndarray | float:
        """Li-ion conductivity (S/cm) of the film at ``temperature_C``.

        Parameters
        ----------
        temperature_C : float or array
            Measurement temperature(s) in C (above -273.15).
        state : FilmState, optional
            Structural state; defaults to the film now. The structure is taken as fixed during
            the measurement (the phases change on much longer time scales than one spectrum).
        """
        temps = np.asarray(temperature_C, dtype=float)
        if not np.all(np.isfinite(temps)) or np.any(temps <= -273.15):
            raise ValueError(
                f"GarnetFilm.conductivity temperature {temperature_C} C is not above -273.15 C"
            )
        return self.conductivity_law(state).conductivity(temps)

    def activation_energy_eV(self, state: FilmState | None = None) -> float:
        """Activation energy (eV) of the film's conductivity in ``state`` (now by default)."""
        return self.conductivity_law(state).activation_energy_eV


def post_annealed_film(
    peak_C: float,
    *,
    rate_C_per_min: float = 5.0,
    dwell_min: float = 15.0,
    start_time: float | None = None,
) -> tuple[GarnetFilm, FilmState]:
    """A film post-annealed with the paper's program and cooled to room temperature.

    Parameters
    ----------
    peak_C : float
        Anneal temperature (C), e.g. 500, 600, 650 or 750.
    rate_C_per_min : float
        Heating and cooling rate (5 C/min in the paper).
    dwell_min : float
        Dwell at ``peak_C`` (15 min in the paper).
    start_time : float, optional
        Experiment time at which the anneal started; by default the cool-down ends now
        (``clock.now()``), so ``film.state()`` is the annealed film at room temperature.

    Returns
    -------
    (GarnetFilm, FilmState)
        The film (its history ends at room temperature and stays there) and its state at the
        end of the cool-down.
    """
    duration = ThermalProfile.ramp_dwell_cool(
        peak_C, rate_C_per_min=rate_C_per_min, dwell_min=dwell_min
    ).end_time
    start = clock.now() - duration if start_time is None else float(start_time)
    profile = ThermalProfile.ramp_dwell_cool(
        peak_C, rate_C_per_min=rate_C_per_min, dwell_min=dwell_min, start_time=start
    )
    film = GarnetFilm(profile, start_time=start)
    return film, film.state(profile.end_time)
