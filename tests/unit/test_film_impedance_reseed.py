"""A campaign's sample gets the same impedance noise whatever was measured before it."""

from __future__ import annotations

from insitu.sim.film_impedance import FilmImpedance


def test_reseeding_by_sample_restarts_the_noise():
    fresh, used = FilmImpedance(seed=9), FilmImpedance(seed=9)
    for _ in range(5):
        used(1e3)  # samples measured before
    fresh.reseed(3)
    used.reseed(3)
    assert [fresh(f) for f in (1e2, 1e4)] == [used(f) for f in (1e2, 1e4)]
    other = FilmImpedance(seed=9)
    fresh.reseed(3)
    other.reseed(4)
    assert fresh(1e2) != other(1e2)
