"""The one error hierarchy of Rebound.

    ReboundError
    ├── ConfigError                      settings or an integration config that cannot work
    │   └── EgressRefused                the egress policy refused an address or a setting reference
    ├── InputError                       a caller sent something we refuse (HTTP 4xx)
    │   ├── RequestValidationError       422, field errors in `details`
    │   ├── BadParameter                 400, names the parameter
    │   ├── PayloadTooLarge              413
    │   ├── UnsupportedMediaType         415, names the Content-Type it refused
    │   ├── HeadersTooLarge              431
    │   ├── Unauthenticated              401, no principal the app may trust (shared.auth)
    │   ├── Forbidden                    403, the principal lacks `details.required_role`
    │   ├── NotFound                     404
    │   │   ├── IntegrationNotFound
    │   │   ├── FailureNotFound
    │   │   ├── JobNotFound
    │   │   ├── SourceNotFound           the integration has no pickup source
    │   │   └── NoTimeline               a message with no timeline (delivered at the first try, or unknown)
    │   └── Conflict                     409
    │       ├── JobAlreadyActive         carries the active job's id
    │       ├── SourceDisabled           "pick up now" on a source with `enabled: false`
    │       └── NothingToResend          a failure that holds no message (origin `pickup`)
    ├── DeliveryError                    a receiver did not take a message
    │   ├── TransientDeliveryError       endpoint retry, then engine retry
    │   │   └── ThrottledDeliveryError   endpoint retry only (408/429/504)
    │   └── PermanentDeliveryError       no retry
    ├── PickupError                      a pickup source did not give up its items
    │   ├── TransientPickupError         endpoint retry, then the next interval
    │   └── PermanentPickupError         no endpoint retry (a refused host key or credential, a missing container)
    └── StorageError                     our own storage misbehaved
        ├── ConcurrencyConflict          an ETag no longer matches (412)
        ├── EntityTooLarge               the real Table limits, enforced here because Azurite does not
        └── StorageUnavailable           cannot reach a store: catastrophic, park the message

Every error carries a stable `code` and an `http_status`, so the HTTP layer maps any of
them with one helper and never re-decides.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadParameter",
    "ConcurrencyConflict",
    "ConfigError",
    "Conflict",
    "DeliveryError",
    "EgressRefused",
    "EntityTooLarge",
    "FailureNotFound",
    "FieldError",
    "Forbidden",
    "HeadersTooLarge",
    "InputError",
    "IntegrationNotFound",
    "JobAlreadyActive",
    "JobNotFound",
    "NoTimeline",
    "NotFound",
    "NothingToResend",
    "PayloadTooLarge",
    "PermanentDeliveryError",
    "PermanentPickupError",
    "PickupError",
    "ReboundError",
    "RequestValidationError",
    "StorageError",
    "SourceDisabled",
    "SourceNotFound",
    "StorageUnavailable",
    "ThrottledDeliveryError",
    "TransientDeliveryError",
    "TransientPickupError",
    "Unauthenticated",
    "UnsupportedMediaType",
]

FieldError = dict[str, str]


class ReboundError(Exception):
    """Root of every error Rebound raises on purpose."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigError(ReboundError):
    code = "config_error"
    http_status = 500


class EgressRefused(ConfigError):
    """Nothing was sent: the destination, or a setting a header references, is not allowed (shared.egress)."""

    code = "egress_refused"


class InputError(ReboundError):
    code = "bad_request"
    http_status = 400


class RequestValidationError(InputError):
    """The body did not validate; `details.fields` lists `{"field", "message"}` per problem."""

    code = "validation_error"
    http_status = 422

    def __init__(self, message: str, fields: list[FieldError]) -> None:
        super().__init__(message, details={"fields": fields})
        self.fields = fields


class BadParameter(InputError):
    code = "bad_parameter"
    http_status = 400

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}", details={"parameter": parameter})
        self.parameter = parameter


class PayloadTooLarge(InputError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(InputError):
    code = "unsupported_media_type"
    http_status = 415


class HeadersTooLarge(InputError):
    """The headers that would travel with a message exceed what a message may carry."""

    code = "headers_too_large"
    http_status = 431


class Unauthenticated(InputError):
    """No principal, or one the app may not trust here (shared.auth says which); the caller must sign in."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(InputError):
    """Signed in, but without the role this needs; `details.required_role` names it."""

    code = "forbidden"
    http_status = 403

    def __init__(self, required_role: str) -> None:
        super().__init__(f"this needs the role {required_role}", details={"required_role": required_role})
        self.required_role = required_role


class NotFound(InputError):
    code = "not_found"
    http_status = 404


class IntegrationNotFound(NotFound):
    code = "integration_not_found"

    def __init__(self, integration: str) -> None:
        super().__init__(f"integration {integration!r} does not exist", details={"integration": integration})


class FailureNotFound(NotFound):
    code = "failure_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class SourceNotFound(NotFound):
    code = "source_not_found"

    def __init__(self, integration: str) -> None:
        super().__init__(f"integration {integration!r} has no pickup source", details={"integration": integration})


class NoTimeline(NotFound):
    """Nothing was recorded for the message: it was delivered at the first try (which costs no write), its
    timeline passed the retention, or no such message went through."""

    code = "no_timeline"

    def __init__(self, integration: str, message_id: str) -> None:
        super().__init__(
            f"message {message_id!r} of {integration!r} has no timeline: it was delivered at the first try, "
            "its events passed the retention, or it is unknown",
            details={"integration": integration, "message_id": message_id},
        )


class Conflict(InputError):
    code = "conflict"
    http_status = 409


class JobAlreadyActive(Conflict):
    code = "job_active"

    def __init__(self, integration: str, active_job_id: str) -> None:
        super().__init__(
            f"integration {integration!r} already has an active job; wait for it or cancel it",
            details={"active_job_id": active_job_id},
        )
        self.active_job_id = active_job_id


class SourceDisabled(Conflict):
    code = "source_disabled"

    def __init__(self, integration: str) -> None:
        super().__init__(
            f"the pickup source of integration {integration!r} is disabled; enable it in the config first",
            details={"integration": integration},
        )


class NothingToResend(Conflict):
    """The failure records a problem, not a message: there is nothing to send again."""

    code = "nothing_to_resend"


class DeliveryError(ReboundError):
    """A delivery attempt failed; `status_code` is the receiver's answer when there was one."""

    code = "delivery_failed"
    http_status = 502

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientDeliveryError(DeliveryError):
    """Worth trying again: endpoint retry first, then engine retry."""

    def __init__(self, message: str, *, status_code: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after_s = retry_after_s


class ThrottledDeliveryError(TransientDeliveryError):
    """408/429/504: retried inside the endpoint window only, then the message fails."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (bad request, not found, a terminate rule)."""


class PickupError(ReboundError):
    """Listing, reading or removing at a pickup source failed."""

    code = "pickup_failed"
    http_status = 502


class TransientPickupError(PickupError):
    """Worth trying again: endpoint retry inside the window, then the next run."""


class PermanentPickupError(PickupError):
    """Retrying at once cannot help (a refused host key or credential, a missing container).

    The next run tries again: the cause may be fixed at the source meanwhile.
    """


class StorageError(ReboundError):
    code = "storage_error"
    http_status = 503


class ConcurrencyConflict(StorageError):
    code = "concurrency_conflict"
    http_status = 409


class EntityTooLarge(StorageError):
    code = "entity_too_large"
    http_status = 500


class StorageUnavailable(StorageError):
    """A store could not be reached or timed out: the catastrophic layer takes over."""

    code = "storage_unavailable"
    http_status = 503
