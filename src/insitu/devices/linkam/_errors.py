"""Exceptions raised by the Linkam T95 driver and stage device, one class per failure kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from insitu.devices.linkam._protocol import LinkamErrorFlags, LinkamReading

__all__ = [
    "LinkamConnectionError",
    "LinkamError",
    "LinkamInterlockError",
    "LinkamMoveInterrupted",
    "LinkamMoveTimeout",
    "LinkamProtocolError",
    "LinkamStageError",
    "LinkamTimeout",
]


class LinkamError(Exception):
    """Base class of every Linkam failure."""


class LinkamTimeout(LinkamError, TimeoutError):  # noqa: N818 - the name the issue asks for
    """The controller sent no (complete) reply within the reply timeout."""


class LinkamConnectionError(LinkamError, ConnectionError):
    """The link to the controller is gone (port closed, TCP connection dropped or refused)."""


class LinkamProtocolError(LinkamError):
    """A reply arrived but is not a valid reply: wrong length, bad hex, unknown status byte."""

    def __init__(self, message: str, raw: bytes = b"") -> None:
        super().__init__(message)
        self.raw = raw


class LinkamStageError(LinkamError):
    """The controller reports an error flag (EB1), e.g. open circuit: stage not connected.

    Attributes
    ----------
    reading : LinkamReading
        The full reading that carried the flags.
    flags : LinkamErrorFlags
        The decoded error flags.
    """

    def __init__(self, message: str, reading: LinkamReading) -> None:
        super().__init__(message)
        self.reading = reading

    @classmethod
    def from_reading(cls, reading: LinkamReading, where: str) -> LinkamStageError:
        """Build the error for a reading with flags; ``where`` names the device and address."""
        return cls(
            f"{where}: the controller reports {'|'.join(reading.errors.names)} "
            f"(EB1 0x{reading.raw[1]:02X}) at {reading.temperature} C, "
            f"status {reading.status.name}",
            reading,
        )

    @property
    def flags(self) -> LinkamErrorFlags:
        """The decoded error flags of the reading."""
        return self.reading.errors


class LinkamMoveTimeout(LinkamError, TimeoutError):  # noqa: N818 - matches LinkamTimeout
    """A move did not settle within tolerance of its target before its (experiment) deadline."""


class LinkamMoveInterrupted(LinkamError):  # noqa: N818 - reads as what happened
    """A move ended before it settled: stopped, superseded by a new move, or device destroyed."""


class LinkamInterlockError(LinkamError):
    """A safety interlock is engaged: the controller may not be told to heat, cool or move.

    Raised before anything is sent; the message names the alarm and how to clear it.
    """
