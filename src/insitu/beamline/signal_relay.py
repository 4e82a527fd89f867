"""Signal relay: a SIGTERM or SIGHUP the main thread could not act on still makes the stage safe.

CPython runs a Python signal handler only on the main thread, between bytecodes. Its C-level
handler records the signal and interrupts the main thread's blocking call, but a signal that
lands in the instant between the main thread's last check and its entering a wait without a
timeout (``threading.Event().wait()``, a lock, ``input()``), or on another thread while the main
thread blocks it, leaves the handler pending until the main thread runs bytecode again: maybe
never. The hardware cannot depend on that. (Measured: a test child sent SIGHUP just as it
entered ``Event().wait()`` kept heating, its handler never run; CI, 2026-12-07.)

CPython's C handler also writes the signal's number to the *wakeup fd*
(``signal.set_wakeup_fd``) from whatever thread it interrupted. The relay owns that fd when
nobody else does (an asyncio loop that set one wakes the main thread itself) and, on a thread
of its own, waits on it: a handled signal that the Python handler has not acknowledged within
:data:`GRACE_S` is acted on here (``on_missed``: the safe exit), then sent again to the main
thread alone (``pthread_kill``), whose wait it interrupts, so the handler runs and the process
ends by the signal as it would have.

Best effort where another owner takes the wakeup fd later: asyncio's ``remove_signal_handler``
sets it to -1 (prompt_toolkit does so around every IPython prompt), which leaves the relay
without bytes. There the main thread runs an event loop that the signal wakes, so the handler
runs anyway. A process forked after the relay started does not inherit it (its fd is given up
in the child: the parent's relay must not act on the child's signals).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import weakref
from collections.abc import Callable, Iterable

__all__ = ["GRACE_S", "SignalRelay"]

logger = logging.getLogger(__name__)

#: Seconds the main thread's handler has to acknowledge a signal before the relay acts on it.
GRACE_S = 0.5


class SignalRelay:
    """Watch the wakeup fd for signals the main thread's Python handler did not run for.

    Parameters
    ----------
    signals : iterable of int
        The signals relayed (others written to the wakeup fd, such as SIGINT, are ignored).
    on_missed : callable(int) -> bool
        Called on the relay's thread with a signal number the handler did not acknowledge in
        time; returns whether it acted on it (an ignored signal is not acted on). Only then is
        the signal sent again to the main thread, unless its handler ran meanwhile.

    Notes
    -----
    Create and :meth:`start` it on the main thread (``set_wakeup_fd`` may only be called
    there); the handler calls :meth:`acknowledge` first thing.
    """

    def __init__(self, signals: Iterable[int], on_missed: Callable[[int], bool]) -> None:
        self.signals = frozenset(int(s) for s in signals)
        self.on_missed = on_missed
        self.active = False
        self._acknowledged = {signum: threading.Event() for signum in self.signals}
        self._resent: set[int] = set()
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._main_ident = threading.main_thread().ident

    def start(self) -> SignalRelay:
        """Take the wakeup fd if it is free and start the watching thread; else stay inactive."""
        try:
            reader, writer = socket.socketpair()
        except OSError as error:  # out of file descriptors: the main thread's handler remains
            logger.warning("signal relay: no socket pair (%s); relay inactive", error)
            return self
        writer.setblocking(False)  # the C handler must never block on a full pipe
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        if previous != -1:  # someone's event loop owns it (and wakes the main thread itself)
            signal.set_wakeup_fd(previous)
            reader.close()
            writer.close()
            logger.debug("signal relay: the wakeup fd is taken (%s); relay inactive", previous)
            return self
        self._reader, self._writer = reader, writer
        self._thread = threading.Thread(target=self._watch, name="signal-relay", daemon=True)
        self._thread.start()
        self.active = True
        _STARTED.add(self)
        return self

    def acknowledge(self, signum: int) -> None:
        """The main thread's handler is running for ``signum``: nothing for the relay to do."""
        event = self._acknowledged.get(signum)
        if event is not None:
            event.set()

    def stop(self) -> None:
        """Give the wakeup fd back (if it is still ours) and end the watching thread."""
        if not self.active:
            return
        self.active = False
        assert self._writer is not None and self._reader is not None
        current = signal.set_wakeup_fd(-1)
        if current != self._writer.fileno():  # replaced since: leave the new owner in place
            signal.set_wakeup_fd(current)
        self._reader.shutdown(socket.SHUT_RDWR)  # wakes the thread's recv with b""
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._reader.close()
        self._writer.close()
        _STARTED.discard(self)

    def give_up_after_fork(self) -> None:
        """In a forked child: give up the wakeup fd and the inherited sockets (no thread here)."""
        if not self.active:
            return
        self.active = False
        assert self._writer is not None and self._reader is not None
        try:
            if signal.set_wakeup_fd(-1) not in (-1, self._writer.fileno()):
                logger.debug("signal relay: a forked child's wakeup fd was not the relay's")
        except ValueError:  # not the child's main thread: nothing to give up there
            pass
        self._reader.close()
        self._writer.close()

    def _watch(self) -> None:
        assert self._reader is not None
        while True:
            try:
                received = self._reader.recv(64)
            except OSError:
                return
            if not received:
                return
            for signum in set(received) & self.signals:
                self._relay(signum)

    def _relay(self, signum: int) -> None:
        acknowledged = self._acknowledged[signum]
        handled = acknowledged.wait(GRACE_S)
        acknowledged.clear()
        name = signal.Signals(signum).name
        if signum in self._resent:  # the byte of our own resend: acted on already
            self._resent.discard(signum)
            if not handled:
                logger.error("signal relay: the main thread does not run its %s handler", name)
            return
        if handled:
            return
        try:
            acted = self.on_missed(signum)
        except Exception:  # the resend below must still happen
            logger.exception("signal relay: acting on %s failed", name)
            acted = True
        if not acted or acknowledged.is_set():  # ignored, or the handler ran meanwhile
            return
        if self._main_ident is not None:
            self._resent.add(signum)
            try:
                signal.pthread_kill(self._main_ident, signum)
            except OSError:  # the main thread is gone: the interpreter is ending anyway
                logger.warning("signal relay: could not send %s to the main thread", name)


#: Relays started in this process (a forked child gives theirs up).
_STARTED: weakref.WeakSet[SignalRelay] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for relay in list(_STARTED):
        relay.give_up_after_fork()
    _STARTED.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
