"""Fixtures for the tests marked ``services``: Redis, PostgreSQL and a shared tiled catalog server.

Redis and PostgreSQL are started by ``scripts/services.sh start``, which writes their addresses
to ``.services/env`` (``INSITU_TEST_REDIS``, ``INSITU_TEST_POSTGRES``); ``make test`` sources it.
Without those variables the tests fail (they are never skipped): run

    scripts/services.sh start && . .services/env

Fixtures
--------
redis_url, postgres_url : session
    The addresses of the running servers.
postgres_database : per test
    A fresh, uniquely named PostgreSQL database (its URL), dropped after the test.
catalog_server : per module
    ``insitu serve catalog`` on a fresh PostgreSQL database, a random API key and a free loopback
    port: ``.uri``, ``.api_key``, ``.stop()``, ``.start()`` (restart, same data and port).
    A test that stops it must start it again (later tests of the module share it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_ENV = "INSITU_TEST_REDIS"
POSTGRES_ENV = "INSITU_TEST_POSTGRES"
_HOW_TO_START = "run `scripts/services.sh start && . .services/env` first (see the Makefile)"
_SERVER_READY_LINE = "catalog ready:"
_SERVER_START_TIMEOUT_S = 120.0


def _service_url(variable: str, what: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.fail(f"{variable} is not set, so there is no {what} for this test: {_HOW_TO_START}")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``redis://127.0.0.1:PORT`` of the test Redis (fails when it is not configured)."""
    return _service_url(REDIS_ENV, "Redis")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """``postgresql://USER:PASS@127.0.0.1:PORT/DB`` of the test PostgreSQL (fails when unset).

    The role may create databases; make a fresh one per test with ``postgres_database``.
    """
    url = _service_url(POSTGRES_ENV, "PostgreSQL")
    try:
        asyncio.run(_execute(url, "SELECT 1"))
    except (OSError, Exception) as error:  # asyncpg raises its own errors, OSError on refusal
        pytest.fail(
            f"PostgreSQL at {_without_password(url)} does not answer ({error}): {_HOW_TO_START}"
        )
    return url


def _without_password(url: str, mask: str | None = "***") -> str:
    """``url`` with its password replaced by ``mask`` (removed when ``mask`` is None)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", "@" if mask is None else f":{mask}@")
    return urlunsplit(parts._replace(netloc=netloc))


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_postgres_database(postgres_url: str, prefix: str = "insitu_test") -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it (and its connections) after."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_execute(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(postgres_url, name)
    finally:
        asyncio.run(_execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_database(postgres_url) -> Iterator[str]:
    """A fresh PostgreSQL database for one test: its ``postgresql://`` URL; dropped after."""
    with fresh_postgres_database(postgres_url) as url:
        yield url


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CatalogServer:
    """``insitu serve catalog`` in a subprocess, on a fixed database, data directory and port.

    Attributes
    ----------
    uri : str
        ``http://127.0.0.1:PORT``.
    api_key : str
        The key the server was started with.
    database_url : str
        The PostgreSQL (or SQLite) URL of its catalog database.
    data_dir, log_path : Path
        Its data directory and the file its output goes to.
    """

    def __init__(self, database_url: str, data_dir: Path, log_path: Path) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.log_path = log_path
        self.api_key = secrets.token_hex(16)
        self.port = free_loopback_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server (again, on the same data and port) and wait until it is ready."""
        if self.process is not None and self.process.poll() is None:
            return
        # Secrets through the environment, not the command line (which `ps` shows to everyone):
        # the key as TILED_API_KEY, the database password as PGPASSWORD (asyncpg reads it).
        env = dict(os.environ, TILED_API_KEY=self.api_key)
        database = urlsplit(self.database_url)
        if database.password is not None:
            env["PGPASSWORD"] = database.password
        command = [
            sys.executable,
            "-m",
            "insitu.cli",
            "serve",
            "catalog",
            "--database",
            _without_password(self.database_url, mask=None),
            "--data",
            str(self.data_dir),
            "--port",
            str(self.port),
        ]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            # Own session: stop() can signal the server and its tiled child together.
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + _SERVER_START_TIMEOUT_S
        while True:
            text = self.log_path.read_text(errors="replace")[offset:]
            if _SERVER_READY_LINE in text:
                return
            if self.process.poll() is not None:
                pytest.fail(
                    f"insitu serve catalog exited with code {self.process.returncode}:\n"
                    f"{text[-3000:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"insitu serve catalog not ready after {_SERVER_START_TIMEOUT_S:.0f} s:\n"
                    f"{text[-3000:]}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL of its process group after 30 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_text(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def catalog_server(postgres_url, tmp_path_factory) -> Iterator[CatalogServer]:
    """A running ``insitu serve catalog`` on a fresh PostgreSQL database (one per test module)."""
    directory = tmp_path_factory.mktemp("catalog_server")
    with fresh_postgres_database(postgres_url, prefix="insitu_catalog") as database_url:
        server = CatalogServer(database_url, directory / "data", directory / "server.log")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def shared_catalog(catalog_server):
    """The module's catalog server, opened as a client with its key (closed after the test)."""
    from insitu.beamline.catalog import close_catalog, open_catalog

    runs = open_catalog(catalog_server.uri, api_key=catalog_server.api_key)
    yield runs
    close_catalog(runs)
