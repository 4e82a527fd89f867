"""Bluesky callbacks that analyse documents as they stream and emit derived streams."""

from insitu.analysis.callbacks.eis_fit import EISFitCallback
from insitu.analysis.callbacks.raman_transitions import RamanTransitionCallback

__all__ = ["EISFitCallback", "RamanTransitionCallback"]
