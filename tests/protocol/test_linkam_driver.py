"""LinkamT95 against scripted exchanges: exact bytes for every command, status and error byte."""

from __future__ import annotations

import threading
import time

import pytest

from insitu.devices.linkam import (
    LinkamConnectionError,
    LinkamErrorFlags,
    LinkamProtocolError,
    LinkamStageError,
    LinkamStatus,
    LinkamT95,
    LinkamTimeout,
)
from insitu.testing.scripted_transport import ScriptedTransport

# A T reply: SB1 EB1 PB1 GS 0x80 0x80, four hex digits of tenths of degC, CR.
STOPPED_25C = b"\x01\x80\x80\x80\x80\x8000FA\r"


def reply(status: int = 0x01, errors: int = 0x80, pump: int = 0x80, hex4: bytes = b"00FA") -> bytes:
    return bytes([status, errors, pump, 0x80, 0x80, 0x80]) + hex4 + b"\r"


def driver_for(exchanges, **kwargs) -> tuple[LinkamT95, ScriptedTransport]:
    """A driver on a script that starts with the T-first handshake."""
    wire = ScriptedTransport([(b"T\r", STOPPED_25C), *exchanges])
    return LinkamT95(wire, min_command_interval=0, **kwargs), wire


def test_connect_sends_t_first_and_nothing_else():
    wire = ScriptedTransport([(b"T\r", STOPPED_25C)])
    LinkamT95(wire, min_command_interval=0)
    assert wire.written == [b"T\r"]
    wire.check()


@pytest.mark.parametrize(
    ("call", "sent"),
    [
        (lambda d: d.set_rate(5.0), [b"R1500\r"]),
        (lambda d: d.set_rate(0.01), [b"R11\r"]),
        (lambda d: d.set_rate(150), [b"R115000\r"]),
        (lambda d: d.set_rate(12.345), [b"R11234\r"]),
        (lambda d: d.set_limit(750.0), [b"L17500\r"]),
        (lambda d: d.set_limit(1500), [b"L115000\r"]),
        (lambda d: d.set_limit(20.0), [b"L1200\r"]),
        (lambda d: d.set_limit(123.45), [b"L11234\r"]),
        (lambda d: d.start(), [b"S\r"]),
        (lambda d: d.stop(), [b"E\r"]),
        (lambda d: d.hold(), [b"O\r"]),
        (lambda d: d.heat(), [b"H\r"]),
        (lambda d: d.cool(), [b"C\r"]),
        (lambda d: d.set_pump("auto"), [b"Pa0\r"]),
        (lambda d: d.set_pump(0), [b"Pm0\r", b"P0\r"]),
        (lambda d: d.set_pump(13), [b"Pm0\r", b"P=\r"]),
        (lambda d: d.set_pump(30), [b"Pm0\r", b"PN\r"]),
    ],
)
def test_set_command_bytes_and_reply_line_is_consumed(call, sent):
    driver, wire = driver_for([(command, b"\r") for command in sent])
    call(driver)
    wire.check()  # every empty reply line was read


@pytest.mark.parametrize(
    ("celsius", "sent"),
    [(-10.0, b"L1-100\r"), (-196.0, b"L1-1960\r"), (-0.5, b"L1-5\r"), (600.0, b"L16000\r")],
)
def test_negative_limits_are_signed_decimal_on_hfs600e(celsius, sent):
    driver, wire = driver_for([(sent, b"\r")], stage_model="HFS600E")
    driver.set_limit(celsius)
    wire.check()


def test_a_non_empty_set_reply_is_discarded_so_the_next_t_reply_is_not_misread():
    driver, wire = driver_for(
        [(b"S\r", b"OK\r"), (b"T\r", reply(0x10, hex4=b"02EE"))],
    )
    driver.start()
    reading = driver.status()
    assert reading.status is LinkamStatus.HEATING
    assert reading.temperature == 75.0
    wire.check()


@pytest.mark.parametrize("status", list(LinkamStatus))
def test_every_status_byte(status):
    raw = reply(int(status))
    driver, wire = driver_for([(b"T\r", raw)])
    reading = driver.status()
    assert reading.status is status
    assert reading.errors == LinkamErrorFlags(0)
    assert not reading.errors
    assert reading.raw == raw[:-1]
    wire.check()


@pytest.mark.parametrize(
    ("byte", "flag"),
    [
        (0x81, LinkamErrorFlags.COOLING_RATE_TOO_FAST),
        (0x82, LinkamErrorFlags.OPEN_CIRCUIT),
        (0x84, LinkamErrorFlags.POWER_SURGE),
        (0x88, LinkamErrorFlags.NO_EXIT_300),
        (0x90, LinkamErrorFlags.UNDOCUMENTED_0X10),
        (0xA0, LinkamErrorFlags.SERIAL_LINK_ERROR),
        (0xC0, LinkamErrorFlags.UNDOCUMENTED_0X40),
    ],
)
def test_every_error_bit_raises_a_stage_error_carrying_the_flag(byte, flag):
    driver, wire = driver_for([(b"T\r", reply(0x10, errors=byte)), (b"T\r", reply(errors=byte))])
    with pytest.raises(LinkamStageError, match=flag.name) as caught:
        driver.status()
    assert caught.value.flags == flag
    assert caught.value.reading.status is LinkamStatus.HEATING
    # Asked not to raise, the same flags come back in the reading.
    assert driver.status(check_errors=False).errors == flag
    wire.check()


def test_several_error_bits_decode_by_name():
    driver, wire = driver_for([(b"T\r", reply(errors=0x83))])
    reading = driver.status(check_errors=False)
    assert reading.errors == LinkamErrorFlags.COOLING_RATE_TOO_FAST | LinkamErrorFlags.OPEN_CIRCUIT
    assert reading.errors.names == ["COOLING_RATE_TOO_FAST", "OPEN_CIRCUIT"]
    wire.check()


@pytest.mark.parametrize(
    ("hex4", "celsius"),
    [
        (b"02EE", 75.0),
        (b"FF9C", -10.0),
        (b"ff9c", -10.0),
        (b"0000", 0.0),
        (b"FFFF", -0.1),
        (b"F858", -196.0),
        (b"3A98", 1500.0),
        (b"7FFF", 3276.7),
        (b"8000", -3276.8),
    ],
)
def test_temperature_is_a_signed_16_bit_count_of_tenths(hex4, celsius):
    driver, wire = driver_for([(b"T\r", reply(hex4=hex4))])
    assert driver.status().temperature == celsius
    wire.check()


@pytest.mark.parametrize(("pump", "speed"), [(0x80, 0), (0x8F, 15), (0x9E, 30), (0xC5, None)])
def test_pump_byte(pump, speed):
    driver, wire = driver_for([(b"T\r", reply(pump=pump))])
    reading = driver.status()
    assert reading.pump_speed == speed
    assert reading.pump_byte == pump
    wire.check()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\r", "empty line"),
        (b"\x01\x80\x80\x80\x80\x80FA\r", "8 bytes"),
        (b"\x01\x80\x80\x80\x80\x80\x8000FA\r", "11 bytes"),
        (b"\x01\x80\x80\r", "3 bytes"),  # truncated, but terminated
        (reply(hex4=b"00G1"), "not four hex digits"),
        (reply(hex4=b"0x1F"), "not four hex digits"),
        (reply(hex4=b" 1F "), "not four hex digits"),
        (reply(hex4=b"1_FF"), "not four hex digits"),
        (reply(hex4=b"+1FF"), "not four hex digits"),
        (reply(status=0x00), "unknown status byte 0x00"),
        (reply(status=0x11), "unknown status byte 0x11"),
        (reply(errors=0x02), "lacks bit 7"),
        (b"#~?\x00garbage!\r", "unknown status byte|bytes"),
    ],
)
def test_malformed_replies_raise_protocol_errors(raw, match):
    driver, wire = driver_for([(b"T\r", raw)])
    with pytest.raises(LinkamProtocolError, match=match) as caught:
        driver.status()
    assert caught.value.raw == raw[:-1]
    wire.check()


def test_no_reply_is_a_timeout():
    driver, wire = driver_for([(b"T\r", None)])
    with pytest.raises(LinkamTimeout, match="no reply to b'T'"):
        driver.status()
    wire.check()


def test_a_reply_cut_off_before_its_cr_is_a_timeout_and_is_flushed_before_the_next_command():
    driver, wire = driver_for([(b"T\r", b"\x01\x80\x80\x80"), (b"T\r", reply(hex4=b"0064"))])
    with pytest.raises(LinkamTimeout):
        driver.status()
    # The stale half line is dropped, not glued onto the next reply.
    assert driver.status().temperature == 10.0
    wire.check()


def test_no_reply_to_a_set_command_is_a_timeout():
    driver, wire = driver_for([(b"S\r", None)])
    with pytest.raises(LinkamTimeout, match="no reply to b'S'"):
        driver.start()
    wire.check()


def test_after_a_bad_reply_stale_lines_are_flushed():
    # Garbage holding a CR splits into two lines; the second must not answer the next T.
    driver, wire = driver_for(
        [(b"T\r", b"junk\r\x01\x80\x80\x80\x80\x8000FA\r"), (b"T\r", reply(hex4=b"0064"))]
    )
    with pytest.raises(LinkamProtocolError):
        driver.status()
    assert driver.status().temperature == 10.0
    wire.check()


@pytest.mark.parametrize(
    ("stage_model", "call", "error", "message"),
    [
        (
            "TS1500",
            lambda d: d.set_limit(2000.0),
            ValueError,
            r"^linkam\.setpoint 2000\.0 C is above the stage limit 1500\.0 C \(TS1500\)$",
        ),
        (
            "TS1500",
            lambda d: d.set_limit(10),
            ValueError,
            r"^linkam\.setpoint 10\.0 C is below the stage limit 20\.0 C \(TS1500\)$",
        ),
        (
            "HFS600E",
            lambda d: d.set_limit(-200),
            ValueError,
            r"^linkam\.setpoint -200\.0 C is below the stage limit -196\.0 C \(HFS600E\)$",
        ),
        ("HFS600E", lambda d: d.set_limit(600.1), ValueError, r"above the stage limit 600\.0 C"),
        ("TS1500", lambda d: d.set_limit(float("nan")), ValueError, "not a finite number"),
        ("TS1500", lambda d: d.set_limit(float("inf")), ValueError, "not a finite number"),
        ("TS1500", lambda d: d.set_limit("hot"), TypeError, "not a number"),
        ("TS1500", lambda d: d.set_limit(True), TypeError, "not a number"),
        (
            "TS1500",
            lambda d: d.set_rate(200),
            ValueError,
            r"^linkam\.rate 200\.0 C/min is above the stage limit 150\.0 C/min \(TS1500\)$",
        ),
        ("TS1500", lambda d: d.set_rate(0.001), ValueError, r"below the stage limit 0\.01 C/min"),
        ("TS1500", lambda d: d.set_rate(-5), ValueError, "below the stage limit"),
        (
            "TS1500",
            lambda d: d.set_pump(31),
            ValueError,
            r"linkam\.pump speed 31 is outside 0 to 30",
        ),
        ("TS1500", lambda d: d.set_pump(-1), ValueError, "outside 0 to 30"),
        ("TS1500", lambda d: d.set_pump("fast"), TypeError, "neither 'auto' nor a speed"),
        ("TS1500", lambda d: d.set_pump(True), TypeError, "neither 'auto' nor a speed"),
    ],
)
def test_range_checks_raise_before_anything_is_sent(stage_model, call, error, message):
    driver, wire = driver_for([], stage_model=stage_model)
    with pytest.raises(error, match=message):
        call(driver)
    assert wire.written == [b"T\r"]  # only the handshake: the bad value never left
    wire.check()


def test_error_messages_use_the_device_name():
    driver, _ = driver_for([], name="stage")
    with pytest.raises(ValueError, match=r"^stage\.setpoint 2000\.0 C is above"):
        driver.set_limit(2000)


def test_unknown_stage_model_is_rejected():
    with pytest.raises(
        ValueError, match="unknown Linkam stage model 'TS9999'; known: HFS600E, TS1500"
    ):
        LinkamT95(ScriptedTransport([]), stage_model="TS9999")


def test_commands_are_spaced_by_the_min_command_interval():
    wire = ScriptedTransport([(b"T\r", STOPPED_25C), (b"S\r", b"\r"), (b"O\r", b"\r")])
    start = time.monotonic()
    driver = LinkamT95(wire, min_command_interval=0.05)
    driver.start()
    driver.hold()
    assert time.monotonic() - start >= 0.1
    wire.check()


def test_a_closed_driver_refuses_to_talk():
    driver, _ = driver_for([])
    driver.close()
    with pytest.raises(LinkamConnectionError, match="closed"):
        driver.status()


class _OneAtATimeTransport:
    """Replies to T; fails the test if two threads are ever inside it at once."""

    address = "one-at-a-time"

    def __init__(self) -> None:
        self._inside = 0
        self._guard = threading.Lock()
        self.overlaps = 0
        self._pending: list[bytes] = []

    def _enter(self) -> None:
        with self._guard:
            self._inside += 1
            if self._inside > 1:
                self.overlaps += 1
        threading.Event().wait(0.0005)  # widen the window for an overlap

    def _leave(self) -> None:
        with self._guard:
            self._inside -= 1

    def write(self, data: bytes | str) -> None:
        self._enter()
        self._pending.append(STOPPED_25C[:-1] if data == b"T" else b"")
        self._leave()

    def read_line(self) -> bytes:
        self._enter()
        line = self._pending.pop(0)
        self._leave()
        return line

    def discard_input(self) -> None:
        self._pending.clear()

    def close(self) -> None:
        pass


def test_no_two_threads_use_the_port_at_once():
    wire = _OneAtATimeTransport()
    driver = LinkamT95(wire, min_command_interval=0)
    failures: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(40):
                assert driver.status().temperature == 25.0
                driver.hold()
        except BaseException as exc:  # collected and re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert wire.overlaps == 0
