"""The ``insitu`` command: the demo, autonomous campaigns, runs and exports, emulators."""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _add_catalog_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalog",
        default=None,
        help="catalog directory or http(s) URI (default: the config's, ./insitu-data)",
    )


def _open_runs(args):
    from insitu.beamline.catalog import open_catalog
    from insitu.beamline.config import load_config
    from insitu.services.api_key_option import api_key_from_args

    location = args.catalog or load_config(args.config).catalog.location
    return open_catalog(location, api_key=api_key_from_args(args))


def _cmd_demo(args) -> int:
    from insitu.demo import run_demo

    run_demo(config=args.config, catalog=args.catalog)
    return 0


def _cmd_runs(args) -> int:
    from insitu.export import run_summary

    runs = _open_runs(args)
    rows = [run_summary(runs[uid]) for uid in list(runs)[-args.last :]]
    if not rows:
        print("no runs in the catalog")
        return 0
    print(f"{'uid':36}  {'scan':>4}  {'plan':16}  {'start':19}  {'exit status':17}  events")
    for row in rows:
        when = datetime.datetime.fromtimestamp(row["time"]).strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{row['uid']:36}  {row['scan_id'] or '':>4}  {row['plan'][:16]:16}  {when:19}  "
            f"{row['exit_status'][:17]:17}  {row['events']}"
        )
    return 0


def _cmd_export(args) -> int:
    from insitu.export import export_run

    runs = _open_runs(args)
    key = int(args.uid) if args.uid.isdigit() else args.uid  # a scan id, else a uid (prefix)
    try:
        run = runs[key]
    except KeyError:
        print(f"insitu export: no run {args.uid!r} in the catalog", file=sys.stderr)
        return 2
    for path in export_run(run, args.output, args.format):
        print(path.resolve())
    return 0


def _cmd_report(args) -> int:
    from insitu.analysis.campaign import summarize
    from insitu.analysis.report import write_report
    from insitu.analysis.window_report import find_window_map, write_window_report

    runs = _open_runs(args)
    if find_window_map(runs, args.campaign_id) is not None:  # an insitu optimize campaign
        path = write_window_report(runs, args.campaign_id, args.output)
        print(f"report: {path.resolve()}")
        return 0
    try:
        summary = summarize(runs, args.campaign_id)  # once: it reads every run of the campaign
        path = write_report(runs, args.campaign_id, args.output, summary=summary)
    except KeyError as error:
        print(f"insitu report: {error.args[0]}", file=sys.stderr)
        return 2
    print(summary)
    print(f"report: {path.resolve()}")
    return 0


def _numbers(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers"
        ) from None


def _cmd_optimize(args) -> int:
    from insitu.optimize import print_result, run_optimize

    result = run_optimize(
        args.config,
        samples=args.samples,
        seed=args.seed,
        strategy=args.strategy,
        anneals=args.anneals,
        dwells=args.dwells,
        truth=args.truth,
        catalog=args.catalog,
        report_path=args.report,
    )
    print_result(result, as_json=args.json)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    from insitu.services.api_key_option import add_api_key_options

    parser = argparse.ArgumentParser(
        prog="insitu",
        description="In-situ acquisition on bluesky: Linkam stage, Raman, Zahner impedance.",
    )
    parser.add_argument(
        "--config", default=None, help="beamline YAML (default: the simulated beamline sim.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the simulated beamline into the embedded catalog")
    _add_catalog_option(demo)
    demo.set_defaults(func=_cmd_demo)

    runs = sub.add_parser("runs", help="list runs: uid, plan, start time, exit status, events")
    _add_catalog_option(runs)
    add_api_key_options(runs, what="a remote catalog")
    runs.add_argument("--last", type=int, default=50, help="show the last N runs (default 50)")
    runs.set_defaults(func=_cmd_runs)

    export = sub.add_parser("export", help="export a run's streams to CSV or HDF5 files")
    export.add_argument("uid", help="run uid (or a unique prefix, or a scan id)")
    export.add_argument("--format", choices=("csv", "hdf5"), default="csv")
    export.add_argument("--output", default="exports", help="output directory (default ./exports)")
    _add_catalog_option(export)
    add_api_key_options(export, what="a remote catalog")
    export.set_defaults(func=_cmd_export)

    report = sub.add_parser("report", help="write a campaign's HTML report and print its table")
    report.add_argument("campaign_id", help="the campaign id (in every run's metadata)")
    report.add_argument("--output", default="insitu-report/index.html", help="HTML file to write")
    _add_catalog_option(report)
    add_api_key_options(report, what="a remote catalog")
    report.set_defaults(func=_cmd_report)

    optimize = sub.add_parser(
        "optimize",
        help="map the film's processing window: anneal fresh films where an agent says",
    )
    optimize.add_argument("--samples", type=int, default=10, help="films to anneal (default 10)")
    optimize.add_argument("--seed", type=int, default=0, help="the agent's seed (default 0)")
    optimize.add_argument("--strategy", choices=("agent", "grid"), default="agent")
    optimize.add_argument(
        "--anneals",
        type=_numbers,
        default=[500.0, 600.0, 650.0, 750.0],
        help="grid anneal temperatures, C (default 500,600,650,750)",
    )
    optimize.add_argument(
        "--dwells", type=_numbers, default=[15.0], help="grid dwells, min (default 15)"
    )
    optimize.add_argument("--json", action="store_true", help="print one JSON object")
    optimize.add_argument(
        "--truth", action="store_true", help="simulation only: add the virtual film's truth"
    )
    optimize.add_argument(
        "--report",
        default="insitu-report/window.html",
        help="the campaign's HTML report, with its map (default insitu-report/window.html)",
    )
    _add_catalog_option(optimize)
    optimize.set_defaults(func=_cmd_optimize)

    from insitu.sim.serve import add_sim_parser

    add_sim_parser(sub)
    from insitu.services.commands import add_service_parsers

    add_service_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``insitu`` console script."""
    args = _build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as error:  # bad input: say what and why, without a traceback
        print(f"insitu {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
