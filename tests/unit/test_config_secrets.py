"""Secrets (catalog API keys, database passwords) never show in a repr, a str or stdout.

A config is printed in sessions, logs and tracebacks (``bl.config``, ``repr(beamline)``): its API
key and any password in a URL render as ``'***'`` there, while the value stays a plain string
that opens the catalog.
"""

from __future__ import annotations

import os
import stat

import pytest

from insitu.beamline import config as config_module
from insitu.beamline.config import load_config, parse_config

KEY = "s3cretKEY0123456789"
PASSWORD = "pw0rdXYZ"


def _config():
    return parse_config(
        {
            "catalog": {
                "location": f"https://operator:{PASSWORD}@catalog.example:8000/api",
                "api_key": KEY,
            }
        }
    )


def _shown(*objects) -> str:
    return " ".join(f"{repr(o)} {str(o)}" for o in objects)


def test_repr_and_str_of_the_config_hide_the_key_and_the_password():
    cfg = _config()
    text = _shown(cfg, cfg.catalog)
    assert KEY not in text and PASSWORD not in text
    assert "api_key='***'" in repr(cfg.catalog)
    assert "operator:***@catalog.example:8000" in repr(cfg.catalog)


def test_the_values_stay_usable():
    cfg = _config()
    assert cfg.catalog.api_key == KEY and isinstance(cfg.catalog.api_key, str)
    assert f"Apikey {cfg.catalog.api_key}" == f"Apikey {KEY}"
    assert cfg.catalog.location == f"https://operator:{PASSWORD}@catalog.example:8000/api"
    assert cfg.catalog.location.startswith("https://")
    assert cfg.model_dump()["catalog"]["api_key"] == KEY
    assert os.fspath(cfg.catalog.location).endswith("/api")


def test_a_copied_or_loaded_config_hides_them_too(tmp_path):
    cfg = _config()
    copied = cfg.model_copy(update={"name": "other"})
    path = tmp_path / "beamline.yaml"
    path.write_text(f"catalog:\n  location: http://h:8000\n  api_key: {KEY}\n")
    loaded = load_config(path)
    assert KEY not in _shown(copied, loaded, loaded.catalog)
    assert loaded.catalog.api_key == KEY


def test_no_key_shows_as_none():
    assert "api_key=None" in repr(parse_config({}).catalog)


def test_a_beamline_holding_the_config_hides_them():
    from insitu.beamline.assembly import Beamline

    beamline = Beamline(config=_config(), RE=None, catalog=None, writer=None)
    text = _shown(beamline)
    assert KEY not in text and PASSWORD not in text
    assert "api_key='***'" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p%40ss@db:5432/runs", "postgresql://u:***@db:5432/runs"),
        ("https://u:pw@h/x?y=1", "https://u:***@h/x?y=1"),
        ("https://u@h/x", "https://u@h/x"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("insitu-data", "insitu-data"),
    ],
)
def test_redact_url(url, shown):
    assert config_module.redact_url(url) == shown


# --- insitu serve catalog -----------------------------------------------------------------


def test_catalog_server_settings_hide_the_key_and_the_database_password(tmp_path):
    from insitu.services.catalog_server import resolve_settings

    settings = resolve_settings(
        database=f"postgresql://user:{PASSWORD}@db.example:5432/runs",
        data_dir=tmp_path,
        api_key=KEY,
    )
    text = _shown(settings)
    assert KEY not in text and PASSWORD not in text
    assert "api_key='***'" in text and "database_password='***'" in text
    assert settings.api_key == KEY and settings.database_password == PASSWORD


def test_a_generated_key_is_stored_owner_only_not_printed(tmp_path, monkeypatch, capsys):
    from insitu.services import catalog_server

    monkeypatch.delenv("TILED_API_KEY", raising=False)
    settings = catalog_server.resolve_settings(data_dir=tmp_path / "catalog")
    assert settings.generated_key
    catalog_server._print_ready(settings)
    out = capsys.readouterr().out
    assert settings.api_key not in out
    path = catalog_server.store_generated_key(settings)  # as serve_catalog does first
    assert path == settings.data_dir / "api-key"
    catalog_server._print_ready(settings)
    out = capsys.readouterr().out
    assert settings.api_key not in out
    assert str(path) in out
    assert path.read_text().strip() == settings.api_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_stored_key_file_is_replaced_owner_only(tmp_path, monkeypatch):
    from insitu.services import catalog_server

    monkeypatch.delenv("TILED_API_KEY", raising=False)
    settings = catalog_server.resolve_settings(data_dir=tmp_path)
    stale = tmp_path / "api-key"
    stale.write_text("old")
    os.chmod(stale, 0o644)
    catalog_server.store_generated_key(settings)
    assert stale.read_text().strip() == settings.api_key
    assert stat.S_IMODE(os.stat(stale).st_mode) == 0o600


def test_a_key_someone_gave_is_neither_printed_nor_stored(tmp_path, capsys):
    from insitu.services import catalog_server

    settings = catalog_server.resolve_settings(data_dir=tmp_path, api_key=KEY)
    catalog_server._print_ready(settings)
    assert KEY not in capsys.readouterr().out
    assert not (tmp_path / "api-key").exists()
