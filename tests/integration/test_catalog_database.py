"""An embedded catalog's database comes from a per-process template, not a tiled init per open."""

from __future__ import annotations

import sqlite3

from insitu.beamline.catalog import close_catalog, open_catalog
from insitu.beamline.catalog_database import prepare_catalog_database


def test_a_new_database_is_a_ready_copy_and_an_up_to_date_one_needs_no_init(tmp_path):
    database = tmp_path / "catalog.db"
    assert prepare_catalog_database(database) is True
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"alembic_version", "nodes"} <= tables
    assert prepare_catalog_database(database) is True
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.db"]  # no staging file left


def test_an_other_schema_or_a_broken_file_goes_to_tiled_init(tmp_path):
    database = tmp_path / "catalog.db"
    prepare_catalog_database(database)
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = 'an-older-revision'")
    assert prepare_catalog_database(database) is False
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database")
    assert prepare_catalog_database(broken) is False


def test_a_catalog_made_from_the_template_stores_and_reopens_runs(tmp_path):
    from bluesky import RunEngine
    from bluesky.plans import count
    from bluesky_tiled_plugins import TiledWriter
    from ophyd.sim import det

    runs = open_catalog(tmp_path)
    try:
        engine = RunEngine({})
        engine.subscribe(TiledWriter(runs))
        (uid,) = engine(count([det], num=2))
    finally:
        close_catalog(runs)
    again = open_catalog(tmp_path)
    try:
        assert len(again[uid]["primary"].read()["det"]) == 2
    finally:
        close_catalog(again)
