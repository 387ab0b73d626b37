"""Where outbound requests may go, and which app settings they may carry: one pure policy.

Anything Rebound sends to an address a config names (HTTP endpoints today; pickup sources and
alert webhooks later) passes through an `EgressPolicy`:

- `check_url` at save time refuses a URL whose host is a literal address the policy refuses.
  A host *name* cannot be judged then (DNS answers change), so names are judged by
  `check_address` on every connection, after resolution (`shared.delivery.adapters.egress_network`).
- `check_address` refuses the cloud metadata addresses always, and every address that is not
  public unless `allow_private` (ALLOW_PRIVATE_ENDPOINTS) is set. IPv6 forms that carry an
  IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by what they reach.
- `check_header_references` refuses `%NAME%` references to app settings outside the
  allowlist (ENDPOINT_SECRET_SETTINGS): without it, any app setting, storage keys included,
  could be sent to a receiver.

Every check returns a problem sentence (for a 422 field message or a failure reason), or None.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: `%NAME%` in an endpoint header value names an app setting whose value is sent in its place.
SETTING_REFERENCE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")

ALLOW_PRIVATE_SETTING = "ALLOW_PRIVATE_ENDPOINTS"
SECRET_SETTINGS_SETTING = "ENDPOINT_SECRET_SETTINGS"

#: Instance metadata and platform services: answering them hands out the app's identity tokens
#: (169.254.169.254: Azure IMDS, AWS, GCP; fd00:ec2::254: AWS IMDS over IPv6; 168.63.129.16: the
#: Azure wireserver, a public address that is only meaningful from inside Azure). Never allowed.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "168.63.129.16")
)

_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Hosts that inet_aton may read as an IPv4 address: decimal, octal and hex parts, 1 to 4 of them.
_NUMERIC_HOST = re.compile(r"^[0-9A-Fa-fXx.]+$")


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host spells literally, in any spelling a resolver accepts; None for a name.

    Besides dotted quads and IPv6 (bracketed or not), this reads the forms the C resolver reads
    (`2852039166`, `0xA9FEA9FE`, `0251.0376.0251.0376`, `169.254.43518`) and a trailing dot, so a
    URL that did not go through a WHATWG parser is judged as the address it would connect to.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.removesuffix(".")
    try:
        return _without_scope(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _without_scope(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def reached_addresses(address: IPAddress) -> list[IPAddress]:
    """The addresses a connection to `address` reaches: itself, or the IPv4 address it carries.

    IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`)
    addresses reach the IPv4 address; a 6to4 address (`2002:aabb:ccdd::`) is judged as both.
    """
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    value = int(address)
    if value >> 32 == 0 and value > 1:
        return [ipaddress.IPv4Address(value)]
    if address in _NAT64:
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address, address.sixtofour]
    return [address]


def non_public_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is (`"a loopback address"`), or None when it is public."""
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address):
        if any(address in network for network in _RFC1918):
            return "a private address (RFC 1918)"
        if address in _CGNAT:
            return "a shared CGNAT address (100.64.0.0/10)"
    elif address in _UNIQUE_LOCAL:
        return "a unique-local address (fc00::/7)"
    elif address.is_site_local:
        return "a site-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved or not address.is_global:
        return "a reserved or special-purpose address"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """Built once from Settings (`Settings.egress_policy()`); the defaults are the secure ones."""

    allow_private: bool = False
    secret_settings: frozenset[str] = field(default_factory=frozenset)

    def check_address(self, address: IPAddress | str) -> str | None:
        """Why a connection to this address is refused, or None when it may go ahead."""
        ip = _without_scope(ipaddress.ip_address(address)) if isinstance(address, str) else _without_scope(address)
        reached = reached_addresses(ip)
        shown = str(ip) if reached == [ip] else f"{ip} (reaching {', '.join(str(a) for a in reached if a != ip)})"
        if any(a in METADATA_ADDRESSES for a in reached):
            return f"{shown} is a cloud metadata address, which is always refused"
        if self.allow_private:
            return None
        for reached_address in reached:
            kind = non_public_kind(reached_address)
            if kind is not None:
                return f"{shown} is {kind}, refused unless {ALLOW_PRIVATE_SETTING}=true"
        return None

    def check_url(self, url: str) -> str | None:
        """Why this URL is refused at save time, or None. Only literal addresses are judged here."""
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return "is not a valid URL"
        if not host:
            return "has no host"
        address = literal_address(host)
        if address is None:
            return None  # a name: judged after resolution, on every connection
        return self.check_address(address)

    def check_setting_reference(self, name: str) -> str | None:
        """Why `%name%` may not be sent to a receiver, or None when the setting is allowlisted."""
        if name in self.secret_settings:
            return None
        return f"references app setting {name!r}, which is not listed in {SECRET_SETTINGS_SETTING}"

    def check_header_references(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """(header, problem) for every header value that references a setting outside the allowlist."""
        problems: list[tuple[str, str]] = []
        for header, value in headers.items():
            refused = [p for name in SETTING_REFERENCE.findall(value) if (p := self.check_setting_reference(name))]
            if refused:
                problems.append((header, "; ".join(dict.fromkeys(refused))))
        return problems
