"""Read a stored event stream, also one cut off by a crash, as columns of complete events.

A process killed mid-write can leave one column of a stream (an array written to its own file)
some events longer than another. Reading such a stream as one table fails in xarray
("conflicting sizes for dimension 'time'"); the events every column holds are the ones that
were stored, so that is what this module returns. Every reader of a possibly crash-cut run
(resume, recovery, the campaign summary, tests) goes through here.

It also returns the events in their order. The scalar columns of a stream live in one table
(bluesky-tiled-plugins' ``internal`` table, with ``seq_num``), and a table in the SQL storage
of a PostgreSQL-backed catalog is read without an ``ORDER BY``: rows come back in the
database's physical order, which after concurrent appends is not the order they were written
in (measured: a run's ``raman_analysis`` rows read as seq 4, 1, 2, 3, 5, ..., 22, 39, 23, ...,
and a resumed campaign took another margin from them than the live one had). The table's
columns are put back in ``seq_num`` order; array columns, stored by event index, already are.
(insitu's writers now create the table with tiled's ``order_by_args`` on ``seq_num``, which
bluesky-tiled-plugins does not ask for, so that any reader gets it in order; catalogs written
before, or by another writer, need the sort here.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["complete_events", "in_event_order", "read_stream", "table_columns"]

SEQ_NUM = "seq_num"


def table_columns(stream) -> set[str]:
    """The stream's columns that live in its table and share its row order (bluesky-tiled-plugins'
    ``internal`` table); empty for a stream without one.

    Parameters
    ----------
    stream : tiled container of one event stream

    Returns
    -------
    set of str
    """
    try:
        return set(stream.base["internal"].columns)
    except (AttributeError, KeyError, TypeError):
        return set()


def _in_event_order(columns: dict, seq_num: np.ndarray, table: set[str]) -> dict:
    """``columns`` with the table's ones sorted by ``seq_num`` (a stable sort; unchanged when
    the rows are in order already)."""
    seq_num = np.asarray(seq_num)
    if seq_num.size < 2 or bool(np.all(np.diff(seq_num) > 0)):
        return columns
    order = np.argsort(seq_num, kind="stable")
    return {
        key: np.asarray(column)[order] if key in table and len(column) == order.size else column
        for key, column in columns.items()
    }


def in_event_order(stream, columns: dict) -> dict:
    """``columns`` read from ``stream`` (all of one length, as a whole-stream read gives them)
    with those of its table put in ``seq_num`` order; unchanged for a stream without a table.

    Parameters
    ----------
    stream : tiled container of one event stream
    columns : dict of str to array_like

    Returns
    -------
    dict of str to numpy.ndarray or the input's arrays
    """
    table = table_columns(stream)
    if SEQ_NUM not in table or not any(key in table for key in columns):
        return columns
    seq_num = np.asarray(stream.read(variables=[SEQ_NUM])[SEQ_NUM])
    return _in_event_order(columns, seq_num, table)


def _declared_columns(stream) -> set[str]:
    """The columns the stream's descriptor declares (its ``data_keys``); empty when the stream
    has no such metadata. (Their ``ts_`` twins, ``seq_num`` and ``time`` are the writer's and
    not counted on.)"""
    try:
        return set(stream.metadata["data_keys"])
    except (AttributeError, KeyError, TypeError):
        return set()


def _cut_before_first_event(stream, available: list[str]) -> bool:
    """True for a stream with no complete event: no columns at all, or a column its descriptor
    declares not stored yet (a process killed in the middle of the first event's write: the
    array columns stored, the table with the scalar ones not yet)."""
    if not available:
        return True
    return any(key not in available for key in _declared_columns(stream))


def complete_events(stream) -> int:
    """How many events of a stored stream are complete: the shortest of its columns.

    Parameters
    ----------
    stream : tiled container of one event stream (``run["primary"]``)

    Returns
    -------
    int
        The number of events every column holds (0 for a stream with no columns, or with a
        declared column not stored yet).
    """
    available = list(stream)
    if _cut_before_first_event(stream, available):
        return 0
    return min(stream[key].shape[0] for key in available)


def read_stream(stream, keys=None) -> dict[str, np.ndarray]:
    """Every column (or those in ``keys``) of a stored stream, cut to the complete events.

    Parameters
    ----------
    stream : tiled container of one event stream (``run["primary"]``)
    keys : iterable of str, optional
        The columns to read; all of them by default. A key the stream does not have raises
        KeyError naming the stream's columns, except in a stream cut off before its first
        event was stored (no columns at all, or one its descriptor declares missing: the
        process died between the descriptor and the first event, or in the middle of that
        event's write): every wanted key it has or declares then reads as an empty column.

    Returns
    -------
    dict of str to numpy.ndarray
        One array per column, all of the same length (their first axis is the event).
    """
    available = list(stream)
    wanted = available if keys is None else list(keys)
    if not available:  # cut off before its first event: zero complete events
        return {key: np.empty(0) for key in wanted}
    if _cut_before_first_event(stream, available):
        declared = _declared_columns(stream)
        unknown = [key for key in wanted if key not in available and key not in declared]
        if not unknown:
            return {key: np.empty(0) for key in wanted}
        raise KeyError(f"stream has no column(s) {unknown}; it declares {sorted(declared)}")
    unknown = [key for key in wanted if key not in available]
    if unknown:
        raise KeyError(f"stream has no column(s) {unknown}; it has {sorted(available)}")
    in_table = table_columns(stream)
    ordered = SEQ_NUM in in_table and any(key in in_table for key in wanted)
    request = wanted + [SEQ_NUM] if ordered and SEQ_NUM not in wanted else wanted
    try:
        # One request for exactly the wanted columns (the internal ones, seq_num and ts_*, too)
        # when they agree (the usual, uncut case).
        table = stream.read(variables=request)
    except ValueError:  # conflicting sizes: a crash-cut stream, read column by column
        table = None
    if table is not None:
        columns = {key: np.asarray(table[key]) for key in request}
        if len({len(column) for column in columns.values()}) <= 1:
            if ordered:
                columns = _in_event_order(columns, columns[SEQ_NUM], in_table)
            return {key: columns[key] for key in wanted}
    count = complete_events(stream)
    columns = {key: np.asarray(stream[key].read()) for key in request}
    if ordered:
        columns = _in_event_order(columns, columns[SEQ_NUM], in_table)
    return {key: columns[key][:count] for key in wanted}
