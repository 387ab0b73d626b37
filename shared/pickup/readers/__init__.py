"""Readers: one per source kind, at the edge to the upstream systems (as delivery adapters are to receivers)."""
