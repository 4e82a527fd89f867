"""``insitu export`` of a run cut off by a crash: its complete events, not an error."""

from __future__ import annotations

import csv

import numpy as np

from insitu.export import export_run, run_summary
from tests.unit.test_stored_stream import _Column


class _CutStream(dict):
    """A stream whose spectrum column holds one event more than its table (a SIGKILL between
    the two writes): a whole read fails as xarray does, column reads work."""

    def __init__(self):
        super().__init__(
            time=_Column([1.0, 2.0]),
            seq_num=_Column([1, 2]),
            temperature=_Column([25.0, 26.0]),
            ts_temperature=_Column([1.0, 2.0]),
            spectrum=_Column(np.ones((3, 4))),
        )
        self.metadata = {"data_keys": {"temperature": {}, "spectrum": {}}}

    def read(self, variables=None):
        if variables is None:
            raise ValueError("conflicting sizes for dimension 'time'")
        return {key: self[key].values for key in variables}


class _Run:
    def __init__(self):
        self.start = {"uid": "cut-run", "time": 0.0, "plan_name": "heat_ramp"}
        self.metadata = {"start": self.start}  # no stop document: the process died
        self._streams = {"primary": _CutStream()}

    def __iter__(self):
        return iter(self._streams)

    def __getitem__(self, name):
        return self._streams[name]


def test_a_crash_cut_run_exports_and_counts_its_complete_events(tmp_path):
    run = _Run()
    summary = run_summary(run)
    assert summary["events"] == 2 and summary["exit_status"] == "no stop document"
    files = {path.name: path for path in export_run(run, tmp_path, fmt="csv")}
    assert set(files) == {"cut-run_primary.csv", "cut-run_primary_spectrum.csv"}
    with files["cut-run_primary.csv"].open() as table:
        rows = list(csv.DictReader(table))
    assert [(row["time"], row["temperature"]) for row in rows] == [("1.0", "25.0"), ("2.0", "26.0")]
    spectrum = np.loadtxt(files["cut-run_primary_spectrum.csv"], delimiter=",", ndmin=2)
    assert spectrum.shape == (2, 4)  # the third, torn event is not exported
