"""Catastrophic recovery: park what cannot go on, sweep it back, give up to manual."""
