"""Shared fixtures: a fresh embedded catalog per test and a clock restored to real time."""

from __future__ import annotations

import pytest

from insitu import clock


@pytest.fixture
def real_time_clock():
    """Real time, aligned with the wall clock, before and after the test."""
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


def _simulated_beamline(tmp_path, *, speedup: float, seed: int):
    """Load the simulated beamline into ``tmp_path`` (catalog and metadata), without a table."""
    import insitu.beamline

    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": speedup, "seed": seed},
    }
    return insitu.beamline.load(config, table=False)


@pytest.fixture
def sim_beamline(tmp_path):
    """The simulated beamline (stage, Raman, impedance on emulators) at a 200x clock."""
    beamline = _simulated_beamline(tmp_path, speedup=200, seed=1)
    messages = []
    beamline.RE.msg_hook = messages.append
    beamline.messages = messages
    yield beamline
    beamline.close()
    clock.reset()


@pytest.fixture
def fast_beamline(tmp_path):
    """The simulated beamline with live analysis at 1500x, 30 s Raman exposures, no move bars."""
    beamline = _simulated_beamline(tmp_path, speedup=1500, seed=7)
    beamline.RE.waiting_hook = None
    beamline.raman.exposure.put(30.0)
    yield beamline
    beamline.close()
    clock.reset()
