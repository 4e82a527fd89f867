"""PersistentMetadata: RE.md that survives restarts, refuses what it cannot store."""

import copy

import pytest

from insitu.beamline.persistent_metadata import PersistentMetadata


def test_values_survive_a_new_instance(tmp_path):
    md = PersistentMetadata(tmp_path)
    md["scan_id"] = 41
    md["sample"] = {"name": "LLZO-650"}
    again = PersistentMetadata(tmp_path)
    assert again["scan_id"] == 41 and again["sample"] == {"name": "LLZO-650"}
    del again["sample"]
    assert "sample" not in PersistentMetadata(tmp_path)


def test_two_instances_do_not_corrupt_each_other(tmp_path):
    first, second = PersistentMetadata(tmp_path), PersistentMetadata(tmp_path)
    first["scan_id"] = 1
    second["scan_id"] = 2
    del first
    assert PersistentMetadata(tmp_path)["scan_id"] == 2


def test_unstorable_value_is_refused_and_nothing_changes(tmp_path):
    md = PersistentMetadata(tmp_path)
    md["scan_id"] = 3
    with pytest.raises(TypeError):
        md["bad"] = object()
    assert dict(PersistentMetadata(tmp_path)) == {"scan_id": 3}


def test_corrupt_file_names_the_file(tmp_path):
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match="metadata.json.* is corrupt"):
        PersistentMetadata(tmp_path)


def test_deepcopy_gives_plain_values(tmp_path):
    md = PersistentMetadata(tmp_path)
    md["scan_id"] = 5
    assert copy.deepcopy(md) == {"scan_id": 5}
