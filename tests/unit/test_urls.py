"""Image reference checks (SSRF guard). DNS is never touched: every test injects a fake resolver."""

from __future__ import annotations

import base64
import inspect
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from videogen.adapters.url_safety import (
    MAX_DATA_URL_BYTES,
    MAX_URL_LENGTH,
    check_image_reference,
    check_public_https_url,
    image_reference_checker,
)
from videogen.domain.errors import UnsafeUrlError

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


class FakeResolver:
    """getaddrinfo look-alike answering from a table; records every call."""

    def __init__(self, table: Mapping[str, Iterable[str]] | None = None) -> None:
        self.table = {host: list(addrs) for host, addrs in (table or {}).items()}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port))
            for addr in self.table[host]
        ]


def _refused(url: str, resolver: Callable[..., Any] | None = None, *, strict: bool = True) -> str:
    with pytest.raises(UnsafeUrlError) as excinfo:
        check_public_https_url(url, strict_dns=strict, resolver=resolver or FakeResolver())
    assert excinfo.value.code == "unsafe_url"
    assert excinfo.value.http_status == 422
    return excinfo.value.message


# --- accepted -------------------------------------------------------------------------------


def test_public_host_is_accepted_and_resolved_on_port_443() -> None:
    resolver = FakeResolver({"images.example.com": [PUBLIC_V4, PUBLIC_V6]})
    check_public_https_url("https://images.example.com/cat.png?x=1#f", strict_dns=True, resolver=resolver)
    assert resolver.calls == [("images.example.com", 443)]


def test_explicit_port_is_passed_to_the_resolver() -> None:
    resolver = FakeResolver({"images.example.com": [PUBLIC_V4]})
    check_public_https_url("https://images.example.com:8443/a.png", strict_dns=True, resolver=resolver)
    assert resolver.calls == [("images.example.com", 8443)]


def test_host_is_lowercased_and_trailing_dot_dropped() -> None:
    resolver = FakeResolver({"images.example.com": [PUBLIC_V4]})
    check_public_https_url("HTTPS://Images.Example.COM./a.png", strict_dns=True, resolver=resolver)
    assert resolver.calls == [("images.example.com", 443)]


@pytest.mark.parametrize(
    "url", ["https://8.8.8.8/a.png", f"https://[{PUBLIC_V6}]/a.png", "https://[::ffff:8.8.8.8]/"]
)
def test_public_ip_literal_is_accepted_without_dns(url: str) -> None:
    resolver = FakeResolver()
    check_public_https_url(url, strict_dns=True, resolver=resolver)
    assert resolver.calls == []


def test_unicode_host_is_idna_encoded_before_resolving() -> None:
    resolver = FakeResolver({"xn--bcher-kva.example": [PUBLIC_V4]})
    check_public_https_url("https://bücher.example/a.png", strict_dns=True, resolver=resolver)
    assert resolver.calls == [("xn--bcher-kva.example", 443)]


def test_default_resolver_is_getaddrinfo() -> None:
    default = inspect.signature(check_public_https_url).parameters["resolver"].default
    assert default is socket.getaddrinfo


# --- scheme, credentials, malformed -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://images.example.com/a.png",
        "ftp://images.example.com/a.png",
        "file:///etc/passwd",
        "gopher://images.example.com/",
        "javascript:alert(1)",
        "//images.example.com/a.png",
        "images.example.com/a.png",
    ],
)
def test_only_https_is_accepted(url: str) -> None:
    assert "https" in _refused(url, FakeResolver({"images.example.com": [PUBLIC_V4]}))


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@images.example.com/a.png",
        "https://user@images.example.com/a.png",
        "https://:@images.example.com/a.png",
    ],
)
def test_credentials_are_refused(url: str) -> None:
    assert "credentials" in _refused(url, FakeResolver({"images.example.com": [PUBLIC_V4]}))


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://",
        "https:///a.png",
        "https://:443/a.png",
        "https://images.example.com:99999/a.png",
        "https://images.example.com:port/a.png",
        "https://[::1/a.png",
        "https://exa mple.com/a.png",
        "https://example.com/a\n.png",
        "https://example.com\\@8.8.8.8/",
        "https://%6c%6fcalhost/a.png",
        "https://-bad-.example.com/",
        "https://" + "a" * 64 + ".example.com/",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    _refused(url, FakeResolver({"images.example.com": [PUBLIC_V4], "example.com": [PUBLIC_V4]}))


def test_non_string_is_refused() -> None:
    with pytest.raises(UnsafeUrlError):
        check_public_https_url(123, strict_dns=False, resolver=FakeResolver())  # type: ignore[arg-type]


def test_overlong_url_is_refused() -> None:
    url = "https://images.example.com/" + "a" * MAX_URL_LENGTH
    assert "longer" in _refused(url, FakeResolver({"images.example.com": [PUBLIC_V4]}))


# --- non-public targets -------------------------------------------------------------------------

NON_PUBLIC_LITERALS = [
    "10.0.0.1",  # private
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "0.0.0.0",  # unspecified
    "169.254.169.254",  # link-local + AWS/GCP/Azure metadata
    "169.254.1.1",
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "[::1]",
    "[::]",
    "[fe80::1]",  # link-local
    "[fc00::1]",  # ULA
    "[fd12:3456:789a::1]",
    "[fd00:ec2::254]",  # AWS IPv6 metadata
    "[ff02::1]",  # multicast
    "[fec0::1]",  # site-local
    "[2001:db8::1]",  # documentation
    "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::ffff:100.64.0.1]",
    "[::127.0.0.1]",  # IPv4-compatible (deprecated)
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
]


@pytest.mark.parametrize("host", NON_PUBLIC_LITERALS)
def test_non_public_ip_literals_are_refused(host: str) -> None:
    resolver = FakeResolver()
    assert "non-public" in _refused(f"https://{host}/a.png", resolver)
    assert resolver.calls == []


@pytest.mark.parametrize(
    "host",
    [
        "127.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "017700000001",
        "10.1",
        "169.254.43518",
    ],
)
def test_non_canonical_ipv4_forms_are_refused(host: str) -> None:
    resolver = FakeResolver()
    _refused(f"https://{host}/a.png", resolver)
    assert resolver.calls == []


def test_fullwidth_digits_normalise_to_the_loopback_literal() -> None:
    # IDNA maps full-width digits and dots to ASCII; a fetcher would reach 127.0.0.1.
    assert "non-public" in _refused("https://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/")


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "api.localhost",
        "localhost.localdomain",
        "printer.local",
        "metadata.google.internal",
        "router.home.arpa",
    ],
)
def test_local_only_names_are_refused_without_dns(host: str) -> None:
    resolver = FakeResolver({host.lower().rstrip("."): [PUBLIC_V4]})
    _refused(f"https://{host}/a.png", resolver, strict=False)
    assert resolver.calls == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["127.0.0.1"],
        ["::1"],
        ["169.254.169.254"],
        ["fd00:ec2::254"],
        ["100.100.100.100"],
        ["::ffff:192.168.0.1"],
        ["fe80::1%eth0"],
        [PUBLIC_V4, "10.0.0.5"],  # one private answer is enough
        [PUBLIC_V6, "fc00::5"],
        ["not-an-address"],
    ],
)
def test_hostname_resolving_to_a_non_public_address_is_refused(addresses: list[str]) -> None:
    resolver = FakeResolver({"rebind.example.com": addresses})
    for strict in (True, False):
        message = _refused("https://rebind.example.com/a.png", resolver, strict=strict)
        assert "non-public" in message
        assert "10.0.0.5" not in message  # resolved addresses are not disclosed


def test_unresolvable_host_is_refused_when_strict() -> None:
    assert "does not resolve" in _refused("https://nx.example.com/a.png", FakeResolver(), strict=True)


def test_unresolvable_host_is_accepted_when_not_strict() -> None:
    resolver = FakeResolver()
    check_public_https_url("https://nx.example.com/a.png", strict_dns=False, resolver=resolver)
    assert resolver.calls == [("nx.example.com", 443)]


def test_empty_answer_counts_as_unresolvable() -> None:
    resolver = FakeResolver({"empty.example.com": []})
    _refused("https://empty.example.com/a.png", resolver, strict=True)
    check_public_https_url("https://empty.example.com/a.png", strict_dns=False, resolver=resolver)


def test_resolver_errors_other_than_gaierror_count_as_unresolvable() -> None:
    def broken(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise OSError("resolver unavailable")

    _refused("https://images.example.com/a.png", broken, strict=True)
    check_public_https_url("https://images.example.com/a.png", strict_dns=False, resolver=broken)


def test_non_strict_mode_still_refuses_literal_and_resolved_private_targets() -> None:
    _refused("https://10.0.0.1/a.png", FakeResolver(), strict=False)
    _refused(
        "https://intranet.example.com/", FakeResolver({"intranet.example.com": ["10.1.2.3"]}), strict=False
    )


# --- data URLs ---------------------------------------------------------------------------------

IMAGES = {
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
    "jpeg": b"\xff\xd8\xff\xe0" + b"\x00" * 32,
    "gif": b"GIF89a" + b"\x00" * 32,
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24,
}


def _data_url(kind: str, data: bytes) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_base64_image_data_urls_are_accepted(kind: str) -> None:
    resolver = FakeResolver()
    check_image_reference(_data_url(kind, IMAGES[kind]), strict_dns=True, resolver=resolver)
    assert resolver.calls == []


def test_data_url_header_is_case_insensitive_and_jpg_is_jpeg() -> None:
    check_image_reference(
        "DATA:IMAGE/PNG;BASE64," + base64.b64encode(IMAGES["png"]).decode(), strict_dns=True
    )
    check_image_reference(_data_url("jpg", IMAGES["jpeg"]), strict_dns=True)


@pytest.mark.parametrize(
    "value",
    [
        "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode(),
        "data:text/html;base64," + base64.b64encode(b"<script>").decode(),
        "data:image/png," + "%89PNG",  # not base64
        "data:image/png;base64",  # no comma
        "data:image/png;base64,",  # empty
        "data:image/png;base64,@@@@",  # not base64
        "data:image/png;base64,iVBORw0KGgo= trailing",
        "data:image/png;charset=utf-8;base64," + base64.b64encode(IMAGES["png"]).decode(),
        _data_url("png", IMAGES["jpeg"]),  # declared png, bytes are jpeg
        _data_url("webp", b"RIFF\x24\x00\x00\x00AVI " + b"\x00" * 24),
        _data_url("gif", b"GIF90a" + b"\x00" * 8),
    ],
)
def test_bad_data_urls_are_refused(value: str) -> None:
    with pytest.raises(UnsafeUrlError):
        check_image_reference(value, strict_dns=True, resolver=FakeResolver())


def test_data_url_size_cap() -> None:
    at_cap = IMAGES["png"] + b"\x00" * (100 - len(IMAGES["png"]))
    check_image_reference(_data_url("png", at_cap), strict_dns=True, max_data_bytes=100)
    with pytest.raises(UnsafeUrlError, match="larger than 100 bytes"):
        check_image_reference(_data_url("png", at_cap + b"\x00"), strict_dns=True, max_data_bytes=100)


def test_default_cap_is_10_mib_and_oversized_text_is_refused_before_decoding() -> None:
    assert MAX_DATA_URL_BYTES == 10 * 1024 * 1024
    # Not valid base64 at all: only the length check can refuse it, proving it runs first.
    oversized = "data:image/png;base64," + "!" * (4 * (MAX_DATA_URL_BYTES // 3 + 1) + 4)
    with pytest.raises(UnsafeUrlError, match="larger than"):
        check_image_reference(oversized, strict_dns=True)


def test_image_reference_falls_back_to_the_url_check() -> None:
    resolver = FakeResolver({"images.example.com": [PUBLIC_V4], "internal.example.com": ["10.0.0.1"]})
    check_image_reference("https://images.example.com/a.png", strict_dns=True, resolver=resolver)
    with pytest.raises(UnsafeUrlError):
        check_image_reference("https://internal.example.com/a.png", strict_dns=True, resolver=resolver)
    with pytest.raises(UnsafeUrlError):
        check_image_reference("http://images.example.com/a.png", strict_dns=True, resolver=resolver)


def test_image_reference_checker_binds_the_configuration() -> None:
    resolver = FakeResolver({"images.example.com": [PUBLIC_V4]})
    strict = image_reference_checker(strict_dns=True, resolver=resolver)
    lenient = image_reference_checker(strict_dns=False, resolver=resolver)
    strict("https://images.example.com/a.png")
    lenient("https://nx.example.com/a.png")
    with pytest.raises(UnsafeUrlError):
        strict("https://nx.example.com/a.png")
    small = image_reference_checker(strict_dns=True, resolver=resolver, max_data_bytes=10)
    with pytest.raises(UnsafeUrlError):
        small(_data_url("png", IMAGES["png"]))


# --- every URL field of the catalog goes through the check -------------------------------------


def test_every_url_field_of_every_model_is_checked() -> None:
    from videogen.domain.catalog import CATALOG
    from videogen.domain.errors import RequestValidationError
    from videogen.domain.validation import validate_request

    checked: list[str] = []
    check = image_reference_checker(strict_dns=True, resolver=FakeResolver())

    def recording(value: str) -> None:
        checked.append(value)
        check(value)

    url_fields = {(m.id, f.name) for m in CATALOG.values() for f in m.fields if f.kind == "url"}
    assert {name for _, name in url_fields} >= {"image_url", "last_image_url"}
    for model_id, field in sorted(url_fields):
        checked.clear()
        body = {"model": model_id, field: "https://169.254.169.254/latest/meta-data/"}
        with pytest.raises(RequestValidationError) as excinfo:
            validate_request(body, check_url=recording)
        assert checked == [body[field]], (model_id, field)
        problems = {d["field"]: d["message"] for d in excinfo.value.details or []}
        assert "non-public" in problems[field], (model_id, field, problems)
