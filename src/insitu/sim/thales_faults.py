"""Faults the Term emulator can be told to show: a dropped link, an error reply, an overload,
an unreachable Term."""

from __future__ import annotations

import threading

__all__ = ["FAULT_KINDS", "FaultSwitch", "INJECTED_ERROR_CODE"]

FAULT_KINDS = ("drop_connection_mid_sweep", "error_reply", "overload", "unreachable")
#: Code of an injected error reply unless another is given (the emulator's own number).
INJECTED_ERROR_CODE = 999


class FaultSwitch:
    """Which faults are armed; thread-safe.

    * ``drop_connection_mid_sweep`` (once): halfway through the next EIS sweep Term closes every
      client connection, as when Term or the network goes away; the instrument keeps its state
      (a potentiostat that was on stays on).
    * ``error_reply`` (once): the next Remote Script command, or the next one named ``command``
      if given (``"EIS"``, or ``"Fmax"`` for ``Fmax=...``), is answered ``ERROR;<code>;<n>``
      instead of being executed.
    * ``overload`` (until cleared): every EIS sweep stops halfway and every single-frequency
      measurement fails with an overload error.
    * ``unreachable`` (until cleared): Term drops every connection and refuses new ones (its
      port is closed), as when the Thales PC is off the network; clearing reopens the port.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drop = False
        self._overload = False
        self._unreachable = False
        self._error_reply: tuple[str | None, int] | None = None

    def arm(self, kind: str, *, command: str | None = None, code: int | None = None) -> None:
        """Arm fault ``kind`` (one of :data:`FAULT_KINDS`).

        Raises
        ------
        ValueError
            For an unknown kind, or ``command``/``code`` given for a kind that takes none.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"TermEmulator fault {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if kind != "error_reply" and (command is not None or code is not None):
            raise ValueError(f"TermEmulator fault {kind!r} takes no command or code")
        with self._lock:
            if kind == "drop_connection_mid_sweep":
                self._drop = True
            elif kind == "overload":
                self._overload = True
            elif kind == "unreachable":
                self._unreachable = True
            else:
                self._error_reply = (command, INJECTED_ERROR_CODE if code is None else int(code))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._drop = self._overload = self._unreachable = False
            self._error_reply = None

    def take_drop(self) -> bool:
        """True (once) if a dropped connection is armed."""
        with self._lock:
            armed, self._drop = self._drop, False
            return armed

    def take_error_reply(self, command: str) -> int | None:
        """The error code to answer ``command`` with (once), or None."""
        with self._lock:
            if self._error_reply is None:
                return None
            name, code = self._error_reply
            if name is not None and command.partition("=")[0] != name:
                return None
            self._error_reply = None
            return code

    @property
    def unreachable(self) -> bool:
        """True while Term is armed to be unreachable."""
        with self._lock:
            return self._unreachable

    @property
    def overload(self) -> bool:
        """True while an overload is armed."""
        with self._lock:
            return self._overload
