"""What must never be shown or logged in clear: credential-bearing headers and URL parts.

Header values named here are masked wherever a person can read them (stored failure rows, the
API, the portal); the whole value is kept only where a resend needs it (the failure's overflow
blob). URLs are logged without userinfo and with credential query parameters masked, so a
function key passed as `?code=` never reaches a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

#: Exact names whose value is a credential.
_SENSITIVE_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-functions-key",
        "ocp-apim-subscription-key",
        "x-ms-client-principal",
    }
)
#: Any name holding one of these words as a `-`/`_`-separated part (`x-auth-token`, `client_secret`).
_SENSITIVE_PART = re.compile(
    r"(?:^|[-_])(?:token|secret|password|passwd|pwd|credential|credentials|session|sessionid|cookie|apikey|signature)"
    r"(?:$|[-_])",
    re.IGNORECASE,
)
#: Query parameters that carry credentials: Functions keys, SAS signatures, OAuth tokens.
_SENSITIVE_QUERY = frozenset(
    {"code", "sig", "signature", "key", "apikey", "api_key", "api-key", "token", "access_token", "password", "secret"}
)


def is_sensitive_header(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in _SENSITIVE_NAMES or _SENSITIVE_PART.search(lowered) is not None


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with every credential value replaced by `MASK` (names kept: they say what was sent)."""
    return {name: MASK if is_sensitive_header(name) else value for name, value in headers.items()}


def safe_url(url: str) -> str:
    """`url` fit for a log line: no userinfo, credential query values masked, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<unparseable url>"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    query = urlencode(
        [
            (name, MASK if name.lower() in _SENSITIVE_QUERY else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, host + port, parts.path, query, ""))
