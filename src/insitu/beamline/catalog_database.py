"""Create an embedded catalog's SQLite database as a copy of one initialized template.

tiled initializes a catalog database (tables and the alembic stamp) in a subprocess,
``python -m tiled catalog init --if-not-exists``, on *every* open: 3-4 s each, even for a
database that is up to date, and most of the time of a short simulated run or a test. Here
tiled's own init runs once into a template (kept in the user's cache directory, per tiled
version); a new catalog starts as a copy of it, and an existing one whose schema revision equals
the template's needs no init at all. Anything else (an older schema that needs a migration, an
unreadable file) goes to tiled's init as before.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

__all__ = ["prepare_catalog_database"]

_lock = threading.Lock()
_template: Path | None = None


def _cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "insitu"


def _build_template() -> Path:
    from tiled.catalog import from_uri as catalog_from_uri

    directory = Path(tempfile.mkdtemp(prefix="insitu-catalog-template-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    database = directory / "catalog.db"
    catalog_from_uri(f"sqlite:///{database}", init_if_not_exists=True)  # tiled's own init
    return database


def _template_database() -> Path:
    """The initialized empty database of the installed tiled: cached per user, built once."""
    global _template
    with _lock:
        if _template is not None and _template.exists():
            return _template
        cached = _cache_directory() / f"tiled-{importlib.metadata.version('tiled')}-catalog.db"
        if _schema_revision(cached) is None:
            built = _build_template()
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                staged = cached.with_name(f".{cached.name}.{os.getpid()}")
                shutil.copyfile(built, staged)
                os.replace(staged, cached)  # atomic: a reader never sees half a file
            except OSError:  # no writable cache: this process uses its own template
                cached = built
        _template = cached
        return _template


def _schema_revision(database: Path) -> str | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return None
    return rows[0][0] if len(rows) == 1 else None


def prepare_catalog_database(database: Path) -> bool:
    """Make ``database`` an initialized tiled catalog if it is missing; say if it is ready.

    Parameters
    ----------
    database : pathlib.Path
        The catalog's SQLite file (``<catalog dir>/catalog.db``).

    Returns
    -------
    bool
        True when the database exists with the installed tiled's schema revision, so tiled's
        init can be skipped; False when tiled must init or migrate it.
    """
    template = _template_database()
    if not database.exists():
        staged = database.with_name(f".{database.name}.{os.getpid()}.{threading.get_ident()}")
        shutil.copyfile(template, staged)
        try:
            os.link(staged, database)  # atomic: a concurrent opener's copy is never overwritten
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    revision = _schema_revision(database)
    return revision is not None and revision == _schema_revision(template)
