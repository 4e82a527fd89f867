"""``insitu serve catalog``: a shared run catalog, a ``tiled serve catalog`` server with an API key.

The server is tiled's own (``python -m tiled serve catalog``), started as a child process with:

- the catalog database: a SQLite file or a PostgreSQL database (``postgresql://...``, run through
  tiled's asyncpg driver); initialised on first use (``--init``);
- a writable data directory: array data (zarr files) and the event tables (a SQLite file in it);
- single-user API-key authentication: every read and write needs the key. The key goes to tiled
  through its ``TILED_SINGLE_USER_API_KEY`` setting, and a database password through
  ``PGPASSWORD``, so neither shows in the process list; the key is masked in tiled's log lines;
- loopback (127.0.0.1) unless ``--host`` says otherwise; beyond loopback a key must be given.

Once the server answers, the ``runs`` container (CatalogOfBlueskyRuns spec, what
:func:`insitu.beamline.catalog.open_catalog` and databroker expect) is created, so beamlines that
start writing at the same moment do not race to create it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "CatalogServerSettings",
    "add_serve_parser",
    "is_loopback",
    "resolve_settings",
    "serve_catalog",
    "store_generated_key",
    "tiled_command",
]

#: The environment variable clients and this command read the API key from (tiled's own name).
API_KEY_ENV = "TILED_API_KEY"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = "insitu-catalog"
#: Where a generated API key is kept (owner-only), in the data directory: it is never printed.
GENERATED_KEY_FILE = "api-key"
_SQL_SCHEMES = ("sqlite", "postgresql", "postgresql+asyncpg")
_READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CatalogServerSettings:
    """What one ``insitu serve catalog`` runs: resolved, validated options.

    Attributes
    ----------
    database : str
        Catalog database URI given to tiled, without any password (``sqlite:///...``,
        ``postgresql://user@host:port/db``).
    database_password : str or None
        The PostgreSQL password, passed to the server in ``PGPASSWORD``.
    data_dir : Path
        Writable directory for array data and the event tables.
    host, port : str, int
        Where the server listens.
    api_key : str
        The single-user API key (alphanumeric).
    generated_key : bool
        True when no key was given and a random one was made (loopback only).

    The ``repr`` shows the key and the database password as ``'***'``.
    """

    database: str
    database_password: str | None
    data_dir: Path
    host: str
    port: int
    api_key: str
    generated_key: bool

    @property
    def uri(self) -> str:
        """The URI clients use (loopback when the server listens on every interface)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def database_for_display(self) -> str:
        """The database URI, safe to print (it never holds the password)."""
        return self.database

    @property
    def generated_key_file(self) -> Path:
        """Where :func:`store_generated_key` keeps a generated key: ``DATA/api-key``."""
        return self.data_dir / GENERATED_KEY_FILE

    def __repr__(self) -> str:
        password = None if self.database_password is None else "***"
        return (
            f"CatalogServerSettings(database={self.database!r}, database_password={password!r}, "
            f"data_dir={self.data_dir!r}, host={self.host!r}, port={self.port!r}, "
            f"api_key='***', generated_key={self.generated_key!r})"
        )


def is_loopback(host: str) -> bool:
    """Return True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it resolves to something reachable from outside
        return False


def _split_database(database: str | None, data_dir: Path) -> tuple[str, str | None]:
    """Validate the catalog database URI; return it without the password, and the password."""
    if database is None:
        return f"sqlite:///{data_dir / 'catalog.db'}", None
    parts = urlsplit(database)
    if parts.scheme not in _SQL_SCHEMES:
        raise ValueError(
            f"catalog database {database.split('@')[-1]!r} is not supported: give "
            "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    if parts.scheme == "sqlite":
        path = parts.path
        if not path or path == "/":
            raise ValueError(f"catalog database {database!r} names no file: use sqlite:///PATH")
        from insitu.beamline.private_dir import make_private_dir  # here: `insitu` starts fast

        make_private_dir(Path(path).parent)
        return database, None
    if not parts.hostname or not parts.path.strip("/"):
        raise ValueError(
            f"catalog database {database.split('@')[-1]!r} needs a host and a database name: "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    password = parts.password
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), password


def resolve_settings(
    *,
    database: str | None = None,
    data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    api_key: str | None = None,
) -> CatalogServerSettings:
    """Check the options of ``insitu serve catalog`` and fill in the defaults.

    Parameters
    ----------
    database : str, optional
        ``sqlite:///PATH`` or ``postgresql://USER:PASSWORD@HOST:PORT/DB``; default a SQLite file
        ``catalog.db`` in ``data_dir``.
    data_dir : str or path-like
        Writable directory for array data and event tables (created if missing, owner-only).
    host : str
        Address to listen on (default loopback only).
    port : int
        TCP port, 1-65535.
    api_key : str, optional
        The API key; default the ``TILED_API_KEY`` environment variable; on loopback only, a
        random key is generated when neither is set.

    Raises
    ------
    ValueError
        On a bad port, database URI or key, or a non-loopback host without a key.
    """
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"catalog server port {port} is outside 1-65535")
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    generated = False
    if api_key is None:
        if not is_loopback(host):
            raise ValueError(
                f"refusing to serve the catalog on {host!r} (beyond loopback) without an API key: "
                f"give --api-key-file or set {API_KEY_ENV}, and put the server behind a firewall "
                "and a TLS reverse proxy (see docs/deployment.md)"
            )
        api_key, generated = secrets.token_hex(32), True
    if not (api_key.isascii() and api_key.isalnum()):
        raise ValueError(
            "catalog API key must be letters and digits only (tiled's rule); make one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    data = Path(data_dir).expanduser().resolve()
    from insitu.beamline.private_dir import make_private_dir  # here: `insitu` starts fast

    make_private_dir(data)
    db, password = _split_database(database, data)
    return CatalogServerSettings(
        database=db,
        database_password=password,
        data_dir=data,
        host=host,
        port=int(port),
        api_key=api_key,
        generated_key=generated,
    )


def store_generated_key(settings: CatalogServerSettings) -> Path:
    """Write the API key to ``DATA/api-key``, readable by its owner only (mode 0600).

    ``insitu serve catalog`` does this, instead of printing the key, when it generated one:
    clients read it from there (``--api-key-file DATA/api-key``). A file already there (the
    key of an earlier start) is replaced.

    Parameters
    ----------
    settings : CatalogServerSettings

    Returns
    -------
    Path
        The file holding the key.

    Raises
    ------
    OSError
        If the file cannot be written (or is a symlink: it is never followed).
    """
    path = settings.generated_key_file
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    handle = os.open(path, flags, 0o600)
    with os.fdopen(handle, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # a file left by an earlier start may have another mode
        file.write(settings.api_key + "\n")
    return path


def tiled_command(settings: CatalogServerSettings) -> list[str]:
    """The ``tiled serve catalog`` command line for ``settings`` (no secrets in it)."""
    from insitu.beamline.private_dir import make_private_dir  # here: `insitu` starts fast

    arrays = settings.data_dir / "arrays"
    make_private_dir(arrays)
    return [
        sys.executable,
        "-m",
        "tiled",
        "serve",
        "catalog",
        settings.database,
        "--init",
        # Array data (zarr) in files; event tables in a SQL database tiled appends rows to: the
        # catalog's own PostgreSQL database when it has one (concurrent writers without SQLite's
        # file lock), else a SQLite file beside the arrays.
        "--write",
        f"file://{arrays}",
        "--write",
        _table_storage(settings),
        "--host",
        settings.host,
        "--port",
        str(settings.port),
    ]


def _table_storage(settings: CatalogServerSettings) -> str:
    parts = urlsplit(settings.database)
    if parts.scheme.startswith("postgresql"):
        # tiled appends table rows through ADBC/libpq. Without credentials in the URI (tiled 0.2.20
        # turns a user without a password into "user:None@"), libpq takes PGUSER and PGPASSWORD
        # from the environment, which keeps the password off the command line.
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(("postgresql", host, parts.path, parts.query, ""))
    return f"sqlite:///{settings.data_dir / 'tables.sqlite'}"


def _server_environment(settings: CatalogServerSettings) -> dict[str, str]:
    env = dict(os.environ)
    env["TILED_SINGLE_USER_API_KEY"] = settings.api_key
    env.pop(API_KEY_ENV, None)
    if settings.database_password is not None:
        env["PGPASSWORD"] = settings.database_password  # read by asyncpg when the URI has none
    user = urlsplit(settings.database).username
    if user:
        env["PGUSER"] = user  # for libpq (table storage), see _table_storage
    return env


def _forward_masked(stream, secret: str, out) -> None:
    """Copy the server's log lines to ``out`` with the API key masked (tiled prints it)."""
    for line in iter(stream.readline, ""):
        out.write(line.replace(secret, "<api-key>"))
        out.flush()


def _wait_until_ready(process: subprocess.Popen, settings: CatalogServerSettings) -> None:
    """Poll the server until it serves the runs container (created here if missing)."""
    import httpx

    from insitu.beamline.catalog import close_catalog, open_catalog

    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"tiled serve catalog exited with code {process.returncode} before it was ready"
            )
        try:
            httpx.get(f"{settings.uri}/api/v1/", timeout=2.0)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"tiled serve catalog did not answer at {settings.uri} "
                    f"within {_READY_TIMEOUT_S:.0f} s"
                ) from None
            time.sleep(0.2)
    close_catalog(open_catalog(settings.uri, api_key=settings.api_key))


def serve_catalog(settings: CatalogServerSettings) -> int:
    """Run the tiled server for ``settings`` until it exits or this process is told to stop.

    Returns
    -------
    int
        The server's exit code (0 after a SIGINT/SIGTERM shutdown).
    """
    command = tiled_command(settings)
    if settings.generated_key:
        store_generated_key(settings)  # before the server starts: a key nobody can read is useless
    process = subprocess.Popen(
        command,
        env=_server_environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    forwarder = threading.Thread(
        target=_forward_masked, args=(process.stdout, settings.api_key, sys.stderr), daemon=True
    )
    forwarder.start()
    stopping = False

    def _stop(signum, frame):  # forward a stop request to the server, then wait for it below
        nonlocal stopping
        stopping = True
        if process.poll() is None:
            process.terminate()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            _wait_until_ready(process, settings)
        except Exception as error:
            if stopping:
                return 0
            print(f"insitu serve catalog: {error}", file=sys.stderr)
            if process.poll() is None:
                process.terminate()
            return process.wait() or 1
        _print_ready(settings)
        code = process.wait()
        forwarder.join(timeout=2.0)
        return 0 if stopping else code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _print_ready(settings: CatalogServerSettings) -> None:
    print(f"catalog database: {settings.database_for_display}")
    print(f"data directory:   {settings.data_dir}")
    if settings.generated_key:
        # Never printed: stdout ends up in terminals' scrollback, logs and CI output.
        print(
            f"API key: generated, stored in {settings.generated_key_file} (readable by its owner "
            f"only); set {API_KEY_ENV} or give --api-key-file to choose one"
        )
    if not is_loopback(settings.host):
        print(
            f"WARNING: listening on {settings.host}, beyond loopback: keep it behind a firewall "
            "and a TLS reverse proxy (docs/deployment.md)"
        )
    print(f"catalog ready: {settings.uri}")
    print(
        f"  write: insitu.beamline.load(config, catalog={settings.uri!r}) with catalog.api_key "
        "in the config"
    )
    key_file = settings.generated_key_file if settings.generated_key else "KEY_FILE"
    print(f"  read:  insitu runs --catalog {settings.uri} --api-key-file {key_file}")
    sys.stdout.flush()


def _cmd_serve_catalog(args: argparse.Namespace) -> int:
    from insitu.services.api_key_option import api_key_from_args

    settings = resolve_settings(
        database=args.database,
        data_dir=args.data,
        host=args.host,
        port=args.port,
        api_key=api_key_from_args(args),
    )
    return serve_catalog(settings)


def add_serve_parser(services) -> None:
    """Register ``insitu serve catalog``."""
    from insitu.services.api_key_option import _RefuseSecretOnCommandLine

    parser = services.add_parser(
        "catalog",
        help="serve a shared run catalog (tiled, API key, SQLite or PostgreSQL)",
        description=(
            "Start a `tiled serve catalog` server that beamlines write runs to by URI and clients "
            "read from with the API key. Listens on loopback unless --host says otherwise."
        ),
    )
    parser.add_argument(
        "--database",
        default=None,
        help="catalog database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB "
        "(default: DATA/catalog.db)",
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        help=f"writable directory for array data and event tables (default ./{DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default 127.0.0.1; anything else needs an API key)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default 8000)")
    parser.add_argument(
        "--api-key-file",
        default=None,
        metavar="FILE",
        help=f"file (owner-only) holding the API key every client must send (default: "
        f"${API_KEY_ENV}; on loopback a random key is generated and stored, owner-only, in "
        f"DATA/{GENERATED_KEY_FILE} when neither is set)",
    )
    parser.add_argument(
        "--api-key", nargs="?", action=_RefuseSecretOnCommandLine, help=argparse.SUPPRESS
    )
    parser.set_defaults(func=_cmd_serve_catalog)
