"""Fault-injection tests: each states what must hold when an instrument or the process fails."""
