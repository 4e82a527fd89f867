"""The Term emulator byte for byte, and the device's pure helpers that mirror it.

With ``--device-address term=HOST:PORT`` the tests that use ``script`` (and are not
emulator_only) run against that Term instead (docs/real_instruments.md).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import numpy as np
import pytest

from insitu import clock
from insitu.devices.zahner import ZahnerCommandError, parse_term_address, sweep_point_count
from insitu.sim.film_impedance import FILM_750C, FilmImpedance
from insitu.sim.thales_eis import frequency_grid, measuring_order
from insitu.sim.thales_script import split_commands
from insitu.sim.thales_term import TermEmulator

pytestmark = pytest.mark.instrument("term")

REGISTRATION = bytes([0x12, 0xD0, 0xFF, 0xFF, 0xFF, 0xFF])


class RawClient:
    """A client speaking Term's framing directly (no thales_remote)."""

    def __init__(self, port: int, name: str, *, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.sendall(struct.pack(">H", len(name)) + REGISTRATION + name.encode())

    def send(self, message_type: int, payload: str) -> None:
        data = payload.encode()
        self.sock.sendall(struct.pack("<HB", len(data), message_type) + data)

    def receive(self) -> tuple[int, bytes]:
        length, message_type = struct.unpack("<HB", self._exactly(3))
        return message_type, self._exactly(length)

    def ask(self, message_type: int, payload: str) -> str:
        self.send(message_type, payload)
        reply_type, reply = self.receive()
        assert reply_type == message_type
        return reply.decode()

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def term() -> Iterator[TermEmulator]:
    clock.set_speedup(1000.0)
    try:
        with TermEmulator(seed=5) as emulator:
            emulator.serve_tcp(0)
            yield emulator
    finally:
        clock.set_speedup(1.0)


@pytest.fixture
def term_emulator(term: TermEmulator) -> TermEmulator:
    """The emulator ``term_address`` points at when no real Term is given."""
    return term


@pytest.fixture
def script(term_address: str) -> Iterator[RawClient]:
    host, port = parse_term_address(term_address)
    client = RawClient(port, "ScriptRemote", host=host)
    yield client
    client.close()


@pytest.mark.emulator_only(
    "compares with the emulator's Thales version and reads its registration log"
)
def test_control_channel_answers_version_heartbeat_and_remote_script(script, term):
    assert script.ask(128, "3,ScriptRemote,7") == f"3,ScriptRemote,{term.thales_version}"
    kind, name, milliseconds = script.ask(128, "1,ScriptRemote").split(",")
    assert (kind, name) == ("1", "ScriptRemote") and float(milliseconds) >= 0
    assert script.ask(128, "3,ScriptRemote,0,OFF") == "3,ScriptRemote,0,OFF"
    assert script.ask(128, "2,ScriptRemote") == "2,ScriptRemote,OK"
    assert term.registrations == ["ScriptRemote"]


@pytest.mark.emulator_only(
    "reads the emulator's settings, potentiostat state and command log (and switches the "
    "potentiostat on)"
)
def test_script_commands_reply_ok_values_and_indexed_errors(script, term):
    assert script.ask(2, "1:Gal=0:GAL=0:") == "OK\r"
    assert script.ask(2, r"1:EIS_PATH=c:\thales\temp:") == "OK\r"
    assert term.instrument.setting("EIS_PATH") == r"c:\thales\temp"
    assert script.ask(2, "1:Ampl=5.00000000000000e+01:") == "OK\r"
    # The second command of the telegram is out of range: ERROR;100;2, the first one applied.
    assert script.ask(2, "1:Fmin=1.0e+00:Fmax=5.0e+06:") == "ERROR;100;2\r"
    assert term.instrument.setting("Fmin") == 1.0
    assert script.ask(2, "1:Nws=2.5:") == "ERROR;100;1\r"
    assert script.ask(2, "1:FLY:") == "ERROR;10;1\r"
    assert script.ask(2, "1:Pot=-1:") == "OK\r" and term.potentiostat_on
    reply = script.ask(2, "1:Frq=1000:Nw=5:IMPEDANCE:")
    assert reply.startswith("impedance=") and reply.endswith("\r")
    real, imag = (float(part) for part in reply[len("impedance=") :].split(","))
    assert real > 0 and imag < 0
    assert script.ask(2, "1:POTENTIAL:") == "potential= 0.000000e+00V\r"
    assert script.ask(2, "1:Pot=0:") == "OK\r" and not term.potentiostat_on
    assert term.received_commands[:2] == ["Gal=0", "GAL=0"]


def test_sweep_with_inconsistent_limits_is_an_error(script):
    assert script.ask(2, "1:Fmin=1e3:Fmax=1e2:Ampl=10:") == "OK\r"
    assert script.ask(2, "1:EIS:") == "ERROR;100;1\r"


@pytest.mark.emulator_only("compares with the files the emulator wrote (and runs two EIS sweeps)")
def test_file_exchange_sends_path_length_and_data(script, term):
    files = RawClient(term.port, "FileExchange")
    try:
        script.ask(2, r"1:EIS_PATH=c:\thales\temp:EIS_MOD=2:EIS_ROOT=wire:Ampl=10:")
        script.ask(2, "1:Fmax=1e5:Fmin=10:Fstart=1e5:dfm=2:dfl=2:")
        assert script.ask(2, "1:EIS:") == "OK\r"
        files.send(128, r"3,FileExchange,1,C:\THALES\TEMP\wire.ism")
        assert files.receive() == (130, rb"C:\THALES\TEMP\wire.ism")
        kind, length = files.receive()
        data = b""
        while len(data) < int(length):
            kind, chunk = files.receive()
            assert kind == 131
            data += chunk
        assert data == term.files[r"c:\thales\temp\wire.ism"]
        # The same individual file name again: Thales does not overwrite it.
        assert script.ask(2, "1:EIS:") == "ERROR;301;1\r"
        # A file that does not exist arrives empty.
        files.send(128, r"3,FileExchange,1,c:\thales\temp\none.ism")
        assert files.receive() == (130, rb"c:\thales\temp\none.ism")
        assert files.receive() == (129, b"0")
        files.send(128, "3,FileExchange,4,ON,*.ism")
        assert files.receive() == (132, b"3,FileExchange,4,ON,*.ism")
    finally:
        files.close()


def test_goodbye_is_answered_with_a_reset(script):
    assert script.ask(128, "3,ScriptRemote,0,RS") == "3,ScriptRemote,0,RS"
    script.sock.sendall(struct.pack("<HB", 2, 4) + b"\xff\xff")
    with pytest.raises(ConnectionResetError):
        while script.sock.recv(16):
            pass


@pytest.mark.emulator_only("tests the emulator's fault injection itself")
def test_unknown_fault_kind_is_refused(term):
    with pytest.raises(ValueError, match="'melt' is not one of drop_connection_mid_sweep"):
        term.inject_fault("melt")


def test_command_split_keeps_the_drive_colon_of_paths():
    assert split_commands(r"1:EIS_PATH=c:\thales\temp:EIS_MOD=2:") == [
        r"EIS_PATH=c:\thales\temp",
        "EIS_MOD=2",
    ]
    assert split_commands("1:Gal=0:GAL=0:") == ["Gal=0", "GAL=0"]


@pytest.mark.parametrize(
    ("f_min", "f_max", "upper", "lower"),
    [(0.1, 1e6, 10, 5), (0.1, 1e6, 5, 5), (1.0, 1e5, 7, 3), (100.0, 4e6, 3, 9), (1e-5, 50.0, 1, 2)],
)
def test_device_predicts_the_emulated_grid(f_min, f_max, upper, lower):
    grid = frequency_grid(f_min, f_max, upper, lower)
    assert sweep_point_count(f_min, f_max, upper, lower) == grid.size
    assert grid[0] == pytest.approx(f_max) and grid[-1] == pytest.approx(f_min)
    order = measuring_order(grid, f_start=grid[grid.size // 2], start_to_max=True)
    assert sorted(set(order)) == sorted(grid.tolist())


def test_film_resistance_follows_geometry_and_conductivity():
    model = FilmImpedance(geometry=(0.25, 3.0, 2.0), relative_noise=0.0)
    sigma_S_per_m = FILM_750C.conductivity(300.0) * 100
    assert model.film_resistance_ohm(300.0) == pytest.approx(
        0.25e-3 / (sigma_S_per_m * 3e-3 * 2e-6)
    )
    low_frequency = model.impedance(np.array([1e-3]), 300.0)[0]
    assert low_frequency.imag < -model.film_resistance_ohm(300.0)  # the blocking electrodes


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("192.168.2.66", ("192.168.2.66", 260)),
        ("localhost:5260", ("localhost", 5260)),
        ("TCPIP::127.0.0.1::2600::SOCKET", ("127.0.0.1", 2600)),
        ("TCPIP0::zennium::260::SOCKET", ("zennium", 260)),
    ],
)
def test_term_address_forms(address, expected):
    assert parse_term_address(address) == expected


@pytest.mark.parametrize("address", ["", "host:port", "ASRL/dev/ttyUSB0::INSTR", "host:70000"])
def test_bad_term_address_is_refused(address):
    with pytest.raises(ValueError, match="Zahner Term address"):
        parse_term_address(address)


def test_command_error_names_command_and_code():
    error = ZahnerCommandError("eis", "Fmax=5e+06", "ERROR;100;1\r")
    assert str(error) == (
        "eis: Thales answered 'ERROR;100;1' to Fmax=5e+06 (error code 100: parameter out of range)"
    )
    assert (error.code, error.command) == (100, "Fmax=5e+06")
