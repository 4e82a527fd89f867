"""read_stream: a crash-cut stream (columns of unequal length) reads as its complete events."""

from __future__ import annotations

import types

import numpy as np
import pytest
import xarray as xr

from insitu.analysis.stored_stream import complete_events, in_event_order, read_stream


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


class _TableStream(_Stream):
    """A stream whose scalar columns live in one table (``base["internal"]``), as
    bluesky-tiled-plugins stores them; arrays are stored apart, by event index."""

    def __init__(self, table_columns, **columns):
        super().__init__(**columns)
        self.base = {"internal": types.SimpleNamespace(columns=list(table_columns))}


def test_table_rows_read_back_out_of_order_are_put_in_event_order():
    # A PostgreSQL-backed catalog reads a table without ORDER BY: the rows of a run's
    # raman_analysis came back as seq 4, 1, 2, 3, 5 (measured); its arrays are in event order.
    order = [3, 0, 1, 2, 4]
    temperatures = np.array([30.0, 31.0, 32.0, 33.0, 34.0])
    spectra = np.arange(5.0)[:, None] * np.ones((5, 3))
    stream = _TableStream(
        ["seq_num", "temperature"],
        seq_num=_Column(np.arange(1, 6)[order]),
        temperature=_Column(temperatures[order]),
        spectrum=_Column(spectra),
    )
    columns = read_stream(stream, ["temperature", "spectrum"])
    assert columns["temperature"].tolist() == temperatures.tolist()
    assert np.array_equal(columns["spectrum"], spectra)  # not reordered: stored by index
    assert set(columns) == {"temperature", "spectrum"}  # seq_num read, not returned
    assert read_stream(stream)["seq_num"].tolist() == [1, 2, 3, 4, 5]


def test_a_crash_cut_stream_out_of_order_keeps_its_first_events():
    # Cut (the array one event short) and the table read out of order: the complete events
    # are the first by seq_num, in order.
    stream = _TableStream(
        ["seq_num", "temperature"],
        seq_num=_Column([3, 1, 2]),
        temperature=_Column([32.0, 30.0, 31.0]),
        spectrum=_Column(np.ones((2, 4))),
    )
    columns = read_stream(stream, ["temperature", "spectrum"])
    assert columns["temperature"].tolist() == [30.0, 31.0]
    assert columns["spectrum"].shape == (2, 4)


def test_a_whole_stream_read_is_put_in_event_order_and_a_stream_without_table_is_left():
    stream = _TableStream(
        ["seq_num", "temperature"],
        seq_num=_Column([2, 1, 3]),
        temperature=_Column([31.0, 30.0, 32.0]),
        spectrum=_Column(np.arange(3.0)),
    )
    read = {"temperature": np.array([31.0, 30.0, 32.0]), "spectrum": np.arange(3.0)}
    ordered = in_event_order(stream, read)
    assert ordered["temperature"].tolist() == [30.0, 31.0, 32.0]
    assert ordered["spectrum"].tolist() == [0.0, 1.0, 2.0]
    assert in_event_order(_Stream(), read) is read


class _DescribedStream(_Stream):
    """A stream with its descriptor's ``data_keys`` in its metadata, as tiled keeps them."""

    def __init__(self, data_keys, **columns):
        super().__init__(**columns)
        self.metadata = {"data_keys": {key: {"dtype": "number"} for key in data_keys}}


def test_a_stream_cut_in_the_middle_of_its_first_event_reads_as_empty_columns():
    """A SIGKILL while the first event of an impedance run was written left its array columns
    stored and its table (the scalar columns) not yet: the campaign summary failed with
    KeyError naming the missing scalars (the alone tier of 2026-12-07, 6.5 s into the run)."""
    arrays = {key: _Column(np.ones((1, 57))) for key in ("eis_frequency", "eis_z_real")}
    declared = ["eis_frequency", "eis_z_real", "stage_temperature", "cycle"]
    stream = _DescribedStream(declared, **arrays)
    assert complete_events(stream) == 0
    columns = read_stream(stream, ["stage_temperature", "cycle", "eis_z_real"])
    assert {key: len(column) for key, column in columns.items()} == {
        "stage_temperature": 0,
        "cycle": 0,
        "eis_z_real": 0,
    }
    # A column the descriptor does not declare is still a caller's mistake, named.
    with pytest.raises(KeyError, match=r"no column\(s\) \['nope'\].*declares"):
        read_stream(stream, ["nope"])


def test_a_whole_stream_with_every_declared_column_is_read_as_before():
    stream = _DescribedStream(
        ["temperature"], seq_num=_Column([1, 2]), temperature=_Column([30.0, 31.0])
    )
    assert complete_events(stream) == 2
    assert read_stream(stream, ["temperature"])["temperature"].tolist() == [30.0, 31.0]
