"""The batched scan of band positions is the onset fit's z at each set of positions."""

import numpy as np
import pytest

from insitu.analysis.band_growth import (
    SCAN_GRID_CM1,
    BandCluster,
    Template,
    WeightedSpectrum,
    _band_columns,
    crystalline_z_scan,
    fit_growth,
)

WIDTHS = {"crystalline": (14.0,), "decomposed": (45.0,)}
RT_READ = 0.02  # cm-1 per C from 25 C


def _clusters(per_c=None):
    clusters = [
        BandCluster(240.0, 750.0, "crystalline", ("cubic",), diagnostic=False),
        BandCluster(389.0, 650.0, "crystalline", ("tetragonal",), diagnostic=True),
        BandCluster(468.0, 750.0, "crystalline", ("cubic",), diagnostic=True),
        BandCluster(275.0, 850.0, "decomposed", ("pyrochlore",), diagnostic=True),
    ]
    if per_c is None:
        return tuple(clusters)
    return tuple(
        c if c.phase_class == "decomposed" else c.softened_from(25.0, per_c) for c in clusters
    )


def _spectrum(x, rng, centres, height):
    flat = 3000.0 + 1000.0 * np.exp(-(((x - 500.0) / 400.0) ** 2))
    template = Template.from_spectra(x, [rng.poisson(flat).astype(float) for _ in range(4)], 700.0)
    bands = sum(height / (1.0 + ((x - c) / 6.0) ** 2) for c in centres)
    y = rng.poisson(flat + bands).astype(float)
    return WeightedSpectrum(x, y, np.sqrt(np.maximum(y, 1.0))), template


@pytest.mark.parametrize("start", [150.0, 220.0])
def test_the_scan_is_the_fit_at_each_set_of_positions(start):
    # From 220 cm-1 the 240 cm-1 cluster is on the axis at one reading and not at the other:
    # the sets' columns differ in number and the scan falls back to one fit per set.
    rng = np.random.default_rng(1)
    x = np.linspace(start, 900.0, 1500)
    spectrum, template = _spectrum(x, rng, (375.0, 454.0), 300.0)
    sets = [_clusters(), _clusters(0.0125), _clusters(0.025)]
    counts = {_band_columns(x, c, 700.0, WIDTHS, derivatives=False)[0].shape[0] for c in sets}
    assert len(counts) == (1 if start < 200.0 else 2)
    scanned = crystalline_z_scan(spectrum, template, sets, 700.0, WIDTHS)
    for clusters, z in zip(sets, scanned, strict=True):
        fit = fit_growth(
            *spectrum.data,
            template,
            clusters,
            700.0,
            WIDTHS,
            spectrum=spectrum,
            grid=SCAN_GRID_CM1,
            derivatives=False,
        )
        assert z == pytest.approx(fit.z("crystalline"), rel=1e-9, abs=1e-9)


def test_bands_read_at_room_temperature_stand_out_at_their_reading_only():
    # Bands where a room-temperature reading softening 0.02 cm-1 per C puts them at 700 C:
    # 13.5 cm-1 below the literature's, a line width from the paper's reading's columns.
    rng = np.random.default_rng(2)
    x = np.linspace(150.0, 900.0, 1500)
    shifted = [p - RT_READ * (700.0 - 25.0) for p in (389.0, 468.0)]
    spectrum, template = _spectrum(x, rng, shifted, 300.0)
    literature, room = crystalline_z_scan(
        spectrum, template, [_clusters(), _clusters(RT_READ)], 700.0, WIDTHS
    )
    assert room > 20.0 and room > 3.0 * abs(literature)
