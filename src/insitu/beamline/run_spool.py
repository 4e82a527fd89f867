"""Runs the catalog could not take, kept on local disk and written to the catalog later.

When writing a run to tiled fails (a server down, a full disk behind it), the writer does not
drop what it cannot write: the whole run, every document from its start, goes to one spool file
per run, ``<uid>.spool`` (length-prefixed msgpack from :mod:`insitu.beamline.document_wire`:
arrays included, bit for bit), fsync'd at every flush. :func:`replay` then writes the run into
the catalog, in order: it deletes whatever part of the run had reached the catalog and writes
the complete run from the spool, so a replay that is cut off and started again still leaves the
run exactly once. The spool file is removed only after the run is written.

The library's own fallback (``TiledWriter(backup_directory=...)``) writes JSON lines that are
never synced to disk and never read back; this keeps the same "the whole run, once the primary
failed" rule but adds durability and the way back.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from insitu.beamline import document_wire
from insitu.beamline.private_dir import make_private_dir

__all__ = ["RunSpool", "SpoolFile", "encode", "read_spool", "replay", "spool_directory"]

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")  # each record: 4-byte big-endian length, then msgpack
_SAFE_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def spool_directory(metadata_dir: str | os.PathLike, catalog_location: str) -> Path:
    """The spool directory of one catalog: ``<metadata_dir>/spool/<hash of the location>``."""
    digest = hashlib.sha256(str(catalog_location).encode()).hexdigest()[:16]
    return Path(metadata_dir).expanduser() / "spool" / digest


def _file_name(uid: str) -> str:
    # A uid comes from a start document (a plan's metadata may set it): never a path.
    if _SAFE_UID.match(uid) and ".." not in uid:
        return f"{uid}.spool"
    return f"uid-{hashlib.sha256(uid.encode()).hexdigest()[:32]}.spool"


class SpoolFile:
    """One run's spool file, open for appending (held under an exclusive ``flock``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 (closed by close())
        fcntl.flock(self._file, fcntl.LOCK_EX)
        os.chmod(path, 0o600)

    def append(self, record: bytes) -> None:
        """Append one record made by :func:`encode` (buffered; :meth:`sync` puts it on disk)."""
        self._file.write(_LENGTH.pack(len(record)))
        self._file.write(record)

    def sync(self) -> None:
        """Flush and fsync: every document appended so far survives a crash."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close (releases the lock)."""
        if not self._file.closed:
            self.sync()
            self._file.close()


def encode(name: str, doc: dict) -> bytes:
    """One spool record: the document, serialized now (a snapshot later mutation cannot touch)."""
    return document_wire.dumps({"name": name, "doc": doc})


def read_spool(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """The documents of a spool file, in order; a record cut off by a crash ends it."""
    with open(path, "rb") as file:
        while True:
            header = file.read(_LENGTH.size)
            if len(header) < _LENGTH.size:
                return
            (size,) = _LENGTH.unpack(header)
            record = file.read(size)
            if len(record) < size:
                logger.warning("spool %s ends in a record cut off mid-write: ignored", path)
                return
            item = document_wire.loads(record)
            yield item["name"], item["doc"]


class RunSpool:
    """The spool directory of one catalog (created owner-only).

    Parameters
    ----------
    directory : path
        See :func:`spool_directory`.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = make_private_dir(directory)

    def open_run(self, uid: str) -> SpoolFile:
        """A new spool file for run ``uid`` (an older one of the same run is replaced)."""
        path = self.directory / _file_name(uid)
        if path.exists():
            path.unlink()
        return SpoolFile(path)

    def pending(self) -> list[Path]:
        """Spool files waiting to be written to the catalog, oldest first."""
        return sorted(self.directory.glob("*.spool"), key=lambda p: p.stat().st_mtime)

    def replay_all(self, catalog: Any, *, skip: set[Path] | frozenset[Path] = frozenset()) -> int:
        """Write every pending run (but ``skip``) into ``catalog``; return how many were written.

        Raises
        ------
        Exception
            The first error writing a run (the runs not written stay in the spool).
        """
        written = 0
        for path in self.pending():
            if path not in skip and replay(catalog, path):
                written += 1
        return written


def replay(catalog: Any, path: str | os.PathLike) -> bool:
    """Write the run in spool file ``path`` into ``catalog`` and remove the file.

    Whatever part of the run is in the catalog already is deleted first, so the run ends up
    there exactly once, complete. Returns False (and does nothing) when another process holds
    the file (it is still writing the run, or replaying it).

    Raises
    ------
    Exception
        When the catalog refuses the run; the spool file is kept.
    """
    from insitu.beamline.durable_writer import FlushableTiledWriter

    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return False  # replayed by someone else meanwhile
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        documents = list(read_spool(path))
        if not documents or documents[0][0] != "start":
            logger.error("spool %s holds no start document: kept for inspection", path)
            return False
        uid = documents[0][1]["uid"]
        if uid in catalog:
            catalog.delete_contents(uid, recursive=True, external_only=False)
        writer = FlushableTiledWriter(catalog, batch_size=10_000)
        for name, doc in documents:
            writer(name, doc)
        writer.flush()  # a run cut off by its process's death has no stop: recovery adds it
        path.unlink()
    logger.warning(
        "run %s written to the catalog from the spool (%d documents)", uid, len(documents)
    )
    return True
