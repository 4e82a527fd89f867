"""Safe exit: when the process ends, the stage goes to its safe state and the potentiostat off.

``insitu.beamline.load()`` installs one :class:`SafeExit` per beamline. It runs, once, on the
first of:

- ``Beamline.close()`` (also at the end of a ``with load() as beamline:`` block, so an
  exception or Ctrl-C leaving the block is covered before the devices close);
- interpreter exit: a script that ends, an uncaught exception, a KeyboardInterrupt (Ctrl-C),
  ``sys.exit()``;
- SIGTERM (``kill``, systemd, a queue manager) or SIGHUP (the SSH session or terminal that ran
  the session went away): the handler makes the hardware safe and then chains to the handler
  that was installed before it (or dies of the signal as the default handler would; if the
  signal was ignored, as ``nohup`` does for SIGHUP, the process goes on and nothing is touched).

What it does, each step independent of the others' failures: latch the stage's interlock and
send its safe command (``E`` heater off, or ``O`` hold, as ``safety.safe_state``), so that a
plan still running cannot restart heating; abort the RunEngine's current run, if any, with
the reason in its stop document; stop the impedance analyzer (a running sweep is cut and the
potentiostat switched off).

A signal the main thread cannot act on at once (it landed just as the main thread entered a wait
without a timeout) is acted on by a relay thread (:mod:`insitu.beamline.signal_relay`).

Nothing can run in the process on SIGKILL, SIGSTOP, a hang or a hard crash: for a real stage
the out-of-process guard (:mod:`insitu.beamline.stage_guard`) takes over then.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from typing import TYPE_CHECKING, Any, Literal

from insitu.beamline.signal_relay import SignalRelay

if TYPE_CHECKING:
    from insitu.beamline.assembly import Beamline

__all__ = ["SafeExit"]

logger = logging.getLogger(__name__)

#: Wall seconds the RunEngine gets to close the current run before the exit goes on without it.
_ABORT_JOIN_S = 10.0
#: Wall seconds a second trigger (a signal handler running late) waits for the first to finish.
_FINISH_WAIT_S = 30.0


#: Signals that end a session and get the safe exit first.
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

#: Installed safe exits (weakly held: a closed, dropped beamline is not kept alive by this).
_LIVE: weakref.WeakSet[SafeExit] = weakref.WeakSet()


def _run_live_safe_exits() -> None:
    for safe_exit in list(_LIVE):
        safe_exit.run("interpreter exit")  # the reason its atexit hook gives


#: The process's one signal relay (see :mod:`insitu.beamline.signal_relay`), shared by every
#: installed safe exit: the wakeup fd it watches is one per process.
_RELAY: SignalRelay | None = None


def _act_on_missed_signal(signum: int) -> bool:
    """The relay's call: every installed safe exit acts on a signal the main thread missed."""
    acted = False
    for safe_exit in list(_LIVE):
        acted = safe_exit.on_missed_signal(signum) or acted
    return acted


def _start_relay() -> None:
    """On the main thread: the shared relay, if it is not running yet (or could not start)."""
    global _RELAY
    if _RELAY is None or not _RELAY.active:
        _RELAY = SignalRelay(HANDLED_SIGNALS, _act_on_missed_signal).start()


def _stop_relay_if_unused() -> None:
    """On the main thread: stop the shared relay once no safe exit is installed."""
    global _RELAY
    if _RELAY is not None and not _LIVE:
        _RELAY.stop()
        _RELAY = None


def _register_early_exit_hook(hook) -> None:
    """Run ``hook`` at the very start of interpreter shutdown, before ``atexit``.

    By the time ``atexit`` handlers run, ``concurrent.futures`` has already refused new work
    (``threading._shutdown`` runs its exit hooks first), so the impedance analyzer, which
    reconnects through a thread pool to switch the potentiostat off, cannot reach Term any
    more. ``threading._register_atexit`` (what ``concurrent.futures`` itself uses; private, but
    present since Python 3.9) runs hooks registered later *before* that pool shutdown. Where
    it is missing, the plain ``atexit`` registration still makes the stage safe.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(hook)


class SafeExit:
    """Make a beamline's hardware safe exactly once, when its process ends or it is closed.

    Parameters
    ----------
    beamline : Beamline
        Its ``stage`` and ``eis`` devices (either may be missing) and its RunEngine.
    safe_state : "stop" or "hold"
        The stage's safe command: ``E`` (heater off) or ``O`` (hold the current temperature).

    Attributes
    ----------
    done : bool
        True once the hardware was made safe (or at least tried).
    reason : str or None
        What triggered it ("SIGTERM", "interpreter exit", "beamline closed").
    """

    _exit_hook_registered = False

    def __init__(self, beamline: Beamline, safe_state: Literal["hold", "stop"] = "stop") -> None:
        if safe_state not in ("hold", "stop"):
            raise ValueError(f"safe exit: safe_state {safe_state!r} is neither 'hold' nor 'stop'")
        self.beamline = beamline
        self.safe_state = safe_state
        self.done = False
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._installed = False
        self._previous: dict[int, Any] = {}
        self._runner: int | None = None  # the thread running the safe exit
        self._finished = threading.Event()

    # -- installation -------------------------------------------------------------------------

    def install(self) -> None:
        """Register for interpreter exit and, on the main thread, as the SIGTERM and SIGHUP
        handler."""
        if self._installed:
            return
        atexit.register(self._at_exit)
        if not SafeExit._exit_hook_registered:
            _register_early_exit_hook(_run_live_safe_exits)
            SafeExit._exit_hook_registered = True
        _LIVE.add(self)
        self._installed = True
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED_SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._on_signal)
            _start_relay()
        else:
            logger.warning(
                "safe exit: beamline loaded outside the main thread; no SIGTERM/SIGHUP handler "
                "(atexit and close() still make the hardware safe)"
            )

    def uninstall(self) -> None:
        """Undo ``install`` (a signal handler only if nobody replaced it meanwhile)."""
        if not self._installed:
            return
        atexit.unregister(self._at_exit)
        _LIVE.discard(self)
        self._installed = False
        if self._previous and threading.current_thread() is threading.main_thread():
            _stop_relay_if_unused()
            for signum, previous in self._previous.items():
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, previous)
            # Otherwise a later handler chains to ours, which is now a plain pass-through.
            self._previous = {}

    # -- triggers -----------------------------------------------------------------------------

    def _at_exit(self) -> None:
        self.run("interpreter exit")

    def _on_signal(self, signum: int, frame: Any) -> None:
        if _RELAY is not None:
            _RELAY.acknowledge(signum)
        previous = self._previous.get(signum, signal.SIG_DFL)
        if previous == signal.SIG_IGN:
            return  # ignored before us (nohup): the process goes on, the hardware too
        if self._installed:
            self.run(signal.Signals(signum).name)
        if callable(previous):
            previous(signum, frame)
            return
        # SIG_DFL (or a handler set from C): end the process by the signal, as without us.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def on_missed_signal(self, signum: int) -> bool:
        """Act, on the relay's thread, on a signal the main thread's handler did not run for.

        Returns whether it acted: not for a signal that was ignored before this safe exit was
        installed (``nohup``), nor once it is uninstalled.
        """
        if self._previous.get(signum, signal.SIG_DFL) == signal.SIG_IGN or not self._installed:
            return False
        name = signal.Signals(signum).name
        logger.warning("safe exit: %s not handled by the main thread; acting on it here", name)
        self.run(name)
        return True

    # -- the safe exit ------------------------------------------------------------------------

    def run(self, reason: str) -> None:
        """Make the hardware safe, once. Never raises.

        A later call returns once the first has finished (a signal handler that runs late must
        not end the process while the signal relay is still making the hardware safe), at once
        from the thread running it.
        """
        with self._lock:
            first = not self.done
            if first:
                self.done = True
                self.reason = reason
                self._runner = threading.get_ident()
            waiting = not first and self._runner != threading.get_ident()
        if not first:
            if waiting and not self._finished.wait(_FINISH_WAIT_S):
                logger.error("safe exit: still running after %s s; going on", _FINISH_WAIT_S)
            return
        try:
            self._make_safe(reason)
        finally:
            self._finished.set()

    def _make_safe(self, reason: str) -> None:
        logger.warning("safe exit (%s): making the stage and the potentiostat safe", reason)
        why = f"safe exit: {reason}"
        devices = self.beamline.devices
        stage = devices.get("stage")
        if stage is not None:
            try:
                stage.enter_safe_state(self.safe_state, why)
            except Exception:  # the other steps still run; the failure is reported
                logger.exception("safe exit: could not put the stage in its safe state")
            else:
                # The stage is safe: its out-of-process guard has nothing left to do. (If it
                # could not be made safe, the guard acts once this process is gone.)
                guard = getattr(self.beamline, "stage_guard", None)
                if guard is not None:
                    guard.stand_down()
        self._abort_run(why)
        eis = devices.get("eis")
        if eis is not None:
            self._switch_off_potentiostat(eis)

    def _abort_run(self, why: str) -> None:
        run_engine = self.beamline.RE
        if str(run_engine.state) not in ("running", "paused"):
            return
        aborter = self.beamline.run_aborter

        def abort() -> None:
            try:
                if aborter is not None:
                    aborter.abort(why, wait=_ABORT_JOIN_S)
                else:
                    run_engine.abort(reason=why)
            except Exception:  # e.g. it went idle meanwhile; reported, not raised at exit
                logger.exception("safe exit: could not abort the current run")

        # On a thread of its own, so a RunEngine that hangs cannot keep the exit from finishing.
        worker = threading.Thread(target=abort, name="safe-exit-abort", daemon=True)
        worker.start()
        worker.join(_ABORT_JOIN_S)
        if worker.is_alive():
            logger.error("safe exit: the RunEngine did not end its run within %s s", _ABORT_JOIN_S)

    @staticmethod
    def _switch_off_potentiostat(eis: Any) -> None:
        try:
            eis.stop()  # cuts a running sweep; the device then switches the potentiostat off
        except Exception:
            logger.exception("safe exit: could not stop the impedance analyzer")
        switch_off = getattr(eis, "switch_off", None)
        if callable(switch_off):  # an explicit "potentiostat off", where the device has one
            try:
                switch_off()
            except Exception:
                logger.exception("safe exit: could not switch the potentiostat off")
