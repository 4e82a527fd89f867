"""Export a stored run, stream by stream, to CSV or HDF5 files for people and other programs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["export_run", "run_summary"]


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
    except Exception:  # a stream with no events yet has no table to read
        return 0


def _arrays(stream) -> dict[str, np.ndarray]:
    dataset = stream.read()
    columns = {"time": np.asarray(dataset["time"].values)}
    for key in dataset.data_vars:
        columns[key] = np.asarray(dataset[key].values)
    return columns


def export_run(run, directory: str | Path, fmt: str = "csv") -> list[Path]:
    """Write every stream of ``run`` into ``directory``; return the files written.

    Parameters
    ----------
    run : tiled client of one bluesky run
    directory : path
        Created if missing.
    fmt : {"csv", "hdf5"}
        ``csv``: one ``<stream>.csv`` of the scalar columns per stream, and one
        ``<stream>_<key>.csv`` per array column (one row per event). ``hdf5``: one file with a
        group per stream, a dataset per column and the start/stop documents as JSON attributes.
    """
    if fmt not in ("csv", "hdf5"):
        raise ValueError(f"export format {fmt!r} is not supported: use 'csv' or 'hdf5'")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    uid = run.start["uid"]
    streams = {name: _arrays(run[name]) for name in run}
    if fmt == "hdf5":
        import h5py

        path = directory / f"{uid}.h5"
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

    written = []
    for stream_name, columns in streams.items():
        scalars = {k: v for k, v in columns.items() if v.ndim == 1}
        path = directory / f"{uid[:8]}_{stream_name}.csv"
        pd.DataFrame(scalars).to_csv(path, index=False)
        written.append(path)
        for key, values in columns.items():
            if values.ndim == 2:
                array_path = directory / f"{uid[:8]}_{stream_name}_{key}.csv"
                np.savetxt(array_path, values, delimiter=",")
                written.append(array_path)
    return written
