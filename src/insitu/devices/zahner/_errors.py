"""Exceptions of the Zahner analyzer: Thales errors, a lost link to Term, an aborted sweep."""

from __future__ import annotations

import re

__all__ = [
    "ZahnerCommandError",
    "ZahnerConnectionError",
    "ZahnerError",
    "ZahnerSweepAborted",
]

# Remote2 manual, as quoted by thales_remote.error; other codes are reported by number only.
_KNOWN_CODES = {100: "parameter out of range"}


class ZahnerError(Exception):
    """Anything that went wrong with the Zahner analyzer."""


class ZahnerCommandError(ZahnerError):
    """Thales refused a command or failed to carry it out (``ERROR;<code>;<n>`` reply).

    Attributes
    ----------
    command : str
        The Remote2 command, e.g. ``"Fmax=5e+06"`` or ``"EIS"``.
    code : int or None
        Thales' error number, None if the reply carried none.
    reply : str
        What Thales (or the library) said.
    """

    def __init__(self, owner: str, command: str, reply: str) -> None:
        self.command = command
        self.reply = reply.strip()
        match = re.search(r"ERROR;(-?\d+)", self.reply)
        self.code = int(match.group(1)) if match else None
        if self.code is None:
            detail = ""
        else:
            meaning = _KNOWN_CODES.get(self.code)
            detail = f" (error code {self.code}{': ' + meaning if meaning else ''})"
        super().__init__(f"{owner}: Thales answered {self.reply!r} to {command}{detail}")


class ZahnerConnectionError(ZahnerError, ConnectionError):
    """Term cannot be reached, or the connection to it broke; the next use reconnects."""


class ZahnerSweepAborted(ZahnerError):  # noqa: N818 - reads as what happened
    """The sweep was stopped by ``stop()``; the potentiostat was switched off."""
