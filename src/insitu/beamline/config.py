"""The beamline configuration: a YAML file validated into a typed model with clear errors."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

__all__ = [
    "BeamlineConfig",
    "ConfigError",
    "SafetyConfig",
    "Secret",
    "TimeAboveConfig",
    "default_config_path",
    "load_config",
    "parse_config",
    "redact_url",
]

#: An instrument address of ``sim`` means: start the emulator for it on this machine.
SIMULATED = "sim"


class ConfigError(ValueError):
    """A beamline configuration is invalid; the message names each bad key and value."""


class Secret(str):
    """A string that is a secret (an API key): its ``repr`` is ``'***'``.

    It is still the string itself (``==``, f-strings, HTTP headers, ``str()`` give the value), so
    code that uses it needs nothing special; only the places that show objects (``repr`` of a
    config, of a beamline, a traceback's locals, a log line with ``%r``) see ``'***'``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class _URLWithSecret(str):
    """A URL whose ``repr`` has any password replaced by ``***`` (see :func:`redact_url`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact_url(str(self)))


def redact_url(url: str) -> str:
    """``url`` with the password of its user part, if any, replaced by ``***``.

    Parameters
    ----------
    url : str
        A URL (``postgresql://user:password@host:5432/db``, ``https://user:pw@host``) or any
        other location (a directory path is returned unchanged).

    Returns
    -------
    str
        The same URL, safe to show: ``postgresql://user:***@host:5432/db``.
    """
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:  # not a URL urllib can take apart: show no user part at all
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if sep and "@" in rest else url
    if not has_password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit((parts.scheme, f"{name}:***@{host}", parts.path, parts.query, parts.fragment))


def _as_secret(value: str | None) -> Secret | None:
    return None if value is None else Secret(value)


def _as_location(value: str) -> str:
    return _URLWithSecret(value)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilmVariationConfig(_Section):
    """How each simulated film differs from the paper's (issue 18: films that differ)."""

    crystallization_shift_C: float = Field(
        0.0,
        ge=-200.0,
        le=200.0,
        description="every transformation of the film happens this many C higher",
    )
    conductivity_scale: float = Field(
        1.0, gt=0.0, le=1000.0, description="multiplies the film's conductivity"
    )


class SimulationConfig(_Section):
    """How the simulated beamline runs."""

    speedup: float = Field(1.0, ge=1.0, le=10000.0, description="experiment s per wall s")
    seed: int | None = Field(None, description="random seed of the emulators (None: random)")
    raman_variation: float = Field(
        1.0,
        ge=0.0,
        le=3.0,
        description=(
            "spread of each simulated film's and the spectrometer's Raman variation (band "
            "widths, ratios, amorphous bands, fluorescence, axis calibration, laser drift): "
            "0 is the nominal band table, 1 a typical film on a typical instrument"
        ),
    )
    film_variation: FilmVariationConfig = FilmVariationConfig()
    virtual_time: bool = Field(
        False,
        description=(
            "hold experiment time while the RunEngine works (only when every instrument is "
            "simulated): what the virtual film lives through is what the plans asked for, "
            "whatever the speed-up and the machine's load (insitu.beamline.virtual_time)"
        ),
    )


class CatalogConfig(_Section):
    """Where runs are stored."""

    location: Annotated[str, AfterValidator(_as_location)] = Field(
        "insitu-data", description="directory (embedded) or http(s) URI"
    )
    #: Shown as '***' (a :class:`Secret`); the value is the key.
    api_key: Annotated[str | None, AfterValidator(_as_secret)] = None
    max_write_delay_s: float = Field(0.5, gt=0.0, le=1.0)


class FilmConfig(_Section):
    """The sample film and its in-plane electrode geometry (Zhu et al. 2024 by default)."""

    name: str = "LLZO film"
    composition: str = "Li6.25Al0.25La3Zr2O12"
    thickness_um: float = Field(2.0, gt=0.0, le=1000.0)
    gap_mm: float = Field(0.25, gt=0.0, le=100.0)
    electrode_length_mm: float = Field(3.0, gt=0.0, le=100.0)


_MODEL_MAX_TEMPERATURE_C = {"TS1500": 1500.0, "HFS600E": 600.0}
_MODEL_MAX_RATE_C_PER_MIN = 150.0


class StageConfig(_Section):
    """The Linkam heating stage and its hard limits."""

    address: str = SIMULATED
    model: Literal["TS1500", "HFS600E"] = "TS1500"
    max_temperature_C: float = Field(900.0, ge=-196.0, le=1500.0)
    max_rate_C_per_min: float = Field(50.0, gt=0.0, le=150.0)
    tolerance_C: float = Field(1.0, gt=0.0, le=50.0)
    settle_time_s: float = Field(10.0, ge=0.0, le=3600.0)
    poll_period_s: float = Field(0.5, gt=0.0, le=60.0)

    @property
    def model_max_temperature_C(self) -> float:
        """The stage model's own top temperature (C)."""
        return _MODEL_MAX_TEMPERATURE_C[self.model]

    @model_validator(mode="after")
    def _within_model_range(self):
        top = self.model_max_temperature_C
        if self.max_temperature_C > top:
            raise ValueError(
                f"max_temperature_C {self.max_temperature_C} C is above the {self.model} "
                f"stage's range (up to {top} C)"
            )
        return self


#: Default margins of the watchdog's limits over what the stage device accepts (see SafetyConfig).
DEFAULT_TEMPERATURE_MARGIN_C = 10.0
DEFAULT_RATE_FACTOR = 1.5
DEFAULT_TIME_ABOVE_BELOW_MAX_C = 100.0
DEFAULT_TIME_ABOVE_S = 7200.0


class TimeAboveConfig(_Section):
    """A dwell limit: the stage may stay above ``temperature_C`` for at most ``seconds``."""

    temperature_C: float = Field(ge=-196.0, le=1500.0)
    seconds: float = Field(gt=0.0, le=30 * 24 * 3600.0, description="experiment seconds")


class SafetyConfig(_Section):
    """Hard limits the watchdog enforces on the stage, independently of plans and RunEngine.

    Left out, a limit is derived from the ``stage`` section: ``max_temperature_C`` is the
    stage's plus 10 C (regulation noise and a normal overshoot never trip it),
    ``max_rate_C_per_min`` is 1.5 x the stage's, and ``time_above`` is 2 hours above the
    stage's maximum minus 100 C. ``time_above: null`` switches the dwell limit off.
    """

    max_temperature_C: float | None = Field(None, ge=-196.0, le=1600.0)
    max_rate_C_per_min: float | None = Field(
        None, gt=0.0, le=1000.0, description="heating rate, measured over rate_window_s"
    )
    rate_window_s: float = Field(30.0, gt=0.0, le=3600.0, description="experiment seconds")
    time_above: TimeAboveConfig | None = None
    stall_timeout_s: float = Field(
        10.0, gt=0.0, le=3600.0, description="wall seconds without a valid reading"
    )
    safe_state: Literal["hold", "stop"] = Field(
        "stop", description="stop: heater off (E); hold: hold the current temperature (O)"
    )
    guard: bool = Field(
        True,
        description=(
            "for a real stage, a guard process that puts it in its safe state within "
            "stall_timeout_s + a few s if this process is killed, stopped or hangs"
        ),
    )


class RamanConfig(_Section):
    """The Raman spectrometer."""

    address: str = SIMULATED
    backend: Literal["labspec6", "witec"] = "labspec6"
    laser_wavelength_nm: float = Field(532.0, gt=200.0, lt=1100.0)
    max_laser_power_mW: float = Field(20.0, gt=0.0, le=500.0)


class ImpedanceConfig(_Section):
    """The Zahner impedance analyzer (Term on port 260 of the Thales PC)."""

    address: str = SIMULATED


class StreamingConfig(_Section):
    """Where the live analysis runs: in this process, or in `insitu serve analysis` over 0MQ."""

    local_analysis: bool = Field(
        True, description="run the Raman/EIS callbacks here (false: a 0MQ consumer does)"
    )
    publish_to: str | None = Field(
        None, description="HOST:PORT of a bluesky 0MQ proxy's in-port to publish documents to"
    )


class BeamlineConfig(_Section):
    """A whole beamline: instruments, sample, catalog and simulation settings."""

    name: str = Field("insitu-sim", min_length=1)
    simulation: SimulationConfig = SimulationConfig()
    catalog: CatalogConfig = CatalogConfig()
    film: FilmConfig = FilmConfig()
    stage: StageConfig = StageConfig()
    raman: RamanConfig = RamanConfig()
    eis: ImpedanceConfig = ImpedanceConfig()
    safety: SafetyConfig = SafetyConfig()
    streaming: StreamingConfig = StreamingConfig()
    metadata_dir: str = Field(
        "insitu-data/runengine-md", description="persistent RunEngine metadata (scan_id...)"
    )

    @model_validator(mode="after")
    def _safety_from_stage(self):
        """Fill the safety limits left out from the stage section; check they fit together."""
        stage, safety = self.stage, self.safety
        update = {}
        if safety.max_temperature_C is None:
            update["max_temperature_C"] = stage.max_temperature_C + DEFAULT_TEMPERATURE_MARGIN_C
        if safety.max_rate_C_per_min is None:
            update["max_rate_C_per_min"] = stage.max_rate_C_per_min * DEFAULT_RATE_FACTOR
        if "time_above" not in safety.model_fields_set:
            update["time_above"] = TimeAboveConfig(
                temperature_C=stage.max_temperature_C - DEFAULT_TIME_ABOVE_BELOW_MAX_C,
                seconds=DEFAULT_TIME_ABOVE_S,
            )
        if update:
            safety = safety.model_copy(update=update)
        if safety.max_temperature_C < stage.max_temperature_C:
            raise ValueError(
                f"safety.max_temperature_C {safety.max_temperature_C} C is below "
                f"stage.max_temperature_C {stage.max_temperature_C} C: a setpoint the stage "
                "accepts would trip the watchdog"
            )
        # The watchdog's limits may only be tighter than what the stage model can do (plus the
        # default margins): a hard limit above the hardware's range protects nothing.
        model_top = stage.model_max_temperature_C + DEFAULT_TEMPERATURE_MARGIN_C
        if safety.max_temperature_C > model_top:
            raise ValueError(
                f"safety.max_temperature_C {safety.max_temperature_C} C is above what the "
                f"{stage.model} stage can reach plus {DEFAULT_TEMPERATURE_MARGIN_C:g} C "
                f"({model_top:g} C): the watchdog's limit must be tighter than the stage model"
            )
        model_rate = _MODEL_MAX_RATE_C_PER_MIN * DEFAULT_RATE_FACTOR
        if safety.max_rate_C_per_min > model_rate:
            raise ValueError(
                f"safety.max_rate_C_per_min {safety.max_rate_C_per_min} C/min is above the "
                f"{stage.model} stage's fastest rate x {DEFAULT_RATE_FACTOR:g} ({model_rate:g} "
                "C/min): the watchdog's limit must be tighter than the stage model"
            )
        if safety.max_rate_C_per_min < stage.max_rate_C_per_min:
            raise ValueError(
                f"safety.max_rate_C_per_min {safety.max_rate_C_per_min} C/min is below "
                f"stage.max_rate_C_per_min {stage.max_rate_C_per_min} C/min: a rate the stage "
                "accepts would trip the watchdog"
            )
        if safety is self.safety:
            return self
        return self.model_copy(update={"safety": safety})

    @property
    def simulated(self) -> bool:
        """True if any instrument is simulated (then the clock runs at ``simulation.speedup``)."""
        return SIMULATED in (self.stage.address, self.raman.address, self.eis.address)

    @property
    def all_simulated(self) -> bool:
        """True if every instrument is simulated (only then may experiment time be held)."""
        return {self.stage.address, self.raman.address, self.eis.address} == {SIMULATED}


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (allowed keys are listed in the shipped sim.yaml)"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    if not error["loc"]:  # a check across sections: the message names the keys and values
        return message.removeprefix("Value error, ")
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
