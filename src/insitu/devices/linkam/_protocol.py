"""Linkam T95/T94/CI94 wire format: command encoding, the T reply decoding and its types."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from insitu.devices.linkam._errors import LinkamProtocolError

__all__ = [
    "STATUS_REPLY_LENGTH",
    "LinkamErrorFlags",
    "LinkamReading",
    "LinkamStatus",
    "decode_status_reply",
    "encode_limit",
    "encode_pump_speed",
    "encode_rate",
]

STATUS_REPLY_LENGTH = 10
_HEX4 = re.compile(rb"[0-9A-Fa-f]{4}")
_MAX_PUMP_SPEED = 30


class LinkamStatus(enum.IntEnum):
    """SB1, the controller's state (byte 0 of the T reply)."""

    STOPPED = 0x01
    HEATING = 0x10
    COOLING = 0x20
    HOLDING_LIMIT = 0x30
    """Ramp done: regulating at the limit."""
    HOLDING_LIMIT_TIME = 0x40
    """Holding the limit for a programmed time."""
    HOLDING_CURRENT = 0x50
    """Holding the current temperature (after O)."""


class LinkamErrorFlags(enum.Flag):
    """EB1 error bits (byte 1 of the T reply, without bit 7 which is always set).

    Bits 0x10 and 0x40 are not documented in any public source; they still decode by name so
    that no reported bit is dropped.
    """

    COOLING_RATE_TOO_FAST = 0x01
    OPEN_CIRCUIT = 0x02
    """Open circuit: the stage is not connected."""
    POWER_SURGE = 0x04
    NO_EXIT_300 = 0x08
    """TS1500 asked to stop a profile above 300 C."""
    UNDOCUMENTED_0X10 = 0x10
    SERIAL_LINK_ERROR = 0x20
    UNDOCUMENTED_0X40 = 0x40

    @property
    def names(self) -> list[str]:
        """Names of the set flags, lowest bit first (empty when there is no error)."""
        return [flag.name for flag in LinkamErrorFlags if flag in self and flag.name]


@dataclass(frozen=True)
class LinkamReading:
    """One decoded T reply.

    Attributes
    ----------
    temperature : float
        Stage temperature in degC (signed, 0.1 C resolution).
    status : LinkamStatus
        Controller state.
    errors : LinkamErrorFlags
        Error flags; falsy when there is no error.
    pump_speed : int or None
        Liquid-nitrogen pump speed 0-30, or None when the pump byte is outside 0x80-0x9E (some
        firmware adds an undocumented offset in automatic mode; see ``raw[2]``).
    raw : bytes
        The 10 reply bytes, without the carriage return.
    """

    temperature: float
    status: LinkamStatus
    errors: LinkamErrorFlags
    pump_speed: int | None
    raw: bytes

    @property
    def pump_byte(self) -> int:
        """PB1, the raw pump byte."""
        return self.raw[2]


def encode_rate(c_per_min: float) -> bytes:
    """``R1`` + rate x 100 as a decimal integer: 5.0 C/min -> ``b"R1500"``."""
    return b"R1%d" % round(c_per_min * 100)


def encode_limit(celsius: float) -> bytes:
    """``L1`` + limit x 10 as a signed decimal integer: -10.0 C -> ``b"L1-100"``."""
    return b"L1%d" % round(celsius * 10)


def encode_pump_speed(speed: int) -> bytes:
    """``P`` + chr(48 + speed) for a manual pump speed 0-30: 30 -> ``b"PN"``."""
    if isinstance(speed, bool) or not isinstance(speed, int):
        raise TypeError(f"pump speed {speed!r} is not an integer")
    if not 0 <= speed <= _MAX_PUMP_SPEED:
        raise ValueError(f"pump speed {speed} is outside 0 to {_MAX_PUMP_SPEED}")
    return b"P" + bytes([48 + speed])


def decode_status_reply(raw: bytes) -> LinkamReading:
    """Decode the 10 bytes of a T reply (carriage return already removed).

    Raises
    ------
    LinkamProtocolError
        On a wrong length, an unknown status byte, an error byte without bit 7, or a
        temperature field that is not four ASCII hex digits.
    """
    raw = bytes(raw)
    if len(raw) != STATUS_REPLY_LENGTH:
        what = "an empty line" if not raw else f"{len(raw)} bytes"
        raise LinkamProtocolError(
            f"T reply is {what}, expected {STATUS_REPLY_LENGTH} bytes: {raw!r}", raw
        )
    try:
        status = LinkamStatus(raw[0])
    except ValueError:
        raise LinkamProtocolError(
            f"T reply has unknown status byte 0x{raw[0]:02X}: {raw!r}", raw
        ) from None
    error_byte = raw[1]
    if not error_byte & 0x80:
        raise LinkamProtocolError(
            f"T reply error byte 0x{error_byte:02X} lacks bit 7 (always set): {raw!r}", raw
        )
    temperature_field = raw[6:10]
    # int(..., 16) alone would accept "0x1F", " 1F " or "1_F": insist on four hex digits.
    if not _HEX4.fullmatch(temperature_field):
        raise LinkamProtocolError(
            f"T reply temperature field {temperature_field!r} is not four hex digits: {raw!r}", raw
        )
    tenths = int(temperature_field, 16)
    if tenths >= 0x8000:
        tenths -= 0x10000
    pump_offset = raw[2] - 0x80
    return LinkamReading(
        temperature=tenths / 10,
        status=status,
        errors=LinkamErrorFlags(error_byte & 0x7F),
        pump_speed=pump_offset if 0 <= pump_offset <= _MAX_PUMP_SPEED else None,
        raw=raw,
    )
