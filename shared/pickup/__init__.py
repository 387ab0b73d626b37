"""Pickup: Rebound fetches messages from where upstream systems leave them (issue 16)."""
