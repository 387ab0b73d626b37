"""Delivery: ingest, the engine that delivers, classifies and retries, and the adapters to receivers."""
