"""ophyd devices and their protocol drivers, one folder per instrument family."""
