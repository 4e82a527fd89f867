"""``insitu serve analysis``: the Raman and impedance analysis as a separate 0MQ consumer process.

It subscribes to a 0MQ proxy's out-port with bluesky's ``RemoteDispatcher``, feeds every document
to the same analysis chain a beamline runs in-process (``RamanTransitionCallback`` ->
``EISFitCallback``, built with the film geometry of ``--config``), and writes only their derived
streams (``raman_analysis``, ``transitions``, ``eis_fit``, ``eis_arrhenius``) into the runs the
beamline's own writer (loaded with ``analysis=False``) creates in the shared catalog; see
:mod:`insitu.services.derived_writer`. The beamline publishes with
:func:`insitu.services.streaming.attach_publisher`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["AnalysisConsumer", "add_serve_parser", "build_consumer", "serve_analysis"]

logger = logging.getLogger(__name__)

#: Printed (and flushed) on stdout once the consumer is subscribed; scripts wait for it.
READY_LINE = "insitu analysis consumer ready"


@dataclass(eq=False)  # a subscriber: hashed by identity
class AnalysisConsumer:
    """The analysis chain and the writer of its derived streams, closed together.

    Attributes
    ----------
    callbacks : list
        ``[RamanTransitionCallback, EISFitCallback]``; ``callbacks[0]`` takes the documents.
    writer : DerivedStreamsWriter
    catalog : tiled client
    """

    callbacks: list[Any]
    writer: Any
    catalog: Any

    def __call__(self, name: str, doc: dict) -> None:
        """Hand one document to the analysis chain (returns at once)."""
        self.callbacks[0](name, doc)

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until every document so far is analysed and its derived events are written."""
        for callback in self.callbacks:
            callback.flush(timeout)
        if not self.writer.wait(timeout):
            raise TimeoutError(f"derived streams not written within {timeout} s, or a write failed")

    def close(self) -> None:
        """Analyse and write what is queued, then close the catalog connection."""
        from insitu.beamline.catalog import close_catalog

        for callback in self.callbacks:
            try:
                callback.close()
            except Exception:  # still close the writer: analysed results are not dropped
                logger.exception("closing %r failed", callback)
        self.writer.close()
        close_catalog(self.catalog)


def build_consumer(
    config: Any = None,
    catalog: str | None = None,
    *,
    api_key: str | None = None,
    max_delay: float = 0.1,
    catalog_timeout: float = 0.0,
) -> AnalysisConsumer:
    """Open the shared catalog and build the analysis chain that writes derived streams to it.

    Parameters
    ----------
    config : path, mapping or BeamlineConfig, optional
        The beamline config (film geometry; catalog location and key when not given here).
        Default: the shipped simulated beamline.
    catalog : str, optional
        The catalog the beamline writes to: a tiled server URI or an embedded catalog directory.
    api_key : str, optional
        The server's API key (default: the config's).
    max_delay : float
        Longest wall time (s) a derived event waits in memory before it is written.
    catalog_timeout : float
        Keep trying to reach a catalog server that is not up yet for this many seconds (services
        started together); a refused API key fails at once.
    """
    from insitu.beamline.assembly import analysis_chain
    from insitu.beamline.config import BeamlineConfig, load_config, parse_config
    from insitu.services.derived_writer import DerivedStreamsWriter

    if isinstance(config, BeamlineConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = parse_config(config)
    else:
        cfg = load_config(config)
    location = catalog or cfg.catalog.location
    runs = _open_when_up(location, api_key or cfg.catalog.api_key, catalog_timeout)
    try:
        # The chain is built by the beamline's own function so that both paths run the same
        # callbacks with the same options; its streams name what the writer may write.
        streams: list[str] = []
        writer = None

        def forward_to_writer(name: str, doc: dict) -> None:
            writer(name, doc)  # created below, once the chain names its derived streams

        callbacks = analysis_chain(cfg, forward_to_writer)
        for callback in callbacks:
            streams.extend(callback.derived_streams)
        writer = DerivedStreamsWriter(runs, streams=streams, max_delay=max_delay)
    except BaseException:
        from insitu.beamline.catalog import close_catalog

        close_catalog(runs)
        raise
    return AnalysisConsumer(callbacks=callbacks, writer=writer, catalog=runs)


def _open_when_up(location: str, api_key: str | None, timeout: float):
    import httpx

    from insitu.beamline.catalog import open_catalog

    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_catalog(location, api_key=api_key)
        except httpx.TransportError:
            if time.monotonic() >= deadline:
                raise
            logger.info("catalog %s not reachable yet; retrying", location)
            time.sleep(0.5)


def serve_analysis(
    zmq_address: str,
    *,
    catalog: str | None = None,
    api_key: str | None = None,
    config: Any = None,
    max_delay: float = 0.1,
    catalog_timeout: float = 60.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Receive documents from a 0MQ proxy and write their derived streams until interrupted.

    Parameters
    ----------
    zmq_address : str
        ``HOST:PORT`` of the proxy's out-port.
    catalog, api_key, config, max_delay, catalog_timeout
        See :func:`build_consumer`.
    on_ready : callable, optional
        Called once the 0MQ subscription is made (default: print :data:`READY_LINE`).

    Notes
    -----
    Ends on SIGINT or SIGTERM (in the main thread), after analysing and writing what it has
    received.
    """
    from bluesky.callbacks.zmq import RemoteDispatcher

    from insitu.beamline import document_wire
    from insitu.services.streaming import parse_zmq_address

    address = parse_zmq_address(zmq_address)
    consumer = build_consumer(
        config, catalog, api_key=api_key, max_delay=max_delay, catalog_timeout=catalog_timeout
    )
    try:
        # Documents from the network are data: msgpack, never bluesky's default pickle.
        dispatcher = RemoteDispatcher(address, deserializer=document_wire.loads)
        dispatcher.subscribe(consumer)

        def announce() -> None:
            # Scheduled before start(): runs at the loop's first turn, after the SUB connect.
            if threading.current_thread() is threading.main_thread():
                for signum in (signal.SIGINT, signal.SIGTERM):
                    dispatcher.loop.add_signal_handler(signum, cancel_tasks)
            if on_ready is not None:
                on_ready()
            else:
                print(f"{READY_LINE}: {address} -> {consumer.catalog.uri}", flush=True)

        def cancel_tasks() -> None:
            # Cancelling the receive task (rather than raising KeyboardInterrupt into the loop)
            # lets RemoteDispatcher.start() return cleanly.
            for task in asyncio.all_tasks(dispatcher.loop):
                task.cancel()

        dispatcher.loop.call_soon(announce)
        try:
            dispatcher.start()
        except asyncio.CancelledError:
            logger.info("insitu serve analysis: stopping, writing what is queued")
    finally:
        consumer.close()


def _cmd_serve_analysis(args: argparse.Namespace) -> int:
    from insitu.services.api_key_option import api_key_from_args

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    try:
        serve_analysis(
            args.zmq,
            catalog=args.catalog,
            api_key=api_key_from_args(args),
            config=getattr(args, "config", None),
            max_delay=args.max_delay,
            catalog_timeout=args.catalog_timeout,
        )
    except (ValueError, TypeError, KeyError) as error:
        print(f"insitu serve analysis: {error}", file=sys.stderr)
        return 2
    return 0


def add_serve_parser(services) -> None:
    """Register ``insitu serve analysis`` (the global ``--config`` gives the film geometry)."""
    from insitu.services.api_key_option import add_api_key_options

    parser = services.add_parser(
        "analysis",
        help="run the Raman and EIS analysis on documents from a 0MQ proxy, into the catalog",
        description=(
            "Subscribe to a bluesky 0MQ proxy (bluesky-0MQ-proxy; beamlines publish with "
            "insitu.services.streaming.attach_publisher), run the Raman transition and impedance "
            "fit callbacks, and write their derived streams into the runs of the shared catalog."
        ),
    )
    parser.add_argument(
        "--zmq", required=True, metavar="HOST:PORT", help="the 0MQ proxy's out-port"
    )
    parser.add_argument(
        "--catalog",
        default=None,
        help="tiled server URI or catalog directory the beamline writes to (default: config's)",
    )
    add_api_key_options(parser, what="the tiled server")
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,  # keeps a global `insitu --config X serve analysis` working
        help="beamline YAML with the film geometry (default: the simulated beamline sim.yaml)",
    )
    parser.add_argument(
        "--max-delay",
        type=float,
        default=0.1,
        help="longest wall time (s, up to 1) a derived event waits before it is written",
    )
    parser.add_argument(
        "--catalog-timeout",
        type=float,
        default=60.0,
        help="seconds to keep trying to reach a catalog server that is not up yet (default 60)",
    )
    parser.set_defaults(func=_cmd_serve_analysis)
