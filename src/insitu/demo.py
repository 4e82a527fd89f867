"""``insitu demo``: the simulated beamline runs an in-situ ramp and a campaign, then a report."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tqdm import tqdm

from insitu import clock
from insitu.analysis.campaign import summarize
from insitu.analysis.report import write_report
from insitu.beamline import load
from insitu.plans.campaign import anneal_and_measure
from insitu.plans.heat_ramp import heat_ramp

__all__ = ["run_demo", "DEMO_SPEEDUP", "DEMO_CAMPAIGN_SPEEDUP"]

#: Experiment seconds per wall second for the demo's in-situ ramp. On held time the stage is
#: polled at most every 10 wall ms, and a spectrum waits for a poll: 20 experiment s at 2000x,
#: so a spectrum comes every 5 C of a 5 C/min ramp as asked (at 10000x, every 8.3 C).
DEMO_SPEEDUP = 2000.0
#: ... and for the anneal-and-measure campaign (~50 h of experiment, most of it dwells,
#: cool-downs and impedance at stable temperatures): 4000x keeps the anneals' spectra every
#: 5 C (median; 7.5 C at most) and the same table (measured: sigma(30 C) within 1 %, Ea within
#: 0.001 eV of a whole demo at 2000x), in 84 s of wall time instead of about 120 s.
DEMO_CAMPAIGN_SPEEDUP = 4000.0


class _RunProgress:
    """A tqdm bar that advances at each finished run (a RunEngine subscriber)."""

    def __init__(self, total: int, description: str):
        self.bar = tqdm(total=total, desc=description, unit="run")

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self.bar.set_postfix_str(f"{doc.get('plan_name')} {doc.get('sample_name', '')}")
        elif name == "stop":
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_demo(
    config=None,
    catalog: str | None = None,
    *,
    speedup: float = DEMO_SPEEDUP,
    campaign_speedup: float = DEMO_CAMPAIGN_SPEEDUP,
    report_path: str | Path = "insitu-report/index.html",
) -> dict:
    """Run the demo on the simulated beamline and write the report.

    1. An in-situ Raman heat ramp, room temperature to 850 C at 5 C/min, a spectrum every 5 C,
       with the transition flags raised live.
    2. The paper's anneal-and-measure campaign, whole: four post-anneal temperatures (15 min
       dwells), impedance every 50 C from 100 to 500 C over two heating/cooling cycles, one
       fresh virtual film per sample (about 50 hours of lab time; ~2 min here on held time).
    3. The campaign report (HTML) and the results table beside the paper's.

    Parameters
    ----------
    config : path or BeamlineConfig, optional
        The beamline (the simulated one by default).
    catalog : str, optional
        A catalog location instead of the configuration's.
    speedup, campaign_speedup : float
        Experiment seconds per wall second for the ramp and for the campaign (1 to 10000).
    report_path : path
        Where the HTML report goes.

    Returns
    -------
    dict
        ``ramp_uid``, ``campaign_id``, ``report`` (path) and ``summary``.

    Raises
    ------
    ValueError
        A speed-up outside 1 to 10000, before anything is loaded.
    """
    for name, value in (("speedup", speedup), ("campaign_speedup", campaign_speedup)):
        if not 1.0 <= float(value) <= 10000.0:  # simulation.speedup's range (beamline config)
            raise ValueError(
                f"run_demo {name} {value!r} is outside 1 to 10000 (experiment s per wall s)"
            )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Held time: what the virtual films live through does not depend on this machine's load.
    with load(config, catalog=catalog, table=False, speedup=speedup, virtual_time=True) as beamline:
        print(f"beamline {beamline.config.name!r}: devices {sorted(beamline.devices)}")
        print(
            f"simulated at {speedup:.0f}x (anneals and impedance at {campaign_speedup:.0f}x): "
            "experiment hours pass in wall seconds\n"
        )
        stage, raman, eis = beamline.stage, beamline.raman, beamline.eis
        beamline.RE.waiting_hook = None  # one progress bar per run below, not one per move
        raman.exposure.put(30.0)
        started = time.monotonic()

        progress = _RunProgress(1, "in-situ Raman ramp to 850 C")
        token = beamline.RE.subscribe(progress)
        try:
            (ramp_uid,) = beamline.RE(
                heat_ramp(
                    stage,
                    [raman],
                    start=30,
                    stop=850,
                    rate=5,
                    every_C=5,
                    end_at=30,
                    md={"purpose": "insitu demo: in-situ crystallization ramp"},
                )  # fmt: skip
            )
        finally:
            beamline.RE.unsubscribe(token)
            progress.close()

        anneal_temperatures = (500.0, 600.0, 650.0, 750.0)
        progress = _RunProgress(3 * len(anneal_temperatures), "anneal-and-measure campaign")
        token = beamline.RE.subscribe(progress)
        clock.set_speedup(campaign_speedup)
        try:
            uids = beamline.RE(
                anneal_and_measure(
                    stage,
                    raman,
                    eis,
                    anneal_temperatures=anneal_temperatures,
                    change_sample=beamline.simulation.change_sample,
                    md={"purpose": "insitu demo"},
                )  # fmt: skip
            )
        finally:
            clock.set_speedup(speedup)
            beamline.RE.unsubscribe(token)
            progress.close()
        beamline.flush()
        campaign_id = beamline.catalog[uids[0]].start["campaign_id"]
        summary = summarize(beamline.catalog, campaign_id)
        report = write_report(
            beamline.catalog,
            campaign_id,
            report_path,
            extra_raman_runs=[("in-situ ramp to 850 C", ramp_uid)],
            summary=summary,
        )
        location = beamline.config.catalog.location
        where = location if "://" in location else str(Path(location).resolve())
        print(f"\n{summary}\n")
        print(f"in-situ ramp run: {ramp_uid}")
        print(f"catalog: {where}   (list the runs with: insitu runs)")
        print(f"report:  {report.resolve()}")
        print(f"wall time: {time.monotonic() - started:.0f} s")
    return {
        "ramp_uid": ramp_uid,
        "campaign_id": campaign_id,
        "report": report,
        "summary": summary,
    }
