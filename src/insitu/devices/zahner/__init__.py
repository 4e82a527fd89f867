"""Zahner impedance analyzers (Zennium, IM6) through Term with the official ``thales_remote``."""

from insitu.devices.zahner._address import TERM_PORT, parse_term_address
from insitu.devices.zahner._device import ZahnerEIS
from insitu.devices.zahner._errors import (
    ZahnerCommandError,
    ZahnerConnectionError,
    ZahnerError,
    ZahnerSweepAborted,
)
from insitu.devices.zahner._session import ThalesSession
from insitu.devices.zahner._settings import (
    AMPLITUDE,
    DC_POTENTIAL,
    FREQUENCY,
    PERIODS,
    POINTS_PER_DECADE,
    SettingRange,
    SweepSettings,
    sweep_point_count,
)

__all__ = [
    "AMPLITUDE",
    "DC_POTENTIAL",
    "FREQUENCY",
    "PERIODS",
    "POINTS_PER_DECADE",
    "TERM_PORT",
    "SettingRange",
    "SweepSettings",
    "ThalesSession",
    "ZahnerCommandError",
    "ZahnerConnectionError",
    "ZahnerEIS",
    "ZahnerError",
    "ZahnerSweepAborted",
    "parse_term_address",
    "sweep_point_count",
]
