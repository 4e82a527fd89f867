"""Pure analysis functions, bluesky callbacks and plots; no devices, plans or beamline."""
