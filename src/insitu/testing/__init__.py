"""Test doubles and data generators for insitu's tests, benchmarks and a lab's own checks.

Runtime code never imports this package (an import-linter contract): it is what tests use to
exercise the framework from outside:

- :mod:`insitu.testing.devices`: ophyd doubles (a stage that arrives at once, a detector that
  counts its triggers and fails on demand, a stage whose temperature is a soft Signal);
- :mod:`insitu.testing.drivers`: recording far ends for real devices (a T95 transport, a Raman
  backend, a TCP listener that counts connections);
- :mod:`insitu.testing.recorders`: a RunEngine subscriber that injects a fault at a given event,
  the no-event-lost check against the catalog, and the text of an exception chain;
- :mod:`insitu.testing.scripted_transport`: a transport replaying exact byte exchanges;
- :mod:`insitu.testing.raman_ramps`: in-situ Raman ramps from a spectrum generator that shares
  nothing with :mod:`insitu.sim` but the paper's band positions.
"""
