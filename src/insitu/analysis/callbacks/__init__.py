"""Bluesky callbacks that analyse documents as they stream and emit derived streams."""

from insitu.analysis.callbacks.eis_fit import EISFitCallback

__all__ = ["EISFitCallback"]
