"""The band-growth fit: a band the axis does not hold gets no column, a weak band no width; fits
sharing one weighted spectrum solve the same least squares as the whole design at once."""

import numpy as np
import pytest

from insitu.analysis.band_growth import (
    BandCluster,
    Template,
    WeightedSpectrum,
    _band_columns,
    _line_row,
    _mean_square_near,
    background_rows,
    fit_growth,
    fit_growth_nested,
    learn_widths,
    weighted_least_squares,
)


def _cluster(position: float) -> BandCluster:
    return BandCluster(position, 25.0, "crystalline", ("cubic",), diagnostic=True)


def test_a_cluster_within_its_widest_line_of_either_end_gets_no_column():
    x = np.linspace(130.0, 1000.0, 1200)
    clusters = [_cluster(p) for p in (94.0, 150.0, 240.0, 990.0)]
    rows, owners = _band_columns(x, clusters, 25.0, {"crystalline": (8.0, 24.0)})
    # 94 is off the axis, 150 and 990 are closer to an end than 24 cm-1: only 240 is fitted,
    # with its two widths and the derivative column.
    assert rows.shape == (3, x.size)
    assert list(owners) == [2, 2, -1]
    none, no_owner = _band_columns(x, clusters[:1], 25.0, {"crystalline": (8.0, 24.0)})
    assert none.shape == (0, x.size) and no_owner.size == 0


def test_a_band_off_the_axis_leaves_the_bands_on_it_their_areas_and_errors():
    # Before: the 94 cm-1 column on an axis from 130 cm-1 was a smooth tail, fitted to areas of
    # 1e9 against the background, and its neighbours' errors grew with it.
    rng = np.random.default_rng(3)
    x = np.linspace(130.0, 1000.0, 1200)
    flat = np.full(x.size, 2000.0)
    template = Template.from_spectra(x, [rng.poisson(flat).astype(float) for _ in range(4)], 25.0)
    line = 3000.0 / (1.0 + ((x - 240.0) / 8.0) ** 2) / (8.0 * np.pi)
    y = rng.poisson(flat + line * 8.0 * np.pi / 3000.0 * 300.0).astype(float)
    noise = np.sqrt(flat)
    near = fit_growth(x, y, noise, template, [_cluster(240.0)], 25.0)
    with_off_axis = fit_growth(x, y, noise, template, [_cluster(94.0), _cluster(240.0)], 25.0)
    assert with_off_axis.areas[0] == 0.0
    assert np.isclose(with_off_axis.areas[1], near.areas[0])
    assert np.isclose(with_off_axis.signal_error["crystalline"], near.signal_error["crystalline"])


def test_a_band_too_weak_to_show_its_width_is_not_given_one():
    rng = np.random.default_rng(5)
    x = np.linspace(100.0, 800.0, 1400)
    base = np.full(x.size, 1000.0)

    def band(centre, height):
        return height * np.exp(-4.0 * np.log(2.0) * ((x - centre) / 15.0) ** 2)

    y = rng.poisson(base + band(300.0, 400.0) + band(600.0, 12.0)).astype(float)
    clusters = [_cluster(300.0), _cluster(600.0)]
    every = learn_widths(x, y, np.sqrt(base), clusters, 25.0)
    assert set(every) == set(clusters) and every[clusters[0]] in (11.0, 15.0, 20.0)
    strong = learn_widths(x, y, np.sqrt(base), clusters, 25.0, min_z=10.0)
    assert list(strong) == [clusters[0]]


def _two_band_spectrum(seed: int = 7):
    rng = np.random.default_rng(seed)
    x = np.linspace(130.0, 1000.0, 1200)
    flat = 2000.0 + 0.5 * (x - 130.0)
    template = Template.from_spectra(x, [rng.poisson(flat).astype(float) for _ in range(4)], 25.0)
    lines = sum(h / (1.0 + ((x - c) / 6.0) ** 2) for c, h in ((240.0, 150.0), (600.0, 60.0)))
    y = rng.poisson(flat + lines).astype(float)
    return x, y, np.sqrt(flat), template


def test_fits_sharing_one_weighted_spectrum_match_the_whole_design_solved_at_once():
    x, y, noise, template = _two_band_spectrum()
    clusters = [_cluster(240.0), _cluster(600.0)]
    widths = {"crystalline": (8.0, 24.0)}
    spectrum = WeightedSpectrum(x, y, noise)
    shared = [
        fit_growth(x, y, noise, template, clusters, 25.0, w, spectrum=spectrum)
        for w in (widths, {"crystalline": (14.0,)})
    ]
    assert len(spectrum._fixed) == 1  # the template's rows were weighted once for both fits
    for fit, w in zip(shared, (widths, {"crystalline": (14.0,)}), strict=True):
        bands, owners = _band_columns(x, clusters, 25.0, w)
        design = np.vstack(
            [template.shape, template.d1, template.d2, bands, background_rows(x.tobytes())]
        )
        coef, covariance, _ = weighted_least_squares(design, y, 1.0 / noise)
        areas = [coef[3 : 3 + bands.shape[0]][owners == k].sum() for k in range(2)]
        assert np.allclose(fit.areas, areas, rtol=1e-6)
        assert np.isclose(fit.template_amplitude, coef[0], rtol=1e-6)
    other = Template.from_spectra(x, [y], 25.0)
    fit_growth(x, y, noise, other, clusters, 25.0, spectrum=spectrum)
    assert len(spectrum._fixed) == 2


def test_a_nested_fit_equals_the_fit_of_its_clusters_alone():
    x, y, noise, template = _two_band_spectrum()
    broad = BandCluster(450.0, 25.0, "decomposed", ("pyrochlore",), diagnostic=True)
    clusters = [_cluster(240.0), _cluster(600.0), broad]
    sums = {"first": [True, False]}
    spectrum = WeightedSpectrum(x, y, noise)
    whole, nested = fit_growth_nested(spectrum, template, clusters, 2, 25.0, leading_sums=sums)
    alone = [
        fit_growth(x, y, noise, template, clusters, 25.0),
        fit_growth(x, y, noise, template, clusters[:2], 25.0, sums=sums),
    ]
    for fit, direct in zip((whole, nested), alone, strict=True):
        assert np.allclose(fit.areas, direct.areas, rtol=1e-9)
        for name, value in direct.signal.items():
            assert np.isclose(fit.signal[name], value, rtol=1e-9)
            error = fit.signal_error[name]
            assert np.isclose(error, direct.signal_error[name], rtol=1e-9, equal_nan=True)
        assert np.isclose(fit.reduced_chi2, direct.reduced_chi2, rtol=1e-9)
        assert np.allclose(fit.background, direct.background, rtol=1e-9)
    # the broad band is in the whole fit only, and it moved the shared clusters' areas
    assert nested.areas.size == 2 and not np.allclose(whole.areas[:2], nested.areas)
    with pytest.raises(ValueError, match="leading 4 is outside 0 to 3"):
        fit_growth_nested(spectrum, template, clusters, 4, 25.0)


def test_a_widths_table_of_lists_fits_as_one_of_tuples():
    x, y, noise, template = _two_band_spectrum()
    clusters = (_cluster(240.0), _cluster(600.0))
    listed = fit_growth(x, y, noise, template, clusters, 25.0, {"crystalline": [8.0, 24.0]})
    tupled = fit_growth(x, y, noise, template, clusters, 25.0, {"crystalline": (8.0, 24.0)})
    assert np.array_equal(listed.areas, tupled.areas)


def test_the_local_misfit_covers_each_pixel_of_overlapping_reaches_once():
    x = np.linspace(0.0, 99.0, 100)
    residual = np.arange(100.0) % 7 - 3.0
    squares = np.concatenate([[0.0], np.cumsum(residual**2)])
    reaches = [(50.0, 10.0), (20.0, 5.0), (55.0, 10.0), (300.0, 5.0)]
    mask = np.zeros(x.size, dtype=bool)
    for centre, reach in reaches:
        mask |= np.abs(x - centre) <= reach
    centres, reach = np.array(reaches).T
    assert np.isclose(_mean_square_near(x, squares, centres, reach), np.mean(residual[mask] ** 2))
    assert _mean_square_near(x, squares, np.array([300.0]), np.array([5.0])) is None


def test_a_line_row_is_the_whole_pseudo_voigt_to_the_bit():
    # The Gaussian half is computed only within 10 half-widths of the centre: the row must be
    # the same as computed over the whole axis.
    x = np.linspace(100.0, 1500.0, 1600)
    for centre, width, derivative in [
        (651.3, 14.0, False),
        (651.3, 14.0, True),
        (101.0, 24.0, False),
        (900.0, 45.0, True),
    ]:
        half, ln2 = 0.5 * width, np.log(2.0)
        u = (x - centre) / half
        u2 = u * u
        lorentz = 1.0 / (1.0 + u2)
        gauss = np.exp(-ln2 * u2)
        area = half * (0.5 * np.pi + 0.5 * np.sqrt(np.pi / ln2))
        if derivative:
            whole = u * (lorentz * lorentz + ln2 * gauss) / (half * area)
        else:
            whole = (0.5 * lorentz + 0.5 * gauss) / area
        assert np.array_equal(_line_row(x.tobytes(), centre, width, derivative), whole)
