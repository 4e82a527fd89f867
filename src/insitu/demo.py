"""``insitu demo``: the simulated beamline runs a short measurement into the embedded catalog."""

from __future__ import annotations

from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp

from insitu.beamline import load
from insitu.export import run_summary

__all__ = ["run_demo"]


def _demo_plan(beamline):
    stage = beamline.devices.get("stage")
    detectors = [d for name, d in beamline.devices.items() if name != "stage"]
    if stage is None:
        yield from bp.count(detectors, num=3, md={"purpose": "insitu demo"})
        return
    yield from bps.mv(stage, 40.0)
    yield from bp.count([stage, *detectors], num=3, md={"purpose": "insitu demo"})


def run_demo(config=None, catalog: str | None = None) -> list[str]:
    """Build the simulated beamline, run the demo plan, print where the data went.

    Returns
    -------
    list of str
        The uids of the runs written.
    """
    with load(config, catalog=catalog) as beamline:
        print(f"beamline {beamline.config.name!r}: devices {sorted(beamline.devices) or 'none'}")
        uids = beamline.RE(_demo_plan(beamline))
        beamline.writer.wait()
        location = beamline.config.catalog.location
        where = location if "://" in location else str(Path(location).resolve())
        print(f"\n{len(uids)} run(s) written to the catalog at {where}")
        for uid in uids:
            row = run_summary(beamline.catalog[uid])
            print(f"  {row['uid']}  {row['plan']}  {row['exit_status']}  {row['events']} events")
        print("list them with: insitu runs")
    return list(uids)
