"""The Failures page: `GET /api/portal` serves portal/index.html, `GET /api/portal/{*asset}` its static files,
and `GET /api/portal/config` how the page signs people in.

All three are anonymous: they hold no data, and every API call the page makes carries the caller's
sign-in (or, in key mode, the function key). Files are read from portal/ beside this package on
each request (they are small, and a deploy or an edit shows at once); `resolve_asset` is the one
gate between a URL and the file system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import azure.functions as func

from blueprints import api as routes
from blueprints.api import HttpApi, Param, Reply
from blueprints.http import error_response, json_response
from blueprints.schemas import NOT_MODIFIED, Error, SignInConfig
from shared.auth import AuthMode, RouteKind
from shared.errors import ConfigError, NotFound

bp = func.Blueprint()
api = HttpApi(bp, tag="portal")

PORTAL_DIR = Path(__file__).resolve().parent.parent / "portal"

#: The file types the portal ships. Anything else is a 404, so a stray file in portal/ is never served.
#: Explicit rather than `mimetypes`, which reads the OS registry (on Windows `.js` may come back text/plain,
#: and browsers refuse a module script that is not served as JavaScript).
CONTENT_TYPES: dict[str, tuple[str, str | None]] = {
    ".html": ("text/html", "utf-8"),
    ".css": ("text/css", "utf-8"),
    ".js": ("text/javascript", "utf-8"),
    ".json": ("application/json", "utf-8"),
    ".svg": ("image/svg+xml", "utf-8"),
    ".txt": ("text/plain", "utf-8"),
    ".png": ("image/png", None),
    ".ico": ("image/x-icon", None),
    ".woff2": ("font/woff2", None),
}

#: No file names are versioned (there is no build step), so the browser must revalidate every
#: time; the ETag keeps that to a 304 when nothing changed.
CACHE_CONTROL = "no-cache"

#: The page renders failure content that anyone who can send a message controls: scripts come only
#: from our own files, and the page cannot be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    mimetype: str
    charset: str | None
    etag: str


def resolve_asset(root: Path, asset: str) -> Path | None:
    """The file under `root` that the URL path `asset` names, or None when it must not be served.

    Refused: empty or absolute paths, backslashes and NULs, `.` / `..` / empty segments and hidden
    names, unknown file types, and anything that resolves (symlinks included) outside `root`.
    """
    if not asset or "\\" in asset or "\x00" in asset or asset.startswith("/"):
        return None
    parts = asset.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    if Path(parts[-1]).suffix.lower() not in CONTENT_TYPES:
        return None
    base = root.resolve()
    candidate = base.joinpath(*parts).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def load_static(path: Path) -> StaticFile:
    body = path.read_bytes()
    mimetype, charset = CONTENT_TYPES[path.suffix.lower()]
    return StaticFile(body, mimetype, charset, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def static_response(file: StaticFile, if_none_match: str | None, extra_headers: dict[str, str]) -> func.HttpResponse:
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": file.etag,
        "X-Content-Type-Options": "nosniff",
        **extra_headers,
    }
    if if_none_match and file.etag in {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}:
        return func.HttpResponse(status_code=304, headers=headers)
    content_type = file.mimetype + (f"; charset={file.charset}" if file.charset else "")
    return func.HttpResponse(file.body, status_code=200, headers={**headers, "Content-Type": content_type})


def without_trailing_slash(url: str) -> str | None:
    """`/api/portal/?code=k` → `/api/portal?code=k` (the page's relative links need the bare form); else None."""
    parts = urlsplit(url)
    if not parts.path.endswith("/"):
        return None
    return parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")


_ASSET = Param("asset", "path", "path under portal/, e.g. `js/main.js` (a catch-all: may contain `/`)", required=True)

# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "portal", "portal", "GET", kind=RouteKind.PUBLIC, role=None,
    summary="The Failures page",
    description="Anonymous: the page holds no data. It signs the user in as `GET /portal/config` says; in key "
    "mode it asks for the function key and sends it with every API call (`?code=<key>` in the page URL is taken "
    "as that key and removed from the address bar).",
    responses={
        200: Reply("the portal page", media_type="text/html", schema={"type": "string"}),
        304: NOT_MODIFIED,
        308: Reply("`/portal/` redirects to `/portal` (the page's relative links need it)"),
    },
)  # fmt: skip
async def portal(req: func.HttpRequest) -> func.HttpResponse:
    location = without_trailing_slash(req.url)
    if location is not None:
        return func.HttpResponse(status_code=308, headers={"Location": location})
    page = load_static(PORTAL_DIR / "index.html")
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Referrer-Policy": "no-referrer"}
    return static_response(page, req.headers.get("if-none-match"), headers)


@api.route(
    "portal_asset", "portal/{*asset}", "GET", kind=RouteKind.PUBLIC, role=None,
    summary="A static file of the Failures page (script, style, icon)",
    params=(_ASSET,),
    responses={
        200: Reply("the file, with its content type", media_type="*/*", schema={"type": "string"}),
        304: NOT_MODIFIED,
        404: Reply("no such file (or a path that leaves portal/)", Error),
    },
)  # fmt: skip
async def portal_asset(req: func.HttpRequest) -> func.HttpResponse:
    asset = req.route_params.get("asset", "")
    path = resolve_asset(PORTAL_DIR, asset)
    if path is None:
        return error_response(NotFound(f"the portal has no file {asset!r}"))
    return static_response(load_static(path), req.headers.get("if-none-match"), {})


#: Where Easy Auth (App Service Authentication, or devhost playing it) signs a browser in and out.
SIGN_IN = {AuthMode.ENTRA: "/.auth/login/aad", AuthMode.DEV: "/.auth/login/dev"}
SIGN_OUT = "/.auth/logout"


@api.route(
    "portal_config", "portal/config", "GET", kind=RouteKind.PUBLIC, role=None,
    summary="How the Failures page signs people in on this deployment",
    description="Anonymous (under the portal's files): the page reads it before anyone is signed in.",
    responses={200: Reply("the auth mode and where to sign in and out", SignInConfig)},
)  # fmt: skip
async def portal_config(req: func.HttpRequest) -> func.HttpResponse:
    mode = routes.AUTH_MODE
    if mode is None:
        return error_response(ConfigError("AUTH_MODE is not entra, dev or key; fix the app setting and restart"))
    keyed = mode is AuthMode.KEY
    config = SignInConfig(auth_mode=mode, sign_in=SIGN_IN.get(mode), sign_out=None if keyed else SIGN_OUT)
    return json_response(config, headers={"Cache-Control": "no-store"})
