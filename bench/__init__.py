"""Benchmarks: `python -m bench` (or `make bench`); each figure beside raw Azurite from the same run."""
