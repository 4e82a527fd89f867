"""(being written) ``insitu queue`` sub-commands."""

from __future__ import annotations


def add_queue_parsers(actions) -> None:
    """Register ``insitu queue add/status`` (not yet)."""
