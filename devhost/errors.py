"""Errors devhost raises before it serves anything.

Everything wrong with the app or its configuration surfaces at start-up as a
`StartupError` with a message that names the function, setting or file at fault,
the way the real host fails indexing instead of failing the first invocation.
"""

from __future__ import annotations


class StartupError(Exception):
    """The app, its settings or host.json cannot be run; the message says what to fix."""
