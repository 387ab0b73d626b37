"""Integration configs: the model, where they are stored, the cached view the hot path reads."""
