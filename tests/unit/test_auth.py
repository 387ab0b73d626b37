"""shared.auth: roles, the Easy Auth principal, the mode/platform rule and the Functions auth levels."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.auth import (
    KEY_PRINCIPAL,
    ROLE_CLAIM_URI,
    AuthMode,
    HttpAuthLevel,
    Principal,
    Role,
    RouteKind,
    auth_mode_from_environ,
    authenticate,
    encode_client_principal,
    http_auth_level,
    parse_client_principal,
    require,
)
from shared.errors import ConfigError, Forbidden, Unauthenticated
from shared.settings import Settings

EASY_AUTH_ON = {"WEBSITE_AUTH_ENABLED": "True", "WEBSITE_SITE_NAME": "func-api-x"}
UNDER_DEVHOST = {"DEVHOST_EASY_AUTH": "1"}
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def entra_user(*roles: str, name: str = "Ada Lovelace", oid: str = "0b5d-ada") -> dict[str, str]:
    """Headers as Easy Auth injects them for an Entra ID user with these app roles."""
    claims = [
        {"typ": OID, "val": oid},
        {"typ": "name", "val": name},
        {"typ": "preferred_username", "val": "ada@contoso.example"},
        *({"typ": "roles", "val": role} for role in roles),
    ]
    document = {
        "auth_typ": "aad",
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "role_typ": ROLE_CLAIM_URI,
        "claims": claims,
    }
    return {
        "X-MS-CLIENT-PRINCIPAL": encode_client_principal(document),
        "X-MS-CLIENT-PRINCIPAL-NAME": "ada@contoso.example",
        "X-MS-CLIENT-PRINCIPAL-ID": oid,
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }


def encoded(document: Any) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode()}


# Roles


@pytest.mark.parametrize(
    ("lower", "higher"),
    [(Role.READER, Role.OPERATOR), (Role.OPERATOR, Role.ADMIN), (Role.READER, Role.ADMIN)],
)
def test_roles_are_ordered_by_what_they_allow_not_by_their_spelling(lower, higher):
    # Then ("Rebound.Admin" < "Rebound.Reader" as strings)
    assert lower < higher
    assert higher > lower
    assert lower <= higher and higher >= lower
    assert max(lower, higher) is higher


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        ({Role.READER}, Role.READER, True),
        ({Role.READER}, Role.OPERATOR, False),
        ({Role.OPERATOR}, Role.READER, True),
        ({Role.OPERATOR}, Role.OPERATOR, True),
        ({Role.OPERATOR}, Role.ADMIN, False),
        ({Role.ADMIN}, Role.READER, True),
        ({Role.ADMIN}, Role.OPERATOR, True),
        ({Role.ADMIN}, Role.ADMIN, True),
        (set(), Role.READER, False),
    ],
)
def test_a_role_includes_every_role_below_it(held, needed, allowed):
    # Given
    principal = Principal(name="ada", id="1", auth="aad", roles=frozenset(held))

    # When / Then
    assert principal.has(needed) is allowed


def test_a_missing_role_is_forbidden_naming_the_role_needed():
    # Given
    reader = Principal(name="ada", id="1", auth="aad", roles=frozenset({Role.READER}))

    # When
    with pytest.raises(Forbidden) as raised:
        require(reader, Role.OPERATOR)

    # Then
    assert raised.value.http_status == 403
    assert raised.value.to_body()["error"] == {
        "code": "forbidden",
        "message": "this needs the role Rebound.Operator",
        "details": {"required_role": "Rebound.Operator"},
    }


def test_the_role_held_is_enough():
    # Given
    operator = Principal(name="ada", id="1", auth="aad", roles=frozenset({Role.OPERATOR}))

    # When / Then (no exception)
    require(operator, Role.READER)
    require(operator, Role.OPERATOR)
    assert operator.highest_role is Role.OPERATOR


# Parsing X-MS-CLIENT-PRINCIPAL


def test_an_entra_user_is_read_from_the_easy_auth_headers():
    # When
    principal = parse_client_principal(entra_user("Rebound.Operator", "Rebound.Reader"))

    # Then
    assert principal == Principal(
        name="Ada Lovelace", id="0b5d-ada", auth="aad", roles=frozenset({Role.OPERATOR, Role.READER})
    )
    assert principal.highest_role is Role.OPERATOR


@pytest.mark.parametrize(
    "role_claim",
    [
        pytest.param({"typ": "roles", "val": "Rebound.Admin"}, id="entra-roles-claim"),
        pytest.param({"typ": ROLE_CLAIM_URI, "val": "Rebound.Admin"}, id="role-typ-uri"),
        pytest.param({"typ": "custom-role", "val": "Rebound.Admin"}, id="the-role_typ-it-names"),
    ],
)
def test_roles_come_from_the_roles_claims_under_either_name(role_claim):
    # Given
    document = {"auth_typ": "aad", "role_typ": "custom-role", "claims": [{"typ": "oid", "val": "1"}, role_claim]}

    # When
    principal = parse_client_principal(encoded(document))

    # Then
    assert principal is not None and principal.roles == {Role.ADMIN}


def test_unknown_roles_and_other_claims_named_like_roles_grant_nothing():
    # Given
    document = {
        "auth_typ": "aad",
        "claims": [
            {"typ": "oid", "val": "1"},
            {"typ": "roles", "val": "Rebound.Owner"},
            {"typ": "roles", "val": "rebound.admin"},
            {"typ": "groups", "val": "Rebound.Admin"},
            {"typ": "name", "val": "Rebound.Admin"},
        ],
    }

    # When
    principal = parse_client_principal(encoded(document))

    # Then
    assert principal is not None and principal.roles == frozenset()


def test_an_automation_client_with_a_client_credential_token_is_named_by_its_app_id():
    # Given: an app-only token has no name claim, only the caller's app id and object id
    document = {
        "auth_typ": "aad",
        "claims": [
            {"typ": OID, "val": "sp-object-id"},
            {"typ": "appid", "val": "a1b2-client"},
            {"typ": "roles", "val": "Rebound.Operator"},
        ],
    }

    # When
    principal = parse_client_principal(encoded(document))

    # Then
    assert principal == Principal(name="a1b2-client", id="sp-object-id", auth="aad", roles={Role.OPERATOR})


def test_the_name_and_id_headers_stand_in_when_the_claims_lack_them():
    # Given
    headers = {
        **encoded({"auth_typ": "", "claims": []}),
        "x-ms-client-principal-name": "svc@contoso.example",
        "x-ms-client-principal-id": "42",
        "x-ms-client-principal-idp": "aad",
    }

    # When
    principal = parse_client_principal(headers)

    # Then
    assert principal == Principal(name="svc@contoso.example", id="42", auth="aad")


def test_headers_are_found_whatever_their_case():
    # Given
    headers = {name.lower(): value for name, value in entra_user("Rebound.Reader").items()}

    # When / Then
    assert parse_client_principal(headers) == parse_client_principal(entra_user("Rebound.Reader"))


def test_no_principal_header_is_no_principal():
    # When / Then
    assert parse_client_principal({"X-MS-CLIENT-PRINCIPAL-NAME": "ada"}) is None
    assert parse_client_principal({"X-MS-CLIENT-PRINCIPAL": "  "}) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not base64 at all!", id="not-base64"),
        pytest.param(base64.b64encode(b"{not json").decode(), id="not-json"),
        pytest.param(base64.b64encode(b'["a list"]').decode(), id="not-an-object"),
        pytest.param(base64.b64encode(b'{"claims": "none"}').decode(), id="claims-not-a-list"),
        pytest.param(base64.b64encode(b'{"claims": [{"typ": "name"}]}').decode(), id="claim-without-value"),
        pytest.param(base64.b64encode(b'{"auth_typ": "aad", "claims": []}').decode(), id="names-nobody"),
    ],
)
def test_a_principal_header_that_does_not_decode_is_refused(value):
    # When
    with pytest.raises(Unauthenticated) as raised:
        parse_client_principal({"X-MS-CLIENT-PRINCIPAL": value})

    # Then
    assert raised.value.http_status == 401
    assert raised.value.details == {"reason": "bad_principal"}


def test_unpadded_base64_and_numeric_claim_values_are_accepted():
    # Given
    text = json.dumps({"auth_typ": "aad", "claims": [{"typ": "oid", "val": 10000}, {"typ": "name", "val": "n"}]})
    unpadded = base64.b64encode(text.encode()).decode().rstrip("=")

    # When
    principal = parse_client_principal({"X-MS-CLIENT-PRINCIPAL": unpadded})

    # Then
    assert principal == Principal(name="n", id="10000", auth="aad")


def test_a_huge_name_is_cut_to_a_bound():
    # When
    principal = parse_client_principal(entra_user("Rebound.Reader", name="x" * 10_000))

    # Then
    assert principal is not None and len(principal.name) == 256


# The mode/platform rule


@pytest.mark.parametrize(
    ("mode", "environ"),
    [
        pytest.param(AuthMode.ENTRA, EASY_AUTH_ON, id="entra-with-easy-auth"),
        pytest.param(AuthMode.ENTRA, {"WEBSITE_AUTH_ENABLED": "true"}, id="entra-flag-any-case"),
        pytest.param(AuthMode.DEV, UNDER_DEVHOST, id="dev-under-devhost"),
    ],
)
def test_the_principal_is_trusted_where_a_front_end_vouches_for_it(mode, environ):
    # When
    principal = authenticate(mode, entra_user("Rebound.Admin"), environ)

    # Then
    assert principal.name == "Ada Lovelace"
    assert principal.roles == {Role.ADMIN}


@pytest.mark.parametrize(
    ("mode", "environ", "reason"),
    [
        pytest.param(AuthMode.ENTRA, {}, "easy_auth_disabled", id="entra-without-easy-auth"),
        pytest.param(AuthMode.ENTRA, {"WEBSITE_AUTH_ENABLED": "False"}, "easy_auth_disabled", id="entra-easy-auth-off"),
        pytest.param(AuthMode.ENTRA, UNDER_DEVHOST, "easy_auth_disabled", id="entra-under-devhost"),
        pytest.param(AuthMode.DEV, {}, "not_devhost", id="dev-without-devhost"),
        pytest.param(AuthMode.DEV, {"DEVHOST_EASY_AUTH": "true"}, "not_devhost", id="dev-marker-not-1"),
        pytest.param(AuthMode.DEV, {**UNDER_DEVHOST, **EASY_AUTH_ON}, "not_devhost", id="dev-on-app-service"),
        pytest.param(
            AuthMode.DEV, {**UNDER_DEVHOST, "WEBSITE_INSTANCE_ID": "abc"}, "not_devhost", id="dev-on-an-instance"
        ),
    ],
)
def test_a_forged_principal_is_refused_where_no_front_end_vouches_for_it(mode, environ, reason):
    # Given: a client sending an admin principal header itself
    forged = entra_user("Rebound.Admin")

    # When
    with pytest.raises(Unauthenticated) as raised:
        authenticate(mode, forged, environ)

    # Then
    assert raised.value.http_status == 401
    assert raised.value.code == "unauthenticated"
    assert raised.value.details == {"reason": reason}


@pytest.mark.parametrize(("mode", "environ"), [(AuthMode.ENTRA, EASY_AUTH_ON), (AuthMode.DEV, UNDER_DEVHOST)])
def test_no_principal_is_401_even_behind_a_trusted_front_end(mode, environ):
    # When
    with pytest.raises(Unauthenticated) as raised:
        authenticate(mode, {"Authorization": "Bearer something"}, environ)

    # Then
    assert raised.value.to_body()["error"]["code"] == "unauthenticated"


def test_key_mode_ignores_principal_headers_and_the_key_holder_is_an_admin():
    # Given: a reader principal sent by a client (nothing strips it in key mode)
    headers = entra_user("Rebound.Reader")

    # When
    principal = authenticate(AuthMode.KEY, headers, {})

    # Then
    assert principal is KEY_PRINCIPAL
    assert principal.roles == {Role.ADMIN}
    assert principal.auth == "key"


# Auth levels decided at import


@pytest.mark.parametrize(
    ("kind", "mode", "level"),
    [
        (RouteKind.PUBLIC, AuthMode.ENTRA, HttpAuthLevel.ANONYMOUS),
        (RouteKind.PUBLIC, AuthMode.DEV, HttpAuthLevel.ANONYMOUS),
        (RouteKind.PUBLIC, AuthMode.KEY, HttpAuthLevel.ANONYMOUS),
        (RouteKind.PUBLIC, None, HttpAuthLevel.ANONYMOUS),
        (RouteKind.INGEST, AuthMode.ENTRA, HttpAuthLevel.FUNCTION),
        (RouteKind.INGEST, AuthMode.DEV, HttpAuthLevel.FUNCTION),
        (RouteKind.INGEST, AuthMode.KEY, HttpAuthLevel.FUNCTION),
        (RouteKind.INGEST, None, HttpAuthLevel.FUNCTION),
        (RouteKind.API, AuthMode.ENTRA, HttpAuthLevel.ANONYMOUS),
        (RouteKind.API, AuthMode.DEV, HttpAuthLevel.ANONYMOUS),
        (RouteKind.API, AuthMode.KEY, HttpAuthLevel.FUNCTION),
        (RouteKind.API, None, HttpAuthLevel.FUNCTION),
    ],
)
def test_each_kind_of_route_gets_its_functions_auth_level_per_mode(kind, mode, level):
    # When / Then
    assert http_auth_level(kind, mode) is level


def test_the_levels_are_the_functions_librarys_values():
    # Given
    import azure.functions as func

    # Then (blueprints turn one into the other with func.AuthLevel(level.value))
    assert {func.AuthLevel(level.value) for level in HttpAuthLevel} == {
        func.AuthLevel.ANONYMOUS,
        func.AuthLevel.FUNCTION,
    }


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({}, AuthMode.ENTRA),
        ({"AUTH_MODE": ""}, AuthMode.ENTRA),
        ({"AUTH_MODE": "entra"}, AuthMode.ENTRA),
        ({"AUTH_MODE": " dev "}, AuthMode.DEV),
        ({"AUTH_MODE": "key"}, AuthMode.KEY),
        ({"AUTH_MODE": "KEY"}, None),
        ({"AUTH_MODE": "none"}, None),
    ],
)
def test_the_mode_read_at_import_defaults_to_entra_and_never_raises(environ, mode):
    # When / Then
    assert auth_mode_from_environ(environ) is mode


# Settings


def test_auth_mode_is_entra_unless_set():
    # When / Then
    assert Settings.from_env({}).auth_mode is AuthMode.ENTRA
    assert Settings.from_env({"AUTH_MODE": "dev"}).auth_mode is AuthMode.DEV
    assert Settings.from_env({"AUTH_MODE": "key"}).auth_mode is AuthMode.KEY


def test_an_unknown_auth_mode_is_a_config_error_naming_the_setting():
    # When
    with pytest.raises(ConfigError, match="AUTH_MODE"):
        Settings.from_env({"AUTH_MODE": "none"})
