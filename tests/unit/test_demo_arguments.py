"""``run_demo`` refuses a speed-up outside the simulation's range before loading anything."""

from __future__ import annotations

import pytest

from insitu import demo

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speedup": 0.5}, "run_demo speedup 0.5 is outside 1 to 10000"),
        ({"campaign_speedup": 20000.0}, "run_demo campaign_speedup 20000.0 is outside 1 to 10000"),
    ],
)
def test_a_speedup_out_of_range_is_refused_before_the_beamline_loads(monkeypatch, kwargs, message):
    def load(*args, **kwargs):
        raise AssertionError("the beamline was loaded")

    monkeypatch.setattr(demo, "load", load)
    with pytest.raises(ValueError, match=message):
        demo.run_demo(**kwargs)
