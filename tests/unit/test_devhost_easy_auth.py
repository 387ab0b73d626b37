"""devhost's Easy Auth and per-function keys, the pure parts (the HTTP side: tests/e2e/test_devhost.py)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from devhost.easy_auth import (
    DevUser,
    EasyAuth,
    SignInRefused,
    parse_users,
    principal_headers,
    render_login_page,
    safe_redirect,
    without_front_end_headers,
)
from devhost.errors import StartupError
from devhost.host import easy_auth, function_keys
from shared.auth import Principal, Role, parse_client_principal

USERS = {
    "admin": DevUser("admin", ("Rebound.Admin",)),
    "reader": DevUser("reader", ("Rebound.Reader",)),
}


# DEVHOST_USERS


def test_dev_users_are_read_with_their_roles():
    # When
    users = parse_users(
        '{"admin": ["Rebound.Admin"], "both": ["Rebound.Reader", "Rebound.Operator", "Rebound.Reader"]}'
    )

    # Then
    assert users == {
        "admin": DevUser("admin", ("Rebound.Admin",)),
        "both": DevUser("both", ("Rebound.Reader", "Rebound.Operator")),
    }


def test_no_dev_users_is_allowed():
    # When / Then
    assert parse_users("") == {}
    assert parse_users("{}") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{admin: []}", "not valid JSON"),
        ('["admin"]', "must be a JSON object"),
        ('{"ad min": []}', "user 'ad min'"),
        ('{"admin": "Rebound.Admin"}', "needs a list of role names"),
        ('{"admin": [1]}', "needs a list of role names"),
        ('{"admin": ["Rebound Admin"]}', "needs a list of role names"),
    ],
)
def test_malformed_dev_users_stop_start_up_saying_why(text, message):
    # When / Then
    with pytest.raises(StartupError, match=message):
        parse_users(text)


# Headers


def test_every_principal_and_token_header_a_client_sends_is_removed_whatever_its_case():
    # Given
    headers = CIMultiDict(
        [
            ("X-MS-CLIENT-PRINCIPAL", "forged"),
            ("x-ms-client-principal-name", "admin"),
            ("X-Ms-Client-Principal-Id", "1"),
            ("X-MS-CLIENT-PRINCIPAL-IDP", "aad"),
            ("X-MS-TOKEN-AAD-ACCESS-TOKEN", "t"),
            ("X-Other", "kept"),
            ("Authorization", "Bearer dev:admin"),
        ]
    )

    # When
    kept = without_front_end_headers(headers)

    # Then
    assert list(kept.items()) == [("X-Other", "kept"), ("Authorization", "Bearer dev:admin")]


def test_the_principal_devhost_injects_is_the_one_the_app_reads():
    # Given
    user = DevUser("operator", ("Rebound.Operator", "Custom.Role"))

    # When
    principal = parse_client_principal(principal_headers(user))

    # Then: the name is the user name, the provider "dev", unknown roles are ignored by the app
    assert principal == Principal(name="operator", id="operator", auth="dev", roles=frozenset({Role.OPERATOR}))
    assert principal_headers(user)["X-MS-CLIENT-PRINCIPAL-IDP"] == "dev"
    assert principal_headers(user)["X-MS-CLIENT-PRINCIPAL-NAME"] == "operator"


# Identifying the caller


@pytest.mark.parametrize(
    ("headers", "cookies", "expected"),
    [
        pytest.param({"Authorization": "Bearer dev:admin"}, {}, "admin", id="bearer"),
        pytest.param({"Authorization": "bearer  dev:reader "}, {}, "reader", id="bearer-any-case"),
        pytest.param({}, {"AppServiceAuthSession": "reader"}, "reader", id="cookie"),
        pytest.param(
            {"Authorization": "Bearer dev:admin"}, {"AppServiceAuthSession": "reader"}, "admin", id="bearer-wins"
        ),
        pytest.param({}, {}, None, id="anonymous"),
        pytest.param({"Authorization": "Basic YTpi"}, {}, None, id="other-scheme-passes"),
    ],
)
def test_a_dev_user_is_signed_in_by_bearer_token_or_session_cookie(headers, cookies, expected):
    # When
    user = EasyAuth(USERS).identify(headers, cookies)

    # Then
    assert (user.name if user else None) == expected


@pytest.mark.parametrize(
    ("headers", "cookies", "message"),
    [
        pytest.param({"Authorization": "Bearer dev:root"}, {}, "'root' is not a dev user", id="unknown-user"),
        pytest.param({"Authorization": "Bearer dev:"}, {}, "'' is not a dev user", id="empty-user"),
        pytest.param({"Authorization": "Bearer eyJhbGciOi.x.y"}, {}, "dev:<user> only", id="not-a-dev-token"),
        pytest.param({}, {"AppServiceAuthSession": "gone"}, "'gone' is not a dev user", id="stale-cookie"),
    ],
)
def test_an_unknown_dev_user_is_refused(headers, cookies, message):
    # When / Then
    with pytest.raises(SignInRefused, match=message):
        EasyAuth(USERS).identify(headers, cookies)


# Redirects


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, "/fallback"),
        ("", "/fallback"),
        ("/api/portal", "/api/portal"),
        ("/api/portal?tab=jobs#x", "/api/portal?tab=jobs#x"),
        ("https://evil.example/", None),
        ("//evil.example/", None),
        ("/\\evil.example/", None),
        ("/%5Cevil.example/", None),
        ("/%2F%2Fevil.example", None),  # harmless in a browser, refused anyway: nothing needs it
        ("%2F%2Fevil.example", None),
        ("api/portal", None),
        ("javascript:alert(1)", None),
        ("/api/portal%0d%0aSet-Cookie:x=1", None),
    ],
)
def test_only_same_origin_relative_paths_are_redirect_targets(target, expected):
    # When / Then
    assert safe_redirect(target, "/fallback") == expected


# The sign-in page


def test_the_sign_in_page_labels_one_choice_per_user_and_escapes_what_it_echoes():
    # When
    page = render_login_page(USERS.values(), '/api/portal?x="><script>')

    # Then
    assert '<html lang="en">' in page
    assert '<label for="user-admin">admin <span class="roles">(Rebound.Admin)</span></label>' in page
    assert 'id="user-reader" value="reader"' in page
    assert 'value="/api/portal?x=&quot;&gt;&lt;script&gt;"' in page
    assert "<script>" not in page


def test_the_sign_in_page_says_so_when_there_are_no_users():
    # When / Then
    assert "DEVHOST_USERS defines no users" in render_login_page([], "/")


# Turning Easy Auth on, and the marker


def test_dev_mode_turns_easy_auth_on_and_marks_the_apps_environment():
    # Given
    environ: dict[str, str] = {}

    # When
    front_end = easy_auth({"AUTH_MODE": "dev", "DEVHOST_USERS": '{"admin": ["Rebound.Admin"]}'}, environ)

    # Then
    assert front_end is not None and set(front_end.users) == {"admin"}
    assert environ == {"DEVHOST_EASY_AUTH": "1"}


@pytest.mark.parametrize("mode", ["entra", "key", "", "DEV"])
def test_other_modes_leave_easy_auth_off_and_remove_a_marker_set_by_anyone_else(mode):
    # Given: a marker inherited from the shell or local.settings.json
    environ = {"DEVHOST_EASY_AUTH": "1", "OTHER": "x"}

    # When
    front_end = easy_auth({"AUTH_MODE": mode, "DEVHOST_EASY_AUTH": "1"}, environ)

    # Then
    assert front_end is None
    assert environ == {"OTHER": "x"}


# Per-function keys


def test_per_function_keys_are_read_for_the_functions_there_are():
    # When
    keys = function_keys({"DEVHOST_FUNCTION_KEYS": '{"Ingest_Message": " k1 "}'}, ["ingest_message", "health"])

    # Then
    assert keys == {"ingest_message": "k1"}


def test_no_per_function_keys_is_allowed():
    # When / Then
    assert function_keys({}, ["health"]) == {}
    assert function_keys({"DEVHOST_FUNCTION_KEYS": " "}, ["health"]) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('["ingest_message"]', "must be a JSON object"),
        ('{"ingest": "k"}', "'ingest', which is no HTTP function"),
        ('{"ingest_message": ""}', "must be a non-empty string"),
        ('{"ingest_message": 5}', "must be a non-empty string"),
    ],
)
def test_malformed_per_function_keys_stop_start_up_saying_why(text, message):
    # When / Then
    with pytest.raises(StartupError, match=message):
        function_keys({"DEVHOST_FUNCTION_KEYS": text}, ["ingest_message"])
