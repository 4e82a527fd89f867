"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from insitu import clock


@pytest.fixture
def virtual_clock():
    """Virtual (holdable, pinnable) experiment time at 1000x; the clock reset after."""
    clock.set_speedup(1000.0)
    clock.set_virtual(True)
    yield
    clock.reset()
