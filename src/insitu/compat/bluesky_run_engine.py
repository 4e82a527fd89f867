"""bluesky's RunEngine and plan wrapper: what held time needs, and a lighter never-iterated
check (private). Used by :mod:`insitu.beamline.virtual_time` and
:mod:`insitu.beamline.assembly`, only through here.

* ``RunEngine._command_registry`` (name -> coroutine function): :func:`command`, the function a
  message name runs now, so a wrapper can call the original (``register_command`` is public,
  reading the registry is not);
* ``RunEngine._status_objs`` (group -> statuses a ``wait`` on that group awaits):
  :func:`statuses_of_group`;
* ``bluesky.utils.Plan.__init__``/``__del__`` and its ``_iter``/``_stack`` slots:
  :func:`light_plan_stacks`.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from typing import Any

from insitu.compat import check_version

__all__ = ["DISTRIBUTION", "WRITTEN_FOR", "command", "light_plan_stacks", "statuses_of_group"]

DISTRIBUTION = "bluesky"
WRITTEN_FOR = "1.15.1"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)


def command(engine: Any, name: str) -> Any:
    """The coroutine function the RunEngine runs for message ``name``."""
    return engine._command_registry[name]


def statuses_of_group(engine: Any, group: Any) -> list[Any]:
    """The statuses a ``wait`` on ``group`` is about to await (empty if none)."""
    return list(engine._status_objs.get(group, ()))


def _record_call(self, f, *args, **kwargs) -> None:
    self._iter = f(*args, **kwargs)
    # Where the plan was called from, unformatted: this __init__ and bluesky's wrapper skipped,
    # as bluesky's own format_stack()[:-2] skips them.
    frame, calls = sys._getframe(1).f_back, []
    while frame is not None:
        calls.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, None))
        frame = frame.f_back
    calls.reverse()
    self._stack = (calls, f.__name__)


def _warn_if_never_iterated(self) -> None:
    if self._stack:
        calls, name = self._stack
        lines = traceback.format_list(traceback.StackSummary.from_list(calls))
        lines.append(
            f"RuntimeWarning: plan `{name}` was never iterated, did you mean to use `yield from`?"
        )
        warnings.warn("\n" + "".join(lines), RuntimeWarning, stacklevel=1)


def light_plan_stacks() -> None:
    """Make every bluesky plan stub record where it was called without formatting the stack.

    ``bluesky.utils.Plan`` (the wrapper of each plan stub, for a warning when a plan is never
    iterated) formats the whole call stack each time a stub is called, reading every frame's
    source file through linecache: under the RunEngine and its preprocessors about 60 frames,
    2 ms per stub. On the demo's ramps and anneals that was 70 % of the RunEngine thread's
    time. Here the frames' file, line and function are kept as they are, and formatted (the
    same warning, the same text) only for a plan that was never iterated. Idempotent; for the
    whole process (every RunEngine's plans).
    """
    from bluesky.utils import Plan

    Plan.__init__ = _record_call
    Plan.__del__ = _warn_if_never_iterated
