"""Per-stage-model ranges of the Linkam setpoint and ramp rate, and the checks against them."""

from __future__ import annotations

from dataclasses import dataclass

from insitu.checks import as_finite

__all__ = ["STAGE_LIMITS", "StageLimits", "check_limit", "check_rate", "limits_for"]


@dataclass(frozen=True)
class StageLimits:
    """What a stage accepts, checked before anything is sent.

    Attributes
    ----------
    model : str
        Stage model name, shown in error messages.
    min_temperature, max_temperature : float
        Allowed setpoint (limit) range in degC.
    min_rate, max_rate : float
        Allowed ramp rate range in degC/min.
    """

    model: str
    min_temperature: float
    max_temperature: float
    min_rate: float = 0.01
    max_rate: float = 150.0

    def __post_init__(self) -> None:
        if not (self.min_temperature < self.max_temperature):
            raise ValueError(
                f"stage limits for {self.model}: min_temperature {self.min_temperature} C must be "
                f"below max_temperature {self.max_temperature} C"
            )
        if not (0 < self.min_rate < self.max_rate):
            raise ValueError(
                f"stage limits for {self.model}: need 0 < min_rate {self.min_rate} < max_rate "
                f"{self.max_rate} C/min"
            )


# TS1500 works from room temperature up, with no liquid-nitrogen cooling: 20 C is the lowest
# room temperature we plan for. A setpoint between 20 C and the actual ambient is accepted but
# cannot be reached; the move then times out, which is the honest outcome.
STAGE_LIMITS: dict[str, StageLimits] = {
    "TS1500": StageLimits("TS1500", min_temperature=20.0, max_temperature=1500.0),
    "HFS600E": StageLimits("HFS600E", min_temperature=-196.0, max_temperature=600.0),
}


def limits_for(stage_model: str) -> StageLimits:
    """Return the limits of a known stage model (e.g. ``"TS1500"``, ``"HFS600E"``).

    Raises
    ------
    ValueError
        If the model is unknown; the message lists the known ones.
    """
    try:
        return STAGE_LIMITS[stage_model]
    except KeyError:
        known = ", ".join(sorted(STAGE_LIMITS))
        raise ValueError(f"unknown Linkam stage model {stage_model!r}; known: {known}") from None


def check_limit(value: object, limits: StageLimits, device: str = "linkam") -> float:
    """Return ``value`` as a float setpoint in degC if the stage accepts it, else raise.

    Raises
    ------
    TypeError
        If ``value`` is not a number.
    ValueError
        If it is not finite or lies outside the stage's temperature range.
    """
    celsius = as_finite(value, f"{device}.setpoint", unit="C")
    if celsius > limits.max_temperature:
        raise ValueError(
            f"{device}.setpoint {celsius} C is above the stage limit {limits.max_temperature} C "
            f"({limits.model})"
        )
    if celsius < limits.min_temperature:
        raise ValueError(
            f"{device}.setpoint {celsius} C is below the stage limit {limits.min_temperature} C "
            f"({limits.model})"
        )
    return celsius


def check_rate(value: object, limits: StageLimits, device: str = "linkam") -> float:
    """Return ``value`` as a float ramp rate in degC/min if the stage accepts it, else raise.

    Raises
    ------
    TypeError
        If ``value`` is not a number.
    ValueError
        If it is not finite or lies outside the stage's rate range.
    """
    rate = as_finite(value, f"{device}.rate", unit="C/min")
    if rate > limits.max_rate:
        raise ValueError(
            f"{device}.rate {rate} C/min is above the stage limit {limits.max_rate} C/min "
            f"({limits.model})"
        )
    if rate < limits.min_rate:
        raise ValueError(
            f"{device}.rate {rate} C/min is below the stage limit {limits.min_rate} C/min "
            f"({limits.model})"
        )
    return rate
