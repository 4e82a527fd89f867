"""How the emulated Thales runs an EIS sweep: frequency grid, order, timing and the .ism file.

The emulator's model of Thales (not Zahner's documented algorithm, which is not public):

* Grid: log-spaced from ``Fmax`` down to ``Fmin``, ``dfm`` steps per decade above 66 Hz and
  ``dfl`` below, the number of steps in each band rounded to the nearest integer (at least 1);
  66 Hz itself is a grid point when the range spans it.
* Order (``ScanDirection``): *start to max* measures the grid points from ``Fstart`` up to
  ``Fmax``, then every grid point below ``Fmax`` downwards to ``Fmin``; *start to min* measures
  from ``Fstart`` down to ``Fmin``, then every point above ``Fmin`` upwards. The first leg is
  measured twice, as Thales does; ``IsmImport`` drops it again.
* Time: ``Nws`` periods per point at or above 66 Hz, ``Nwl`` below, plus 0.5 s per point for
  ranging and settling and 2 s to set the sweep up.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from zahner_analysis.file_export.ism_export import IsmExport

__all__ = [
    "BAND_EDGE_HZ",
    "POINT_OVERHEAD_S",
    "SWEEP_SETUP_S",
    "frequency_grid",
    "ism_file",
    "measuring_order",
    "point_duration_s",
]

BAND_EDGE_HZ = 66.0
POINT_OVERHEAD_S = 0.5
SWEEP_SETUP_S = 2.0
_REL = 1e-9  # frequencies closer than this (relative) are the same grid point


def _steps(f_high: float, f_low: float, per_decade: int) -> int:
    return max(1, math.floor(per_decade * math.log10(f_high / f_low) + 0.5))


def frequency_grid(f_min: float, f_max: float, steps_upper: int, steps_lower: int) -> np.ndarray:
    """Grid frequencies in Hz from ``f_max`` down to ``f_min`` (see the module docstring)."""
    if f_max <= f_min:
        return np.array([f_max])
    if f_min >= BAND_EDGE_HZ:
        return np.geomspace(f_max, f_min, _steps(f_max, f_min, steps_upper) + 1)
    if f_max <= BAND_EDGE_HZ:
        return np.geomspace(f_max, f_min, _steps(f_max, f_min, steps_lower) + 1)
    upper = np.geomspace(f_max, BAND_EDGE_HZ, _steps(f_max, BAND_EDGE_HZ, steps_upper) + 1)
    lower = np.geomspace(BAND_EDGE_HZ, f_min, _steps(BAND_EDGE_HZ, f_min, steps_lower) + 1)
    return np.concatenate([upper, lower[1:]])


def measuring_order(grid: np.ndarray, f_start: float, start_to_max: bool) -> list[float]:
    """The frequencies in the order Thales measures them, first leg included."""
    ascending = sorted(float(f) for f in grid)
    f_low, f_high = ascending[0], ascending[-1]
    if start_to_max:
        first = [f for f in ascending if f >= f_start * (1 - _REL)]
        second = [f for f in reversed(ascending) if f < f_high * (1 - _REL)]
    else:
        first = [f for f in reversed(ascending) if f <= f_start * (1 + _REL)]
        second = [f for f in ascending if f > f_low * (1 + _REL)]
    return first + second


def point_duration_s(frequency: float, periods_upper: int, periods_lower: int) -> float:
    """Experiment seconds one point takes: its periods plus ranging and settling."""
    periods = periods_upper if frequency >= BAND_EDGE_HZ else periods_lower
    return periods / frequency + POINT_OVERHEAD_S


def ism_file(
    frequency: list[float],
    impedance: list[complex],
    *,
    amplitude_mV: float,
    potential_V: float,
    temperature_C: float | None,
    comment: str,
) -> bytes:
    """The sweep as an ``.ism`` file, written with zahner_analysis' ``IsmExport``.

    ``IsmExport`` writes frequencies, |Z|, phase and the header strings; the amplitude lives in the
    binary metadata that follows (an acquisition flag, then 32 big-endian doubles of which the
    26th is the amplitude in mV: where ``IsmImport`` reads it), so that block is built here.
    """
    z = np.asarray(impedance, dtype=complex)
    k_values = np.zeros(32, dtype=">f8")
    k_values[25] = amplitude_mV
    metadata = struct.pack(">h", 0) + k_values.tobytes()
    export = IsmExport(
        frequency=list(frequency),
        impedance=list(np.abs(z)),
        phase=list(np.angle(z)),
        system_string="insitu TermEmulator",
        potential_string=f"{potential_V:.4f} V",
        temperature_string="" if temperature_C is None else f"{temperature_C:.1f} C",
        comment_1_string=comment,
        metaData=bytearray(metadata),
    )
    return bytes(export.getBinaryFileContent())
