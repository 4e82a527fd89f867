"""Directories insitu creates for data (catalog, metadata, exports, service state): owner-only."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "make_private_dir"]

#: Mode of every directory insitu creates to hold data: read, write and enter for its owner only.
PRIVATE_DIR_MODE = 0o700


def make_private_dir(path: str | os.PathLike) -> Path:
    """Create directory ``path`` and its missing parents, readable by their owner only.

    Each directory created here gets mode 0700 (``os.makedirs`` with that mode, then an explicit
    ``os.chmod``: the process umask would otherwise decide). A directory that already exists, the
    one asked for or a parent, is left exactly as it is: someone chose it and its permissions,
    and they are neither widened nor narrowed.

    Parameters
    ----------
    path : str or path-like
        The directory (``~`` is expanded).

    Returns
    -------
    Path
        ``path`` (expanded, not resolved).

    Raises
    ------
    OSError
        If ``path`` (or a parent) exists and is not a directory, or cannot be created.
    """
    path = Path(path).expanduser()
    missing = []
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            break
        missing.append(candidate)
    os.makedirs(path, mode=PRIVATE_DIR_MODE, exist_ok=True)
    for created in reversed(missing):  # outermost first: no moment with an open inner directory
        os.chmod(created, PRIVATE_DIR_MODE)
    return path
