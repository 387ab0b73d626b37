"""A failure row never exceeds Table limits, masks credentials, and says what it shortened."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.failures.models import Failure, FailureOrigin
from shared.messages.models import AttemptRecord
from shared.storage.failure_rows import (
    MAX_ROW_TEXT_CHARS,
    failure_from_row,
    failure_to_row,
    fitted_for_row,
)
from shared.storage.tables import check_entity_limits

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def make_failure(**overrides: object) -> Failure:
    values: dict[str, object] = {
        "id": "0000000000000001-abc",
        "integration": "orders",
        "message_id": "m-1",
        "failed_at": NOW,
        "reason": "HTTP 400",
        "group": "g",
        "origin": FailureOrigin.ENDPOINT,
    }
    return Failure.model_validate({**values, **overrides})


def test_an_ordinary_failure_is_stored_as_it_is() -> None:
    failure = make_failure(headers={"x-order": "7"}, sender="shop")
    stored, whole = fitted_for_row(failure)
    assert stored == failure and whole == {}


def test_oversized_headers_and_fields_are_cut_to_fit_and_kept_whole_beside() -> None:
    # Given a failure of an envelope whose headers and sender were far past the property limit
    headers = {f"x-big-{n}": "v" * 7000 for n in range(6)}
    failure = make_failure(
        headers=headers, sender="s" * 60_000, history=[AttemptRecord(at=NOW, outcome="x" * 5000)] * 20
    )

    # When it is fitted for its row
    stored, whole = fitted_for_row(failure)
    row = failure_to_row(stored)

    # Then Azure would take the row, every text property within the cap
    check_entity_limits(row)
    assert all(len(value) <= MAX_ROW_TEXT_CHARS for value in row.values() if isinstance(value, str))
    # And the row says what it shortened, and the whole values are kept
    assert stored.overflow == ["headers", "history", "sender"]
    assert whole["headers"] == headers and whole["sender"] == "s" * 60_000
    assert failure_from_row(row).overflow == ["headers", "history", "sender"]


def test_credential_headers_are_masked_in_the_row_and_kept_whole_beside() -> None:
    stored, whole = fitted_for_row(make_failure(headers={"x-api-key": "k", "x-order": "7"}))
    assert stored.headers == {"x-api-key": "***", "x-order": "7"}
    assert whole == {"headers": {"x-api-key": "k", "x-order": "7"}}
    assert stored.overflow == ["headers"]
