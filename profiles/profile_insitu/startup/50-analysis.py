"""Analysis: plotting and the catalog helpers for looking at results."""

import matplotlib.pyplot as plt  # noqa: F401
import numpy as np  # noqa: F401

from insitu.export import export_run, run_summary  # noqa: F401
