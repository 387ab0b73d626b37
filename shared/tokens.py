"""Opaque tokens a store hands out and takes back; the domain passes them on and never reads them.

`Version` is what a conditional write or removal checks (an ETag on Azure): a record read with one
version and changed since raises `ConcurrencyConflict`. `Cursor` marks where a listing goes on
(a page of failures, a job's place in its selection); a cursor the store did not issue is refused.
"""

from __future__ import annotations

from typing import NewType

Version = NewType("Version", str)
Cursor = NewType("Cursor", str)
