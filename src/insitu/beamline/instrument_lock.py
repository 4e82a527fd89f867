"""One driver per instrument: a host-wide lock per instrument address, naming its holder.

Two sessions driving one stage interleave their replies, switch off each other's anneals and
fight with their watchdogs; two processes writing one embedded catalog have no lock of their
own. :class:`InstrumentLock` is an advisory ``flock`` on a small file per instrument: the
kernel releases it when its process ends, however it ends (SIGKILL included), so a stale lock
never blocks the next session. The file holds the holder's pid, program, user and start time
(never its command line, which may carry secrets), so the refusal can name it.

Stdlib ``fcntl.flock`` rather than a library (``filelock``, ``fasteners``): one call, and the
holder record is ours to write.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
import sys
import threading
from pathlib import Path

__all__ = ["InstrumentInUseError", "InstrumentLock", "lock_dir", "instrument_key"]

#: Shared by every user of the host (sticky, like /tmp): two users cannot drive one stage either.
DEFAULT_LOCK_DIR = Path("/tmp/insitu-locks")

# Locks this process holds, by path: a second Beamline of this process on the same embedded
# catalog shares it (the catalog refuses other processes, not other objects).
_HELD: dict[str, tuple[int, int]] = {}
_HELD_LOCK = threading.Lock()


class InstrumentInUseError(RuntimeError):
    """The instrument (or embedded catalog) is driven by another session."""


def lock_dir() -> Path:
    """``$INSITU_LOCK_DIR`` or ``/tmp/insitu-locks`` (created world-writable and sticky)."""
    path = Path(os.environ.get("INSITU_LOCK_DIR") or DEFAULT_LOCK_DIR)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            path.chmod(0o1777)
    return path


def instrument_key(address: str) -> str:
    """The instrument an address reaches, so that two spellings of one port are one lock.

    Serial resources resolve symlinks (``/dev/serial/by-id/...`` is ``/dev/ttyUSB0``); socket
    resources are ``host:port`` in lower case; anything else is the address as given.
    """
    serial = re.fullmatch(r"ASRL(.+?)(::INSTR)?", address.strip(), flags=re.IGNORECASE)
    if serial and serial.group(1).startswith("/"):
        return "serial:" + os.path.realpath(serial.group(1))
    tcp = re.fullmatch(r"TCPIP\d*::([^:]+)::(\d+)::SOCKET", address.strip(), flags=re.IGNORECASE)
    if tcp:
        return f"tcp:{tcp.group(1).lower()}:{tcp.group(2)}"
    plain = re.fullmatch(r"([^:/\s]+):(\d+)", address.strip())
    if plain:
        return f"tcp:{plain.group(1).lower()}:{plain.group(2)}"
    return address.strip()


def _holder_record() -> dict:
    return {
        "pid": os.getpid(),
        "program": Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python",
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


class InstrumentLock:
    """Hold an instrument (or an embedded catalog) for this process.

    Parameters
    ----------
    what : str
        What is locked, for messages: ``"stage at ASRL/dev/ttyUSB0::INSTR"``.
    path : path-like
        The lock file (see :meth:`for_instrument` and :meth:`for_catalog`).
    shared_in_process : bool
        Whether another acquisition by this same process shares the lock (catalogs) instead of
        being refused (instruments).
    """

    def __init__(self, what: str, path: str | os.PathLike, *, shared_in_process: bool = False):
        self.what = what
        self.path = Path(path)
        self.shared_in_process = shared_in_process
        self._held = False

    @classmethod
    def for_instrument(cls, kind: str, address: str) -> InstrumentLock:
        """The lock of the instrument at ``address`` (``kind``: stage, raman, eis)."""
        key = instrument_key(address)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cls(f"{kind} at {address}", lock_dir() / f"instrument-{digest}.lock")

    @classmethod
    def for_catalog(cls, directory: str | os.PathLike) -> InstrumentLock:
        """The single-writer lock of the embedded catalog in ``directory``."""
        directory = Path(directory)
        return cls(
            f"embedded catalog {directory}",
            directory / ".insitu-writer.lock",
            shared_in_process=True,
        )

    def acquire(self) -> InstrumentLock:
        """Take the lock now or raise :class:`InstrumentInUseError` naming the holder."""
        key = str(self.path.resolve())
        with _HELD_LOCK:
            if key in _HELD:
                fd, count = _HELD[key]
                if self.shared_in_process:
                    _HELD[key] = (fd, count + 1)
                    self._held = True
                    return self
                raise InstrumentInUseError(
                    f"{self.what} is already in use by this process ({self._describe(fd)}): "
                    "close the other beamline first (beamline.close())"
                )
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._describe(fd)
                os.close(fd)
                raise InstrumentInUseError(
                    f"{self.what} is in use by {holder}: end that session "
                    "(beamline.close(), or stop the queue's environment) and load again"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_holder_record()).encode(), 0)
            _HELD[key] = (fd, 1)
        self._held = True
        return self

    def release(self) -> None:
        """Let go (the last holder in this process unlocks). Releasing twice is harmless."""
        if not self._held:
            return
        self._held = False
        key = str(self.path.resolve())
        with _HELD_LOCK:
            fd, count = _HELD.pop(key, (None, 0))
            if fd is None:
                return
            if count > 1:
                _HELD[key] = (fd, count - 1)
                return
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock

    @staticmethod
    def _describe(fd: int) -> str:
        try:
            record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            record = {}
        if not record.get("pid"):
            return "another process (it has not written its name yet)"
        return (
            f"process {record['pid']} ({record.get('program', '?')}, user "
            f"{record.get('user', '?')} on {record.get('host', '?')}, since "
            f"{record.get('since', '?')})"
        )
