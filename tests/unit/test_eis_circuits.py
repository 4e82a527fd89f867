"""Circuit strings: impedance.py's syntax and names, its values, analytic Jacobian, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from impedance.models.circuits import CustomCircuit

from insitu.analysis.eis import ELEMENT_TYPES, circuit_impedance, parse_circuit

FREQUENCY = np.logspace(6, -1, 61)

CIRCUITS = [
    ("R1", [1e3]),
    ("p(R1,C1)", [1e6, 1e-9]),
    ("R0-p(R1,CPE1)", [100.0, 1e7, 1e-10, 0.9]),
    ("p(R1,CPE1)-CPE2", [1e7, 1e-10, 0.9, 1e-7, 0.7]),
    ("R0-p(R1,CPE1)-CPE2", [50.0, 1e6, 2e-10, 0.85, 1e-7, 0.75]),
    ("L0-R0-p(R1,C1)-W1", [1e-6, 10.0, 1e4, 1e-8, 300.0]),
    ("R0-p(R1-Wo1,C1)-Ws1", [10.0, 1e3, 50.0, 0.5, 1e-6, 20.0, 3.0]),
    ("p(R1,p(R2,CPE1),C2)", [1.0, 2.0, 1e-3, 0.8, 1e-4]),
    ("p(R1-p(R2,C2),C1)-p(R3,CPE3)", [1.0, 2.0, 1e-3, 1e-6, 3.0, 1e-2, 0.7]),
]


@pytest.mark.parametrize(("circuit", "values"), CIRCUITS)
def test_values_and_parameter_names_match_impedance_py(circuit, values):
    reference = CustomCircuit(circuit, initial_guess=values)
    compiled = parse_circuit(circuit)
    assert list(compiled.param_names) == reference.get_param_names()[0]
    with pytest.warns(UserWarning, match="initial parameters"):
        expected = reference.predict(FREQUENCY, use_initial=True)
    np.testing.assert_allclose(compiled.impedance(values, FREQUENCY), expected, rtol=1e-12)


@pytest.mark.parametrize(("circuit", "values"), CIRCUITS)
def test_analytic_jacobian_matches_finite_differences(circuit, values):
    compiled = parse_circuit(circuit)
    omega = 2 * np.pi * FREQUENCY
    z, jacobian = compiled.impedance_and_jacobian(values, omega)
    assert jacobian.shape == (len(values), FREQUENCY.size)
    for index, value in enumerate(values):
        step = 1e-6 * value
        shifted = list(values)
        shifted[index] += step
        z_shifted, _ = compiled.impedance_and_jacobian(shifted, omega, with_jacobian=False)
        numeric = (z_shifted - z) / step
        scale = np.max(np.abs(jacobian[index]))
        assert np.max(np.abs(numeric - jacobian[index])) < 1e-4 * scale, compiled.param_names[index]


def test_warburg_elements_stay_finite_at_large_arguments():
    compiled = parse_circuit("Wo1-Ws1")
    omega = 2 * np.pi * np.logspace(7, -3, 50)
    with np.errstate(all="raise"):
        z, jacobian = compiled.impedance_and_jacobian([1e3, 1e4, 1e3, 1e4], omega)
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(jacobian))


def test_named_parameters_and_units():
    compiled = parse_circuit("R0 - p(R1, CPE1)")
    assert compiled.circuit == "R0-p(R1,CPE1)"
    assert compiled.param_names == ("R0", "R1", "CPE1_0", "CPE1_1")
    assert compiled.units["CPE1_1"] == "" and compiled.units["R1"] == "Ohm"
    assert compiled.default_bounds["CPE1_1"] == (0.1, 1.0)
    z = circuit_impedance(
        "R0-p(R1,CPE1)", {"R0": 1.0, "R1": 2.0, "CPE1_0": 1.0, "CPE1_1": 1.0}, [1e-12]
    )
    assert z[0] == pytest.approx(3.0, rel=1e-9)
    assert set(ELEMENT_TYPES) == {"R", "C", "L", "CPE", "W", "Wo", "Ws"}


@pytest.mark.parametrize(
    ("circuit", "message"),
    [
        ("", "empty"),
        ("R1-X2", "unknown element 'X2'.*R, C, L, CPE, W"),
        ("p(R1,C1", "expected '\\)'"),
        ("p(R1)", "at least two branches"),
        ("R1-R1", "used twice"),
        ("R1-", "expected 'element'"),
        ("R1*C1", "unexpected character '\\*'"),
        ("R1)C1", "unexpected"),
    ],
)
def test_malformed_circuits_raise_a_clear_value_error(circuit, message):
    with pytest.raises(ValueError, match=message):
        parse_circuit(circuit)


def test_wrong_number_of_values_and_missing_names_are_reported():
    compiled = parse_circuit("p(R1,C1)")
    with pytest.raises(ValueError, match="takes 2 parameters"):
        compiled.impedance([1.0], FREQUENCY)
    with pytest.raises(ValueError, match="missing \\['C1'\\]"):
        circuit_impedance("p(R1,C1)", {"R1": 1.0}, FREQUENCY)
    with pytest.raises(ValueError, match="must be a string"):
        parse_circuit(42)
