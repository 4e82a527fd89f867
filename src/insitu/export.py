"""Export a stored run, stream by stream, to CSV or HDF5 files for people and other programs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from insitu.analysis.stored_stream import complete_events, in_event_order, read_stream
from insitu.beamline.private_dir import make_private_dir

__all__ = ["export_run", "run_summary", "safe_file_name"]

#: What a file name written by ``insitu export`` may hold: ASCII letters, digits, ``.``, ``_``,
#: ``-`` (never first a ``.``). Anything else in a stored value becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def run_summary(run) -> dict:
    """One row describing a run: uid, plan, start time, exit status, number of events.

    A run without a stop document (cut off by a crash) reports ``exit_status`` "no stop document"
    and counts the events actually stored.
    """
    start = run.start
    stop = run.metadata.get("stop")  # absent, not None, for a run cut off by a crash
    if stop is not None and stop.get("num_events") is not None:
        events = sum(stop["num_events"].values())
    else:
        events = sum(_stream_length(run[name]) for name in run)
    return {
        "uid": start["uid"],
        "scan_id": start.get("scan_id"),
        "plan": start.get("plan_name", "?"),
        "time": start.get("time"),
        "exit_status": stop.get("exit_status", "?") if stop is not None else "no stop document",
        "events": events,
    }


def _stream_length(stream) -> int:
    try:
        return int(stream.read().sizes.get("time", 0))
    except ValueError:  # conflicting sizes: a crash-cut stream, whose complete events count
        return complete_events(stream)
    except Exception:  # a stream with no events yet has no table to read
        return 0


def _arrays(stream) -> dict[str, np.ndarray]:
    try:
        dataset = stream.read()
    except ValueError:  # conflicting sizes: a crash-cut stream; its complete events, in order
        data_keys = stream.metadata.get("data_keys", {})
        return read_stream(stream, ["time", *(key for key in stream if key in data_keys)])
    columns = {"time": np.asarray(dataset["time"].values)}
    for key in dataset.data_vars:
        columns[key] = np.asarray(dataset[key].values)
    # A table in a PostgreSQL-backed catalog reads back in the database's row order.
    return in_event_order(stream, columns)


def safe_file_name(value: object) -> str:
    """``value`` (a uid, stream name or data key as stored) as a safe part of a file name.

    Parameters
    ----------
    value : object
        The stored value; converted with ``str``.

    Returns
    -------
    str
        ``value`` with every character other than ASCII letters, digits, ``.``, ``_`` and ``-``
        replaced by ``_``, and leading dots replaced by ``_`` too, so it holds no path separator,
        is never ``.``/``..`` and never names a hidden file. Empty if ``value`` is empty.
    """
    text = _UNSAFE.sub("_", str(value))
    stripped = text.lstrip(".")
    return "_" * (len(text) - len(stripped)) + stripped


def _file_in(directory: Path, name: str, *, uid: object, value: object, what: str) -> Path:
    """``directory / name``, refused unless it provably resolves inside ``directory``."""
    path = directory / name
    resolved = path.resolve()  # follows a symlink planted in the output directory
    if not resolved.is_relative_to(directory):
        raise ValueError(
            f"export of run {uid!r}: {what} {value!r} gives the file {name!r}, which resolves to "
            f"{str(resolved)!r}, outside the output directory {str(directory)!r}: refusing to "
            "write it (remove the link or file there, or choose another --output)"
        )
    return path


def export_run(run, directory: str | Path, fmt: str = "csv") -> list[Path]:
    """Write every stream of ``run`` into ``directory``; return the files written.

    Parameters
    ----------
    run : tiled client of one bluesky run
    directory : path
        Created if missing (owner-only, mode 0700, for the directories created here).
    fmt : {"csv", "hdf5"}
        ``csv``: one ``<uid8>_<stream>.csv`` of the scalar columns per stream, and one
        ``<uid8>_<stream>_<key>.csv`` per array column (one row per event). ``hdf5``: one
        ``<uid>.h5`` with a group per stream, a dataset per column and the start/stop documents
        as JSON attributes.

    Every file is written directly in ``directory``: the uid, stream names and data keys, as
    stored, are made safe with :func:`safe_file_name`.

    Raises
    ------
    ValueError
        On an unknown format; if the run's uid has no usable character; if two streams or
        columns would share a file; if a file would resolve outside ``directory`` (a symlink
        in it), naming the run, the value and the directory. Nothing is written then.
    """
    if fmt not in ("csv", "hdf5"):
        raise ValueError(f"export format {fmt!r} is not supported: use 'csv' or 'hdf5'")
    uid = run.start["uid"]
    if not any(c.isalnum() for c in safe_file_name(uid)):
        raise ValueError(
            f"export of run {uid!r}: its uid has no letter or digit to name files after; "
            "file names need ASCII letters, digits, '.', '_' or '-'"
        )
    streams = {name: _arrays(run[name]) for name in run}
    directory = make_private_dir(directory).resolve()

    def plan(name: str, value: object, what: str) -> Path:
        path = _file_in(directory, name, uid=uid, value=value, what=what)
        if path in planned:
            raise ValueError(
                f"export of run {uid!r}: {what} {value!r} and {planned[path]!r} would be written "
                f"to the same file {name!r} in {str(directory)!r} (names are reduced to ASCII "
                "letters, digits, '.', '_' and '-')"
            )
        planned[path] = value
        return path

    planned: dict[Path, object] = {}
    if fmt == "hdf5":
        import h5py

        path = plan(f"{safe_file_name(uid)}.h5", uid, "uid")
        with h5py.File(path, "w") as h5:
            h5.attrs["start"] = json.dumps(run.start, default=str)
            h5.attrs["stop"] = json.dumps(run.metadata.get("stop"), default=str)
            for stream_name, columns in streams.items():
                group = h5.create_group(stream_name)
                for key, values in columns.items():
                    if values.dtype.kind in "UO":  # text (e.g. a stage status) as HDF5 strings
                        values = values.astype(str).astype(h5py.string_dtype())
                    group.create_dataset(key, data=values)
        return [path]

    import pandas as pd

    prefix = safe_file_name(str(uid)[:8])
    # Every name is checked before the first file is written: a refusal leaves nothing behind.
    files = []
    for stream_name, columns in streams.items():
        stream = safe_file_name(stream_name)
        path = plan(f"{prefix}_{stream}.csv", stream_name, "stream name")
        files.append((path, {k: v for k, v in columns.items() if v.ndim == 1}))
        for key, values in columns.items():
            if values.ndim == 2:
                array_path = plan(f"{prefix}_{stream}_{safe_file_name(key)}.csv", key, "data key")
                files.append((array_path, values))
    for path, data in files:
        if isinstance(data, dict):
            pd.DataFrame(data).to_csv(path, index=False)
        else:
            np.savetxt(path, data, delimiter=",")
    return [path for path, _ in files]
