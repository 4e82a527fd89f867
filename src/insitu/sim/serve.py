"""``insitu sim ...``: serve one instrument emulator on its own, as a real instrument would be."""

from __future__ import annotations

import argparse
import threading

from insitu import clock

__all__ = ["add_sim_parser"]


def _serve_until_interrupted(emulator, banner: str) -> int:
    """Print the banner and serve until Ctrl-C (SIGINT); close the emulator either way.

    The banner is printed inside the ``try``: whoever reads it may interrupt at once, before
    this process has reached its wait (a loaded machine), and that is still a clean stop.
    """
    try:
        print(banner, flush=True)
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()
    return 0


def _serve_linkam(args) -> int:
    from insitu.sim.linkam_t95 import LinkamT95Emulator

    clock.set_speedup(args.speedup)
    emulator = LinkamT95Emulator(stage_model=args.model)
    try:
        if args.pty:
            path = emulator.serve_pty()
            banner = f"Linkam {args.model} emulator on {path}: connect with ASRL{path}::INSTR"
        else:
            port = emulator.serve_tcp(port=args.port)
            banner = (
                f"Linkam {args.model} emulator on 127.0.0.1:{port}: connect with "
                f"TCPIP::127.0.0.1::{port}::SOCKET"
            )
    except BaseException:
        emulator.close()
        raise
    return _serve_until_interrupted(emulator, banner)


def _serve_raman(args) -> int:
    from insitu.sim.labspec6 import serve_standalone

    serve_standalone(port=args.port, speedup=args.speedup)
    return 0


def _serve_zahner(args) -> int:
    from insitu.sim.thales_term import serve_standalone

    serve_standalone(port=args.port, speedup=args.speedup)
    return 0


def add_sim_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``insitu sim {linkam,raman,zahner}`` to the ``insitu`` command."""
    sim = subparsers.add_parser("sim", help="serve an instrument emulator on its own")
    which = sim.add_subparsers(dest="instrument", required=True, metavar="INSTRUMENT")

    linkam = which.add_parser("linkam", help="Linkam T95 controller on a pty or loopback TCP")
    where = linkam.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal")
    where.add_argument("--port", type=int, default=0, help="TCP port (default: any free one)")
    linkam.add_argument("--model", choices=("TS1500", "HFS600E"), default="TS1500")
    linkam.add_argument("--speedup", type=float, default=1.0, help="experiment s per wall s")
    linkam.set_defaults(func=_serve_linkam)

    raman = which.add_parser("raman", help="Horiba LabSpec 6 remote server on loopback TCP")
    raman.add_argument("--port", type=int, default=1234, help="TCP port (default 1234)")
    raman.add_argument("--speedup", type=float, default=1.0, help="experiment s per wall s")
    raman.set_defaults(func=_serve_raman)

    zahner = which.add_parser("zahner", help="Zahner Term (Thales remote) on loopback TCP")
    zahner.add_argument(
        "--port", type=int, default=None, help="TCP port (default 260 if allowed, else any free)"
    )
    zahner.add_argument("--speedup", type=float, default=1.0, help="experiment s per wall s")
    zahner.set_defaults(func=_serve_zahner)
