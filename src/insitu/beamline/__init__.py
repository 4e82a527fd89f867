"""Beamline assembly: a YAML config -> validated model -> devices, RunEngine, catalog.

>>> import insitu.beamline
>>> bl = insitu.beamline.load()          # the shipped simulated beamline
>>> bl.RE(bp.count([bl.stage], 3))
"""

from insitu.beamline.assembly import Beamline, load
from insitu.beamline.catalog import broker, close_catalog, open_catalog
from insitu.beamline.config import BeamlineConfig, ConfigError, load_config

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
