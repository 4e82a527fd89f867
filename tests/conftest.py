"""Shared fixtures: a fresh embedded catalog per test and a clock restored to real time."""

from __future__ import annotations

import pytest

from insitu import clock


@pytest.fixture
def real_time_clock():
    """Make sure the experiment clock is back to real time, aligned with the wall, after the test."""
    clock.reset()
    yield clock
    clock.reset()


@pytest.fixture
def catalog_dir(tmp_path):
    """A directory for an embedded catalog."""
    return tmp_path / "catalog"


@pytest.fixture
def catalog(catalog_dir):
    """An embedded catalog's runs container, closed after the test."""
    from insitu.beamline.catalog import close_catalog, open_catalog

    runs = open_catalog(catalog_dir)
    yield runs
    close_catalog(runs)
