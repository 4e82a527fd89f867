"""The virtual film's variation (issue 18) and the truth of its processing window."""

from __future__ import annotations

import pytest

from insitu.sim.processing_window_truth import annealed_state, window_truth
from insitu.sim.sample import GarnetFilm


def test_a_shifted_film_transforms_that_many_degrees_higher():
    nominal = window_truth(dwells_min=[5.0, 120.0])
    shifted = window_truth(crystallization_shift_C=30.0, dwells_min=[5.0, 120.0])
    for a, b in zip(nominal.boundary, shifted.boundary, strict=True):
        assert b.t1_C - a.t1_C == pytest.approx(30.0, abs=0.01)
        assert b.t5_C - a.t5_C == pytest.approx(30.0, abs=0.01)
        assert a.t1_C < a.t5_C < a.t1_C + 40.0
    # a longer dwell crystallizes the film at a lower temperature
    assert nominal.boundary[1].t5_C < nominal.boundary[0].t5_C - 20.0


def test_conductivity_scale_scales_the_film_and_the_best_amorphous_sigma():
    film, state = annealed_state(600.0, 15.0)
    scaled, same_state = annealed_state(600.0, 15.0, conductivity_scale=2.0)
    assert same_state.crystalline_fraction == state.crystalline_fraction
    assert scaled.conductivity(30.0, same_state) == pytest.approx(
        2 * film.conductivity(30.0, state)
    )
    truth = window_truth(conductivity_scale=2.0, dwells_min=[15.0])
    assert truth.best_amorphous_sigma_30C_S_cm == pytest.approx(
        2 * window_truth(dwells_min=[15.0]).best_amorphous_sigma_30C_S_cm, rel=1e-6
    )


def test_the_truths_best_amorphous_film_stays_below_five_percent():
    truth = window_truth(dwells_min=[15.0])
    film, state = annealed_state(truth.best_amorphous_anneal_C, truth.best_amorphous_dwell_min)
    assert state.crystalline_fraction < 0.05
    assert 10 ** film.conductivity_law(state).log10_sigma_30 == pytest.approx(
        truth.best_amorphous_sigma_30C_S_cm
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crystallization_shift_C": 500.0}, r"crystallization_shift_C 500.* -200 <= value <= 200"),
        ({"conductivity_scale": 0.0}, r"conductivity_scale 0.* 0.001 <= value <= 1000"),
    ],
)
def test_a_film_variation_out_of_range_is_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GarnetFilm(**kwargs)


def test_the_config_carries_the_film_variation_to_each_new_film():
    from insitu.beamline.config import parse_config
    from insitu.beamline.instruments import SimulatedLab

    config = parse_config(
        {
            "simulation": {
                "film_variation": {"crystallization_shift_C": -20, "conductivity_scale": 3}
            }
        }
    )
    lab = SimulatedLab(film_variation=config.simulation.film_variation)
    film = lab.load_new_film()
    assert film.crystallization_shift_C == -20.0 and film.conductivity_scale == 3.0
    with pytest.raises(ValueError, match="crystallization_shift_C"):
        parse_config({"simulation": {"film_variation": {"crystallization_shift_C": 999}}})
