"""``insitu export`` writes only inside its output directory, whatever a stored run says.

A run's uid, stream names and data keys come from the catalog (another beamline, another
person, a damaged document): file names are built from them, so a hostile value (``../../x``,
an absolute path, a symlink planted in the output directory) must never place a file outside.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from insitu.export import export_run


class _Stream:
    def __init__(self, dataset: xr.Dataset) -> None:
        self._dataset = dataset

    def read(self) -> xr.Dataset:
        return self._dataset


class _Run:
    """Just what ``export_run`` reads of a tiled run: start, metadata, streams by name."""

    def __init__(self, uid: str, streams: dict[str, xr.Dataset]) -> None:
        self.start = {"uid": uid, "time": 0.0, "plan_name": "count"}
        self.metadata = {"start": self.start, "stop": {"exit_status": "success"}}
        self._streams = {name: _Stream(data) for name, data in streams.items()}

    def __iter__(self):
        return iter(self._streams)

    def __getitem__(self, name: str) -> _Stream:
        return self._streams[name]


def _dataset(key: str = "temperature", array_key: str = "spectrum") -> xr.Dataset:
    return xr.Dataset(
        {key: ("time", [25.0, 26.0]), array_key: (("time", "pixel"), np.ones((2, 3)))},
        coords={"time": [1.0, 2.0]},
    )


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


# Relative escapes only: an absolute uid is tried below with a target inside tmp_path (a failing
# check must not leave files elsewhere on the machine).
HOSTILE = ["../../x", "../x", "a/../../b", "x\\..\\..\\y", ".hidden"]


@pytest.mark.parametrize("fmt", ["csv", "hdf5"])
@pytest.mark.parametrize("uid", HOSTILE)
def test_a_hostile_uid_writes_nothing_outside_the_output_directory(tmp_path, uid, fmt):
    out = tmp_path / "a" / "b" / "out"
    before = _files(tmp_path)
    written = export_run(_Run(uid, {"primary": _dataset()}), out, fmt)
    assert written
    for path in written:
        assert _inside(path, out), path
        assert path.parent.resolve() == out.resolve(), path  # no sub-directories either
    assert _files(tmp_path) - before == set(written)


def test_an_absolute_uid_writes_inside_the_output_directory(tmp_path):
    out = tmp_path / "out"
    uid = str(tmp_path / "elsewhere" / "x")
    (tmp_path / "elsewhere").mkdir()
    (written,) = export_run(_Run(uid, {"primary": _dataset()}), out, "hdf5")
    assert written.parent.resolve() == out.resolve()
    assert not any((tmp_path / "elsewhere").iterdir())


@pytest.mark.parametrize("fmt", ["csv", "hdf5"])
def test_hostile_stream_names_and_data_keys_stay_inside(tmp_path, fmt):
    out = tmp_path / "a" / "out"
    run = _Run(
        "0123456789abcdef",
        {"../../evil": _dataset("../../k", "../../../spectrum"), "/abs": _dataset()},
    )
    before = _files(tmp_path)
    written = export_run(run, out, fmt)
    for path in written:
        assert _inside(path, out) and path.parent.resolve() == out.resolve(), path
    assert _files(tmp_path) - before == set(written)
    if fmt == "csv":
        assert len(written) == 4  # two streams, each a scalar table and one array file


def test_file_names_use_a_safe_character_set(tmp_path):
    written = export_run(_Run("../é x;$(rm)", {"pri mary": _dataset()}), tmp_path / "out")
    for path in written:
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in path.name), path.name
        assert not path.name.startswith(".")


def test_ordinary_names_are_kept(tmp_path):
    uid = "0c2b9a43-5d2e-4a7f-9e7a-1b2c3d4e5f60"
    written = export_run(_Run(uid, {"primary": _dataset()}), tmp_path, "csv")
    assert sorted(p.name for p in written) == [
        "0c2b9a43_primary.csv",
        "0c2b9a43_primary_spectrum.csv",
    ]
    (h5,) = export_run(_Run(uid, {"primary": _dataset()}), tmp_path, "hdf5")
    assert h5.name == f"{uid}.h5"


@pytest.mark.parametrize("fmt", ["csv", "hdf5"])
def test_a_symlink_planted_in_the_output_directory_is_refused(tmp_path, fmt):
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "victim.txt"
    outside.write_text("keep me")
    uid = "0123456789abcdef"
    name = f"{uid}.h5" if fmt == "hdf5" else f"{uid[:8]}_primary.csv"
    os.symlink(outside, out / name)
    with pytest.raises(ValueError) as error:
        export_run(_Run(uid, {"primary": _dataset()}), out, fmt)
    message = str(error.value)
    assert uid in message and name in message and str(out.resolve()) in message
    assert "outside the output directory" in message
    assert outside.read_text() == "keep me"


@pytest.mark.parametrize("uid", ["", "..", "/", "../..", "é"])
def test_a_uid_with_nothing_usable_is_refused(tmp_path, uid):
    with pytest.raises(ValueError, match=f"run {uid!r}: its uid"):
        export_run(_Run(uid, {"primary": _dataset()}), tmp_path / "out")
    assert _files(tmp_path) == set()


def test_two_streams_that_would_share_a_file_are_refused(tmp_path):
    run = _Run("0123456789abcdef", {"a/b": _dataset(), "a_b": _dataset()})
    with pytest.raises(ValueError, match="same file"):
        export_run(run, tmp_path / "out")
