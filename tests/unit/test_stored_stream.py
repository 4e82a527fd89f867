"""read_stream: a crash-cut stream (columns of unequal length) reads as its complete events."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from insitu.analysis.stored_stream import complete_events, read_stream


class _Column:
    def __init__(self, values):
        self.values = np.asarray(values)
        self.shape = self.values.shape

    def read(self):
        return self.values


class _Stream(dict):
    """What read_stream uses of a tiled stream container: keys, [key].read/.shape,
    read(variables=...), which records what it was asked for (one request each)."""

    def read(self, variables=None):
        self.requests = [*getattr(self, "requests", []), variables]
        return xr.Dataset(
            {
                key: (("time", "pixel")[: column.values.ndim], column.values)
                for key, column in self.items()
                if variables is None or key in variables
            }
        )


def test_a_crash_cut_stream_reads_as_the_events_every_column_holds():
    stream = _Stream(seq_num=_Column([1, 2, 3]), spectrum=_Column(np.ones((5, 4))))
    with pytest.raises(ValueError, match="conflicting sizes"):
        stream.read(variables=None)
    assert complete_events(stream) == 3
    columns = read_stream(stream)
    assert columns["seq_num"].tolist() == [1, 2, 3]
    assert columns["spectrum"].shape == (3, 4)


def test_an_uncut_stream_is_read_whole_and_an_unknown_column_is_named():
    stream = _Stream(seq_num=_Column([1, 2]), temperature=_Column([30.0, 31.0]))
    assert read_stream(stream, ["temperature"])["temperature"].tolist() == [30.0, 31.0]
    assert stream.requests == [["temperature"]]  # one request, for that column only
    with pytest.raises(KeyError, match=r"no column\(s\) \['nope'\].*'seq_num', 'temperature'"):
        read_stream(stream, ["nope"])


def test_a_stream_cut_off_before_its_first_event_reads_as_empty_columns():
    """A process killed between a stream's descriptor and its first event leaves a stream with
    no columns at all; the campaign summary of such a run failed with KeyError (CI of
    2026-12-05, a SIGKILL 6.3 s into an impedance run)."""
    columns = read_stream(_Stream(), ["stage_temperature", "cycle"])
    assert {key: len(column) for key, column in columns.items()} == {
        "stage_temperature": 0,
        "cycle": 0,
    }
    assert complete_events(_Stream()) == 0
