"""The LabSpec 6 emulator on loopback TCP, driven by the real client.

With ``--device-address labspec6=HOST:PORT`` the tests that use ``client`` (and are not
emulator_only) run against that LabSpec 6 instead (docs/real_instruments.md).
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from insitu import clock
from insitu.devices.raman import (
    LabSpec6Backend,
    LabSpec6Client,
    LabSpec6Error,
    parse_socket_address,
    raman_shift_cm1,
)
from insitu.sim.labspec6 import LabSpec6Emulator
from insitu.sim.sample import GarnetFilm, post_annealed_film

pytestmark = pytest.mark.instrument("labspec6")

FAULT = "injects a fault into the emulator"
EMULATOR_CONFIG = (
    "asserts the emulator's configuration (532 nm laser, gratings 300/600/1800, filters "
    "100/50/25 %, 1600 pixels over 50-1000 cm-1, 1 s x 1 at start); a real LabSpec 6 has the lab's"
)


@pytest.fixture
def fast_clock() -> Iterator[None]:
    previous = clock.speedup()
    clock.set_speedup(1000.0)
    yield
    clock.set_speedup(previous)


@pytest.fixture
def emulator(fast_clock) -> Iterator[LabSpec6Emulator]:
    film = GarnetFilm()
    with LabSpec6Emulator(film, lambda: 25.0, seed=1) as emu:
        yield emu


@pytest.fixture
def labspec6_emulator(emulator) -> LabSpec6Emulator:
    """The emulator ``labspec6_address`` serves when no real LabSpec 6 is given."""
    return emulator


@pytest.fixture
def client(labspec6_address) -> Iterator[LabSpec6Client]:
    host, port = parse_socket_address(labspec6_address)
    client = LabSpec6Client.connect(host, port, timeout_s=2.0)
    yield client
    client.close()


@pytest.mark.emulator_only(EMULATOR_CONFIG)
def test_greeting_and_parameters(client):
    assert "LabSpec6" in client.controller_id
    assert client.get_param("LaserWavelength") == (532.0, [])
    assert client.get_param("Grating") == (0.0, ["300", "600", "1800"])
    assert client.get_param("Filter")[1][:3] == ["100", "50", "25"]
    client.set_param("Exposure", 2.5)
    client.set_param("Accumulations", 4)
    assert client.acquisition_time_s() == 10.0


@pytest.mark.emulator_only(
    "asserts the emulator's error wording and its 1 s x 1 default acquisition time"
)
def test_unknown_parameter_and_bad_values_are_errors(client):
    with pytest.raises(LabSpec6Error, match="Unknown"):
        client.get_param("Temperature")
    with pytest.raises(LabSpec6Error, match="out of range"):
        client.set_param("Exposure", -1)
    with pytest.raises(LabSpec6Error, match="index"):
        client.set_param("Grating", 7)
    assert client.command("Dance") == ["Error", "Unknown", "command", "Dance"]
    assert client.acquisition_time_s() == 1.0  # nothing was applied


def test_binning_quirk_errs_but_applies(client):
    with pytest.raises(LabSpec6Error, match="Binning"):
        client.set_param("Binning", 2)
    assert client.get_param("Binning")[0] == 2.0


@pytest.mark.emulator_only(EMULATOR_CONFIG)
def test_axis_is_nm_and_maps_to_the_default_raman_range(client):
    axis_nm = client.spectral_axis()
    assert axis_nm.size == 1600
    assert np.all(np.diff(axis_nm) > 0)
    shift = raman_shift_cm1(axis_nm, 532.0)
    assert shift[0] == pytest.approx(50.0, abs=0.01)
    assert shift[-1] == pytest.approx(1000.0, abs=0.01)


def test_moving_the_spectrometer_moves_the_axis(client):
    centre = client.get_param("Spectro")[0]
    client.set_param("Spectro", centre + 10.0)
    assert client.spectral_axis().mean() == pytest.approx(centre + 10.0, abs=1e-3)


@pytest.mark.emulator_only(
    "counts the emulator's measurements; needs its 1000x clock for 6 s of exposure"
)
def test_point_list_and_measurement(client, emulator):
    client.set_param("Exposure", 3.0)
    client.set_param("Accumulations", 2)
    client.set_point_list([(0, 0), (0, 0)])
    client.set_active_point(0)
    started = clock.now()
    counts = client.start_measurement(0, timeout_s=5.0)
    assert clock.now() - started >= 6.0  # exposure x accumulations of experiment time
    assert counts.shape == (1600,)
    assert emulator.measurements == 1
    with pytest.raises(LabSpec6Error, match="does not exist"):
        client.set_active_point(5)


@pytest.mark.emulator_only("calls the emulator's message handler directly")
def test_point_list_byte_count_is_checked(emulator):
    session: dict = {}
    assert emulator.handle_command("0 SetPointList 1 9", session) == ["0 OK Ready to receive"]
    assert emulator.handle_command("0 0", session) == [
        "0 Error received 3 bytes of points, announced 9"
    ]
    assert emulator.handle_command("1 SetActivePoint 0", session) == ["1 OK"]


@pytest.mark.emulator_only("changes the simulated stage temperature under the simulated film")
def test_measures_the_film_at_the_stage_temperature(fast_clock):
    film, _ = post_annealed_film(750.0)
    stage = {"temperature": 25.0}
    with LabSpec6Emulator(film, lambda: stage["temperature"], seed=2) as emu:
        backend = LabSpec6Backend.connect("127.0.0.1", emu.serve_tcp(), timeout_s=2.0)
        backend.configure(10.0, 1, 10.0)
        axis, cold = backend.acquire()
        stage["temperature"] = 700.0
        _, hot = backend.acquire()
        backend.close()
    window = np.abs(axis - 653.0) < 15.0
    # Cubic garnet A1g: present, red-shifted and weaker-backgrounded when hot.
    assert axis[window][np.argmax(cold[window])] > axis[window][np.argmax(hot[window])]
    assert cold[window].max() > 3 * np.median(cold)


@pytest.mark.emulator_only(
    "needs the 1000x clock for 2 x 10 s exposures and a sample whose median scales with the "
    "laser (no dark counts or background); it also fires the laser at full power"
)
def test_laser_filter_scales_the_signal(client):
    client.set_param("Exposure", 10.0)
    full = client.start_measurement(0, timeout_s=5.0)
    client.set_param("Filter", 3)  # 10 %
    dim = client.start_measurement(0, timeout_s=5.0)
    assert np.median(dim) == pytest.approx(0.1 * np.median(full), rel=0.15)


# --- faults ---------------------------------------------------------------------------------------
@pytest.mark.emulator_only(FAULT)
def test_fault_no_reply_times_out_then_recovers(emulator):
    port = emulator.serve_tcp()
    client = LabSpec6Client.connect("127.0.0.1", port, timeout_s=0.3)
    emulator.inject_fault("no_reply")
    with pytest.raises(TimeoutError):
        client.get_param("Slit")
    emulator.clear_fault()
    client.close()
    fresh = LabSpec6Client.connect("127.0.0.1", port, timeout_s=2.0)
    assert fresh.get_param("Slit")[0] == 100.0
    fresh.close()


@pytest.mark.emulator_only(FAULT)
def test_fault_error(client, emulator):
    emulator.inject_fault("error")
    with pytest.raises(LabSpec6Error, match="injected fault"):
        client.set_param("Exposure", 1.0)
    emulator.clear_fault()
    client.set_param("Exposure", 1.0)


@pytest.mark.emulator_only(FAULT)
def test_fault_garbage(client, emulator):
    emulator.inject_fault("garbage")
    with pytest.raises(LabSpec6Error):
        client.get_param("Slit")


@pytest.mark.emulator_only(FAULT)
def test_fault_disconnect(emulator):
    port = emulator.serve_tcp()
    client = LabSpec6Client.connect("127.0.0.1", port, timeout_s=2.0)
    emulator.inject_fault("disconnect")
    with pytest.raises(ConnectionError):
        client.get_param("Slit")
    client.close()
    with pytest.raises(ConnectionError):
        LabSpec6Client.connect("127.0.0.1", port, timeout_s=1.0)
    emulator.clear_fault()
    LabSpec6Client.connect("127.0.0.1", port, timeout_s=2.0).logout()


@pytest.mark.emulator_only("tests the emulator's fault injection itself")
def test_unknown_fault_is_rejected(emulator):
    with pytest.raises(ValueError, match="not one of"):
        emulator.inject_fault("fire")


@pytest.mark.emulator_only("calls the emulator's message handler directly")
def test_malformed_message_gets_an_error_reply(emulator):
    assert emulator.handle_command("hello", {}) == ["hello Error malformed message"]


@pytest.mark.emulator_only("closes the emulator in the middle of an acquisition")
def test_close_cancels_a_running_acquisition(fast_clock):
    clock.set_speedup(1.0)
    emu = LabSpec6Emulator(GarnetFilm(), lambda: 25.0)
    client = LabSpec6Client.connect("127.0.0.1", emu.serve_tcp(), timeout_s=5.0)
    client.set_param("Exposure", 3600.0)
    client._stream.send(b"1 StartRamanMeasurement 0")  # noqa: SLF001 - do not wait for it
    emu.close()
    with pytest.raises(ConnectionError):
        client._stream.read_line(5.0)  # noqa: SLF001
    client.close()


@pytest.mark.emulator_only("starts the emulator's standalone server in a subprocess")
def test_serve_standalone_until_ctrl_c():
    code = (
        "from insitu.sim.labspec6 import serve_standalone; "
        "serve_standalone(port=0, speedup=100.0, temperature_C=30.0, seed=1)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        banner = process.stderr.readline()
        port = int(re.search(r":(\d+) ", banner).group(1))
        backend = LabSpec6Backend.connect("127.0.0.1", port, timeout_s=5.0)
        backend.configure(1.0, 1, 10.0)
        axis, counts = backend.acquire()
        backend.close()
        assert counts.shape == axis.shape == (1600,)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        process.stderr.close()


@pytest.mark.emulator_only("reseeds the simulated film's noise and Raman variation")
def test_a_campaign_sample_is_measured_the_same_whatever_was_measured_before(fast_clock):
    """Sample 2 of a campaign: the same spectrum after samples 0 and 1 as on a process that
    starts with it (a campaign resumed after a crash), and not the same as an unkeyed film."""
    film, _ = post_annealed_film(650.0)

    def spectra(keys):
        with LabSpec6Emulator(film, lambda: 25.0, seed=4, variation=1.0) as emu:
            # the laser's slow drift follows the clock, which a loaded machine moves on between
            # spectra: without it, the same draws give the same counts
            emu.instrument = dataclasses.replace(emu.instrument, laser_drift=0.0)
            backend = LabSpec6Backend.connect("127.0.0.1", emu.serve_tcp(), timeout_s=2.0)
            backend.configure(1.0, 1, 10.0)
            measured = []
            for key in keys:
                emu.new_sample(film, key=key)
                measured.append(backend.acquire()[1])
            backend.close()
        return measured

    after_two = spectra([0, 1, 2])[-1]
    (first,) = spectra([2])
    np.testing.assert_array_equal(after_two, first)
    (unkeyed,) = spectra([None])
    assert np.max(np.abs(unkeyed / first - 1.0)) > 0.05  # other noise: shot noise alone is ~5 %
