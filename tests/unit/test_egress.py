"""The egress policy (shared/egress.py) and the network backend that applies it, without sockets."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import httpcore
import pytest

from shared.delivery.adapters.egress_network import SocketOption, VettedNetworkBackend
from shared.egress import EgressPolicy, IPAddress, literal_address
from shared.errors import ConfigError, EgressRefused

STRICT = EgressPolicy()
LOCAL = EgressPolicy(allow_private=True)

#: (address, refused with private endpoints off, refused with them on)
ADDRESSES = [
    # public
    ("93.184.215.14", False, False),
    ("8.8.8.8", False, False),
    ("2606:4700:4700::1111", False, False),
    ("::ffff:8.8.8.8", False, False),
    ("64:ff9b::808:808", False, False),
    # cloud metadata: refused whatever the setting says
    ("169.254.169.254", True, True),
    ("168.63.129.16", True, True),
    ("fd00:ec2::254", True, True),
    ("::ffff:169.254.169.254", True, True),
    ("::169.254.169.254", True, True),
    ("64:ff9b::a9fe:a9fe", True, True),
    ("::ffff:168.63.129.16", True, True),
    ("2002:a9fe:a9fe::1", True, True),
    ("fd00:ec2::254%eth0", True, True),
    # not public: refused unless private endpoints are allowed
    ("127.0.0.1", True, False),
    ("127.8.9.10", True, False),
    ("::1", True, False),
    ("::ffff:127.0.0.1", True, False),
    ("0.0.0.0", True, False),
    ("::", True, False),
    ("10.1.2.3", True, False),
    ("172.16.0.1", True, False),
    ("172.31.255.255", True, False),
    ("192.168.1.10", True, False),
    ("::ffff:10.0.0.1", True, False),
    ("169.254.1.1", True, False),
    ("fe80::1", True, False),
    ("fc00::1", True, False),
    ("fd12:3456::1", True, False),
    ("100.64.0.1", True, False),
    ("100.127.255.254", True, False),
    ("224.0.0.1", True, False),
    ("ff02::1", True, False),
    ("240.0.0.1", True, False),
    ("255.255.255.255", True, False),
    ("192.0.2.1", True, False),
    ("198.18.0.1", True, False),
    ("fec0::1", True, False),
    ("2001:db8::1", True, False),
]


@pytest.mark.parametrize(("address", "refused_strict", "refused_local"), ADDRESSES)
def test_address_is_refused_exactly_when_the_policy_says(address: str, refused_strict: bool, refused_local: bool):
    assert (STRICT.check_address(address) is not None) == refused_strict
    assert (LOCAL.check_address(address) is not None) == refused_local


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private address (RFC 1918)"),
        ("169.254.1.1", "link-local"),
        ("fd00::1", "unique-local"),
        ("100.64.0.1", "CGNAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "reaching 127.0.0.1"),
    ],
)
def test_a_refusal_says_which_rule_refused_the_address(address: str, words: str):
    problem = STRICT.check_address(address)

    assert problem is not None and words in problem
    assert "ALLOW_PRIVATE_ENDPOINTS=true" in problem


def test_a_metadata_refusal_says_it_is_always_refused():
    problem = LOCAL.check_address("169.254.169.254")

    assert problem == "169.254.169.254 is a cloud metadata address, which is always refused"


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "2852039166",
        "0xA9FEA9FE",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "169.254.43518",
        "0xa9.0xfe.0xa9.0xfe",
        "169.254.169.254.",
        "[::ffff:a9fe:a9fe]",
    ],
)
def test_every_spelling_of_the_metadata_address_is_read_as_that_address(host: str):
    address = literal_address(host)

    assert address is not None
    assert LOCAL.check_address(address) is not None


@pytest.mark.parametrize("host", ["example.com", "localhost", "deadbeef", "cafe.be", "1e100", "receiver.test"])
def test_a_host_name_is_not_a_literal_address(host: str):
    assert literal_address(host) is None


@pytest.mark.parametrize(
    ("url", "refused_strict", "refused_local"),
    [
        ("https://erp.example/orders", False, False),
        ("http://localhost:7072/orders", False, False),  # a name: judged after resolution, at delivery
        ("http://127.0.0.1:7072/orders", True, False),
        ("http://[::1]:8080/", True, False),
        ("http://10.0.0.5/", True, False),
        ("http://169.254.169.254/latest/meta-data/", True, True),
        ("http://2852039166/", True, True),
        ("http://0xA9FEA9FE/", True, True),
        ("http://[fd00:ec2::254]/", True, True),
        ("http://168.63.129.16/machine?comp=goalstate", True, True),
        ("http://user@169.254.169.254:80/", True, True),
        ("http://169.254.169.254.nip.io/", False, False),  # a name again
    ],
)
def test_a_url_is_refused_at_save_time_only_for_a_literal_address(url: str, refused_strict: bool, refused_local: bool):
    assert (STRICT.check_url(url) is not None) == refused_strict
    assert (LOCAL.check_url(url) is not None) == refused_local


def test_a_url_without_a_host_is_refused():
    assert STRICT.check_url("http:///path") == "has no host"


def test_only_allowlisted_settings_may_be_referenced_in_headers():
    # Given a policy that allows ORDERS_TOKEN only
    policy = EgressPolicy(secret_settings=frozenset({"ORDERS_TOKEN"}))
    headers = {
        "Authorization": "Bearer %ORDERS_TOKEN%",
        "X-Storage": "%AzureWebJobsStorage%",
        "X-Two": "%ORDERS_TOKEN%-%WEBSITE_AUTH_ENCRYPTION_KEY%-%WEBSITE_AUTH_ENCRYPTION_KEY%",
        "X-Plain": "100% cotton",
    }

    # When the headers are checked
    problems = dict(policy.check_header_references(headers))

    # Then each header with a non-allowlisted reference is named once, with the setting it references
    assert set(problems) == {"X-Storage", "X-Two"}
    assert "'AzureWebJobsStorage'" in problems["X-Storage"]
    assert "ENDPOINT_SECRET_SETTINGS" in problems["X-Storage"]
    assert problems["X-Two"].count("WEBSITE_AUTH_ENCRYPTION_KEY") == 1


def test_no_setting_may_be_referenced_by_default():
    assert EgressPolicy().check_header_references({"Authorization": "Bearer %ORDERS_TOKEN%"}) != []


# --- the network backend, with a fake resolver and a fake inner backend -------------------------


class FakeStream(httpcore.AsyncNetworkStream):
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore's
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 - httpcore's
        return None

    async def aclose(self) -> None:
        return None


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the real network: records where it was asked to connect; refuses listed hosts."""

    def __init__(self, unreachable: frozenset[str] = frozenset()) -> None:
        self.connected: list[tuple[str, int]] = []
        self.unreachable = unreachable

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host in self.unreachable:
            raise httpcore.ConnectError(f"{host} refused")
        self.connected.append((host, port))
        return FakeStream()

    async def sleep(self, seconds: float) -> None:
        return None


class ScriptedResolver:
    """Answers each lookup with the next answer of a script: DNS that changes between two connections."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return [ipaddress.ip_address(a) for a in self.answers.pop(0)]


async def test_the_backend_connects_to_the_address_it_checked_not_to_the_name():
    # Given a name that resolves to a public address
    inner = RecordingBackend()
    backend = VettedNetworkBackend(STRICT, inner=inner, resolver=ScriptedResolver(["93.184.215.14"]))

    # When a connection is opened to the name
    await backend.connect_tcp("receiver.example", 443, timeout=5)

    # Then the socket goes to the checked address, not to a second lookup of the name
    assert inner.connected == [("93.184.215.14", 443)]


async def test_a_name_rebound_to_loopback_on_the_next_connection_is_refused_before_connecting():
    # Given DNS that answers public first, then 127.0.0.1 (a rebinding attack)
    inner = RecordingBackend()
    resolver = ScriptedResolver(["93.184.215.14"], ["127.0.0.1"])
    backend = VettedNetworkBackend(STRICT, inner=inner, resolver=resolver)

    # When two connections are opened
    await backend.connect_tcp("rebind.example", 80, timeout=5)
    with pytest.raises(EgressRefused) as raised:
        await backend.connect_tcp("rebind.example", 80, timeout=5)

    # Then the name was resolved each time, and only the public address was connected to
    assert resolver.asked == ["rebind.example", "rebind.example"]
    assert inner.connected == [("93.184.215.14", 80)]
    assert "rebind.example" in raised.value.message and "127.0.0.1" in raised.value.message
    assert isinstance(raised.value, ConfigError)


async def test_one_refused_address_among_the_answers_refuses_the_name():
    inner = RecordingBackend()
    backend = VettedNetworkBackend(STRICT, inner=inner, resolver=ScriptedResolver(["93.184.215.14", "169.254.169.254"]))

    with pytest.raises(EgressRefused):
        await backend.connect_tcp("mixed.example", 80, timeout=5)

    assert inner.connected == []


async def test_metadata_is_refused_even_when_private_endpoints_are_allowed():
    inner = RecordingBackend()
    backend = VettedNetworkBackend(LOCAL, inner=inner, resolver=ScriptedResolver(["169.254.169.254"]))

    with pytest.raises(EgressRefused) as raised:
        await backend.connect_tcp("metadata.google.internal", 80, timeout=5)

    assert inner.connected == []
    assert "metadata" in raised.value.message


async def test_the_next_vetted_address_is_tried_when_one_cannot_be_reached():
    # Given a name with two allowed addresses, the first of which refuses connections
    inner = RecordingBackend(unreachable=frozenset({"::1"}))
    backend = VettedNetworkBackend(LOCAL, inner=inner, resolver=ScriptedResolver(["::1", "127.0.0.1"]))

    # When a connection is opened
    await backend.connect_tcp("localhost", 8080, timeout=5)

    # Then it reached the second
    assert inner.connected == [("127.0.0.1", 8080)]


async def test_unix_sockets_are_never_a_destination():
    backend = VettedNetworkBackend(LOCAL, inner=RecordingBackend())

    with pytest.raises(EgressRefused):
        await backend.connect_unix_socket("/var/run/docker.sock")
