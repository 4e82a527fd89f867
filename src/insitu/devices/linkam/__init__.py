"""Linkam T95/T94/CI94 heating stages: the protocol driver and the ophyd stage device."""

from insitu.devices.linkam._driver import LinkamT95
from insitu.devices.linkam._errors import (
    LinkamConnectionError,
    LinkamError,
    LinkamInterlockError,
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
from insitu.devices.linkam._stage import DWELL_MARGIN_C, LinkamStage, StagePoll

__all__ = [
    "DWELL_MARGIN_C",
    "STAGE_LIMITS",
    "LinkamConnectionError",
    "LinkamError",
    "LinkamErrorFlags",
    "LinkamInterlockError",
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
    "StagePoll",
    "decode_status_reply",
]
