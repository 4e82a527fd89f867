"""Re-establish a lost instrument link in the background, with exponential backoff in wall time.

A device that owns a link (a socket to LabSpec, the Term channels of a Zahner) holds a
:class:`ConnectedSignal` named ``connected`` (1 = up, 0 = lost) and a :class:`Reconnector`. When an
operation fails on the link, the device calls :meth:`Reconnector.link_lost`: ``connected`` drops to
0 at once (so a bluesky suspender watching it trips before anything else fails), and a background
thread calls the device's ``reopen`` function with waits of 0.5, 1, 2, 4 ... s, capped at 30 s, each
attempt logged, until it succeeds (``connected`` back to 1) or ``give_up_after`` wall seconds have
passed (the reconnector *gives up*: ``connected`` stays 0, is re-published so that suspenders look
again, and :attr:`Reconnector.failure` says why). The retry loop is ``tenacity``'s (wait, stop and
an interruptible sleep); this module only adds the state that devices and suspenders share.

Network round trips and instrument reconnects are wall time, not experiment time: a sped-up
simulation does not make a TCP connect faster.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import tenacity
from ophyd import Signal, SignalRO

from insitu import clock
from insitu.checks import as_finite

__all__ = ["ConnectedSignal", "Reconnector", "LinkState"]

log = logging.getLogger(__name__)


class LinkState:
    """The three states of a :class:`Reconnector` (plain strings, for messages and tests)."""

    UP = "up"
    RECONNECTING = "reconnecting"
    GAVE_UP = "gave up"


class ConnectedSignal(SignalRO):
    """``1`` while the device's link is up (or not needed yet), ``0`` from a failure until back.

    Read-only for users; the device publishes through :meth:`update` (timestamps in experiment
    time). Subscribers are told only on a change, unless ``force`` asks to re-publish.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("value", 1)
        super().__init__(**kwargs)

    def update(self, value: int, *, force: bool = False) -> None:
        """Publish ``value`` (1 or 0); ``force`` re-publishes an unchanged value."""
        value = 1 if value else 0
        if not force and value == self._readback:
            return
        Signal.put(self, value, timestamp=clock.now(), force=True)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Reconnector:
    """Reopens one device's link in a background thread after a failure.

    Parameters
    ----------
    reopen : callable
        Opens a fresh link and checks that the instrument answers (and makes it safe, e.g. a
        potentiostat switched off); raises on failure. Called from the reconnect thread.
    signal : ConnectedSignal
        The device's ``connected`` signal.
    owner : str
        Device name for messages and log lines.
    initial_delay, max_delay : float
        Wall seconds before the second attempt, doubled after each failure up to ``max_delay``.
    give_up_after : float
        Wall seconds of failed attempts after which the reconnector gives up.
    max_losses : int
        Links lost in a row without a successful measurement in between (see
        :meth:`mark_healthy`) before the reconnector gives up at once: a link that comes back
        only to fail again (an instrument answering garbage) must end, not loop.

    Attributes
    ----------
    state : str
        One of :class:`LinkState`.
    failure : str
        Why the link was last lost, or why the reconnector gave up ("" while healthy).
    attempts : int
        Reconnect attempts made since the last loss.
    """

    def __init__(
        self,
        reopen: Callable[[], None],
        signal: ConnectedSignal,
        *,
        owner: str,
        initial_delay: float = 0.5,
        max_delay: float = 30.0,
        give_up_after: float = 300.0,
        max_losses: int = 5,
    ) -> None:
        if not callable(reopen):
            raise TypeError(f"{owner} reconnect function {reopen!r} is not callable")
        for label, value in (
            ("initial_delay", initial_delay),
            ("max_delay", max_delay),
            ("give_up_after", give_up_after),
        ):
            if as_finite(value, f"{owner}.reconnect {label}", unit="s") <= 0:
                raise ValueError(f"{owner}.reconnect {label} {value!r} s must be a number > 0")
        if initial_delay > max_delay:
            raise ValueError(
                f"{owner}.reconnect initial_delay {initial_delay} s is above max_delay "
                f"{max_delay} s"
            )
        if isinstance(max_losses, bool) or not isinstance(max_losses, int) or max_losses < 1:
            raise ValueError(f"{owner}.reconnect max_losses {max_losses!r} must be an integer >= 1")
        self._reopen = reopen
        self.signal = signal
        self.owner = owner
        self.initial_delay = float(initial_delay)
        self.max_delay = float(max_delay)
        self.give_up_after = float(give_up_after)
        self.max_losses = max_losses
        self.state = LinkState.UP
        self.failure = ""
        self.attempts = 0
        self._losses = 0
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what devices call ---------------------------------------------------------------------
    def link_lost(self, error: BaseException) -> None:
        """Record a failure of the link and start reconnecting (if not already doing so).

        ``connected`` drops to 0 before this returns.
        """
        with self._changed:
            self._losses += 1
            self.failure = f"{self.owner}: link lost ({_describe(error)})"
            if self.state == LinkState.RECONNECTING or self._closing.is_set():
                return
            if self._losses > self.max_losses:
                self._give_up_locked(
                    f"{self.owner}: the link was lost {self._losses} times in a row without a "
                    f"successful measurement in between (last: {_describe(error)}); giving up"
                )
            else:
                self.state = LinkState.RECONNECTING
                self.attempts = 0
                self._thread = threading.Thread(
                    target=self._reconnect, name=f"{self.owner}-reconnect", daemon=True
                )
                self._thread.start()
            gave_up = self.state == LinkState.GAVE_UP
        log.warning("%s: connection lost (%s); reconnecting", self.owner, _describe(error))
        self.signal.update(0, force=gave_up)

    def mark_healthy(self) -> None:
        """A measurement succeeded on the link: the count of losses in a row starts again."""
        with self._changed:
            self._losses = 0

    def wait_settled(self, cancel: threading.Event | None = None) -> str:
        """Block while reconnecting; return the state (``up`` or ``gave up``), or early on cancel.

        Bounded: the reconnect thread ends by ``give_up_after`` (plus one attempt).
        """
        with self._changed:
            while self.state == LinkState.RECONNECTING:
                if cancel is not None and cancel.is_set():
                    break
                self._changed.wait(0.05)
            return self.state

    def try_once(self) -> None:
        """After a give-up: one direct attempt; ``connected`` back to 1 on success.

        Raises
        ------
        ConnectionError
            If the attempt fails (chained to the reopen error), saying so clearly.
        """
        try:
            self._reopen()
        except Exception as error:
            raise ConnectionError(
                f"{self.failure or self.owner}; a new attempt to connect failed too: "
                f"{_describe(error)}"
            ) from error
        self._set_up()

    def close(self) -> None:
        """Stop reconnecting (the device is being closed)."""
        self._closing.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10.0)

    # --- the reconnect thread ------------------------------------------------------------------
    def _reconnect(self) -> None:
        started = time.monotonic()
        retrying = tenacity.Retrying(
            wait=tenacity.wait_exponential(
                multiplier=self.initial_delay, min=self.initial_delay, max=self.max_delay
            ),
            stop=tenacity.stop_any(
                tenacity.stop_before_delay(self.give_up_after),
                tenacity.stop_when_event_set(self._closing),
            ),
            sleep=self._closing.wait,  # interruptible by close()
            before=self._count_attempt,
            before_sleep=self._log_failed_attempt,
            reraise=True,
        )
        try:
            retrying(self._reopen)
        except Exception as error:
            with self._changed:
                if self._closing.is_set():
                    self._give_up_locked(f"{self.owner}: closed while reconnecting")
                    return
                self._give_up_locked(
                    f"{self.owner}: the link did not come back: {self.attempts} reconnect "
                    f"attempts over {time.monotonic() - started:.1f} s failed (last: "
                    f"{_describe(error)}); giving up"
                )
            self.signal.update(0, force=True)  # suspenders look again, and see the give-up
            return
        log.warning("%s: reconnected after %d attempt(s)", self.owner, self.attempts)
        self._set_up()

    def _count_attempt(self, retry_state: tenacity.RetryCallState) -> None:
        self.attempts = retry_state.attempt_number

    def _log_failed_attempt(self, retry_state: tenacity.RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        log.warning(
            "%s: reconnect attempt %d failed (%s); next attempt in %.1f s",
            self.owner,
            retry_state.attempt_number,
            _describe(error) if error is not None else "?",
            retry_state.upcoming_sleep,
        )

    def _give_up_locked(self, why: str) -> None:
        self.state = LinkState.GAVE_UP
        self.failure = why
        self._changed.notify_all()
        log.error("%s", why)

    def _set_up(self) -> None:
        with self._changed:
            self.state = LinkState.UP
            self.failure = ""
            self._changed.notify_all()
        self.signal.update(1)
