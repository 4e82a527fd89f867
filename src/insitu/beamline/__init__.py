"""Beamline assembly: a YAML config -> validated model -> devices, RunEngine, catalog.

>>> import insitu.beamline
>>> bl = insitu.beamline.load()          # the shipped simulated beamline
>>> bl.RE(bp.count([bl.stage], 3))

The names below are imported on first use (PEP 562), so a small process that needs one module
of this package (the stage guard) does not pay for bluesky and tiled.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from insitu.beamline.assembly import Beamline, load
    from insitu.beamline.catalog import broker, close_catalog, open_catalog
    from insitu.beamline.config import BeamlineConfig, ConfigError, load_config

_WHERE = {
    "Beamline": "insitu.beamline.assembly",
    "load": "insitu.beamline.assembly",
    "broker": "insitu.beamline.catalog",
    "close_catalog": "insitu.beamline.catalog",
    "open_catalog": "insitu.beamline.catalog",
    "BeamlineConfig": "insitu.beamline.config",
    "ConfigError": "insitu.beamline.config",
    "load_config": "insitu.beamline.config",
}

__all__ = [
    "Beamline",
    "BeamlineConfig",
    "ConfigError",
    "broker",
    "close_catalog",
    "load",
    "load_config",
    "open_catalog",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'insitu.beamline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
