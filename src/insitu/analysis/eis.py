"""Public namespace of the impedance (EIS) analysis: circuits, fits, film conductivity, KK test."""

from insitu.analysis.arrhenius import ArrheniusFit, fit_arrhenius
from insitu.analysis.eis_circuits import (
    ELEMENT_TYPES,
    CompiledCircuit,
    circuit_impedance,
    parse_circuit,
)
from insitu.analysis.eis_film import FILM_MODELS, FilmFit, FilmGeometry, conductivity, fit_film
from insitu.analysis.eis_fit import CircuitFit, fit_circuit
from insitu.analysis.kramers_kronig import KKResult, estimate_relative_noise, kramers_kronig

__all__ = [
    "ELEMENT_TYPES",
    "FILM_MODELS",
    "ArrheniusFit",
    "CircuitFit",
    "CompiledCircuit",
    "FilmFit",
    "FilmGeometry",
    "KKResult",
    "circuit_impedance",
    "conductivity",
    "estimate_relative_noise",
    "fit_arrhenius",
    "fit_circuit",
    "fit_film",
    "kramers_kronig",
    "parse_circuit",
]
