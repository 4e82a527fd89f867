"""Calibration of the film's conductivity law to what the paper's EIS protocol measures.

The paper (``reference/science.md``) measured Table S5 by impedance *after* the post-anneal,
heating the film again: one spectrum every 50 C from 100 to 500 C, 2 min stabilization before
each, two heating-and-cooling cycles. The film keeps evolving during those hours (mostly the
rearranged share of the matrix grows at 400-500 C), so the end-member laws of
:mod:`insitu.sim.sample_conductivity` are solved so that the Arrhenius fit over all spectra of
the protocol, not the film right after the anneal, gives Table S5.

The campaign history, as ``insitu.plans.campaign.anneal_and_measure`` runs it with its defaults:

1. start at 30 C, ramp at 5 C/min to the anneal temperature, settle, dwell 15 min, cool at
   5 C/min to 30 C, settle;
2. ``step_eis`` over :func:`eis_schedule` (per cycle 100 ... 500 C heating, then 450 ... 100 C
   cooling): move at 10 C/min, settle, stabilize 120 s, one sweep of :func:`sweep_duration_s`;
3. back to 30 C at 10 C/min, settle.

Each spectrum is taken as the film's conductivity at the set temperature in its state at the
middle of the sweep; ``ln(sigma T)`` against ``1/T`` over all spectra is fitted by least squares
(as ``insitu.analysis.arrhenius.fit_arrhenius`` does; ``insitu.sim`` may not import it).

The film's states along the protocol do not depend on the conductivity law, and the law is linear
in the end-member pairs ``(log10 sigma_30, Ea)``, so the measured ``(log10 sigma_30, Ea)`` of the
four films is an affine function of the eight unknowns. :func:`solve_end_members` corrects the
laws by Newton steps with that map's exact Jacobian until the four films match; being affine, the
first step already does (the loop re-measures to confirm).

Run ``python -m insitu.sim.conductivity_calibration`` to print the solved constants and the check
of the installed ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from insitu.sim import sample_conductivity as law
from insitu.sim.sample import FilmState, GarnetFilm
from insitu.sim.thales_eis import (
    SWEEP_SETUP_S,
    frequency_grid,
    measuring_order,
    point_duration_s,
)
from insitu.sim.thermal_profile import ThermalProfile

__all__ = [
    "TABLE_S5",
    "CampaignHistory",
    "MeasuredFilm",
    "campaign_history",
    "check_table",
    "eis_schedule",
    "main",
    "measure_film",
    "solve_end_members",
    "sweep_duration_s",
]

#: Post-anneal C: (sigma at 30 C in S/cm, Ea in eV); 500/600 C Ea are our picks (science.md).
TABLE_S5: dict[float, tuple[float, float]] = {
    500.0: (1.44e-9, 0.74),
    600.0: (1.85e-9, 0.70),
    650.0: (5.59e-9, 0.360),
    750.0: (2.51e-6, 0.343),
}

# Campaign defaults of insitu.plans.campaign.anneal_and_measure.
ROOM_TEMPERATURE_C = 30.0
ANNEAL_RATE_C_PER_MIN = 5.0
ANNEAL_DWELL_S = 900.0
EIS_TEMPERATURES_C = tuple(float(t) for t in range(100, 501, 50))
EIS_CYCLES = 2
EIS_RATE_C_PER_MIN = 10.0
STABILIZE_S = 120.0
# Settle time of insitu.devices.linkam LinkamStage (its default), spent at every set point.
SETTLE_S = 10.0

# Sweep settings: the defaults of insitu.devices.zahner._device.ZahnerEIS (f_start = 0, i.e.
# start at f_max) and the scan direction its _configure_sweep sends (ScanDirection=0, start to
# max). Hard-coded because insitu.sim may not import insitu.devices.
F_MAX_HZ = 1e6
F_MIN_HZ = 0.1
STEPS_PER_DECADE_UPPER = 10
STEPS_PER_DECADE_LOWER = 5
PERIODS_UPPER = 20
PERIODS_LOWER = 5

KELVIN = 273.15
_X30 = 1.0 / (law.REFERENCE_TEMPERATURE_C + KELVIN)
_N_FREE = 4  # as deposited, rearranged, tetragonal, cubic; the pyrochlore law is fixed


# --- the protocol ----------------------------------------------------------------------------
def sweep_duration_s(
    f_min: float = F_MIN_HZ,
    f_max: float = F_MAX_HZ,
    steps_upper: int = STEPS_PER_DECADE_UPPER,
    steps_lower: int = STEPS_PER_DECADE_LOWER,
    periods_upper: int = PERIODS_UPPER,
    periods_lower: int = PERIODS_LOWER,
) -> float:
    """Experiment seconds the Term emulator takes for one sweep starting at ``f_max``.

    The emulator's timing (:mod:`insitu.sim.thales_eis`): the sweep set-up, then every point of
    the measuring order (its periods plus ranging and settling).
    """
    grid = frequency_grid(f_min, f_max, steps_upper, steps_lower)
    order = measuring_order(grid, f_max, start_to_max=True)
    points = sum(point_duration_s(f, periods_upper, periods_lower) for f in order)
    return SWEEP_SETUP_S + points


def eis_schedule(temperatures: Sequence[float], cycles: int) -> list[tuple[int, str, float]]:
    """``(cycle, direction, temperature)`` in measuring order, as ``step_eis_schedule`` gives.

    Per cycle: heating through the sorted temperatures, then cooling from the next one down
    (a copy of ``insitu.plans.step_eis.step_eis_schedule``; ``insitu.sim`` may not import plans).
    """
    ordered = sorted(float(t) for t in temperatures)
    schedule: list[tuple[int, str, float]] = []
    for cycle in range(1, cycles + 1):
        schedule += [(cycle, "heating", t) for t in ordered]
        schedule += [(cycle, "cooling", t) for t in reversed(ordered[:-1])]
    return schedule


@dataclass(frozen=True)
class CampaignHistory:
    """One film's thermal history through anneal and EIS, and when its spectra were taken.

    Attributes
    ----------
    profile : ThermalProfile
        Stage temperature against experiment time (s), starting at 0.
    anneal_end_s : float
        Time the anneal's cool-down has settled at room temperature.
    measurements : tuple of (cycle, direction, temperature_C, time_s)
        Each spectrum, ``time_s`` the middle of its sweep.
    """

    profile: ThermalProfile
    anneal_end_s: float
    measurements: tuple[tuple[int, str, float, float], ...]


class _Program:
    """Break points of a stage program, built move by move."""

    def __init__(self, start_C: float) -> None:
        self.times = [0.0]
        self.temps = [float(start_C)]

    @property
    def now(self) -> float:
        return self.times[-1]

    def move(self, target_C: float, rate_C_per_min: float) -> None:
        """Ramp to ``target_C`` at the rate, then settle there."""
        duration = abs(float(target_C) - self.temps[-1]) / rate_C_per_min * 60.0
        self.times.append(self.now + duration)
        self.temps.append(float(target_C))
        self.hold(SETTLE_S)

    def hold(self, seconds: float) -> None:
        """Stay at the current temperature."""
        self.times.append(self.now + float(seconds))
        self.temps.append(self.temps[-1])


def campaign_history(
    anneal_C: float,
    *,
    temperatures: Sequence[float] = EIS_TEMPERATURES_C,
    cycles: int = EIS_CYCLES,
    sweep_s: float | None = None,
) -> CampaignHistory:
    """The thermal history of one film of the campaign (see the module docstring).

    Parameters
    ----------
    anneal_C : float
        Post-anneal temperature (C).
    temperatures, cycles
        EIS set temperatures (C) and heating-and-cooling cycles.
    sweep_s : float, optional
        Duration of one sweep; default :func:`sweep_duration_s`.
    """
    sweep = sweep_duration_s() if sweep_s is None else float(sweep_s)
    program = _Program(ROOM_TEMPERATURE_C)
    program.move(anneal_C, ANNEAL_RATE_C_PER_MIN)
    program.hold(ANNEAL_DWELL_S)
    program.move(ROOM_TEMPERATURE_C, ANNEAL_RATE_C_PER_MIN)
    anneal_end = program.now
    measurements = []
    for cycle, direction, temperature in eis_schedule(temperatures, cycles):
        program.move(temperature, EIS_RATE_C_PER_MIN)
        program.hold(STABILIZE_S)
        measurements.append((cycle, direction, temperature, program.now + 0.5 * sweep))
        program.hold(sweep)
    program.move(ROOM_TEMPERATURE_C, EIS_RATE_C_PER_MIN)
    profile = ThermalProfile(tuple(program.times), tuple(program.temps))
    return CampaignHistory(profile, anneal_end, tuple(measurements))


# --- the measurement -------------------------------------------------------------------------
def arrhenius_line(temperature_C: np.ndarray, sigma: np.ndarray) -> tuple[float, float]:
    """Least-squares line of ``ln(sigma T)`` against ``1/T``: ``(log10 sigma(30 C), Ea eV)``."""
    x = 1.0 / (np.asarray(temperature_C, dtype=float) + KELVIN)
    y = np.log(np.asarray(sigma, dtype=float) / x)
    slope, intercept = np.polyfit(x, y, 1)
    log_sigma_t_30 = intercept + slope * _X30
    return float((log_sigma_t_30 + math.log(_X30)) / math.log(10.0)), float(
        -slope * law.BOLTZMANN_EV
    )


@dataclass(frozen=True)
class MeasuredFilm:
    """What the EIS protocol measures on one film, with its states.

    Attributes
    ----------
    anneal_C : float
        Post-anneal temperature (C).
    sigma_30 : float
        Arrhenius-fit conductivity at 30 C (S/cm).
    activation_energy_eV : float
        Arrhenius-fit activation energy (eV, sigma*T form).
    after_anneal, after_protocol : FilmState
        The film when the anneal has cooled down, and after the EIS protocol.
    states : tuple of FilmState
        The film at the middle of each sweep.
    """

    anneal_C: float
    sigma_30: float
    activation_energy_eV: float
    after_anneal: FilmState
    after_protocol: FilmState
    states: tuple[FilmState, ...]


def measure_film(anneal_C: float) -> MeasuredFilm:
    """Run the campaign on a nominal film and fit its spectra with the installed laws.

    Each spectrum's conductivity is ``film.conductivity(T_set, state)`` with the state at the
    middle of the sweep.
    """
    history = campaign_history(anneal_C)
    film = GarnetFilm(history.profile, start_time=0.0)
    after_anneal = film.state(history.anneal_end_s)
    states = tuple(film.state(t) for *_, t in history.measurements)
    temperatures = np.array([m[2] for m in history.measurements])
    sigma = np.array([film.conductivity(t, s) for t, s in zip(temperatures, states, strict=True)])
    log_sigma_30, activation = arrhenius_line(temperatures, sigma)
    return MeasuredFilm(
        float(anneal_C),
        10.0**log_sigma_30,
        activation,
        after_anneal,
        film.state(history.profile.end_time),
        states,
    )


# --- the solution ----------------------------------------------------------------------------
def _weights(states: Sequence[FilmState]) -> np.ndarray:
    """End-member weights (n_spectra x 5) of the states."""
    return np.array(
        [
            law.end_member_weights(
                s.rearranged_share, s.garnet_crystalline_fraction, s.cubic_share, s.pyrochlore
            )
            for s in states
        ]
    )


def _measured(
    weights: np.ndarray, temperature_C: np.ndarray, log_sigma: np.ndarray, ea: np.ndarray
) -> np.ndarray:
    """Fit result ``(log10 sigma_30, Ea)`` for end-member pairs ``log_sigma``, ``ea`` (5 each)."""
    laws = [law.ConductivityLaw(float(w @ log_sigma), float(w @ ea)) for w in weights]
    sigma = np.array([lw.conductivity(t) for lw, t in zip(laws, temperature_C, strict=True)])
    return np.array(arrhenius_line(temperature_C, sigma))


@dataclass(frozen=True)
class _FilmData:
    weights: np.ndarray
    temperature_C: np.ndarray


def _film_data(anneal_C: float) -> _FilmData:
    history = campaign_history(anneal_C)
    film = GarnetFilm(history.profile, start_time=0.0)
    states = [film.state(t) for *_, t in history.measurements]
    temperatures = np.array([m[2] for m in history.measurements])
    return _FilmData(_weights(states), temperatures)


def _all_measured(data: Sequence[_FilmData], params: np.ndarray) -> np.ndarray:
    """Measured ``(log10 sigma_30, Ea)`` of every film, flattened, for the 8 free parameters."""
    fixed = law.PYROCHLORE_LAW
    log_sigma = np.append(params[:_N_FREE], fixed.log10_sigma_30)
    ea = np.append(params[_N_FREE:], fixed.activation_energy_eV)
    return np.concatenate([_measured(d.weights, d.temperature_C, log_sigma, ea) for d in data])


def _targets(anneal_temperatures: Sequence[float]) -> np.ndarray:
    return np.concatenate(
        [[math.log10(TABLE_S5[t][0]), TABLE_S5[t][1]] for t in anneal_temperatures]
    )


def _jacobian(data: Sequence[_FilmData], params: np.ndarray) -> np.ndarray:
    """Exact for an affine map: unit steps of every parameter."""
    base = _all_measured(data, params)
    columns = []
    for i in range(params.size):
        step = np.zeros_like(params)
        step[i] = 1e-3
        columns.append((_all_measured(data, params + step) - base) / 1e-3)
    return np.column_stack(columns)


def _installed_params() -> np.ndarray:
    laws = law.end_member_laws()[:_N_FREE]
    return np.array([lw.log10_sigma_30 for lw in laws] + [lw.activation_energy_eV for lw in laws])


def _mismatch(measured: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Largest relative sigma error and largest Ea error (eV)."""
    sigma = np.abs(10.0 ** (measured[0::2] - target[0::2]) - 1.0)
    return float(sigma.max()), float(np.abs(measured[1::2] - target[1::2]).max())


def solve_end_members(
    anneal_temperatures: Sequence[float] = tuple(TABLE_S5),
    *,
    sigma_rtol: float = 0.005,
    ea_atol: float = 0.002,
    max_iterations: int = 20,
) -> dict[str, law.ConductivityLaw]:
    """End-member laws whose protocol measurement matches Table S5 (unrounded).

    Starts from the installed laws, corrects them by a Newton step (the exact Jacobian of the
    affine map), re-measures every film, and stops when all match within ``sigma_rtol``
    (relative) and ``ea_atol`` (eV).

    Raises
    ------
    RuntimeError
        If the films do not match after ``max_iterations`` corrections.
    """
    data = [_film_data(t) for t in anneal_temperatures]
    target = _targets(anneal_temperatures)
    params = _installed_params()
    for _ in range(max_iterations):
        measured = _all_measured(data, params)
        params = params + np.linalg.solve(_jacobian(data, params), target - measured)
        sigma_error, ea_error = _mismatch(_all_measured(data, params), target)
        if sigma_error < sigma_rtol and ea_error < ea_atol:
            names = law.END_MEMBER_NAMES[:_N_FREE]
            return {
                name: law.ConductivityLaw(float(params[i]), float(params[_N_FREE + i]))
                for i, name in enumerate(names)
            }
    raise RuntimeError(
        f"end members still off after {max_iterations} corrections: sigma {sigma_error:.2%}, "
        f"Ea {ea_error:.4f} eV"
    )


# --- report ----------------------------------------------------------------------------------
def _state_line(state: FilmState) -> str:
    return (
        f"am {state.amorphous:.3f} re {state.rearranged:.3f} te {state.tetragonal:.3f} "
        f"cu {state.cubic:.3f} py {state.pyrochlore:.4f} (r-share {state.rearranged_share:.3f})"
    )


def check_table() -> str:
    """Measured (installed laws) against Table S5, with the film before and after the EIS."""
    lines = [
        f"sweep {sweep_duration_s():.1f} s; "
        f"protocol {campaign_history(650.0).profile.end_time / 3600:.2f} h for the 650 C film",
        "anneal  sigma30 meas  Table S5   dev %   Ea meas  Table   dEa",
    ]
    for anneal_C, (sigma_ref, ea_ref) in TABLE_S5.items():
        m = measure_film(anneal_C)
        lines += [
            f"{anneal_C:5.0f} C  {m.sigma_30:.4g}  {sigma_ref:.3g}  "
            f"{100 * (m.sigma_30 / sigma_ref - 1):+6.2f}  {m.activation_energy_eV:.4f}  "
            f"{ea_ref:.3f}  {m.activation_energy_eV - ea_ref:+.4f}",
            f"   after anneal:   {_state_line(m.after_anneal)}",
            f"   after protocol: {_state_line(m.after_protocol)}",
        ]
    return "\n".join(lines)


def main() -> None:
    """Print the solved constants (unrounded and rounded) and the check of the installed laws."""
    solved = solve_end_members()
    print("Solved end members (log10 sigma_30 S/cm, Ea eV):")
    for name, lw in solved.items():
        print(
            f"  {name:13s} {lw.log10_sigma_30:.6f} {lw.activation_energy_eV:.6f}"
            f"   rounded ConductivityLaw({lw.log10_sigma_30:.4f}, {lw.activation_energy_eV:.4f})"
            f"   sigma_30 {10**lw.log10_sigma_30:.3g}"
        )
    print("\nCheck of the installed laws (insitu.sim.sample_conductivity):")
    print(check_table())


if __name__ == "__main__":
    main()
