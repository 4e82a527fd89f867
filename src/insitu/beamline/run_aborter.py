"""Abort the RunEngine's plan from any thread, with the reason in the stop document."""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["RunAborter"]

logger = logging.getLogger(__name__)

#: Wall seconds RunAborter.abort waits for a transient RunEngine state to settle.
_ABORT_WAIT_S = 30.0


class RunAborter:
    """Abort the RunEngine's current plan from any thread, with the reason in the stop document.

    ``RE.abort(reason)`` (bluesky's public API, callable from another thread) ends the plan
    with its cleanup and every open run with ``exit_status='abort'``; the caller of
    ``RE(plan)`` gets ``RunEngineInterrupted``. But a plan that closes its own run (every
    ``run_decorator``/``run_wrapper`` plan) closes it without the reason (the RunEngine only
    uses it for runs it closes itself; blueapi issue #1306 reports the same). So the aborter
    also installs a RunEngine preprocessor that puts the reason into the ``close_run`` of an
    abort it requested.

    Parameters
    ----------
    run_engine : bluesky.RunEngine
        Its ``preprocessors`` list gets the reason filler (applies to plans started later).
    """

    def __init__(self, run_engine: Any) -> None:
        self.run_engine = run_engine
        self._reason: str | None = None
        run_engine.preprocessors.append(self._fill_reason)

    def abort(self, reason: str, *, wait: float = _ABORT_WAIT_S) -> bool:
        """Abort the running, suspended or paused plan for ``reason``; nothing if idle.

        A transient state (pausing, suspending) is waited out for up to ``wait`` wall
        seconds. Aborting a *paused* plan from a thread other than the main one needs a
        RunEngine whose Ctrl-C handler is installed only on the main thread (the beamline's
        is: see ``insitu.beamline.assembly``); the cleanup then runs on the calling thread.

        Returns
        -------
        bool
            True if an abort was requested.
        """
        from bluesky.utils import TransitionError

        deadline = time.monotonic() + wait
        while True:
            state = str(self.run_engine.state)
            if state in ("running", "paused"):
                self._reason = reason  # before the abort: the run may close before it returns
                try:
                    self.run_engine.abort(reason=reason)
                except TransitionError:  # it went idle meanwhile: nothing left to abort
                    return False
                return True
            if state in ("idle", "panicked", "aborting", "halting", "stopping"):
                return False
            if time.monotonic() > deadline:
                logger.error("RunEngine stayed %r for %s s: not aborted (%s)", state, wait, reason)
                return False
            time.sleep(0.02)  # wall time on purpose: waiting for a RunEngine state transition

    def on_alarm(self, alarm: Any) -> bool:
        """Watchdog alarm callback: ``abort(alarm.reason)``."""
        return self.abort(alarm.reason)

    def _fill_reason(self, plan: Any) -> Any:
        from bluesky.preprocessors import msg_mutator

        def fill(msg: Any) -> Any:
            if msg.command == "open_run":
                self._reason = None  # a new run: an earlier abort's reason is not its own
            elif (
                msg.command == "close_run"
                and self._reason is not None
                and msg.kwargs.get("exit_status") == "abort"
                and not msg.kwargs.get("reason")
            ):
                return msg._replace(kwargs={**msg.kwargs, "reason": self._reason})
            return msg

        return msg_mutator(plan, fill)
