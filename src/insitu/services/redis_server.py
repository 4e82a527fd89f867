"""The queue's Redis: its address, and a loopback redis-server started when none answers."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_REDIS", "RedisAddress", "start_redis"]

DEFAULT_REDIS = "redis://127.0.0.1:6379"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_WAIT_S = 60.0


@dataclass(frozen=True)
class RedisAddress:
    """A Redis server address: ``redis://host:port/db``, ``host:port`` or ``host``."""

    host: str
    port: int = 6379
    db: int = 0

    @classmethod
    def parse(cls, text: str) -> RedisAddress:
        """Parse an address; raise ``ValueError`` naming it if it is not one."""
        match = re.fullmatch(r"(?:redis://)?([^:/\s]+)(?::(\d+))?(?:/(\d+))?/?", text.strip())
        if not match:
            raise ValueError(
                f"Redis address {text!r} is not valid: use redis://HOST:PORT, HOST:PORT or HOST"
            )
        host, port, db = match.group(1), int(match.group(2) or 6379), int(match.group(3) or 0)
        if not 0 < port < 65536:
            raise ValueError(f"Redis address {text!r}: port {port} is not in 1..65535")
        return cls(host, port, db)

    @property
    def for_manager(self) -> str:
        """The form ``start-re-manager --redis-addr`` takes: ``host:port/db``."""
        return f"{self.host}:{self.port}/{self.db}"

    def answers(self, timeout: float = 1.0) -> bool:
        """True if a Redis server answers PING at this address."""
        import redis

        client = redis.Redis(
            host=self.host, port=self.port, db=self.db, socket_connect_timeout=timeout
        )
        try:
            return bool(client.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    def __str__(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"


def start_redis(address: RedisAddress, directory: Path) -> subprocess.Popen:
    """A ``redis-server`` on loopback, append-only file in ``directory`` (so the queue outlives
    Redis too); stopped when the service stops."""
    if address.host not in _LOOPBACK:
        raise ValueError(
            f"no Redis answers at {address} and a Redis is only started here on loopback "
            f"(127.0.0.1): start it on {address.host} or give --redis redis://127.0.0.1:PORT"
        )
    executable = shutil.which("redis-server")
    if executable is None:
        raise ValueError(
            f"no Redis answers at {address} and redis-server is not installed "
            "(Debian: apt-get install redis-server)"
        )
    from insitu.beamline.private_dir import make_private_dir  # here: `insitu` starts fast

    make_private_dir(directory)
    server = subprocess.Popen(
        [
            executable,
            "--bind",
            "127.0.0.1",
            "--port",
            str(address.port),
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--logfile",
            str(directory / "redis.log"),
        ]  # fmt: skip
    )
    deadline = time.monotonic() + _WAIT_S
    while not address.answers():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(
                f"redis-server did not start on {address}, see {directory / 'redis.log'}"
            )
        time.sleep(0.1)
    return server
