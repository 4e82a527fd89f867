"""``insitu serve catalog``: a PostgreSQL-backed tiled server, on loopback, that needs its key."""

from __future__ import annotations

from pathlib import Path

import bluesky.plans as bp
import httpx
import pytest

import insitu.beamline
from insitu import cli, clock
from insitu.beamline.catalog import CatalogAccessError, close_catalog, open_catalog
from insitu.services.catalog_server import resolve_settings, tiled_command

pytestmark = pytest.mark.services


@pytest.fixture
def no_key_in_environment(monkeypatch):
    """Tests about a missing key must not pick one up from the developer's environment."""
    monkeypatch.delenv("TILED_API_KEY", raising=False)


def _write_runs(catalog_server, tmp_path: Path, name: str, num: int) -> str:
    """Run a count of the simulated stage and Raman into the server; return the run uid."""
    config = {
        "name": name,
        "catalog": {"location": catalog_server.uri, "api_key": catalog_server.api_key},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": 300, "seed": 5},
    }
    try:
        with insitu.beamline.load(config, table=False, analysis=False) as beamline:
            beamline.RE.waiting_hook = None
            beamline.raman.exposure.put(5.0)
            (uid,) = beamline.RE(bp.count([beamline.raman, beamline.stage], num=num))
            beamline.flush()
    finally:
        clock.reset()
    return uid


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN state on ``port`` (Linux /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                if len(address) == 8:  # IPv4, little-endian hex
                    found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add(address)
    return found


def test_runs_from_a_beamline_are_stored_and_reads_need_the_key(
    catalog_server, tmp_path, no_key_in_environment, capsys
):
    uid = _write_runs(catalog_server, tmp_path, "station-key", num=3)

    runs = open_catalog(catalog_server.uri, api_key=catalog_server.api_key, create=False)
    try:
        run = runs[uid]
        assert run.start["beamline"] == "station-key"
        assert run.stop["exit_status"] == "success"
        data = run["primary"].read()
        assert data["raman_spectrum"].shape == (3, 1600)
        assert len(data["time"]) == 3
    finally:
        close_catalog(runs)

    # The command-line client reads it with the key from an owner-only file (never from argv).
    key_file = tmp_path / "api-key"
    key_file.write_text(catalog_server.api_key + "\n")
    key_file.chmod(0o600)
    assert cli.main(["runs", "--catalog", catalog_server.uri, "--api-key-file", str(key_file)]) == 0
    assert uid in capsys.readouterr().out

    # Missing or wrong key: refused, with a clear error.
    with pytest.raises(CatalogAccessError, match="no API key was given"):
        open_catalog(catalog_server.uri)
    with pytest.raises(CatalogAccessError, match="401.*API key was refused"):
        open_catalog(catalog_server.uri, api_key="wrongkey0123")
    # ... and over plain HTTP, for any client: nothing readable without the key.
    for headers in ({}, {"Authorization": "Apikey wrongkey0123"}):
        response = httpx.get(f"{catalog_server.uri}/api/v1/metadata/runs/{uid}", headers=headers)
        assert response.status_code in (401, 403), response.text
    good = {"Authorization": f"Apikey {catalog_server.api_key}"}
    assert httpx.get(f"{catalog_server.uri}/api/v1/metadata/runs/{uid}", headers=good).is_success


def test_server_binds_to_loopback_only_by_default(catalog_server):
    addresses = _listening_addresses(catalog_server.port)
    assert addresses == {"127.0.0.1"}, f"listening on {addresses}"


@pytest.mark.slow
def test_restart_keeps_the_runs(catalog_server, tmp_path):
    uid = _write_runs(catalog_server, tmp_path, "station-restart", num=2)
    catalog_server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{catalog_server.uri}/api/v1/", timeout=2.0)
    catalog_server.start()
    runs = open_catalog(catalog_server.uri, api_key=catalog_server.api_key, create=False)
    try:
        assert runs[uid].start["beamline"] == "station-restart"
        assert runs[uid].stop["num_events"] == {"primary": 2}
    finally:
        close_catalog(runs)


# --- the command's options, checked before anything starts ---------------------------------


def test_refuses_to_bind_beyond_loopback_without_a_key(tmp_path, no_key_in_environment, capsys):
    with pytest.raises(ValueError, match="0.0.0.0.*without an API key"):
        resolve_settings(data_dir=tmp_path, host="0.0.0.0")
    code = cli.main(["serve", "catalog", "--host", "10.1.2.3", "--data", str(tmp_path)])
    assert code == 2
    assert "without an API key" in capsys.readouterr().err
    # With a key it is allowed (the docs say how to expose it safely).
    assert resolve_settings(data_dir=tmp_path, host="0.0.0.0", api_key="abc123").host == "0.0.0.0"


def test_loopback_without_a_key_gets_a_random_one(tmp_path, no_key_in_environment):
    first = resolve_settings(data_dir=tmp_path)
    second = resolve_settings(data_dir=tmp_path)
    assert first.generated_key and first.host == "127.0.0.1"
    assert first.api_key.isalnum() and len(first.api_key) >= 32
    assert first.api_key != second.api_key


def test_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TILED_API_KEY", "fromenv123")
    settings = resolve_settings(data_dir=tmp_path, host="0.0.0.0")
    assert settings.api_key == "fromenv123" and not settings.generated_key


@pytest.mark.parametrize("key", ["has-dash", "with space", "ünï"])
def test_rejects_a_key_tiled_would_refuse(tmp_path, key):
    with pytest.raises(ValueError, match="letters and digits"):
        resolve_settings(data_dir=tmp_path, api_key=key)


def test_database_password_stays_out_of_the_command_line(tmp_path):
    settings = resolve_settings(
        database="postgresql://user:s3cret@db.example:5432/runs", data_dir=tmp_path, api_key="k1"
    )
    assert settings.database == "postgresql://user@db.example:5432/runs"
    assert settings.database_password == "s3cret"
    command = " ".join(tiled_command(settings))
    assert "s3cret" not in command and "k1" not in command.split()
    assert "--host 127.0.0.1" in command and "--init" in command


def test_default_database_is_sqlite_in_the_data_directory(tmp_path):
    settings = resolve_settings(data_dir=tmp_path / "cat", api_key="k1")
    assert settings.database == f"sqlite:///{tmp_path / 'cat' / 'catalog.db'}"


@pytest.mark.parametrize(
    "database", ["mysql://u:p@h/db", "postgresql://u:p@h/", "sqlite://", "catalog.db"]
)
def test_rejects_unsupported_databases(tmp_path, database):
    with pytest.raises(ValueError, match="catalog database") as error:
        resolve_settings(database=database, data_dir=tmp_path, api_key="k1")
    assert ":p@" not in str(error.value)  # never echo a password


def test_rejects_a_bad_port(tmp_path):
    with pytest.raises(ValueError, match="port 70000"):
        resolve_settings(data_dir=tmp_path, port=70000, api_key="k1")
