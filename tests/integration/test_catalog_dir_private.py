"""The embedded catalog's directories (SQLite files, array data) are owner-only (0700)."""

from __future__ import annotations

import os
import stat

import pytest

from insitu.beamline.catalog import close_catalog, open_catalog


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_embedded_catalog_is_0700(tmp_path, permissive_umask):
    location = tmp_path / "new" / "catalog"
    runs = open_catalog(location)
    try:
        for created in (tmp_path / "new", location, location / "data"):
            assert mode(created) == 0o700, (created, oct(mode(created)))
    finally:
        close_catalog(runs)


def test_a_directory_someone_chose_keeps_its_mode(tmp_path, permissive_umask):
    chosen = tmp_path / "shared"
    chosen.mkdir()
    os.chmod(chosen, 0o750)
    runs = open_catalog(chosen)
    try:
        assert mode(chosen) == 0o750  # neither widened nor narrowed
        assert mode(chosen / "data") == 0o700  # what insitu created inside it is private
    finally:
        close_catalog(runs)
