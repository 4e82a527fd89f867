"""The unmodified thales_remote library, used directly, against the Term emulator on port 260.

Both tests need the emulator: they are skipped with ``--device-address term=...``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from thales_remote.connection import ThalesRemoteConnection
from thales_remote.error import ThalesRemoteError
from thales_remote.file_interface import ThalesFileInterface
from thales_remote.script_wrapper import (
    FileNaming,
    PotentiostatMode,
    ScanDirection,
    ScanStrategy,
    ThalesRemoteScriptWrapper,
)
from zahner_analysis.file_import.ism_import import IsmImport

from insitu import clock
from insitu.devices.zahner import ZahnerEIS, ZahnerError, sweep_point_count
from insitu.sim.thales_term import TERM_PORT, TermEmulator

pytestmark = pytest.mark.instrument("term")


@pytest.fixture
def term_on_260() -> Iterator[TermEmulator]:
    """The emulator on Term's own port: ThalesFileInterface cannot be pointed anywhere else."""
    clock.set_speedup(1000.0)
    emulator = TermEmulator(seed=11)
    try:
        if emulator.serve_tcp() != TERM_PORT:
            pytest.skip("port 260 cannot be bound here (needs root and a free port)")
        yield emulator
    finally:
        emulator.close()
        clock.set_speedup(1.0)


@pytest.mark.emulator_only(
    "reads the emulator's potentiostat state and impedance model, and needs its 1000x clock for "
    "a sweep down to 0.1 Hz (minutes on a real cell, with the potentiostat on)"
)
@pytest.mark.allow_slow(
    "EIS sweeps to 0.1 Hz: minutes of experiment time at the speed-up (issue 17)"
)
def test_unmodified_library_runs_an_eis_sweep_and_gets_the_ism_file(term_on_260):
    term = term_on_260
    connection = ThalesRemoteConnection()
    connection.connectToTerm("127.0.0.1", "ScriptRemote")
    zennium = ThalesRemoteScriptWrapper(connection)  # passes the library's version check
    files = ThalesFileInterface("127.0.0.1")
    try:
        zennium.forceThalesIntoRemoteScript()
        assert zennium.getThalesVersion() == term.thales_version
        assert zennium.getWorkstationHeartBeat(timeout=2) >= 0.0
        files.enableAutomaticFileExchange()

        zennium.setEISOutputPath(r"C:\THALES\temp")
        zennium.setEISNaming(FileNaming.INDIVIDUAL)
        zennium.setEISOutputFileName("myeis")
        zennium.setPotentiostatMode(PotentiostatMode.POTMODE_POTENTIOSTATIC)
        zennium.setAmplitude(50e-3)
        zennium.setPotential(0)
        zennium.setLowerFrequencyLimit(0.1)
        zennium.setStartFrequency(1e4)
        zennium.setUpperFrequencyLimit(1e6)
        zennium.setLowerNumberOfPeriods(3)
        zennium.setLowerStepsPerDecade(5)
        zennium.setUpperNumberOfPeriods(20)
        zennium.setUpperStepsPerDecade(10)
        zennium.setScanDirection(ScanDirection.START_TO_MAX)
        zennium.setScanStrategy(ScanStrategy.SINGLE_SINE)
        zennium.enablePotentiostat()
        assert term.potentiostat_on
        zennium.measureEIS()
        zennium.disablePotentiostat()
        assert not term.potentiostat_on

        # Out of range for the instrument: Thales' error reply becomes ThalesRemoteError.
        with pytest.raises(ThalesRemoteError, match=r"ERROR;100;1"):
            zennium.setUpperFrequencyLimit(5e6)
        z = zennium.getImpedance(1000.0, 0.05, 10)
        assert isinstance(z, complex) and z.real > 0 and z.imag < 0

        for _ in range(100):  # the automatic exchange delivers in the library's worker thread
            if files.getReceivedFiles():
                break
            threading.Event().wait(0.05)
        (pushed,) = files.getReceivedFiles()
        files.disableAutomaticFileExchange()
        fetched = files.acquireFile(r"C:\THALES\temp\myeis.ism")
    finally:
        files.close()
        connection.disconnectFromTerm()

    assert pushed.name == "myeis.ism" and bytes(pushed.binaryData) == bytes(fetched.binaryData)
    ism = IsmImport(bytes(fetched.binaryData))
    assert ism.getAmplitude() == pytest.approx(0.05)
    frequency = ism.getFrequencyArray()
    # The requested range, with the requested steps per decade above and below 66 Hz; the
    # first leg (10 kHz up to 1 MHz) was measured twice and IsmImport leaves it out.
    assert frequency.min() == pytest.approx(0.1) and frequency.max() == pytest.approx(1e6)
    assert frequency.size == sweep_point_count(0.1, 1e6, 10, 5) == 57
    assert ism.getNumberOfSamples() == 57 + 20
    steps = np.diff(np.log10(frequency))
    upper, lower = steps[frequency[1:] > 66.0], steps[frequency[1:] <= 66.0]
    assert np.allclose(1 / upper, 10, rtol=0.05) and np.allclose(1 / lower, 5, rtol=0.05)
    z = ism.getComplexImpedanceArray()
    assert np.all(np.isfinite(z)) and np.all(z.imag < 0)
    assert math.isclose(abs(z[-1]), abs(term.impedance_model.impedance(1e6, 25.0)), rel_tol=0.05)


@pytest.mark.emulator_only("needs a Term that reports Thales 5.8.0, and reads its command log")
def test_too_old_thales_is_refused_with_a_clear_error():
    with TermEmulator(thales_version="5.8.0") as term:
        port = term.serve_tcp(0)
        eis = ZahnerEIS(f"127.0.0.1:{port}", name="eis")
        try:
            with pytest.raises(
                ZahnerError, match=r"eis: Term at 127.0.0.1:\d+: .*at least version"
            ):
                eis.connect()
        finally:
            eis.destroy()
        assert term.received_commands == []
