"""insitu: instrument control and in-situ acquisition for materials labs, on bluesky and ophyd."""

__version__ = "0.1.0"
