"""Argument checks shared by the plans: every plan validates before anything moves.

Each check returns the value in the form the plan uses (a float, an int, a list) or raises
``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, not allowed) with a message that
names the argument (``"heat_ramp every_C"``), the value and what is allowed. A plan calls them
before its first message, so a rejected argument never reaches a device.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from event_model import DocumentNames, schema_validators

from insitu.checks import as_finite

__all__ = [
    "MAX_DURATION_S",
    "MAX_LIST_LENGTH",
    "MIN_STEP_C",
    "as_count",
    "as_duration",
    "as_flag",
    "as_identifier",
    "as_metadata",
    "as_names",
    "as_number",
    "as_positive",
    "as_temperature_step",
    "as_temperatures",
    "check_plan_factory",
    "check_readable",
    "check_stage",
]

#: Longest single wait a plan accepts (dwell, stabilization, time step): one week, in experiment
#: seconds. Longer is a typo (minutes for seconds, an extra zero), not an experiment.
MAX_DURATION_S = 7 * 24 * 3600.0
#: Smallest temperature step between acquisitions: the Linkam controllers report 0.1 C. A smaller
#: step cannot be resolved, and a step far below a float's resolution at the current
#: temperature would never advance the plan's next-step temperature.
MIN_STEP_C = 0.1
#: Longest list of temperatures (or names) a plan accepts.
MAX_LIST_LENGTH = 1000

#: Start-document keys the RunEngine fills in itself; a plan's ``md`` must not carry them.
_RESERVED_METADATA = ("uid", "time")
#: Start-document keys the beamline records (``RE.md``): which process on which machine writes
#: the run. Crash recovery closes a run whose process is gone, so a plan must not change them.
_PROCESS_METADATA = ("host", "pid")


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def as_number(value: Any, what: str, unit: str = "") -> float:
    """``value`` as a finite float: :func:`insitu.checks.as_finite` (``unit`` for the message).

    Accepts ints, floats and numpy scalars; rejects bools, strings, None, arrays and anything
    else that only converts to a number by accident.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If it is NaN, infinite, or too large for a float.
    """
    return as_finite(value, what, unit=unit)


def as_positive(
    value: Any,
    what: str,
    unit: str,
    *,
    allow_zero: bool = False,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite float > 0 (or >= 0 with ``allow_zero``), at most ``maximum``."""
    number = as_number(value, what, unit)
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{what} {number} {unit} is not allowed: it must be {bound} {unit}")
    if maximum is not None and number > maximum:
        low = "0" if allow_zero else "above 0"
        raise ValueError(
            f"{what} {number} {unit} is too large: the allowed range is {low} to {maximum:g} {unit}"
        )
    return number


def as_duration(
    value: Any,
    what: str,
    *,
    allow_zero: bool = True,
    maximum: float = MAX_DURATION_S,
) -> float:
    """A time in experiment seconds: >= 0 (or > 0), at most ``maximum`` (one week by default)."""
    return as_positive(value, what, "s", allow_zero=allow_zero, maximum=maximum)


def as_temperature_step(value: Any, what: str, *, span: float | None = None) -> float:
    """A temperature step in C between acquisitions: at least ``MIN_STEP_C``, at most ``span``.

    ``span`` is the size of the ramp the steps divide, when the plan knows it.
    """
    step = as_number(value, what, "C")
    if step < MIN_STEP_C:
        top = f"{span} C (the ramp)" if span is not None else "any larger step"
        raise ValueError(
            f"{what} {step} C is not allowed: the smallest step is {MIN_STEP_C} C (the stage "
            f"reports 0.1 C); the allowed range is {MIN_STEP_C} C to {top}"
        )
    if span is not None and step > span:
        raise ValueError(
            f"{what} {step} C is larger than the ramp ({span} C): the allowed range is "
            f"{MIN_STEP_C} C to {span} C"
        )
    return step


def as_count(value: Any, what: str, *, minimum: int = 1, maximum: int = 1000) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (ints and numpy ints; never bools)."""
    if _is_bool(value):
        raise TypeError(f"{what} {value!r} is not a whole number")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} {value!r} is not a whole number") from None
    if not minimum <= number <= maximum:
        raise ValueError(f"{what} {number} is outside the allowed range {minimum} to {maximum}")
    return number


def _as_list(values: Any, what: str, kind: str, max_count: int) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise TypeError(f"{what} {values!r} is not a list of {kind}")
    if getattr(values, "ndim", 1) != 1:
        raise TypeError(f"{what} {values!r} is not a flat list of {kind}")
    items = []
    for item in values:
        items.append(item)
        if len(items) > max_count:
            raise ValueError(f"{what} has more than {max_count} {kind} (allowed: 1 to {max_count})")
    if not items:
        raise ValueError(f"{what} is empty: give at least one of the {kind}")
    return items


def as_temperatures(
    values: Iterable[Any], what: str, *, max_count: int = MAX_LIST_LENGTH
) -> list[float]:
    """A non-empty list (at most ``max_count`` long) of finite temperatures without repeats."""
    items = _as_list(values, what, "temperatures", max_count)
    temperatures = [as_number(v, f"{what} entry", "C") for v in items]
    if len(set(temperatures)) != len(temperatures):
        repeated = sorted({t for t in temperatures if temperatures.count(t) > 1})
        raise ValueError(f"{what} {temperatures} repeats {repeated}: give each temperature once")
    return temperatures


def as_names(values: Iterable[Any], what: str, *, count: int) -> list[str]:
    """Exactly ``count`` distinct, non-blank strings (e.g. one sample name per temperature)."""
    items = _as_list(values, what, "names", MAX_LIST_LENGTH)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} entry {item!r} is not a string")
        if not item.strip():
            raise ValueError(f"{what} entry {item!r} is blank: give a name")
    if len(items) != count:
        raise ValueError(f"{what} has {len(items)} names: give exactly {count}")
    if len(set(items)) != len(items):
        raise ValueError(f"{what} {items} repeats a name: give each name once")
    return list(items)


def as_flag(value: Any, what: str) -> bool:
    """``value`` as a bool: only True or False (numpy bools too), never 1, 0 or "yes"."""
    if not _is_bool(value):
        raise TypeError(f"{what} {value!r} is not True or False")
    return bool(value)


def as_identifier(value: Any, what: str) -> str | None:
    """None, or a non-blank string (an id such as a campaign id)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} {value!r} is not a string")
    if not value.strip():
        raise ValueError(f"{what} {value!r} is blank: give an id or None")
    return value


def check_readable(devices: Any, what: str, *, exclude: Iterable[Any] = ()) -> list[Any]:
    """A list of distinct bluesky-readable devices (objects with ``read`` and ``describe``).

    Parameters
    ----------
    devices : iterable of devices
    what : str
        The argument, for messages (``"heat_ramp detectors"``).
    exclude : iterable of devices
        Devices the plan already uses in another role (the stage): listing one again would
        stage and read it twice.

    Raises
    ------
    TypeError
        If ``devices`` is not a list of readable devices.
    ValueError
        If a device (or a device name) is listed twice, or one of ``exclude`` is listed.
    """
    if isinstance(devices, (str, bytes, Mapping)) or not isinstance(devices, Iterable):
        raise TypeError(f"{what} {devices!r} must be a list of devices")
    result = list(devices)
    others = list(exclude)
    names: set[str] = set()
    for device in result:
        if not (hasattr(device, "read") and hasattr(device, "describe")):
            raise TypeError(f"{what}: {device!r} is not a readable device")
        name = getattr(device, "name", None)
        label = name if isinstance(name, str) and name else repr(device)
        if any(device is other for other in others):
            raise ValueError(f"{what}: {label} is already used by the plan (the stage)")
        if name in names or sum(device is d for d in result) > 1:
            raise ValueError(f"{what}: {label} is listed twice: list each device once")
        names.add(name)
    return result


def check_stage(stage: Any, what: str) -> Any:
    """The stage argument: a movable with ``check_value``, ``set`` and a ``temperature`` signal.

    Raises
    ------
    TypeError
        If ``stage`` is not such a device (None, a string, a detector...).
    """
    needed = ("name", "check_value", "set", "temperature", "rate", "read", "describe")
    missing = [attr for attr in needed if not hasattr(stage, attr)]
    if isinstance(stage, (str, bytes)) or missing:
        raise TypeError(
            f"{what} {stage!r} is not a heating stage (a LinkamStage: missing "
            f"{', '.join(missing) or 'everything'})"
        )
    return stage


def check_plan_factory(value: Any, what: str) -> Callable[..., Any] | None:
    """None, or a callable that returns a plan (e.g. ``change_sample(index, temperature)``)."""
    if value is not None and not callable(value):
        raise TypeError(f"{what} {value!r} is neither None nor a function returning a plan")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r}")


def as_metadata(md: Any, what: str) -> dict[str, Any]:
    """``md`` as a dict fit for a run's start document (``{}`` for None).

    Keys must be strings other than ``uid`` and ``time`` (the RunEngine sets those) and
    ``host`` and ``pid`` (the beamline records the writing process there, and crash recovery
    trusts them to tell a live run from one whose process died), values JSON-serializable
    (numpy scalars and arrays allowed), and known keys of the start-document schema must have
    its types (``scan_id`` an integer...): checked with event-model's own schema, so an unfit
    ``md`` is rejected here rather than by ``open_run`` after staging.
    """
    if md is None:
        return {}
    if not isinstance(md, Mapping):
        raise TypeError(f"{what} {md!r} is not a dict of metadata")
    for key in md:
        if not isinstance(key, str):
            raise TypeError(f"{what} key {key!r} is not a string")
        if key in _RESERVED_METADATA:
            raise ValueError(f"{what} key {key!r} is set by the RunEngine: leave it out")
        if key in _PROCESS_METADATA:
            raise ValueError(
                f"{what} key {key!r} ({md[key]!r}) is not allowed: 'host' and 'pid' are "
                "recorded by the beamline (the process writing the run, which crash recovery "
                "checks); leave them out"
            )
    try:
        json.dumps(dict(md), default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} holds a value that cannot be stored: {error}") from None
    except RecursionError:
        raise ValueError(f"{what} refers to itself and cannot be stored") from None
    validator = schema_validators[DocumentNames.start]
    errors = list(validator.iter_errors({"uid": "check", "time": 0.0, **md}))
    if errors:
        problems = "; ".join(f"{'.'.join(map(str, e.path)) or 'md'}: {e.message}" for e in errors)
        raise ValueError(f"{what} does not fit a run's start document: {problems}")
    return dict(md)
