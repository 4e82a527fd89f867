"""Read a stored event stream, also one cut off by a crash, as columns of complete events.

A process killed mid-write can leave one column of a stream (an array written to its own file)
some events longer than another. Reading such a stream as one table fails in xarray
("conflicting sizes for dimension 'time'"); the events every column holds are the ones that
were stored, so that is what this module returns. Every reader of a possibly crash-cut run
(resume, recovery, the campaign summary, tests) goes through here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["complete_events", "read_stream"]


def complete_events(stream) -> int:
    """How many events of a stored stream are complete: the shortest of its columns.

    Parameters
    ----------
    stream : tiled container of one event stream (``run["primary"]``)

    Returns
    -------
    int
        The number of events every column holds (0 for a stream with no columns).
    """
    lengths = [stream[key].shape[0] for key in stream]
    return min(lengths) if lengths else 0


def read_stream(stream, keys=None) -> dict[str, np.ndarray]:
    """Every column (or those in ``keys``) of a stored stream, cut to the complete events.

    Parameters
    ----------
    stream : tiled container of one event stream (``run["primary"]``)
    keys : iterable of str, optional
        The columns to read; all of them by default. A key the stream does not have raises
        KeyError naming the stream's columns, except in a stream with no columns at all (its
        descriptor was written, then the process died before the first event was stored):
        every wanted key then reads as an empty column.

    Returns
    -------
    dict of str to numpy.ndarray
        One array per column, all of the same length (their first axis is the event).
    """
    available = list(stream)
    wanted = available if keys is None else list(keys)
    if not available:  # cut off before its first event: zero complete events
        return {key: np.empty(0) for key in wanted}
    unknown = [key for key in wanted if key not in available]
    if unknown:
        raise KeyError(f"stream has no column(s) {unknown}; it has {sorted(available)}")
    try:
        # One request for exactly the wanted columns (the internal ones, seq_num and ts_*, too)
        # when they agree (the usual, uncut case).
        table = stream.read(variables=wanted)
    except ValueError:  # conflicting sizes: a crash-cut stream, read column by column
        table = None
    if table is not None:
        columns = {key: np.asarray(table[key]) for key in wanted}
        if len({len(column) for column in columns.values()}) <= 1:
            return columns
    count = complete_events(stream)
    return {key: np.asarray(stream[key].read())[:count] for key in wanted}
