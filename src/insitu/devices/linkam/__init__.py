"""Linkam T95/T94/CI94 heating stages: the protocol driver and the ophyd stage device."""

from insitu.devices.linkam._driver import LinkamT95
from insitu.devices.linkam._errors import (
    LinkamConnectionError,
    LinkamError,
    LinkamMoveInterrupted,
    LinkamMoveTimeout,
    LinkamProtocolError,
    LinkamStageError,
    LinkamTimeout,
)
from insitu.devices.linkam._limits import STAGE_LIMITS, StageLimits
from insitu.devices.linkam._protocol import (
    LinkamErrorFlags,
    LinkamReading,
    LinkamStatus,
    decode_status_reply,
)
from insitu.devices.linkam._stage import LinkamStage

__all__ = [
    "STAGE_LIMITS",
    "LinkamConnectionError",
    "LinkamError",
    "LinkamErrorFlags",
    "LinkamMoveInterrupted",
    "LinkamMoveTimeout",
    "LinkamProtocolError",
    "LinkamReading",
    "LinkamStage",
    "LinkamStageError",
    "LinkamStatus",
    "LinkamT95",
    "LinkamTimeout",
    "StageLimits",
    "decode_status_reply",
]
