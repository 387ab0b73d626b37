"""The portal's static files: path resolution that never leaves portal/, content types, caching."""

from __future__ import annotations

from pathlib import Path

import azure.functions as func
import pytest

from blueprints import ui
from blueprints.ui import CONTENT_TYPES, PORTAL_DIR, load_static, resolve_asset, static_response, without_trailing_slash


@pytest.fixture
def root(tmp_path: Path) -> Path:
    portal = tmp_path / "portal"
    (portal / "js" / "views").mkdir(parents=True)
    (portal / "index.html").write_text("<!doctype html>")
    (portal / "js" / "main.js").write_text("export {};")
    (portal / "js" / "views" / "a.js").write_text("export {};")
    (portal / ".hidden.js").write_text("secret")
    (portal / "notes.py").write_text("print()")
    (tmp_path / "secret.js").write_text("outside")
    (portal / "link.js").symlink_to(tmp_path / "secret.js")
    return portal


@pytest.mark.parametrize("asset", ["index.html", "js/main.js", "js/views/a.js"])
def test_files_under_portal_resolve(root, asset):
    assert resolve_asset(root, asset) == (root / asset).resolve()


@pytest.mark.parametrize(
    "asset",
    [
        "",
        "../secret.js",
        "js/../../secret.js",
        "js/../index.html",  # `..` is refused outright, even when it would stay inside
        "./index.html",
        "/etc/passwd",
        "js//main.js",
        "js\\main.js",
        "index.html\x00.js",
        ".hidden.js",
        "notes.py",  # not a type the portal ships
        "missing.js",
        "js",  # a directory
        "link.js",  # a symlink pointing outside
    ],
)
def test_paths_that_leave_portal_or_are_not_portal_files_are_refused(root, asset):
    assert resolve_asset(root, asset) is None


def test_every_file_the_portal_ships_resolves_with_a_known_type():
    # Given the real portal folder
    files = [path for path in PORTAL_DIR.rglob("*") if path.is_file()]

    # Then each one is servable, so nothing the page links to can 404 for its type
    assert files
    for path in files:
        assert path.suffix in CONTENT_TYPES, path
        assert resolve_asset(PORTAL_DIR, path.relative_to(PORTAL_DIR).as_posix()) == path.resolve()


def test_a_file_is_served_with_its_type_no_cache_an_etag_and_nosniff(root):
    file = load_static(root / "js" / "main.js")

    response = static_response(file, None, {})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"] == file.etag
    assert response.get_body() == b"export {};"


@pytest.mark.parametrize("header", ['"x", {etag}', "{etag}", "W/{etag}"])
def test_a_matching_if_none_match_is_a_304_without_body(root, header):
    file = load_static(root / "index.html")

    response = static_response(file, header.format(etag=file.etag), {})

    assert response.status_code == 304
    assert response.get_body() == b""
    assert response.headers["ETag"] == file.etag


def test_a_changed_file_gets_a_new_etag(root):
    before = load_static(root / "index.html").etag
    (root / "index.html").write_text("<!doctype html><p>new")

    assert load_static(root / "index.html").etag != before


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/api/portal", None),
        ("http://h/api/portal?code=k", None),
        ("http://h/api/portal/", "/api/portal"),
        ("http://h/api/portal/?code=k", "/api/portal?code=k"),
    ],
)
def test_the_page_url_with_a_trailing_slash_redirects_to_the_bare_one(url, expected):
    assert without_trailing_slash(url) == expected


async def test_the_page_is_html_with_a_content_security_policy():
    response = await ui.portal(func.HttpRequest("GET", "http://localhost/api/portal", body=b""))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert b'<script type="module" src="portal/js/main.js">' in response.get_body()


async def test_an_asset_request_outside_portal_is_a_404_in_the_api_error_shape():
    request = func.HttpRequest(
        "GET", "http://localhost/api/portal/../host.json", body=b"", route_params={"asset": "../host.json"}
    )

    response = await ui.portal_asset(request)

    assert response.status_code == 404
    assert response.get_body().startswith(b'{"error":{"code":"not_found"')
