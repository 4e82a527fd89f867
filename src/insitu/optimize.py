"""``insitu optimize``: map a film's processing window with an agent (or a grid), and say so.

Runs :func:`insitu.plans.processing_window.map_processing_window` on the beamline of the config
(the simulated one by default, at the demo's speed-up on held time) and prints the campaign's
boundary, best amorphous film and samples, as a table or (``--json``) as one JSON object. With
``--truth`` (simulation only) it adds what the virtual film really has, computed from its model
without the beamline (:mod:`insitu.sim.processing_window_truth`).
"""

from __future__ import annotations

import json
import logging
import math
import uuid

from insitu.analysis.processing_window import REPORTED_DWELLS_MIN
from insitu.beamline import load
from insitu.beamline.config import load_config
from insitu.demo import DEMO_SPEEDUP
from insitu.plans.processing_window import make_agent, map_processing_window

__all__ = ["run_optimize"]


def run_optimize(
    config=None,
    *,
    samples: int = 10,
    seed: int = 0,
    strategy: str = "agent",
    anneals=(500.0, 600.0, 650.0, 750.0),
    dwells=(15.0,),
    truth: bool = False,
    catalog: str | None = None,
    speedup: float = DEMO_SPEEDUP,
    report_path: str | None = None,
) -> dict:
    """Run one processing-window campaign; return the ``--json`` object.

    Raises
    ------
    ValueError
        ``truth`` on a beamline that is not simulated, or a bad argument (named).
    """
    settings = load_config(config)
    simulated = settings.all_simulated
    if truth and not simulated:
        raise ValueError("--truth needs the simulated beamline: a real film has no model")
    agent = make_agent(strategy, seed=seed, anneals=anneals, dwells=dwells)
    campaign_id = str(uuid.uuid4())
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    with load(
        settings,
        catalog=catalog,
        table=False,
        speedup=speedup if simulated else None,
        virtual_time=True if simulated else None,
    ) as beamline:
        beamline.RE.waiting_hook = None
        if simulated:
            beamline.raman.exposure.put(30.0)  # as the demo: spectra the flags can read
        change = beamline.simulation.change_sample if beamline.simulation else None
        kwargs = {"change_sample": change} if change is not None else {}
        beamline.RE(
            map_processing_window(
                beamline.stage,
                beamline.raman,
                beamline.eis,
                monitor=beamline.raman_flags,
                samples=samples,
                agent=agent,
                campaign_id=campaign_id,
                **kwargs,
            )
        )
        beamline.flush()
        if report_path is not None:
            from insitu.analysis.window_report import write_window_report

            written = write_window_report(beamline.catalog, campaign_id, report_path)
    report = agent.report()
    best = report["best_amorphous"]
    result = {
        "campaign_id": campaign_id,
        "strategy": strategy,
        "boundary": [
            {"dwell_min": b["dwell_min"], "anneal_C": b["anneal_C"]} for b in report["boundary"]
        ],
        "boundary_band": report["boundary"],
        "best_amorphous": best,
        "samples": report["samples"],
        "decisions": report["decisions"],
    }
    if report_path is not None:
        result["report"] = str(written.resolve())
    if truth:
        from insitu.sim.processing_window_truth import window_truth

        variation = settings.simulation.film_variation
        result["truth"] = window_truth(
            crystallization_shift_C=variation.crystallization_shift_C,
            conductivity_scale=variation.conductivity_scale,
            dwells_min=REPORTED_DWELLS_MIN,
        ).as_dict()
    return _finite(result)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_result(result: dict, *, as_json: bool) -> None:
    """Print the campaign's result: one JSON object, or tables a person reads."""
    if as_json:
        print(json.dumps(result))
        return
    print(f"campaign {result['campaign_id']} ({result['strategy']})")
    print("samples (in order):")
    print(f"  {'#':>2}  {'anneal C':>8}  {'dwell min':>9}  {'crystallized':>12}  sigma(30 C) S/cm")
    for index, sample in enumerate(result["samples"], 1):
        sigma = sample["sigma_30C_S_cm"]
        print(
            f"  {index:>2}  {sample['anneal_C']:>8.1f}  {sample['dwell_min']:>9.1f}  "
            f"{'yes' if sample['crystallized'] else 'no':>12}  "
            f"{'' if sigma is None else f'{sigma:.3g}'}"
        )
    truth = {b["dwell_min"]: b for b in result.get("truth", {}).get("boundary", [])}
    print("boundary: the highest anneal temperature that keeps the film amorphous")
    for band in result["boundary_band"]:
        line = f"  dwell {band['dwell_min']:>5.0f} min: {_c(band['anneal_C'])} C"
        line += f"  (68 % band {_c(band['low_C'])} to {_c(band['high_C'])} C)"
        if band["dwell_min"] in truth:
            t = truth[band["dwell_min"]]
            line += f"   truth: 1 % at {t['t1_C']:.1f} C, 5 % at {t['t5_C']:.1f} C"
        print(line)
    best = result["best_amorphous"]
    if best is None:
        print("best amorphous film: none measured")
    else:
        print(
            f"best amorphous film: {best['anneal_C']:.1f} C for {best['dwell_min']:.0f} min, "
            f"sigma(30 C) {best['sigma_30C_S_cm']:.3g} S/cm"
        )
    if "report" in result:
        print(f"report: {result['report']}")
    if "truth" in result:
        sigma = result["truth"]["best_amorphous_sigma_30C_S_cm"]
        print(f"truth: best amorphous sigma(30 C) {sigma:.3g} S/cm")


def _c(value) -> str:
    return "?" if value is None else f"{value:.1f}"
