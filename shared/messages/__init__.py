"""Messages: the envelope and its attempt history, and how it travels on a queue (claim check)."""
