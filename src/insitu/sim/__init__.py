"""Simulated instruments and the virtual sample: the far end of the wire."""
