"""A simulated campaign in a process of its own, for the SIGKILL tests (run as a script).

``python campaign_child.py --catalog DIR --md DIR --campaign-id ID [--resume] ...`` loads the
simulated beamline on the embedded catalog ``DIR``, prints ``ready``, runs a reduced
``anneal_and_measure`` and prints ``done``. With ``--resume`` it first does what a restart
does: close the runs of dead processes (``close_interrupted_runs``), then resume the campaign
from the catalog. With ``--stage-address`` the Linkam stage is an emulator outside this process
(the test's), so what the controller was last told survives a SIGKILL of this process.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket

import numpy as np

#: The reduced campaign: two films, three impedance temperatures, one cycle.
CAMPAIGN = {
    "anneal_temperatures": [600.0, 750.0],
    "rate": 20.0,
    "dwell_s": 300.0,
    "room_temperature": 30.0,
    "raman_every_C": 25.0,
    "eis_temperatures": [150.0, 250.0, 350.0],
    "stabilize_s": 30.0,
    "cycles": 1,
    "eis_rate": 30.0,  # well inside the watchdog rate limit (1.5 x 50 C/min), even under load
}


def restore_annealed_film(lab, anneal_C: float) -> None:
    """Put back the annealed film that died with the killed process (simulation only).

    A real film stays on the stage, annealed, when the computer dies; the virtual one lived in
    the dead process. Its history is rebuilt as the campaign's nominal anneal (from room
    temperature at ``rate``, ``dwell_s`` at the top, cooled at ``rate``) ending now, followed by
    what the new stage emulator does from now on.
    """
    from insitu import clock
    from insitu.sim.sample import GarnetFilm
    from insitu.sim.thermal_profile import ThermalProfile

    now = clock.now()
    nominal = ThermalProfile.ramp_dwell_cool(
        anneal_C,
        rate_C_per_min=CAMPAIGN["rate"],
        dwell_min=CAMPAIGN["dwell_s"] / 60.0,
        start_C=CAMPAIGN["room_temperature"],
        end_C=CAMPAIGN["room_temperature"],
    )
    start = now - nominal.end_time
    past = ThermalProfile.ramp_dwell_cool(
        anneal_C,
        rate_C_per_min=CAMPAIGN["rate"],
        dwell_min=CAMPAIGN["dwell_s"] / 60.0,
        start_C=CAMPAIGN["room_temperature"],
        end_C=CAMPAIGN["room_temperature"],
        start_time=start,
    )
    stage = lab.linkam

    def temperature_at(t):
        t = np.asarray(t, dtype=float)
        later = np.array([stage.temperature_at(max(x, now)) for x in np.atleast_1d(t)])
        values = np.where(np.atleast_1d(t) < now, past(np.atleast_1d(t)), later)
        return values if t.ndim else float(values[0])

    film = GarnetFilm(temperature_at, start_time=start)
    lab.film = film
    lab.labspec.sample = film
    lab.term.impedance_model.sample = film


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--md", required=True)
    parser.add_argument("--campaign-id", required=True)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--speedup", type=float, default=400.0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--stage-address", default=None)
    parser.add_argument("--progress", action="store_true", help='print "doc" per document')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import insitu.beamline
    from insitu.beamline.recovery import close_interrupted_runs
    from insitu.plans import anneal_and_measure
    from insitu.plans.resume import campaign_progress, use_catalog

    config = {
        "catalog": {"location": args.catalog},
        "metadata_dir": args.md,
        # Held experiment time: what the films live through does not bend with the load of the
        # machine (the reference and the resumed campaign must agree).
        "simulation": {"speedup": args.speedup, "seed": args.seed, "virtual_time": True},
        # The watchdog's rate limit (default 1.5 x 50 C/min) tripped falsely here at 400x on the
        # loaded machine (it measured 158 C/min while the plans asked <= 30 C/min); this test is
        # about kills and resume, so the rate limit is widened to the most the config allows
        # (the TS1500's 150 C/min x 1.5; the temperature limit stays). No stage guard: what
        # these tests check is the program the plans leave in a controller nobody switches off
        # (a power cut of the PC); the guard switching it off is test_stage_guard.py's.
        "safety": {"max_rate_C_per_min": 225.0, "guard": False},
    }
    if args.stage_address:
        config["stage"] = {"address": args.stage_address}
    with insitu.beamline.load(config, table=False) as bl:
        bl.RE.waiting_hook = None
        if args.stage_address:
            bl.stage.driver.min_command_interval = 0.0  # an emulator needs no command spacing
        bl.raman.exposure.put(10.0)
        # Who writes each run (the beamline may already do this; the values are the same).
        bl.RE.md["host"] = socket.gethostname()
        bl.RE.md["pid"] = os.getpid()
        use_catalog(bl.catalog, before_read=bl.flush)
        if args.resume:
            closed = close_interrupted_runs(bl.catalog)
            print(f"closed {closed}", flush=True)
            progress = campaign_progress(bl.catalog, args.campaign_id)
            for index, anneal_C in enumerate(CAMPAIGN["anneal_temperatures"]):
                if progress.is_done(index, "anneal") and not progress.is_done(index, "eis"):
                    restore_annealed_film(bl.simulation, anneal_C)
                    print(f"restored the annealed film of sample {index}", flush=True)
        if args.progress:  # the parent kills after a number of documents, whatever the load
            bl.RE.subscribe(lambda name, doc: print("doc", flush=True))
        print("ready", flush=True)
        change = bl.simulation.change_sample if bl.simulation.labspec is not None else None
        bl.RE(
            anneal_and_measure(
                bl.stage,
                bl.raman,
                bl.eis,
                change_sample=change,
                campaign_id=args.campaign_id,
                resume=args.resume,
                **CAMPAIGN,
            )
        )
        bl.flush()
    print("done", flush=True)


if __name__ == "__main__":
    main()
