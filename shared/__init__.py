"""Rebound domain core: no Azure Functions types below this line."""
