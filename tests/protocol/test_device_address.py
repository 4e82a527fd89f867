"""The real-instrument mode of tests/protocol itself: the option, the skips, the heating guard.

The guard is tested in-process on a scripted wire; the option and the mode by running pytest in
a subprocess (``system`` tier: ``slow``), with a Linkam emulator in this process standing in for
the real controller.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from insitu.devices.linkam import LinkamT95
from insitu.sim.linkam_t95 import LinkamT95Emulator
from insitu.testing.scripted_transport import ScriptedTransport

REPO = Path(__file__).resolve().parents[2]
STOPPED_25C = b"\x01\x80\x80\x80\x80\x8000FA\r"


def run_pytest(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=100,
    )


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Test name -> (outcome, message) from a JUnit XML report."""
    result = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("skipped", "failure", "error"):
                outcome, message = child.tag, child.get("message", "")
        result[case.get("name")] = (outcome, message)
    return result


# --- the heating guard, in-process ------------------------------------------------------------
def test_the_guard_refuses_ramp_starts_and_hot_limits_before_they_are_sent(linkam_heating_guard):
    wire = ScriptedTransport(
        [
            (b"T\r", STOPPED_25C),
            (b"L1300\r", b"\r"),  # 25 C + 5 C: not heating
            (b"R13000\r", b"\r"),
            (b"E\r", b"\r"),
            (b"O\r", b"\r"),
        ]
    )
    guard = linkam_heating_guard(wire)
    driver = LinkamT95(guard, min_command_interval=0)
    driver.set_limit(30.0)
    driver.set_rate(30.0)
    refused = [
        (driver.start, b"S"),
        (driver.heat, b"H"),
        (driver.cool, b"C"),
        (lambda: driver.set_limit(30.1), b"L1301"),
    ]
    for call, command in refused:
        with pytest.raises(pytest.fail.Exception, match=re.escape(f"refused to send {command!r}")):
            call()
    driver.stop()
    driver.hold()
    wire.check()  # what was refused never reached the wire, and everything else did
    assert len(guard.refusals) == 4


def test_the_guard_refuses_a_limit_before_any_reading(linkam_heating_guard):
    guard = linkam_heating_guard(ScriptedTransport([]))
    with pytest.raises(pytest.fail.Exception, match="before any reading"):
        guard.write(b"L1250")


def test_the_guard_lets_a_heating_test_heat_when_allowed(linkam_heating_guard):
    wire = ScriptedTransport([(b"T\r", STOPPED_25C), (b"L19000\r", b"\r"), (b"S\r", b"\r")])
    driver = LinkamT95(linkam_heating_guard(wire, allow_heating=True), min_command_interval=0)
    driver.set_limit(900.0)
    driver.start()
    wire.check()


# --- the option and the mode, in a subprocess -------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("oven=COM1", "KIND one of linkam, labspec6, term"),
        ("linkam", "is not KIND=ADDRESS"),
        ("linkam=COM3", "linkam takes a VISA resource"),
        ("linkam=TCPIP::host::99999::SOCKET", "linkam takes a VISA resource"),
        ("labspec6=host", "labspec6 takes 'host:port'"),
        ("term=ASRL/dev/ttyUSB0::INSTR", "term takes 'host', 'host:port'"),
    ],
)
def test_a_bad_device_address_is_a_usage_error_naming_it(value, says):
    result = run_pytest("tests/protocol/test_linkam_settle.py", "--device-address", value)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert f"argument --device-address: {value!r}" in result.stderr
    assert says in result.stderr


@pytest.mark.slow
def test_good_addresses_are_accepted_and_shown_in_the_header():
    result = run_pytest(
        "tests/protocol/test_linkam_settle.py",
        "--device-address=labspec6=TCPIP::raman-pc::1234::SOCKET",
        "--device-address",
        "term=192.168.2.66",
        "--device-address",
        "linkam=ASRLCOM3::INSTR",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "real instrument: labspec6 at TCPIP::raman-pc::1234::SOCKET" in result.stdout
    assert "real instrument: linkam at ASRLCOM3::INSTR" in result.stdout
    assert "real instrument: term at 192.168.2.66" in result.stdout
    # Tests that touch no instrument run in every mode: all of test_linkam_settle.py's.
    settle_tests = (REPO / "tests/protocol/test_linkam_settle.py").read_text().count("\ndef test_")
    assert f"{settle_tests} passed" in result.stdout, result.stdout


@pytest.mark.slow
def test_against_a_stand_in_controller_the_linkam_tests_run_or_skip_with_their_reason(
    tmp_path, real_time_clock
):
    with LinkamT95Emulator(seed=1) as controller:
        address = f"TCPIP::127.0.0.1::{controller.serve_tcp()}::SOCKET"
        junit = tmp_path / "report.xml"
        result = run_pytest(
            "tests/protocol/test_linkam_wire.py",
            f"--device-address=linkam={address}",
            f"--junitxml={junit}",
        )
        received = list(controller.received_commands)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = outcomes(junit)
    assert {name for name, (outcome, _) in ran.items() if outcome == "passed"} == {
        "test_a_connected_stage_answers_t_with_a_healthy_reading",
        "test_set_commands_answer_one_line_each_so_readings_stay_framed",
        "test_stop_switches_the_heater_off",
        "test_out_of_range_values_never_reach_the_controller",
        "test_a_new_connection_repeats_the_t_first_handshake",
    }
    for name in (
        "test_the_controller_receives_exactly_the_documented_bytes",
        "test_an_unplugged_stage_is_an_open_circuit_error",
        "test_a_ramp_reaches_its_limit_and_regulates_there",
    ):
        outcome, message = ran[name]
        assert (
            outcome == "skipped"
            and f"emulator only, not run against the real linkam at {address}" in message
        )
    outcome, message = ran["test_a_started_ramp_heats_toward_a_higher_limit"]
    assert outcome == "skipped" and "without --allow-heating" in message
    # The stand-in controller was never asked to heat.
    assert not {b"S", b"H", b"C"} & set(received), received
    limits = [int(command[2:]) / 10 for command in received if command.startswith(b"L1")]
    assert limits and max(limits) <= 25.0 + 5.0, limits


PROBE = """
def test_heats_without_the_marker(linkam_driver):
    linkam_driver.start()


def test_swallows_the_refusal(linkam_driver):
    try:
        linkam_driver.start()
    except BaseException:
        pass
"""


@pytest.mark.slow
def test_a_test_that_heats_a_real_stage_unmarked_fails_and_sends_nothing(tmp_path, real_time_clock):
    """The guard, not the marker, keeps heating off a real stage."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_probe.py").write_text(PROBE)
    with LinkamT95Emulator(seed=1) as controller:
        address = f"TCPIP::127.0.0.1::{controller.serve_tcp()}::SOCKET"
        junit = tmp_path / "report.xml"
        result = run_pytest(
            "-p",
            "tests.protocol.conftest",
            "test_probe.py",
            f"--device-address=linkam={address}",
            f"--junitxml={junit}",
            cwd=tmp_path,
        )
        received = list(controller.received_commands)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    ran = outcomes(junit)
    assert ran["test_heats_without_the_marker"][0] == "failure"
    assert ran["test_swallows_the_refusal"][0] == "error"  # failed at teardown
    assert result.stdout.count("refused to send b'S' to the real Linkam") >= 2, result.stdout
    assert b"S" not in received and received[0] == b"T", received
