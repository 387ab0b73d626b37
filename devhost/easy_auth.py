"""devhost as App Service Authentication ("Easy Auth") in front of the app, for `AUTH_MODE=dev`.

What Easy Auth does in Azure, devhost does locally, so the app runs the same code in both:

- In every mode, client-sent `X-MS-CLIENT-PRINCIPAL*` (and `X-MS-TOKEN-*`) headers are removed:
  only the front end may set them.
- In `dev` mode, a caller is signed in by `Authorization: Bearer dev:<user>` or by the session
  cookie `/.auth/login/dev` sets, for the users `DEVHOST_USERS` defines (`{"user": ["role", ...]}`);
  devhost then injects `X-MS-CLIENT-PRINCIPAL` (base64 JSON of `auth_typ`, `name_typ`, `role_typ`,
  `claims`), `-NAME`, `-ID` and `-IDP` as Easy Auth does. The principal's name and id are the user
  name, its provider `dev`. A bearer token or cookie naming no such user is a 401.
- `/.auth/login/dev` (a page to pick a user), `/.auth/me` and `/.auth/logout` behave like their
  Easy Auth namesakes; redirects go to same-origin relative paths only.
- The app's environment gets `DEVHOST_EASY_AUTH=1` while devhost plays Easy Auth (and never
  otherwise): the app trusts the principal in `dev` mode only with that marker (shared/auth.py).

Unlike Easy Auth with `requireAuthentication`, devhost lets unauthenticated requests through
(Easy Auth's "allow anonymous"): the app refuses them itself. The session cookie holds the user
name unsigned: anyone who can reach devhost may send `Bearer dev:admin` anyway, so signing it
would protect nothing, and a plain cookie survives a devhost restart.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from devhost.errors import StartupError
from devhost.responses import error_response

logger = logging.getLogger(__name__)

AUTH_MODE_SETTING = "AUTH_MODE"
USERS_SETTING = "DEVHOST_USERS"
#: Set in the app's environment while devhost plays Easy Auth; shared/auth.py checks it.
MARKER_SETTING = "DEVHOST_EASY_AUTH"
MARKER_VALUE = "1"

AUTH_PATH_PREFIX = "/.auth/"
LOGIN_PATH = "/.auth/login/dev"
ME_PATH = "/.auth/me"
LOGOUT_PATH = "/.auth/logout"
#: Easy Auth's own session cookie name.
SESSION_COOKIE = "AppServiceAuthSession"
PROVIDER = "dev"
BEARER_PREFIX = "dev:"

#: Headers only the front end may set; Easy Auth removes them from client requests.
_FRONT_END_HEADER_PREFIXES = ("x-ms-client-principal", "x-ms-token-")
PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
NAME_CLAIM = "name"
ROLE_CLAIM = "roles"
ID_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class DevUser:
    name: str
    roles: tuple[str, ...]


class SignInRefused(Exception):
    """The caller named a dev user, but not one devhost knows (or not in a way it accepts)."""


def plays_easy_auth(settings: Mapping[str, str]) -> bool:
    return settings.get(AUTH_MODE_SETTING, "").strip() == "dev"


def parse_users(text: str) -> dict[str, DevUser]:
    """`DEVHOST_USERS`: a JSON object of user name → list of role names; empty means no users."""
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise StartupError(f"{USERS_SETTING} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise StartupError(f'{USERS_SETTING} must be a JSON object like {{"admin": ["Rebound.Admin"]}}')
    users: dict[str, DevUser] = {}
    for name, roles in document.items():
        if not _USER_NAME.match(name):
            raise StartupError(f"{USERS_SETTING}: user {name!r} must be letters, digits, '.', '_' or '-' (at most 64)")
        if not isinstance(roles, list) or not all(isinstance(r, str) and _ROLE_NAME.match(r) for r in roles):
            raise StartupError(f"{USERS_SETTING}: user {name!r} needs a list of role names")
        users[name] = DevUser(name=name, roles=tuple(dict.fromkeys(roles)))
    return users


def without_front_end_headers(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """The request headers minus every `X-MS-CLIENT-PRINCIPAL*` and `X-MS-TOKEN-*` a client sent."""
    return CIMultiDict(
        (name, value) for name, value in headers.items() if not name.lower().startswith(_FRONT_END_HEADER_PREFIXES)
    )


def claims(user: DevUser) -> list[dict[str, str]]:
    return [
        {"typ": ID_CLAIM, "val": user.name},
        {"typ": NAME_CLAIM, "val": user.name},
        *({"typ": ROLE_CLAIM, "val": role} for role in user.roles),
    ]


def principal_headers(user: DevUser) -> dict[str, str]:
    """What Easy Auth injects for a signed-in caller."""
    document = {"auth_typ": PROVIDER, "name_typ": NAME_CLAIM, "role_typ": ROLE_CLAIM, "claims": claims(user)}
    return {
        PRINCIPAL_HEADER: base64.b64encode(json.dumps(document).encode()).decode(),
        f"{PRINCIPAL_HEADER}-NAME": user.name,
        f"{PRINCIPAL_HEADER}-ID": user.name,
        f"{PRINCIPAL_HEADER}-IDP": PROVIDER,
    }


def safe_redirect(target: str | None, default: str) -> str | None:
    """`target` when it is a same-origin relative path, `default` when absent, None when refused.

    Refused: absolute URLs, scheme-relative `//host`, backslashes (browsers read `/\\host` as
    `//host`), and control characters, also when percent-encoded.
    """
    if target is None or target == "":
        return default
    decoded = unquote(target)
    if not target.startswith("/") or target.startswith("//") or "\\" in decoded or decoded.startswith("//"):
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in decoded):
        return None
    return target


class EasyAuth:
    """Identify callers and serve `/.auth/*` for the dev users."""

    def __init__(self, users: Mapping[str, DevUser]) -> None:
        self.users = dict(users)

    def identify(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> DevUser | None:
        """The signed-in dev user, None for an anonymous caller; `SignInRefused` for an unknown one.

        A bearer token wins over the cookie, as in Easy Auth. Authorization schemes other than
        Bearer pass through untouched.
        """
        authorization = headers.get("Authorization", "").strip()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer":
            token = token.strip()
            if not token.startswith(BEARER_PREFIX):
                raise SignInRefused(f"devhost accepts bearer tokens of the form {BEARER_PREFIX}<user> only")
            return self._user(token[len(BEARER_PREFIX) :])
        session = cookies.get(SESSION_COOKIE)
        if session:
            return self._user(session)
        return None

    def _user(self, name: str) -> DevUser:
        user = self.users.get(name)
        if user is None:
            raise SignInRefused(f"{name[:64]!r} is not a dev user ({USERS_SETTING} defines {self._names()})")
        return user

    def _names(self) -> str:
        return ", ".join(sorted(self.users)) or "none"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve a `/.auth/...` request."""
        path = request.path
        if path == LOGIN_PATH:
            if request.method == "GET":
                return self._login_page(request)
            if request.method == "POST":
                return await self._login(request)
            return _not_allowed(request.method, "GET, POST")
        if path == ME_PATH:
            return self._me(request) if request.method == "GET" else _not_allowed(request.method, "GET")
        if path == LOGOUT_PATH:
            return self._logout(request) if request.method == "GET" else _not_allowed(request.method, "GET")
        if path.startswith("/.auth/login/"):
            return error_response(404, "not_found", f"devhost signs in with the dev provider only: {LOGIN_PATH}")
        return error_response(404, "not_found", f"devhost serves {LOGIN_PATH}, {ME_PATH} and {LOGOUT_PATH}")

    def _login_page(self, request: web.Request) -> web.StreamResponse:
        target = safe_redirect(request.query.get("post_login_redirect_uri"), "/")
        if target is None:
            return _bad_redirect("post_login_redirect_uri")
        return web.Response(
            text=render_login_page(self.users.values(), target),
            content_type="text/html",
            charset="utf-8",
            headers=_NO_STORE,
        )

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        requested = fields.get("post_login_redirect_uri") or request.query.get("post_login_redirect_uri")
        target = safe_redirect(requested, "/")
        if target is None:
            return _bad_redirect("post_login_redirect_uri")
        try:
            user = self._user(fields.get("user", ""))
        except SignInRefused as refused:
            return unauthenticated(str(refused))
        response = _redirect(target)
        response.set_cookie(SESSION_COOKIE, user.name, path="/", httponly=True, samesite="Lax")
        logger.info("easy auth: signed in as dev user %s", user.name)
        return response

    def _me(self, request: web.Request) -> web.StreamResponse:
        try:
            user = self.identify(request.headers, request.cookies)
        except SignInRefused as refused:
            return unauthenticated(str(refused))
        if user is None:
            return unauthenticated("not signed in")
        # Easy Auth's shape; without a token store there are no tokens to list.
        body = [{"provider_name": PROVIDER, "user_id": user.name, "user_claims": claims(user)}]
        return web.json_response(body, headers=_NO_STORE)

    def _logout(self, request: web.Request) -> web.StreamResponse:
        target = safe_redirect(request.query.get("post_logout_redirect_uri"), LOGIN_PATH)
        if target is None:
            return _bad_redirect("post_logout_redirect_uri")
        response = _redirect(target)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response


_NO_STORE = {"Cache-Control": "no-store"}


def _redirect(target: str) -> web.Response:
    return web.Response(status=302, headers={"Location": target, **_NO_STORE})


def unauthenticated(message: str) -> web.Response:
    return error_response(401, "unauthenticated", message)


def _bad_redirect(parameter: str) -> web.Response:
    return error_response(
        400,
        "bad_parameter",
        f"{parameter}: only a relative path on this host, like /api/portal",
        details={"parameter": parameter},
    )


def _not_allowed(method: str, allow: str) -> web.Response:
    message = f"{method} is not allowed here (allowed: {allow})"
    return error_response(405, "method_not_allowed", message, {"Allow": allow})


def render_login_page(users: Iterable[DevUser], target: str) -> str:
    """A small accessible form: one radio button per dev user, labelled with its roles."""
    options = "\n".join(
        f'        <div><input type="radio" name="user" id="user-{html.escape(user.name)}" '
        f'value="{html.escape(user.name)}"{" checked" if index == 0 else ""} required>'
        f' <label for="user-{html.escape(user.name)}">{html.escape(user.name)}'
        f' <span class="roles">({html.escape(", ".join(user.roles) or "no roles")})</span></label></div>'
        for index, user in enumerate(users)
    )
    body = (
        f"""    <form method="post" action="{LOGIN_PATH}">
      <fieldset>
        <legend>Sign in as</legend>
{options}
      </fieldset>
      <input type="hidden" name="post_login_redirect_uri" value="{html.escape(target)}">
      <button type="submit">Sign in</button>
    </form>"""
        if options
        else f"    <p>{USERS_SETTING} defines no users: add some to local.settings.json and restart devhost.</p>"
    )
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Sign in (devhost)</title>
    <link rel="icon" href="data:,">
    <style>
      body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; }}
      fieldset {{ border: 1px solid #767676; padding: 1rem; }}
      fieldset div {{ margin: 0.25rem 0; }}
      .roles {{ color: #4a4a4a; }}
      button {{ margin-top: 1rem; font: inherit; padding: 0.4rem 1.2rem; }}
      :focus-visible {{ outline: 3px solid #1a5fb4; outline-offset: 2px; }}
    </style>
  </head>
  <body>
    <main>
    <h1>Sign in</h1>
    <p>Local development: devhost stands in for App Service Authentication. The users come from {USERS_SETTING}.</p>
{body}
    </main>
  </body>
</html>
"""
