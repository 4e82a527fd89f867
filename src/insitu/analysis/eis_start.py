"""Starting points for an equivalent-circuit fit, read from the impedance spectrum's shape.

:func:`automatic_guesses` turns a spectrum into starting values for every parameter of a circuit,
so that :func:`~insitu.analysis.eis_fit.fit_circuit` needs no initial guess: the arc apex gives the
time constant, the high- and low-frequency limits the resistances, the arc depression the CPE
exponent, the low-frequency slope a blocking-electrode CPE. With several parallel blocks, a coarse
distribution of relaxation times (non-negative least squares on RC elements) places the arcs.
Besides the most likely start it gives alternatives (shifted time constants, other exponents,
hidden arcs, a weak tail) that the fit uses as restarts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from insitu.analysis.eis_circuits import (
    CompiledCircuit,
    ComplexArray,
    Element,
    FloatArray,
    Node,
    Parallel,
    Series,
)

__all__ = ["automatic_guesses"]


@dataclass(frozen=True)
class _Arc:
    resistance: float
    omega_apex: float
    alpha: float


@dataclass(frozen=True)
class _Features:
    """What the spectrum says about a circuit's scales (frequencies ascending)."""

    omega: FloatArray
    z: ComplexArray
    series_resistance: float
    high_frequency_alpha: float
    arc: _Arc  # the main arc, from the apex of -Im Z
    low_frequency_arc: _Arc  # same time constant, resistance from the low-frequency limit
    tail: tuple[float, float] | None  # (Q, alpha) of a low-frequency capacitive tail


def _slope(x: FloatArray, y: FloatArray) -> float:
    x0 = x - x.mean()
    denominator = float(np.dot(x0, x0))
    return float(np.dot(x0, y - y.mean()) / denominator) if denominator > 0 else 0.0


def _relaxation_arcs(omega: FloatArray, z: ComplexArray, alpha: float) -> list[_Arc]:
    """Arcs from a coarse distribution of relaxation times: non-negative RC resistances.

    The imaginary part is fitted by RC elements (4 per decade, a decade beyond the data on each
    side) plus a series capacitance, with non-negative least squares; each peak of the smoothed
    resistances is an arc. Only used when a circuit has more than one parallel block, where the
    apex of -Im Z alone cannot place the smaller arcs.
    """
    log_tau = np.arange(-np.log10(omega.max()) - 1, -np.log10(omega.min()) + 1.01, 0.25)
    x = np.outer(omega, 10.0**log_tau)
    weight = 1.0 / np.abs(z)
    design = np.column_stack([weight[:, None] * x / (1 + x * x), weight / omega])
    scale = design.max(axis=0)
    resistances, _ = nnls(design / scale, -z.imag * weight)
    resistances = resistances[:-1] / scale[:-1]
    # A CPE arc spreads over a decade or two of time constants and NNLS splits it into spikes:
    # smooth over half a decade and take the peaks, each with the resistance within a decade.
    kernel = np.exp(-0.5 * (np.arange(-4, 5) / 2.0) ** 2)
    smooth = np.convolve(resistances, kernel / kernel.sum(), mode="same")
    arcs = []
    for i in range(len(log_tau)):
        neighbours = smooth[max(i - 1, 0) : i + 2]
        if smooth[i] > 1e-3 * smooth.max() and smooth[i] >= neighbours.max():
            inside_window = (
                -np.log10(omega.max()) - 0.5 <= log_tau[i] <= -np.log10(omega.min()) + 0.5
            )
            if inside_window:
                within_decade = float(resistances[max(i - 4, 0) : i + 5].sum())
                arcs.append(_Arc(within_decade, 10.0 ** -log_tau[i], alpha))
    arcs.sort(key=lambda arc: -arc.resistance)
    return arcs


def _spectrum_features(f: FloatArray, z: ComplexArray) -> _Features:
    order = np.argsort(f)
    omega = 2 * np.pi * f[order]
    z = z[order]
    n = omega.size
    log_omega = np.log(omega)
    minus_imag = -z.imag
    modulus = np.abs(z)
    k = min(4, n)

    # CPE exponent from the high-frequency slope of log(-Im Z); the phase alone is biased by R0
    top = slice(n - k, n)
    if np.all(minus_imag[top] > 0):
        alpha_hf = float(np.clip(-_slope(log_omega[top], np.log(minus_imag[top])), 0.3, 1.0))
    else:
        alpha_hf = 0.9
    # series resistance: what remains of Re Z at the top once the CPE branch's real part is removed
    cpe_real = max(minus_imag[-1], 0.0) / math.tan(alpha_hf * math.pi / 2) if alpha_hf < 1 else 0.0
    series_r = max(z.real[-1] - cpe_real, 1e-3 * modulus.min())

    # a capacitive tail: -Im Z rising towards the lowest frequencies
    bottom = slice(0, k)
    tail = None
    i_separation = 0
    if np.all(minus_imag[bottom] > 0):
        tail_slope = -_slope(log_omega[bottom], np.log(minus_imag[bottom]))
        if tail_slope > 0.25:
            alpha_tail = float(np.clip(tail_slope, 0.3, 1.0))
            q_tail = math.sin(alpha_tail * math.pi / 2) / (minus_imag[0] * omega[0] ** alpha_tail)
            tail = (q_tail, alpha_tail)
            smooth = np.convolve(minus_imag, np.ones(3) / 3, mode="same")
            smooth[0], smooth[-1] = minus_imag[0], minus_imag[-1]
            i_separation = 1
            while i_separation < n - 1 and smooth[i_separation + 1] < smooth[i_separation]:
                i_separation += 1

    arc_region = minus_imag[i_separation:]
    i_apex = i_separation + int(np.argmax(arc_region))
    omega_apex, height = float(omega[i_apex]), float(max(minus_imag[i_apex], 1e-300))
    if 0 < i_apex < n - 1:
        # parabola through the apex and its neighbours in log frequency
        y0, y1, y2 = minus_imag[i_apex - 1 : i_apex + 2]
        curvature = y0 - 2 * y1 + y2
        if curvature < 0:
            step = log_omega[i_apex + 1] - log_omega[i_apex]
            shift = float(np.clip(0.5 * (y0 - y2) / curvature, -1, 1))
            omega_apex = float(np.exp(log_omega[i_apex] + shift * step))
            height = float(y1 - 0.25 * (y0 - y2) * shift)
    real_apex = float(np.interp(np.log(omega_apex), log_omega, z.real)) - series_r
    if real_apex > 0:
        alpha_apex = float(np.clip(4 / math.pi * math.atan(height / real_apex), 0.3, 1.0))
    else:
        alpha_apex = alpha_hf
    resistance = 2 * height / math.tan(alpha_apex * math.pi / 4)
    if i_apex == n - 1:  # apex above the window: the arc's top is not measured
        omega_apex *= 3.0
    if i_apex == i_separation and tail is None and i_apex == 0:
        # apex below the window: only the high-frequency side of the arc is measured
        resistance, omega_apex = 3.0 * modulus[0], omega[0] / 3.0
    low_frequency_r = max(float(z.real[i_separation]) - series_r, 1e-3 * modulus.min())

    return _Features(
        omega=omega,
        z=z,
        series_resistance=float(series_r),
        high_frequency_alpha=alpha_hf,
        arc=_Arc(resistance, omega_apex, alpha_apex),
        low_frequency_arc=_Arc(low_frequency_r, omega_apex, alpha_hf),
        tail=tail,
    )


def _assign_scales(
    node: Node, resistance: float, omega: float, alpha: float, guess: dict[str, float]
) -> None:
    """Give every element under ``node`` values on the scale of one arc."""
    if isinstance(node, Element):
        symbol, names = node.type.symbol, node.param_names
        if symbol == "R":
            guess[names[0]] = resistance
        elif symbol == "C":
            guess[names[0]] = 1.0 / (resistance * omega)
        elif symbol == "L":
            guess[names[0]] = resistance / omega
        elif symbol == "CPE":
            guess[names[0]] = 1.0 / (resistance * omega**alpha)
            guess[names[1]] = alpha
        elif symbol == "W":
            guess[names[0]] = resistance * math.sqrt(omega)
        else:  # Wo, Ws
            guess[names[0]] = resistance
            guess[names[1]] = 1.0 / omega
        return
    for child in node.children:
        _assign_scales(child, resistance, omega, alpha, guess)


def _negligible(
    node: Element, features: _Features, guess: dict[str, float], at_high_frequency: bool
) -> None:
    """Values that make a series element's impedance small where it would matter."""
    i = -1 if at_high_frequency else 0
    small = 1e-3 * abs(features.z[i])
    omega = features.omega[i]
    _assign_scales(node, small, omega, 0.9, guess)
    if node.type.symbol in ("C", "CPE"):
        names = node.param_names
        guess[names[0]] = 1.0 / (small * omega ** (guess[names[1]] if len(names) > 1 else 1.0))
    elif node.type.symbol == "L":
        guess[node.param_names[0]] = small / omega


def _guess_from_features(
    compiled: CompiledCircuit,
    features: _Features,
    arcs: Sequence[_Arc],
    tail: tuple[float, float] | None,
) -> dict[str, float]:
    guess: dict[str, float] = {}
    items = compiled.tree.children if isinstance(compiled.tree, Series) else (compiled.tree,)
    blocks = [item for item in items if isinstance(item, (Parallel, Series))]
    arcs = list(arcs)
    while len(arcs) < len(blocks):  # more blocks than visible arcs: spread the rest below
        last = arcs[-1]
        arcs.append(_Arc(last.resistance, last.omega_apex / 100.0, last.alpha))
    arc_for_block = dict(zip(map(id, blocks), arcs, strict=False))
    tail_used = False
    series_rs = [item for item in items if isinstance(item, Element) and item.type.symbol == "R"]
    for item in items:
        if not isinstance(item, Element):
            arc = arc_for_block[id(item)]
            _assign_scales(item, arc.resistance, arc.omega_apex, arc.alpha, guess)
            continue
        symbol = item.type.symbol
        if len(items) == 1:  # a lone element: take the scale of the whole spectrum
            arc = arcs[0]
            _assign_scales(item, arc.resistance, arc.omega_apex, arc.alpha, guess)
        elif symbol == "R":
            guess[item.name] = features.series_resistance / len(series_rs)
        elif symbol == "L":
            z_top, omega_top = features.z[-1], features.omega[-1]
            if z_top.imag > 0:
                guess[item.name] = z_top.imag / omega_top
            else:
                _negligible(item, features, guess, at_high_frequency=True)
        elif tail is not None and not tail_used:
            q_tail, alpha_tail = tail
            omega_low = features.omega[0]
            modulus_tail = 1.0 / (q_tail * omega_low**alpha_tail)
            _assign_scales(item, modulus_tail, omega_low, alpha_tail, guess)
            if symbol == "CPE":
                guess[item.param_names[0]] = q_tail
            elif symbol == "C":
                guess[item.name] = 1.0 / (modulus_tail * omega_low)
            tail_used = True
        else:
            _negligible(item, features, guess, at_high_frequency=False)
    return guess


def automatic_guesses(
    compiled: CompiledCircuit, f: FloatArray, z: ComplexArray
) -> list[dict[str, float]]:
    """Starting points derived from the spectrum, most likely first.

    Parameters
    ----------
    compiled : CompiledCircuit
        The circuit to fit.
    f : ndarray
        Frequencies in Hz (finite, > 0), any order.
    z : ndarray of complex
        Impedance in Ohm at ``f`` (finite, no exact zero).

    Returns
    -------
    list of dict
        Value of every parameter by name, one dict per starting point; the fit keeps the
        distinct ones and tries them in this order.
    """
    features = _spectrum_features(f, z)
    first = features.arc
    arc_sets: list[Sequence[_Arc]] = []
    items = compiled.tree.children if isinstance(compiled.tree, Series) else (compiled.tree,)
    n_blocks = sum(isinstance(item, (Parallel, Series)) for item in items)
    if n_blocks > 1:
        relaxation = _relaxation_arcs(features.omega, features.z, first.alpha)
        if relaxation:
            largest, others = relaxation[0], relaxation[1:]
            combinations = itertools.islice(itertools.combinations(others, n_blocks - 1), 3)
            arc_sets += [(largest, *combination) for combination in combinations]
            for factor in (100.0, 0.01):  # a hidden arc on either side of the largest
                arc_sets.append(
                    (
                        largest,
                        *(
                            _Arc(
                                largest.resistance / 10, largest.omega_apex * factor**k, first.alpha
                            )
                            for k in range(1, n_blocks)
                        ),
                    )
                )
    arc_sets += [
        (first,),
        (features.low_frequency_arc,),
        (_Arc(first.resistance, first.omega_apex, features.high_frequency_alpha),),
        (_Arc(first.resistance, first.omega_apex * 3, first.alpha),),
        (_Arc(first.resistance, first.omega_apex / 3, first.alpha),),
        (_Arc(first.resistance * 3, first.omega_apex / 3, min(first.alpha + 0.1, 1.0)),),
    ]
    tails = [features.tail] * len(arc_sets)
    if features.tail is None:
        # a blocking electrode whose tail barely starts at the lowest frequency: a third of |Z|
        omega_low, modulus_low = features.omega[0], abs(features.z[0])
        weak_tail = (1.0 / (0.3 * modulus_low * omega_low**0.75), 0.75)
        arc_sets.insert(1, (first,))
        tails.insert(1, weak_tail)
    return [
        _guess_from_features(compiled, features, sorted(arcs, key=lambda a: -a.omega_apex), tail)
        for arcs, tail in zip(arc_sets, tails, strict=True)
    ]
