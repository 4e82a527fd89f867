"""Test doubles and data generators for insitu's tests, benchmarks and a lab's own checks.

Runtime code never imports this package (an import-linter contract): it is what tests use to
exercise the framework from outside, e.g. :mod:`insitu.testing.raman_ramps`, in-situ Raman ramps
from a spectrum generator that shares nothing with :mod:`insitu.sim` but the paper's band
positions.
"""
