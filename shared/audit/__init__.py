"""The audit trail: who did what, when, to which integration (append-only, newest first)."""
