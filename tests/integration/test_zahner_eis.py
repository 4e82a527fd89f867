"""ZahnerEIS on the Term emulator: bluesky documents, the Arrhenius law, single points."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.plans import count
from scipy.optimize import least_squares

from insitu import clock
from insitu.devices.zahner import ZahnerEIS
from insitu.sim.film_impedance import FILM_750C, FilmImpedance
from insitu.sim.sample_conductivity import BOLTZMANN_EV, KELVIN
from insitu.sim.thales_term import TermEmulator

SPEEDUP = 1000.0


class StageTemperature:
    """A stage held at a fixed temperature that the test changes."""

    def __init__(self, celsius: float) -> None:
        self.celsius = celsius

    def __call__(self) -> float:
        return self.celsius


@pytest.fixture(scope="module")
def stage() -> StageTemperature:
    return StageTemperature(100.0)


@pytest.fixture(scope="module")
def term(stage: StageTemperature) -> Iterator[TermEmulator]:
    clock.set_speedup(SPEEDUP)
    emulator = TermEmulator(FilmImpedance(temperature=stage, seed=7))
    emulator.serve_tcp(0)
    try:
        yield emulator
    finally:
        emulator.close()
        clock.set_speedup(1.0)


@pytest.fixture(scope="module")
def eis(term: TermEmulator) -> Iterator[ZahnerEIS]:
    device = ZahnerEIS(f"TCPIP::127.0.0.1::{term.port}::SOCKET", name="eis")
    yield device
    device.destroy()
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith(("eis", "zahner"))]
    assert leftovers == []


def fit_film_resistance(frequency: np.ndarray, z: np.ndarray) -> float:
    """R1 of R0-p(R1,CPE1)-CPE2, least squares on log parameters, residuals relative to |Z|."""
    omega = 2 * math.pi * frequency

    def model(p: np.ndarray) -> np.ndarray:
        r0, r1, q1, q2 = 10.0 ** p[:4]
        a1, a2 = p[4:]
        film = r1 / (1 + r1 * q1 * (1j * omega) ** a1)
        return r0 + film + 1 / (q2 * (1j * omega) ** a2)

    def residuals(p: np.ndarray) -> np.ndarray:
        difference = (model(p) - z) / np.abs(z)
        return np.concatenate([difference.real, difference.imag])

    # Start from the real part where the film arc meets the electrode spike (min of -Z'').
    guess_r1 = float(z.real[np.argmin(np.abs(z.imag))])
    start = np.array([1.0, math.log10(guess_r1), -10.0, -7.0, 0.85, 0.85])
    bounds = ([-2, 2, -14, -10, 0.5, 0.5], [4, 11, -6, -3, 1.0, 1.0])
    result = least_squares(residuals, start, bounds=bounds, x_scale="jac")
    assert result.success
    return 10.0 ** result.x[1]


def test_count_stores_spectra_and_follows_the_activation_energy(eis, term, stage):
    documents: list[tuple[str, dict]] = []
    run_engine = RunEngine({})
    run_engine.subscribe(lambda name, doc: documents.append((name, doc)))
    fitted = {}
    for celsius in (100.0, 300.0):
        stage.celsius = celsius
        documents.clear()
        began = clock.now()
        run_engine(count([eis]))
        passed = clock.now() - began
        (descriptor,) = [doc for name, doc in documents if name == "descriptor"]
        (event,) = [doc for name, doc in documents if name == "event"]
        keys = descriptor["data_keys"]
        frequency = np.asarray(event["data"]["eis_frequency"])
        z = np.asarray(event["data"]["eis_z_real"]) + 1j * np.asarray(event["data"]["eis_z_imag"])
        for field, units in (("eis_frequency", "Hz"), ("eis_z_real", "Ohm"), ("eis_z_imag", "Ohm")):
            assert keys[field]["dtype"] == "array"
            assert keys[field]["shape"] == [frequency.size]
            assert keys[field]["units"] == units
        # 1 MHz to 0.1 Hz, 10 points/decade above 66 Hz and 5 below.
        assert frequency.size == 57
        assert frequency.min() == pytest.approx(0.1) and frequency.max() == pytest.approx(1e6)
        # The sweep took experiment time like a real one: periods per point plus overhead.
        # (At most the experiment time the count took: the wire's latency is in both, and a
        # loaded machine's at 1000x is minutes.)
        assert 100.0 < event["data"]["eis_sweep_duration"] <= passed
        config = descriptor["configuration"]["eis"]["data"]
        assert config["eis_amplitude"] == 0.05 and config["eis_f_max"] == 1e6
        fitted[celsius] = fit_film_resistance(frequency, z)
    assert not term.potentiostat_on

    # sigma*T is Arrhenius: R100/R300 = (T100/T300) exp(Ea/k (1/T100 - 1/T300)) = 26.9 for 0.343 eV.
    ea = FILM_750C.activation_energy_eV
    t100, t300 = 100 + KELVIN, 300 + KELVIN
    expected = t100 / t300 * math.exp(ea / BOLTZMANN_EV * (1 / t100 - 1 / t300))
    assert fitted[100.0] / fitted[300.0] == pytest.approx(expected, rel=0.05)
    model = term.impedance_model
    assert fitted[300.0] == pytest.approx(model.film_resistance_ohm(300.0), rel=0.05)


def test_describe_predicts_the_number_of_points_before_a_sweep(eis, term):
    eis.points_per_decade_upper.set(5).wait(1)
    try:
        predicted = eis.describe()["eis_z_real"]["shape"]
        eis.trigger().wait(30)
        assert predicted == [eis.z_real.get().size]
        assert eis.describe()["eis_frequency"]["shape"] == predicted
    finally:
        eis.points_per_decade_upper.set(10).wait(1)


def test_a_sweep_says_when_it_should_end_from_the_periods_then_from_the_fastest_seen(eis, term):
    """For a simulation's held time (issue 17): wire chatter first (the end is now: time goes
    on at the slow rate), then the measuring, expected to take its periods (a lower bound) the
    first time and then the fastest measuring of the same settings the analyzer has done."""
    import time

    eis.f_min.set(10.0).wait(1)
    try:
        settings = eis.sweep_settings()

        def measuring_expected(status, started_at):
            """How long after it began measuring the sweep said it ends (the commands before it
            take a loaded machine's time: not counted)."""
            deadline = time.monotonic() + 10.0
            while clock.expected_end(status) == started_at and not status.done:
                assert time.monotonic() < deadline, "the sweep never said when it ends"
                time.sleep(0.001)
            said_at = clock.now()  # the measuring began before this
            return clock.expected_end(status) - started_at, clock.expected_end(status) - said_at

        first = eis.trigger()
        started_at = eis._current.started_at
        assert clock.expected_end(first) == started_at  # chatter: nothing to wait for yet
        since_trigger, since_said = measuring_expected(first, started_at)
        shortest = settings.shortest_duration_s()
        assert shortest <= since_trigger and since_said <= shortest
        first.wait(30)
        fastest = eis._fastest_sweep_s[settings]
        assert fastest == eis.sweep_duration.get() and shortest < fastest
        assert clock.expected_end(first) <= clock.now()  # reading the file back: chatter again
        second = eis.trigger()
        since_trigger, since_said = measuring_expected(second, eis._current.started_at)
        assert fastest <= since_trigger and since_said <= fastest
        second.wait(30)
        assert eis._fastest_sweep_s[settings] <= fastest
    finally:
        eis.f_min.set(0.1).wait(1)


def test_measure_point_gives_the_single_frequency_impedance(eis, term, stage):
    stage.celsius = 300.0
    term.clear_record()
    z = eis.measure_point(1000.0)
    expected = term.impedance_model.impedance(1000.0, 300.0)
    assert isinstance(z, complex)
    assert abs(z - expected) / abs(expected) < 0.05
    sent = term.received_commands
    assert "IMPEDANCE" in sent and sent[-1] == "Pot=0"
    assert [on for _, on in term.potentiostat_log] == [True, False]


def test_the_device_reconnects_after_the_connection_is_closed(eis, term):
    eis.close()
    eis.trigger().wait(30)
    assert eis.z_real.get().size == 57
    assert eis.thales_version == term.thales_version
