"""Test twins: in-memory stand-ins that keep the real thing's contract (never deployed: .funcignore drops tests/)."""
