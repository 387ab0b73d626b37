"""Failures: the record of a message that could not be delivered, how it is queried, and retention."""
