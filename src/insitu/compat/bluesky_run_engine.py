"""bluesky's RunEngine: the command functions and awaited statuses held time needs (private).
Used by :mod:`insitu.beamline.virtual_time`, only through here.

* ``RunEngine._command_registry`` (name -> coroutine function): :func:`command`, the function a
  message name runs now, so a wrapper can call the original (``register_command`` is public,
  reading the registry is not);
* ``RunEngine._status_objs`` (group -> statuses a ``wait`` on that group awaits):
  :func:`statuses_of_group`.
"""

from __future__ import annotations

from typing import Any

from insitu.compat import check_version

__all__ = ["DISTRIBUTION", "WRITTEN_FOR", "command", "statuses_of_group"]

DISTRIBUTION = "bluesky"
WRITTEN_FOR = "1.15.1"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)


def command(engine: Any, name: str) -> Any:
    """The coroutine function the RunEngine runs for message ``name``."""
    return engine._command_registry[name]


def statuses_of_group(engine: Any, group: Any) -> list[Any]:
    """The statuses a ``wait`` on ``group`` is about to await (empty if none)."""
    return list(engine._status_objs.get(group, ()))
