"""The beamline configuration: a YAML file validated into a typed model with clear errors."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "BeamlineConfig",
    "ConfigError",
    "default_config_path",
    "load_config",
    "parse_config",
]

#: An instrument address of ``sim`` means: start the emulator for it on this machine.
SIMULATED = "sim"


class ConfigError(ValueError):
    """A beamline configuration is invalid; the message names each bad key and value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulationConfig(_Section):
    """How the simulated beamline runs."""

    speedup: float = Field(1.0, ge=1.0, le=10000.0, description="experiment s per wall s")
    seed: int | None = Field(None, description="random seed of the emulators (None: random)")


class CatalogConfig(_Section):
    """Where runs are stored."""

    location: str = Field("insitu-data", description="directory (embedded) or http(s) URI")
    api_key: str | None = None
    max_write_delay_s: float = Field(0.5, gt=0.0, le=1.0)


class FilmConfig(_Section):
    """The sample film and its in-plane electrode geometry (Zhu et al. 2024 by default)."""

    name: str = "LLZO film"
    composition: str = "Li6.25Al0.25La3Zr2O12"
    thickness_um: float = Field(2.0, gt=0.0, le=1000.0)
    gap_mm: float = Field(0.25, gt=0.0, le=100.0)
    electrode_length_mm: float = Field(3.0, gt=0.0, le=100.0)


class StageConfig(_Section):
    """The Linkam heating stage and its hard limits."""

    address: str = SIMULATED
    model: Literal["TS1500", "HFS600E"] = "TS1500"
    max_temperature_C: float = Field(900.0, ge=-196.0, le=1500.0)
    max_rate_C_per_min: float = Field(50.0, gt=0.0, le=150.0)
    tolerance_C: float = Field(1.0, gt=0.0, le=50.0)
    settle_time_s: float = Field(10.0, ge=0.0, le=3600.0)
    poll_period_s: float = Field(0.5, gt=0.0, le=60.0)

    @model_validator(mode="after")
    def _within_model_range(self):
        top = {"TS1500": 1500.0, "HFS600E": 600.0}[self.model]
        if self.max_temperature_C > top:
            raise ValueError(
                f"max_temperature_C {self.max_temperature_C} C is above the {self.model} "
                f"stage's range (up to {top} C)"
            )
        return self


class RamanConfig(_Section):
    """The Raman spectrometer."""

    address: str = SIMULATED
    backend: Literal["labspec6", "witec"] = "labspec6"
    laser_wavelength_nm: float = Field(532.0, gt=200.0, lt=1100.0)
    max_laser_power_mW: float = Field(20.0, gt=0.0, le=500.0)


class ImpedanceConfig(_Section):
    """The Zahner impedance analyzer (Term on port 260 of the Thales PC)."""

    address: str = SIMULATED


class BeamlineConfig(_Section):
    """A whole beamline: instruments, sample, catalog and simulation settings."""

    name: str = Field("insitu-sim", min_length=1)
    simulation: SimulationConfig = SimulationConfig()
    catalog: CatalogConfig = CatalogConfig()
    film: FilmConfig = FilmConfig()
    stage: StageConfig = StageConfig()
    raman: RamanConfig = RamanConfig()
    eis: ImpedanceConfig = ImpedanceConfig()
    metadata_dir: str = Field(
        "insitu-data/runengine-md", description="persistent RunEngine metadata (scan_id...)"
    )

    @property
    def simulated(self) -> bool:
        """True if any instrument is simulated (then the clock runs at ``simulation.speedup``)."""
        return SIMULATED in (self.stage.address, self.raman.address, self.eis.address)


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (allowed keys are listed in the shipped sim.yaml)"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    return f"{where}: {error['input']!r} is not allowed: {message}"


def parse_config(data: dict, *, source: str = "<config>") -> BeamlineConfig:
    """Validate a configuration mapping.

    Raises
    ------
    ConfigError
        Naming, for each problem, the key, the bad value and what is allowed.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a beamline config must be a mapping, got {type(data).__name__}"
        )
    try:
        return BeamlineConfig.model_validate(data)
    except ValidationError as exc:
        lines = "\n  ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid beamline config {source}:\n  {lines}") from None


def default_config_path() -> Path:
    """The shipped simulated-beamline config, ``insitu/beamline/sim.yaml``."""
    return Path(str(resources.files("insitu.beamline") / "sim.yaml"))


def load_config(path: str | os.PathLike | None = None) -> BeamlineConfig:
    """Read and validate a YAML beamline config (the shipped ``sim.yaml`` by default)."""
    path = Path(path) if path is not None else default_config_path()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read beamline config {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"beamline config {str(path)!r} is not valid YAML: {exc}") from None
    return parse_config(data, source=str(path))
