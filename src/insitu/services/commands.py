"""The ``insitu serve ...`` and ``insitu queue ...`` sub-commands, gathered from their modules."""

from __future__ import annotations

import argparse

__all__ = ["add_service_parsers"]


def add_service_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``serve {queue,catalog,analysis}`` and ``queue {add,status,...}`` to the CLI."""
    from insitu.services import analysis_consumer, catalog_server, queue_client, queue_server

    serve = sub.add_parser("serve", help="start a service: the plan queue, the catalog, analysis")
    services = serve.add_subparsers(dest="service", required=True, metavar="SERVICE")
    queue_server.add_serve_parser(services)
    catalog_server.add_serve_parser(services)
    analysis_consumer.add_serve_parser(services)

    queue = sub.add_parser("queue", help="add plans to the queue and see its state")
    actions = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    queue_client.add_queue_parsers(actions)
