"""Outbound delivery adapters: one per endpoint kind, all behind the `Sender` protocol."""
