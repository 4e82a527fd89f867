"""LabSpec 6 client and backend against exact scripted exchanges (reference/labspec6.md)."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.devices.raman import (
    LabSpec6Backend,
    LabSpec6Client,
    LabSpec6Error,
    parse_socket_address,
    raman_shift_cm1,
)

GREETING = b"0 OK LabSpec6 test server\r\n"


class ScriptedStream:
    """A ByteStream replaying (sent, reply) pairs; ``sent=None`` marks an unprompted reply.

    Anything sent that the script does not expect, a read with no reply scripted, or a leftover
    exchange fails the test.
    """

    def __init__(self, script: list[tuple[bytes | None, bytes | None]]) -> None:
        self.script = list(script)
        self.pending = bytearray()
        self.closed = False

    def send(self, data: bytes) -> None:
        assert self.script, f"unexpected message {data!r}: the script is finished"
        expected, reply = self.script.pop(0)
        assert data == expected, f"sent {data!r}, script expects {expected!r}"
        if reply is not None:
            self.pending += reply

    def read_line(self, timeout_s: float) -> bytes:
        if not self.pending and self.script and self.script[0][0] is None:
            self.pending += self.script.pop(0)[1] or b""
        end = self.pending.find(b"\r\n")
        if end < 0:
            raise TimeoutError(f"no scripted reply within {timeout_s} s")
        line = bytes(self.pending[:end])
        del self.pending[: end + 2]
        return line

    def close(self) -> None:
        self.closed = True

    def check(self) -> None:
        assert not self.script, f"exchanges left over: {self.script}"
        assert not self.pending, f"replies never read: {bytes(self.pending)!r}"


def client_for(
    *exchanges: tuple[bytes | None, bytes | None],
) -> tuple[LabSpec6Client, ScriptedStream]:
    stream = ScriptedStream([(None, GREETING), *exchanges])
    return LabSpec6Client(stream, timeout_s=1.0), stream


# --- framing and replies --------------------------------------------------------------------------
def test_greeting_gives_controller_id_and_ids_count_from_zero():
    client, stream = client_for(
        (b"0 SetRamanParameter Exposure 1.5", b"0 OK\r\n"),
        (b"1 SetRamanParameter Accumulations 3", b"1 OK\r\n"),
    )
    assert client.controller_id == "LabSpec6 test server"
    client.set_param("Exposure", 1.5)
    client.set_param("Accumulations", 3)
    stream.check()


def test_greeting_without_ok_is_rejected():
    with pytest.raises(LabSpec6Error, match="greeting"):
        LabSpec6Client(ScriptedStream([(None, b"0 BUSY\r\n")]), timeout_s=1.0)


def test_get_param_value_and_choices():
    client, stream = client_for(
        (b"0 GetRamanParam Grating", b"0 1 300#600#1800#\r\n"),
        (b"1 GetRamanParam AcquisitionTime", b"1 12.5\r\n"),
    )
    assert client.get_param("Grating") == (1.0, ["300", "600", "1800"])
    assert client.acquisition_time_s() == 12.5
    stream.check()


@pytest.mark.parametrize("reply", [b"0 Unknown\r\n", b"0 Error not now\r\n", b"0 OK\r\n"])
def test_get_param_error_replies_raise(reply):
    client, stream = client_for((b"0 GetRamanParam Slit", reply))
    with pytest.raises(LabSpec6Error, match="GetRamanParam Slit"):
        client.get_param("Slit")
    stream.check()


def test_set_param_error_raises():
    client, _ = client_for((b"0 SetRamanParameter Binning 2", b"0 Error Binning\r\n"))
    with pytest.raises(LabSpec6Error, match="Binning"):
        client.set_param("Binning", 2)


def test_reply_with_wrong_id_raises():
    client, _ = client_for((b"0 SetRamanParameter Exposure 2", b"7 OK\r\n"))
    with pytest.raises(LabSpec6Error, match="id 0"):
        client.set_param("Exposure", 2)


def test_array_reply_is_parsed_and_its_count_checked():
    client, stream = client_for(
        (b"0 EnableSpectralResponse", b"0 OK 3 533.5 540.25 547\r\n"),
        (b"1 StartRamanMeasurement 0", b"1 OK 3 10 20\r\n"),
    )
    assert client.spectral_axis().tolist() == [533.5, 540.25, 547.0]
    with pytest.raises(LabSpec6Error, match="announces 3 values but carries 2"):
        client.start_measurement(0, timeout_s=1.0)
    stream.check()


def test_non_ascii_reply_raises():
    client, _ = client_for((b"0 SetActivePoint 0", b"\xff\xfe junk\r\n"))
    with pytest.raises(LabSpec6Error, match="not ASCII"):
        client.set_active_point(0)


def test_silent_server_times_out():
    client, _ = client_for((b"0 SetActivePoint 0", None))
    with pytest.raises(TimeoutError):
        client.set_active_point(0)


def test_arguments_must_be_single_finite_words():
    client, stream = client_for()
    with pytest.raises(ValueError, match="one word"):
        client.set_param("Exposure", "1 2")
    with pytest.raises(ValueError, match="finite"):
        client.set_param("Exposure", float("nan"))
    stream.check()


# --- the SetPointList exchange --------------------------------------------------------------------
def test_set_point_list_exchange():
    client, stream = client_for(
        (b"0 SetPointList 2 6", b"0 OK Ready to receive\r\n"),
        (b"0 0", b"0 OK Point 0\r\n"),
        (b"0 0", b"0 OK 2 points\r\n"),
    )
    client.set_point_list([(0, 0), (0, 0)])
    stream.check()


def test_set_point_list_refused_point_raises():
    client, _ = client_for(
        (b"0 SetPointList 2 11", b"0 OK Ready to receive\r\n"),
        (b"1.5 2", b"0 Error bad point\r\n"),
    )
    with pytest.raises(LabSpec6Error, match="point 0"):
        client.set_point_list([(1.5, 2), (3.25, 4)])


def test_logout_closes_the_stream():
    client, stream = client_for((b"0 Logout", b"0 OK\r\n"))
    client.logout()
    assert stream.closed
    stream.check()


# --- the backend's whole sequence -----------------------------------------------------------------
AXIS_NM = [533.418, 547.655, 561.893]
AXIS_REPLY = b" ".join(f"{v}".encode() for v in AXIS_NM)


def test_backend_configure_and_acquire_sequence():
    client, stream = client_for(
        # configure: filter list once, then exposure, accumulations (cannot be read back), filter
        (b"0 GetRamanParam Filter", b"0 0 100#50#25#10#1\r\n"),
        (b"1 SetRamanParameter Exposure 2.0", b"1 OK\r\n"),
        (b"2 SetRamanParameter Accumulations 3", b"2 OK\r\n"),
        (b"3 SetRamanParameter Filter 1", b"3 OK\r\n"),
        # the reference client's acquisition sequence (plus a laser-wavelength check)
        (b"4 GetRamanParam AcquisitionTime", b"4 6\r\n"),
        (b"5 GetRamanParam LaserWavelength", b"5 532\r\n"),
        (b"6 SetPointList 2 6", b"6 OK Ready to receive\r\n"),
        (b"0 0", b"6 OK Point 0\r\n"),
        (b"0 0", b"6 OK\r\n"),
        (b"7 EnableSpectralResponse", b"7 OK 3 " + AXIS_REPLY + b"\r\n"),
        (b"8 SetActivePoint 0", b"8 OK\r\n"),
        (b"9 StartRamanMeasurement 0", b"9 OK 3 100.5 200 300\r\n"),
        # a second spectrum only starts a measurement
        (b"10 StartRamanMeasurement 0", b"10 OK 3 1 2 3\r\n"),
        (b"11 Logout", b"11 OK\r\n"),
    )
    backend = LabSpec6Backend(client, laser_wavelength_nm=532.0, full_laser_power_mW=10.0)
    backend.configure(2.0, 3, 5.0)
    axis, counts = backend.acquire()
    assert counts.tolist() == [100.5, 200.0, 300.0]
    assert axis == pytest.approx(raman_shift_cm1(np.array(AXIS_NM), 532.0))
    assert axis[0] == pytest.approx(50.0, abs=0.1) and axis[-1] == pytest.approx(1000.0, abs=0.1)
    assert backend.acquire()[1].tolist() == [1.0, 2.0, 3.0]
    backend.close()
    stream.check()


def test_backend_reconfigure_rereads_acquisition_time_only():
    client, stream = client_for(
        (b"0 GetRamanParam Filter", b"0 0 100#50\r\n"),
        (b"1 SetRamanParameter Exposure 1.0", b"1 OK\r\n"),
        (b"2 SetRamanParameter Accumulations 1", b"2 OK\r\n"),
        (b"3 SetRamanParameter Filter 0", b"3 OK\r\n"),
        (b"4 GetRamanParam AcquisitionTime", b"4 1\r\n"),
        (b"5 GetRamanParam LaserWavelength", b"5 532.0\r\n"),
        (b"6 SetPointList 2 6", b"6 OK Ready to receive\r\n"),
        (b"0 0", b"6 OK Point 0\r\n"),
        (b"0 0", b"6 OK\r\n"),
        (b"7 EnableSpectralResponse", b"7 OK 3 " + AXIS_REPLY + b"\r\n"),
        (b"8 SetActivePoint 0", b"8 OK\r\n"),
        (b"9 StartRamanMeasurement 0", b"9 OK 3 1 1 1\r\n"),
        (b"10 SetRamanParameter Exposure 30.0", b"10 OK\r\n"),
        (b"11 SetRamanParameter Accumulations 2", b"11 OK\r\n"),
        (b"12 SetRamanParameter Filter 1", b"12 OK\r\n"),
        (b"13 GetRamanParam AcquisitionTime", b"13 60\r\n"),
        (b"14 StartRamanMeasurement 0", b"14 OK 3 2 2 2\r\n"),
    )
    backend = LabSpec6Backend(client)
    backend.configure(1.0, 1, 10.0)
    backend.acquire()
    backend.configure(30.0, 2, 5.0)
    assert backend.acquire()[1].tolist() == [2.0, 2.0, 2.0]
    stream.check()


def test_backend_refuses_power_between_filter_steps():
    client, stream = client_for((b"0 GetRamanParam Filter", b"0 0 100#50#25\r\n"))
    backend = LabSpec6Backend(client, full_laser_power_mW=10.0)
    with pytest.raises(ValueError, match=r"7\.0 mW is not available.*10, 5, 2\.5 mW"):
        backend.configure(1.0, 1, 7.0)
    with pytest.raises(ValueError, match="outside the allowed range"):
        backend.configure(1.0, 1, 12.0)
    stream.check()


def test_backend_with_hand_set_laser_sends_no_filter():
    client, stream = client_for(
        (b"0 SetRamanParameter Exposure 1.0", b"0 OK\r\n"),
        (b"1 SetRamanParameter Accumulations 1", b"1 OK\r\n"),
    )
    backend = LabSpec6Backend(client, full_laser_power_mW=8.0, laser_power_control="none")
    with pytest.raises(ValueError, match="set by hand to 8 mW"):
        backend.configure(1.0, 1, 4.0)
    backend.configure(1.0, 1, 8.0)
    stream.check()


def test_backend_checks_the_laser_wavelength():
    client, _ = client_for(
        (b"0 SetRamanParameter Exposure 1.0", b"0 OK\r\n"),
        (b"1 SetRamanParameter Accumulations 1", b"1 OK\r\n"),
        (b"2 GetRamanParam AcquisitionTime", b"2 1\r\n"),
        (b"3 GetRamanParam LaserWavelength", b"3 633\r\n"),
    )
    backend = LabSpec6Backend(client, full_laser_power_mW=10.0, laser_power_control="none")
    backend.configure(1.0, 1, 10.0)
    with pytest.raises(ValueError, match="LaserWavelength 633"):
        backend.acquire()


def test_backend_refuses_to_acquire_unconfigured():
    client, stream = client_for()
    with pytest.raises(RuntimeError, match="configure"):
        LabSpec6Backend(client).acquire()
    stream.check()


@pytest.mark.parametrize(
    ("exposure", "accumulations", "message"),
    [(0.0, 1, "exposure"), (-1.0, 1, "exposure"), (1.0, 0, "accumulations")],
)
def test_backend_bad_settings_raise_before_sending(exposure, accumulations, message):
    client, stream = client_for()
    backend = LabSpec6Backend(client, laser_power_control="none")
    with pytest.raises(ValueError, match=message):
        backend.configure(exposure, accumulations, 10.0)
    stream.check()


def test_socket_addresses():
    assert parse_socket_address("TCPIP::127.0.0.1::1234::SOCKET") == ("127.0.0.1", 1234)
    assert parse_socket_address("localhost:4001") == ("localhost", 4001)
    with pytest.raises(ValueError, match="neither"):
        parse_socket_address("ASRL/dev/ttyUSB0::INSTR")
