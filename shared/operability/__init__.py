"""Operability: counters, traces and the health report."""
