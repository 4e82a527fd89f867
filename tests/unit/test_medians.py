"""The fast median equals numpy's, value for value (odd and even counts, blocks, NaN)."""

import numpy as np
import pytest

from insitu.analysis.medians import median


@pytest.mark.parametrize("size", [1, 2, 3, 10, 1597, 1598])
def test_the_median_of_a_spectrum_is_numpys(size):
    rng = np.random.default_rng(size)
    for values in (rng.normal(size=size), rng.poisson(3.0, size=size).astype(float)):
        assert median(values) == np.median(values)
        assert isinstance(median(values), float)


def test_block_medians_and_nan_are_numpys():
    rng = np.random.default_rng(0)
    blocks = rng.normal(size=(12, 133))
    assert np.array_equal(median(blocks, axis=1), np.median(blocks, axis=1))
    assert np.array_equal(median(blocks.T, axis=0), np.median(blocks.T, axis=0))
    with_nan = blocks[0].copy()
    with_nan[5] = np.nan
    assert np.isnan(median(with_nan))
    with pytest.raises(ValueError, match="empty"):
        median(np.zeros(0))
