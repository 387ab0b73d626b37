"""Who is calling and what they may do: AUTH_MODE, the roles, and the principal Easy Auth sends.

Three modes (the `AUTH_MODE` setting):

- `entra`: App Service Authentication ("Easy Auth") with Entra ID stands in front of the app. It
  validates tokens, removes any `X-MS-CLIENT-PRINCIPAL*` header a client sent and injects its own.
  The app trusts that header only while the platform says authentication is on
  (`WEBSITE_AUTH_ENABLED=True`, which App Service injects into the worker); without Easy Auth in
  front anyone could send the header, so then every portal/API call is 401.
- `dev`: devhost plays Easy Auth (devhost/easy_auth.py) and marks the app's environment with
  `DEVHOST_EASY_AUTH=1`, a variable the real host never sets. Without the marker, or on App
  Service, `dev` fails closed like `entra`.
- `key`: today's behaviour. Function keys at the Functions level; whoever holds one is an admin.

Roles nest: `Rebound.Reader` < `Rebound.Operator` < `Rebound.Admin`, each including those below.
No principal is 401 (`Unauthenticated`); a principal without the role is 403 (`Forbidden`).

Pure code (no Functions types): the blueprints read the headers and the environment and call in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from shared.errors import Forbidden, Unauthenticated

__all__ = [
    "APP_SERVICE_MARKERS",
    "DEVHOST_MARKER",
    "EASY_AUTH_ENABLED",
    "KEY_PRINCIPAL",
    "MAX_IDENTITY_CHARS",
    "PRINCIPAL_HEADER",
    "AuthMode",
    "HttpAuthLevel",
    "Principal",
    "Role",
    "RouteKind",
    "auth_mode_from_environ",
    "authenticate",
    "encode_client_principal",
    "http_auth_level",
    "parse_client_principal",
    "require",
]

#: The headers Easy Auth injects (and removes from client requests).
PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
PRINCIPAL_NAME_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
PRINCIPAL_ID_HEADER = "X-MS-CLIENT-PRINCIPAL-ID"
PRINCIPAL_IDP_HEADER = "X-MS-CLIENT-PRINCIPAL-IDP"

#: App Service injects this into the worker, `True` when authentication is enabled for the app
#: (learn.microsoft.com/azure/app-service/reference-app-settings, "Authentication & authorization").
EASY_AUTH_ENABLED = "WEBSITE_AUTH_ENABLED"
#: devhost sets this to "1" in the app's environment while it plays Easy Auth; the real host never does.
DEVHOST_MARKER = "DEVHOST_EASY_AUTH"
#: Variables App Service sets for every app: where they are, this is not devhost, so `dev` refuses.
APP_SERVICE_MARKERS = ("WEBSITE_SITE_NAME", "WEBSITE_INSTANCE_ID")

#: Claim types that carry a role. Easy Auth passes Entra's `roles` claim under its own name, and
#: names the role claim type in `role_typ` (for Entra, the WS-Federation role URI).
ROLE_CLAIM_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
_ROLE_CLAIMS = ("roles", ROLE_CLAIM_URI)
#: Where a display name and a stable id come from, best first. Client-credential tokens (automation
#: clients) have no name: their app id stands in.
_NAME_CLAIMS = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
_APP_NAME_CLAIMS = ("appid", "azp")
_ID_CLAIMS = (
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "sub",
)
#: Names and ids end up in audit rows and logs: a bound keeps a hostile header from bloating them.
MAX_IDENTITY_CHARS = 256


class AuthMode(StrEnum):
    ENTRA = "entra"
    DEV = "dev"
    KEY = "key"


class Role(StrEnum):
    """The app roles (Entra app roles of the same values), ordered: a higher role includes the lower ones."""

    #: Read everything: integrations, failures, jobs, recovery, metrics, audit.
    READER = "Rebound.Reader"
    #: + start and cancel jobs, replay recovery, and the operator actions to come.
    OPERATOR = "Rebound.Operator"
    #: + integration configs and other settings.
    ADMIN = "Rebound.Admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    # StrEnum would compare the strings ("Rebound.Admin" < "Rebound.Reader"): compare the ranks instead.
    def __lt__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank


_RANKS = {Role.READER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Principal(BaseModel):
    """The caller as the app sees it; `auth` names how it was authenticated (`aad`, `dev`, `key`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    id: str
    auth: str
    roles: frozenset[Role] = frozenset()

    @property
    def highest_role(self) -> Role | None:
        return max(self.roles, default=None)

    def has(self, role: Role) -> bool:
        """True when one of the principal's roles is `role` or includes it."""
        return any(held >= role for held in self.roles)


#: In `key` mode the Functions host checked a function key; the worker is not told which one, and
#: one key opens everything (today's behaviour), so the caller is the key holder with every role.
KEY_PRINCIPAL = Principal(name="function key", id="function-key", auth="key", roles=frozenset({Role.ADMIN}))


class RouteKind(StrEnum):
    #: `/api/health`, `/api/openapi.json`, the portal's page, files and sign-in config: anonymous in every mode.
    PUBLIC = "public"
    #: `POST /api/ingest/{integration}` and `POST /api/integrations/{integration}/messages`: senders hold
    #: function keys in every mode.
    INGEST = "ingest"
    #: Every other portal/API route: roles decide.
    API = "api"
    #: `GET /api/me`: any caller the app can name, with or without a role (the portal asks who is signed in).
    SIGNED_IN = "signed_in"

    @property
    def needs_principal(self) -> bool:
        """Whether the app names the caller of such a route before its handler runs."""
        return self in (RouteKind.API, RouteKind.SIGNED_IN)


class HttpAuthLevel(StrEnum):
    """The Functions auth level a route gets; the values are `azure.functions.AuthLevel`'s."""

    ANONYMOUS = "anonymous"
    FUNCTION = "function"


def auth_mode_from_environ(environ: Mapping[str, str]) -> AuthMode | None:
    """The mode as set, for decisions made at import (auth levels); never raises, because an import
    error fails worker indexing and no function would load. Unset: `entra`. Unreadable: None, which
    `http_auth_level` answers with the strictest level; the settings object rejects it on first use.
    """
    value = environ.get("AUTH_MODE", "").strip()
    if not value:
        return AuthMode.ENTRA
    try:
        return AuthMode(value)
    except ValueError:
        return None


def http_auth_level(kind: RouteKind, mode: AuthMode | None) -> HttpAuthLevel:
    """The Functions auth level of a route of this kind in this mode.

    In `entra` and `dev` the portal/API routes are anonymous at the Functions level because Easy
    Auth stands in front and the app itself requires the principal; in `key` they keep the key.
    """
    if kind is RouteKind.PUBLIC:
        return HttpAuthLevel.ANONYMOUS
    if kind.needs_principal and mode in (AuthMode.ENTRA, AuthMode.DEV):
        return HttpAuthLevel.ANONYMOUS
    return HttpAuthLevel.FUNCTION


def authenticate(mode: AuthMode, headers: Mapping[str, str], environ: Mapping[str, str]) -> Principal:
    """The caller of a portal/API route, or `Unauthenticated` (401).

    `headers` are the request's (looked up case-insensitively), `environ` the app's environment.
    Principal headers count only where a trusted front end set them: Easy Auth in Azure (`entra`),
    devhost locally (`dev`). In `key` mode they are ignored: nothing removes forged ones there.
    """
    if mode is AuthMode.KEY:
        return KEY_PRINCIPAL
    if mode is AuthMode.ENTRA and not _flag(environ, EASY_AUTH_ENABLED):
        raise Unauthenticated(
            "sign-in is unavailable: AUTH_MODE=entra, but App Service Authentication is not enabled for this app",
            details={"reason": "easy_auth_disabled"},
        )
    if mode is AuthMode.DEV and (environ.get(DEVHOST_MARKER) != "1" or _on_app_service(environ)):
        raise Unauthenticated(
            "sign-in is unavailable: AUTH_MODE=dev works under devhost only",
            details={"reason": "not_devhost"},
        )
    principal = parse_client_principal(headers)
    if principal is None:
        raise Unauthenticated("sign in first: this needs a signed-in user or client")
    return principal


def require(principal: Principal, role: Role) -> None:
    """Nothing when the principal holds `role` (or a higher one); `Forbidden` (403) otherwise."""
    if not principal.has(role):
        raise Forbidden(role.value)


def _scalar_as_text(value: Any) -> Any:
    # Easy Auth sends strings; a number or bool from another front end is still a claim value.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class _Claim(BaseModel):
    typ: str
    val: Annotated[str, BeforeValidator(_scalar_as_text)]


class _ClientPrincipal(BaseModel):
    """The decoded `X-MS-CLIENT-PRINCIPAL`, as documented in
    learn.microsoft.com/azure/app-service/configure-authentication-user-identities."""

    auth_typ: str = ""
    name_typ: str | None = None
    role_typ: str | None = None
    claims: list[_Claim] = []


def parse_client_principal(headers: Mapping[str, str]) -> Principal | None:
    """The principal in `X-MS-CLIENT-PRINCIPAL` (+ -NAME, -ID, -IDP), None without one.

    A header that does not decode is `Unauthenticated`: it came from the front end, and a front end
    that sends garbage is not one to trust.
    """
    by_name = {name.lower(): value for name, value in headers.items()}
    encoded = by_name.get(PRINCIPAL_HEADER.lower(), "").strip()
    if not encoded:
        return None
    try:
        document = _ClientPrincipal.model_validate_json(_b64decode(encoded))
    except (ValueError, ValidationError):
        raise Unauthenticated(
            "the client principal header does not decode", details={"reason": "bad_principal"}
        ) from None
    claims = _claims_by_type(document.claims)
    role_types = {*_ROLE_CLAIMS, *([document.role_typ] if document.role_typ else [])}
    roles = frozenset(Role(val) for typ in role_types for val in claims.get(typ, []) if val in _ROLE_VALUES)
    principal_id = _first(claims, _ID_CLAIMS) or by_name.get(PRINCIPAL_ID_HEADER.lower(), "").strip()
    name = (
        _first(claims, ([document.name_typ] if document.name_typ else []) + list(_NAME_CLAIMS))
        or by_name.get(PRINCIPAL_NAME_HEADER.lower(), "").strip()
        or _first(claims, _APP_NAME_CLAIMS)
        or principal_id
    )
    if not name or not principal_id:
        raise Unauthenticated("the client principal names nobody", details={"reason": "bad_principal"})
    auth = document.auth_typ or by_name.get(PRINCIPAL_IDP_HEADER.lower(), "").strip() or "unknown"
    return Principal(name=name[:MAX_IDENTITY_CHARS], id=principal_id[:MAX_IDENTITY_CHARS], auth=auth[:64], roles=roles)


_ROLE_VALUES = frozenset(role.value for role in Role)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as error:
        raise ValueError(str(error)) from None


def _claims_by_type(claims: Iterable[_Claim]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for claim in claims:
        found.setdefault(claim.typ, []).append(claim.val)
    return found


def _first(claims: Mapping[str, list[str]], types: Iterable[str]) -> str:
    for typ in types:
        for value in claims.get(typ, []):
            if value.strip():
                return value.strip()
    return ""


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() == "true"


def _on_app_service(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name, "").strip() for name in APP_SERVICE_MARKERS)


def encode_client_principal(document: Mapping[str, Any]) -> str:
    """`X-MS-CLIENT-PRINCIPAL` as Easy Auth sends it (base64 of the JSON); tests and fakes build headers with it."""
    return base64.b64encode(json.dumps(document).encode()).decode()
