"""(being written) `insitu serve` entry for this service."""

from __future__ import annotations


def add_serve_parser(services) -> None:
    """Register this service's ``insitu serve`` sub-command (not yet)."""
