"""How one Blob Batch sub-response counts for the blob it names."""

from __future__ import annotations

import pytest

from shared.errors import StorageError, StorageUnavailable
from shared.storage.blobs import batch_delete_outcome


@pytest.mark.parametrize("status", [200, 202, 404])
def test_a_deleted_or_already_missing_blob_is_gone(status: int):
    assert batch_delete_outcome("payloads/m1", status) is None


@pytest.mark.parametrize("status", [408, 500, 503])
def test_a_server_side_refusal_means_storage_is_unavailable(status: int):
    outcome = batch_delete_outcome("payloads/m1", status)

    assert isinstance(outcome, StorageUnavailable)
    assert "payloads/m1" in outcome.message and str(status) in outcome.message


@pytest.mark.parametrize("status", [403, 409, 412])
def test_any_other_answer_keeps_the_blob_and_fails_only_that_item(status: int):
    outcome = batch_delete_outcome("payloads/m1", status)

    assert isinstance(outcome, StorageError) and not isinstance(outcome, StorageUnavailable)
