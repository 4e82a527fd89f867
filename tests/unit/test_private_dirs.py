"""Directories insitu creates for data are owner-only (0700), whatever the umask.

A directory a person made beforehand (the ``--output`` they chose, a shared parent) keeps its
mode: insitu neither widens nor narrows it. The embedded catalog's directories are checked in
tests/integration/test_catalog_dir_private.py (opening a catalog takes seconds).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from insitu.beamline.persistent_metadata import PersistentMetadata
from insitu.beamline.private_dir import make_private_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask022", "umask002", "umask000"])
def umask(request):
    """Run the test under a permissive umask: the modes must not depend on it."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_new_directories_and_new_parents_are_0700(tmp_path, umask):
    target = tmp_path / "a" / "b" / "c"
    assert make_private_dir(target) == target
    for created in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert mode(created) == 0o700, (created, oct(mode(created)))


@pytest.mark.parametrize("chosen", [0o755, 0o750, 0o700, 0o777])
def test_an_existing_directory_is_left_as_it_is(tmp_path, umask, chosen):
    existing = tmp_path / "chosen"
    existing.mkdir()
    os.chmod(existing, chosen)
    make_private_dir(existing)
    assert mode(existing) == chosen
    make_private_dir(existing / "new")  # a new directory inside it is private, the parent kept
    assert mode(existing) == chosen and mode(existing / "new") == 0o700


def test_a_file_in_the_way_is_an_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        make_private_dir(tmp_path / "file")


def test_the_runengine_metadata_directory_is_0700(tmp_path, umask):
    md = PersistentMetadata(tmp_path / "insitu-data" / "runengine-md")  # a beamline's default
    md["scan_id"] = 1
    assert mode(tmp_path / "insitu-data") == 0o700
    assert mode(tmp_path / "insitu-data" / "runengine-md") == 0o700
    assert mode(md.path) == 0o600


def test_an_export_directory_created_by_export_is_0700(tmp_path, umask):
    import xarray as xr

    from insitu.export import export_run

    class Run:
        start = {"uid": "0123456789abcdef"}
        metadata = {"stop": None}

        def __iter__(self):
            return iter(["primary"])

        def __getitem__(self, name):
            class Stream:
                def read(self):
                    return xr.Dataset({"t": ("time", [1.0])}, coords={"time": [0.0]})

            return Stream()

    export_run(Run(), tmp_path / "exports" / "run1", "csv")
    assert mode(tmp_path / "exports") == 0o700 and mode(tmp_path / "exports" / "run1") == 0o700


def test_the_catalog_server_data_directories_are_0700(tmp_path, umask):
    from insitu.services.catalog_server import resolve_settings, tiled_command

    settings = resolve_settings(data_dir=tmp_path / "srv" / "catalog", api_key="k1")
    tiled_command(settings)
    for created in (tmp_path / "srv", tmp_path / "srv" / "catalog", settings.data_dir / "arrays"):
        assert mode(created) == 0o700, created
    resolve_settings(
        database=f"sqlite:///{tmp_path / 'db' / 'catalog.db'}", data_dir=tmp_path, api_key="k1"
    )
    assert mode(tmp_path / "db") == 0o700
