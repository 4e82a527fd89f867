"""Analysis: campaign summaries, reports, fits and plots for looking at results."""

import matplotlib.pyplot as plt  # noqa: F401
import numpy as np  # noqa: F401

from insitu.analysis.campaign import summarize  # noqa: F401
from insitu.analysis.eis import fit_arrhenius, fit_circuit, fit_film, kramers_kronig  # noqa: F401
from insitu.analysis.report import write_report  # noqa: F401
from insitu.export import export_run, run_summary  # noqa: F401
