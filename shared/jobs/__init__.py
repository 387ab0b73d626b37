"""Retry and delete jobs over failures: started atomically, run page by page, checkpointed."""
