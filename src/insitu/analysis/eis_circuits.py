"""Equivalent-circuit strings in impedance.py syntax, compiled to vectorized impedance functions.

A circuit string such as ``"R0-p(R1,CPE1)-CPE2"`` is parsed once into a tree and compiled into a
:class:`CompiledCircuit` that evaluates the impedance, and its analytic derivatives with respect to
every parameter, for a whole frequency array with numpy (no per-point Python loop). The syntax and
the parameter names are those of impedance.py, so users can paste their circuit strings:

=========  ==========================================  ===============================
element    impedance                                   parameters
=========  ==========================================  ===============================
``R``      :math:`R`                                   ``R1``
``C``      :math:`1/(j\\omega C)`                      ``C1``
``L``      :math:`j\\omega L`                          ``L1``
``CPE``    :math:`1/(Q (j\\omega)^\\alpha)`            ``CPE1_0`` (Q), ``CPE1_1`` (alpha)
``W``      :math:`A_W (1-j)/\\sqrt{\\omega}`           ``W1``
``Wo``     :math:`Z_0 \\coth(\\sqrt{j\\omega\\tau})/\\sqrt{j\\omega\\tau}`   ``Wo1_0``, ``Wo1_1``
``Ws``     :math:`Z_0 \\tanh(\\sqrt{j\\omega\\tau})/\\sqrt{j\\omega\\tau}`   ``Ws1_0``, ``Ws1_1``
=========  ==========================================  ===============================

``-`` joins elements in series, ``p(a,b,...)`` in parallel; elements are named by their type and a
number (``R1``, ``CPE2``). impedance.py itself evaluates circuits by building and ``eval``-ing a
Python string per call and has no derivatives, which is too slow for a fitter that must take a few
milliseconds; hence this small compiler.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

ComplexArray = NDArray[np.complex128]
FloatArray = NDArray[np.float64]

# Each element function takes (parameter values, omega) and returns (Z, [dZ/dp for each parameter]).
ElementFunction = Callable[[tuple[float, ...], FloatArray], tuple[ComplexArray, list[ComplexArray]]]


def _resistor(p: tuple[float, ...], omega: FloatArray) -> tuple[ComplexArray, list[ComplexArray]]:
    ones = np.ones(omega.shape, dtype=complex)
    return p[0] * ones, [ones]


def _capacitor(p: tuple[float, ...], omega: FloatArray) -> tuple[ComplexArray, list[ComplexArray]]:
    z = -1j / (p[0] * omega)
    return z, [-z / p[0]]


def _inductor(p: tuple[float, ...], omega: FloatArray) -> tuple[ComplexArray, list[ComplexArray]]:
    d = 1j * omega
    return p[0] * d, [d.astype(complex)]


def _cpe(p: tuple[float, ...], omega: FloatArray) -> tuple[ComplexArray, list[ComplexArray]]:
    q, alpha = p
    log_j_omega = np.log(omega) + 0.5j * np.pi
    z = np.exp(-alpha * log_j_omega) / q
    return z, [-z / q, -z * log_j_omega]


def _warburg(p: tuple[float, ...], omega: FloatArray) -> tuple[ComplexArray, list[ComplexArray]]:
    z = p[0] * (1 - 1j) / np.sqrt(omega)
    return z, [z / p[0]]


def _stable_tanh(s: ComplexArray) -> ComplexArray:
    # tanh of a large complex argument is +-1 to machine precision; numpy underflows getting there.
    out = np.sign(s.real).astype(complex)
    small = np.abs(s.real) < 20.0
    out[small] = np.tanh(s[small])
    return out


def _warburg_open(
    p: tuple[float, ...], omega: FloatArray
) -> tuple[ComplexArray, list[ComplexArray]]:
    z0, tau = p
    s = np.sqrt(1j * omega * tau)
    t = _stable_tanh(s)
    g = 1.0 / (s * t)
    dg_ds = -(t + s * (1 - t * t)) / (s * t) ** 2
    return z0 * g, [g, z0 * dg_ds * s / (2 * tau)]


def _warburg_short(
    p: tuple[float, ...], omega: FloatArray
) -> tuple[ComplexArray, list[ComplexArray]]:
    z0, tau = p
    s = np.sqrt(1j * omega * tau)
    t = _stable_tanh(s)
    g = t / s
    dg_ds = ((1 - t * t) * s - t) / (s * s)
    return z0 * g, [g, z0 * dg_ds * s / (2 * tau)]


@dataclass(frozen=True)
class ElementType:
    """What one kind of circuit element is: its impedance, parameters and their default bounds."""

    symbol: str
    function: ElementFunction
    units: tuple[str, ...]
    default_bounds: tuple[tuple[float, float], ...]

    @property
    def n_params(self) -> int:
        return len(self.units)


ELEMENT_TYPES: dict[str, ElementType] = {
    t.symbol: t
    for t in (
        ElementType("R", _resistor, ("Ohm",), ((1e-4, 1e16),)),
        ElementType("C", _capacitor, ("F",), ((1e-18, 1e2),)),
        ElementType("L", _inductor, ("H",), ((1e-15, 1e3),)),
        ElementType("CPE", _cpe, ("Ohm^-1 s^a", ""), ((1e-18, 1e2), (0.1, 1.0))),
        ElementType("W", _warburg, ("Ohm s^-1/2",), ((1e-6, 1e16),)),
        ElementType("Wo", _warburg_open, ("Ohm", "s"), ((1e-6, 1e16), (1e-9, 1e9))),
        ElementType("Ws", _warburg_short, ("Ohm", "s"), ((1e-6, 1e16), (1e-9, 1e9))),
    )
}


@dataclass(frozen=True)
class Element:
    """One element of a parsed circuit: ``CPE1`` with parameters ``CPE1_0`` and ``CPE1_1``."""

    name: str
    type: ElementType
    param_names: tuple[str, ...]
    first_index: int  # position of its first parameter in the circuit's parameter vector

    @property
    def param_slice(self) -> slice:
        return slice(self.first_index, self.first_index + self.type.n_params)


@dataclass(frozen=True)
class Series:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Parallel:
    children: tuple[Node, ...]


Node = Element | Series | Parallel

_TOKEN = re.compile(r"\s*(?:(p)\(|([A-Za-z]+)(\d*)|([-,()]))")


class _Parser:
    """Recursive descent: ``series := item ('-' item)*``, ``item := p(series, ...) | NAME``."""

    def __init__(self, circuit: str):
        self.circuit = circuit
        self.tokens = self._tokenize(circuit)
        self.position = 0
        self.elements: list[Element] = []
        self.n_params = 0

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens = []
        index = 0
        text = text.rstrip()
        while index < len(text):
            match = _TOKEN.match(text, index)
            if match is None:
                raise ValueError(
                    f"circuit {self.circuit!r}: unexpected character {text[index]!r} at position"
                    f" {index}; allowed are element names ({', '.join(ELEMENT_TYPES)} with a"
                    " number), '-' (series), 'p(a,b)' (parallel) and ','"
                )
            if match.group(1):
                tokens.append(("parallel", "p(", match.start(1)))
            elif match.group(2):
                tokens.append(("element", match.group(2) + match.group(3), match.start(2)))
            else:
                tokens.append((match.group(4), match.group(4), match.start(4)))
            index = match.end()
        return tokens

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def _expect(self, kind: str) -> tuple[str, str, int]:
        if self._peek() != kind:
            found = (
                repr(self.tokens[self.position][1])
                if self.position < len(self.tokens)
                else "the end"
            )
            raise ValueError(f"circuit {self.circuit!r}: expected {kind!r} but found {found}")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise ValueError("circuit string is empty; give e.g. 'R0-p(R1,CPE1)'")
        node = self._series()
        if self.position != len(self.tokens):
            raise ValueError(
                f"circuit {self.circuit!r}: unexpected {self.tokens[self.position][1]!r} at"
                f" position {self.tokens[self.position][2]}"
            )
        return node

    def _series(self) -> Node:
        items = [self._item()]
        while self._peek() == "-":
            self.position += 1
            items.append(self._item())
        return items[0] if len(items) == 1 else Series(tuple(items))

    def _item(self) -> Node:
        if self._peek() == "parallel":
            self.position += 1
            branches = [self._series()]
            while self._peek() == ",":
                self.position += 1
                branches.append(self._series())
            self._expect(")")
            if len(branches) < 2:
                raise ValueError(
                    f"circuit {self.circuit!r}: p(...) needs at least two branches separated by ','"
                )
            return Parallel(tuple(branches))
        _, name, _ = self._expect("element")
        return self._element(name)

    def _element(self, name: str) -> Element:
        symbol = name.rstrip("0123456789")
        if symbol not in ELEMENT_TYPES:
            raise ValueError(
                f"circuit {self.circuit!r}: unknown element {name!r}; allowed element types are"
                f" {', '.join(ELEMENT_TYPES)}, each followed by a number (e.g. R1, CPE2)"
            )
        if any(e.name == name for e in self.elements):
            raise ValueError(f"circuit {self.circuit!r}: element name {name!r} is used twice")
        element_type = ELEMENT_TYPES[symbol]
        if element_type.n_params == 1:
            param_names: tuple[str, ...] = (name,)
        else:
            param_names = tuple(f"{name}_{i}" for i in range(element_type.n_params))
        element = Element(name, element_type, param_names, self.n_params)
        self.elements.append(element)
        self.n_params += element_type.n_params
        return element


class CompiledCircuit:
    """A parsed circuit that evaluates its impedance and analytic Jacobian on frequency arrays.

    Parameters
    ----------
    circuit : str
        Circuit string in impedance.py syntax, e.g. ``"R0-p(R1,CPE1)"``.
    """

    def __init__(self, circuit: str):
        if not isinstance(circuit, str):
            raise ValueError(f"circuit must be a string such as 'R0-p(R1,CPE1)', got {circuit!r}")
        parser = _Parser(circuit)
        self.circuit = circuit.replace(" ", "")
        self.tree: Node = parser.parse()
        self.elements: tuple[Element, ...] = tuple(parser.elements)
        self.param_names: tuple[str, ...] = tuple(
            name for element in self.elements for name in element.param_names
        )
        self.default_bounds: dict[str, tuple[float, float]] = {
            name: bounds
            for element in self.elements
            for name, bounds in zip(element.param_names, element.type.default_bounds, strict=True)
        }
        self._evaluator = _compile(self.tree)
        self.units: dict[str, str] = {
            name: unit
            for element in self.elements
            for name, unit in zip(element.param_names, element.type.units, strict=True)
        }

    def __repr__(self) -> str:
        return f"CompiledCircuit({self.circuit!r})"

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def impedance(self, params: ArrayLike, frequency: ArrayLike) -> ComplexArray:
        """Impedance (Ohm) at ``frequency`` (Hz) for parameter values in ``param_names`` order."""
        z, _ = self.impedance_and_jacobian(params, 2 * np.pi * np.asarray(frequency, float))
        return z

    def impedance_and_jacobian(
        self, params: ArrayLike, omega: FloatArray, *, with_jacobian: bool = True
    ) -> tuple[ComplexArray, ComplexArray | None]:
        """Impedance and its derivatives with respect to each (linear) parameter.

        Parameters
        ----------
        params : array_like
            Parameter values in the order of :attr:`param_names`.
        omega : ndarray
            Angular frequencies (rad/s).
        with_jacobian : bool
            Skip the derivatives when False (the second return value is then None).

        Returns
        -------
        z : ndarray of complex, shape (n_freq,)
        jacobian : ndarray of complex, shape (n_params, n_freq), or None
        """
        values = np.asarray(params, dtype=float)
        if values.shape != (self.n_params,):
            raise ValueError(
                f"circuit {self.circuit!r} takes {self.n_params} parameters"
                f" {self.param_names}, got {values.shape[0] if values.ndim else 0}"
            )
        jacobian = np.empty((self.n_params, omega.size), dtype=complex) if with_jacobian else None
        z = self._evaluator(values, omega, jacobian)
        return z, jacobian


Evaluator = Callable[[FloatArray, FloatArray, "ComplexArray | None"], ComplexArray]


def _param_rows(node: Node) -> slice:
    """Jacobian rows of a subtree: contiguous, since parameters are numbered in reading order."""
    if isinstance(node, Element):
        return node.param_slice
    first, last = _param_rows(node.children[0]), _param_rows(node.children[-1])
    return slice(first.start, last.stop)


def _compile(node: Node) -> Evaluator:
    """Turn a tree node into a function (values, omega, jacobian or None) -> Z.

    The Jacobian rows of a node's parameters are written by its leaves and rescaled on the way up
    through parallel connections; each parameter belongs to exactly one leaf.
    """
    if isinstance(node, Element):
        function, first, parameters = node.type.function, node.first_index, node.param_slice

        def element(values: FloatArray, omega: FloatArray, jacobian: ComplexArray | None):
            z, derivatives = function(tuple(values[parameters]), omega)
            if jacobian is not None:
                for offset, derivative in enumerate(derivatives):
                    jacobian[first + offset] = derivative
            return z

        return element

    children = [_compile(child) for child in node.children]
    if isinstance(node, Series):

        def series(values: FloatArray, omega: FloatArray, jacobian: ComplexArray | None):
            total = children[0](values, omega, jacobian)
            for child in children[1:]:
                total = total + child(values, omega, jacobian)
            return total

        return series

    rows = [_param_rows(child) for child in node.children]

    def parallel(values: FloatArray, omega: FloatArray, jacobian: ComplexArray | None):
        branches = [child(values, omega, jacobian) for child in children]
        admittance = 1.0 / branches[0]
        for branch in branches[1:]:
            admittance = admittance + 1.0 / branch
        total = 1.0 / admittance
        if jacobian is not None:
            # d(1 / sum 1/Z_k)/dp = (Z / Z_k)^2 dZ_k/dp for a parameter p inside branch k
            for branch, branch_rows in zip(branches, rows, strict=True):
                factor = total / branch
                jacobian[branch_rows] *= factor * factor
        return total

    return parallel


def parse_circuit(circuit: str) -> CompiledCircuit:
    """Parse and compile a circuit string.

    Parameters
    ----------
    circuit : str
        impedance.py syntax: elements ``R``, ``C``, ``L``, ``CPE``, ``W``, ``Wo``, ``Ws`` followed
        by a number, ``-`` for series, ``p(a,b)`` for parallel.

    Returns
    -------
    CompiledCircuit

    Raises
    ------
    ValueError
        On unknown elements, duplicate names or malformed strings.
    """
    return CompiledCircuit(circuit)


def circuit_impedance(circuit: str, params: dict[str, float], frequency: ArrayLike) -> ComplexArray:
    """Impedance of ``circuit`` with named ``params`` at ``frequency`` (Hz).

    Parameters
    ----------
    circuit : str
        Circuit string, e.g. ``"R0-p(R1,CPE1)"``.
    params : dict
        Every parameter by name, e.g. ``{"R0": 100, "R1": 1e8, "CPE1_0": 1e-10, "CPE1_1": 0.9}``.
    frequency : array_like
        Frequencies in Hz.

    Returns
    -------
    ndarray of complex
    """
    compiled = CompiledCircuit(circuit)
    missing = [name for name in compiled.param_names if name not in params]
    extra = [name for name in params if name not in compiled.param_names]
    if missing or extra:
        raise ValueError(
            f"circuit {circuit!r} has parameters {compiled.param_names};"
            f" missing {missing}, unknown {extra}"
        )
    return compiled.impedance([params[name] for name in compiled.param_names], frequency)
