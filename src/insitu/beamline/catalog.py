"""Open the run catalog: an embedded tiled catalog in a directory, or a tiled server by URI."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import warnings
from pathlib import Path

from tiled.client import Context, from_context
from tiled.structures.core import Spec

from insitu.beamline.catalog_database import prepare_catalog_database
from insitu.beamline.private_dir import make_private_dir
from insitu.compat.tiled_clients import catalog_structure_clients

__all__ = [
    "DEFAULT_CATALOG_DIR",
    "RUNS_CONTAINER",
    "CatalogAccessError",
    "open_catalog",
    "broker",
    "close_catalog",
]

logger = logging.getLogger(__name__)

DEFAULT_CATALOG_DIR = "insitu-data"
#: Runs live in a container with the CatalogOfBlueskyRuns spec: that is what gives the client
#: its bluesky-aware class (``catalog[-1]``, searches) and what databroker's ``Broker`` needs.
RUNS_CONTAINER = "runs"
_RUNS_SPEC = Spec("CatalogOfBlueskyRuns", version="3.0")

_open_contexts: list[Context] = []
_contexts_lock = threading.Lock()


class CatalogAccessError(PermissionError):
    """A catalog server refused the API key (missing or wrong): HTTP 401 or 403."""


def _access_denied(location: str, api_key: str | None, error: Exception) -> CatalogAccessError:
    status = getattr(getattr(error, "response", None), "status_code", None)
    what = "no API key was given" if not api_key else "the API key was refused"
    code = f" (HTTP {status})" if status else " (HTTP 401)"
    return CatalogAccessError(
        f"catalog at {location} refused access{code}: {what}; pass the server's key "
        "(api_key=..., --api-key, the config's catalog.api_key, or TILED_API_KEY)"
    )


def _is_access_refusal(error: Exception) -> bool:
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        return True
    # tiled's client raises this before any request when the server wants a key and has none.
    return isinstance(error, RuntimeError) and "requires API key" in str(error)


def _is_conflict(error: Exception) -> bool:
    return getattr(getattr(error, "response", None), "status_code", None) == 409


def _is_uri(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _embedded_context(directory: Path) -> Context:
    # Imported here: the server-side modules are heavy and a remote catalog does not need them.
    from tiled.catalog import from_uri as catalog_from_uri
    from tiled.server.app import build_app

    # Owner-only (0700) for what is created here; a directory someone chose is left as it is.
    make_private_dir(directory)
    make_private_dir(directory / "data")
    database = directory / "catalog.db"
    adapter = catalog_from_uri(
        f"sqlite:///{database}",
        writable_storage=[
            f"file://{directory / 'data'}",
            f"sqlite:///{directory / 'storage.sqlite'}",
        ],
        init_if_not_exists=not prepare_catalog_database(database),
    )
    # The in-process server's start-up banner is noise in a user's session.
    logging.getLogger("tiled.server.app").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # starlette's TestClient (the in-process transport tiled uses) warns about httpx.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        # In process, compressing a response only to decompress it is CPU for nothing (the
        # demo spent ~4 % of its CPU in the server's compression middleware).
        return Context.from_app(build_app(adapter), headers={"accept-encoding": "identity"})


def open_catalog(
    location: str | os.PathLike | None = None,
    *,
    api_key: str | None = None,
    container: str = RUNS_CONTAINER,
    create: bool = True,
):
    """Open the catalog that runs are written to and read from.

    Parameters
    ----------
    location : str or path-like, optional
        A directory for an embedded, persistent catalog (SQLite files, no HTTP server; created if
        missing, owner-only (0700); default ``./insitu-data``), or an ``http(s)://`` URI of a
        ``tiled serve`` server.
    api_key : str, optional
        API key for a remote server.
    container : str
        Name of the container that holds the runs (created with the CatalogOfBlueskyRuns spec
        if missing and ``create`` is true).
    create : bool
        Create the runs container if it does not exist yet.

    Returns
    -------
    tiled client
        The runs container: ``catalog[uid]["primary"].read()``, ``catalog[-1]``,
        ``catalog.search(...)``. Subscribe ``TiledWriter(catalog)`` (or
        :class:`insitu.beamline.durable_writer.DurableTiledWriter`) to a RunEngine to fill it.

    Raises
    ------
    ValueError
        If ``location`` is neither an existing-or-creatable directory nor an http(s) URI.
    CatalogAccessError
        If a server refuses the API key (missing or wrong).
    """
    location = os.fspath(location) if location is not None else DEFAULT_CATALOG_DIR
    node_path: list[str] = []
    if _is_uri(location):
        context, node_path = Context.from_any_uri(location, api_key=api_key)
    else:
        if "://" in location:
            raise ValueError(
                f"catalog location {location!r} is not supported: give a directory path for an "
                "embedded catalog or an http(s):// URI of a tiled server"
            )
        path = Path(location).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"catalog location {str(path)!r} exists and is not a directory")
        context = _embedded_context(path)
    try:
        # Its own registry: databroker's Broker (and any run.v2) must not switch every run
        # this process reads to the v2 layout (see insitu.compat.tiled_clients).
        root = from_context(
            context, structure_clients=catalog_structure_clients(), node_path_parts=node_path
        )
        if container not in root:
            if not create:
                raise KeyError(f"catalog at {location!r} has no container {container!r}")
            try:
                root.create_container(container, specs=[_RUNS_SPEC])
            except Exception as error:
                # Two beamlines starting together both try to create it: the loser reads it.
                if not _is_conflict(error):
                    raise
        runs = root[container]
    except Exception as error:
        context.close()  # e.g. a refused API key: leave no connection behind
        if _is_access_refusal(error):
            raise _access_denied(location, api_key, error) from error
        raise
    except BaseException:
        context.close()
        raise
    with _contexts_lock:
        _open_contexts.append(context)
    return runs


def broker(catalog):
    """Return a databroker v1 ``Broker`` over ``catalog`` for ``db[-1].table()`` habits."""
    from databroker.v1 import Broker

    return Broker(catalog)


def close_catalog(catalog=None) -> None:
    """Close a catalog's connection (all of them when ``catalog`` is None).

    For an embedded catalog this stops its in-process server and frees the SQLite files. Every
    catalog opened here is closed at interpreter exit too.
    """
    with _contexts_lock:
        if catalog is None:
            targets, _open_contexts[:] = list(_open_contexts), []
        else:
            targets = [c for c in _open_contexts if c is catalog.context]
            for c in targets:
                _open_contexts.remove(c)
    for context in targets:
        try:
            context.close()
        except Exception:  # closing at exit must not mask the real error of a crashed session
            logger.exception("closing the embedded catalog failed")


atexit.register(close_catalog)
