"""Checks on caller-supplied image references before they are handed to the provider.

The provider fetches image URLs on our behalf, so a URL pointing at a private, loopback, link-local
or metadata address would turn the service into a proxy into someone's network (SSRF). Every
address a host resolves to must be globally routable. Base64 image data URLs are accepted too,
with a size cap and a check that the bytes are the declared image type.

Limits: the check runs at submit time; a host whose DNS answer changes later (rebinding) is out of
reach, since the provider, not this service, does the fetch.

The one URL this service fetches itself, the provider's link to a finished video, goes through
`download_url_checker`: the same check, except that the configured provider's own origin is
trusted; media.OutputArchive applies it to the link and to every redirect target.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from videogen.domain.errors import UnsafeUrlError

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
"""A `socket.getaddrinfo`-shaped function: called as resolver(host, port, type=SOCK_STREAM)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 4096
MAX_DATA_URL_BYTES = 10 * 1024 * 1024  # decoded image bytes

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Names that only ever mean "this machine" or a private network (RFC 6761, RFC 8375, common use).
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")

_IMAGE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),  # plus b"WEBP" at offset 8, checked below
}
_DATA_HEADER = re.compile(r"^data:image/(png|jpeg|jpg|webp|gif);base64$", re.IGNORECASE)


def is_public_address(address: IPAddress) -> bool:
    """True when the address is globally routable and not a cloud metadata endpoint."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
        if address.teredo is not None or address.is_site_local:
            return False
    elif address in _CGNAT:
        return False
    if address in METADATA_ADDRESSES:
        return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _normalise_host(raw_host: str) -> str:
    host = raw_host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise UnsafeUrlError("URL must include a host")
    if not host.isascii():
        # IDNA first: full-width digits and other look-alikes normalise to ASCII here, so the
        # IP-literal and local-name checks below see what a fetcher would see.
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise UnsafeUrlError("URL host is not a valid domain name") from exc
    return host


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_public_https_url(url: str, *, strict_dns: bool, resolver: Resolver = socket.getaddrinfo) -> None:
    """Raise UnsafeUrlError unless `url` is an https URL whose host is public.

    Refused: other schemes, credentials in the URL, missing or malformed hosts, `localhost` and
    other local-only names, IP literals and resolved addresses that are not global (private,
    loopback, link-local, multicast, reserved, unspecified, CGNAT 100.64/10, IPv4-mapped or NAT64
    forms of those, cloud metadata addresses). A host that does not resolve is refused when
    `strict_dns`, accepted otherwise (local development without DNS).
    """
    if not isinstance(url, str) or not url:
        raise UnsafeUrlError("URL must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        raise UnsafeUrlError("URL must not contain whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError("URL is malformed") from exc
    if parts.scheme.lower() != "https":
        raise UnsafeUrlError("only https URLs are accepted")
    if "@" in parts.netloc:
        raise UnsafeUrlError("URL must not contain credentials")
    if not parts.hostname:
        raise UnsafeUrlError("URL must include a host")

    host = _normalise_host(parts.hostname)
    literal = _literal_address(host)
    if literal is not None:
        if not is_public_address(literal):
            raise UnsafeUrlError("URL points to a non-public address")
        return

    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise UnsafeUrlError("URL host is not a valid domain name")
    if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        # "127.1", "0x7f000001", "2130706433": resolvers read these as IPv4 addresses.
        raise UnsafeUrlError("URL host is a non-canonical IP address")
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
        raise UnsafeUrlError("URL points to a local-only host name")

    try:
        infos = resolver(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        infos = []
    if not infos:
        if strict_dns:
            raise UnsafeUrlError("URL host does not resolve")
        return
    for info in infos:
        resolved = _literal_address(str(info[4][0]))
        if resolved is None or not is_public_address(resolved):
            raise UnsafeUrlError("URL host resolves to a non-public address")


def _check_data_url(value: str, max_bytes: int) -> None:
    header, comma, payload = value.partition(",")
    match = _DATA_HEADER.match(header)
    if not comma or match is None:
        raise UnsafeUrlError("data URLs must be base64 images: data:image/(png|jpeg|webp|gif);base64,...")
    kind = match.group(1).lower().replace("jpg", "jpeg")
    if len(payload) > 4 * -(-max_bytes // 3):  # the longest base64 text of max_bytes bytes
        raise UnsafeUrlError(f"image data is larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UnsafeUrlError("image data is not valid base64") from exc
    if not data:
        raise UnsafeUrlError("image data is empty")
    if len(data) > max_bytes:
        raise UnsafeUrlError(f"image data is larger than {max_bytes} bytes")
    if not data.startswith(_IMAGE_SIGNATURES[kind]) or (kind == "webp" and data[8:12] != b"WEBP"):
        raise UnsafeUrlError(f"image data is not a {kind} image")


def check_image_reference(
    value: str,
    *,
    strict_dns: bool,
    resolver: Resolver = socket.getaddrinfo,
    max_data_bytes: int = MAX_DATA_URL_BYTES,
) -> None:
    """Accept a public https URL (see check_public_https_url) or a base64 image data URL."""
    if isinstance(value, str) and value[:5].lower() == "data:":
        _check_data_url(value, max_data_bytes)
        return
    check_public_https_url(value, strict_dns=strict_dns, resolver=resolver)


def image_reference_checker(
    *,
    strict_dns: bool,
    resolver: Resolver = socket.getaddrinfo,
    max_data_bytes: int = MAX_DATA_URL_BYTES,
) -> Callable[[str], None]:
    """The `check_url` argument for catalog.validate_request, bound to one configuration."""

    def check(value: str) -> None:
        check_image_reference(value, strict_dns=strict_dns, resolver=resolver, max_data_bytes=max_data_bytes)

    return check


def allowed_host_set(spec: str) -> frozenset[str]:
    """`CALLBACK_ALLOWED_HOSTS` ("127.0.0.1,localhost:8080") as a set of lower-cased entries."""
    return frozenset(item.strip().lower() for item in spec.split(",") if item.strip())


def check_callback_url(
    url: str,
    *,
    strict_dns: bool,
    allowed_hosts: frozenset[str] = frozenset(),
    resolver: Resolver = socket.getaddrinfo,
) -> None:
    """A webhook receiver URL: the image-URL rule (public https, see check_public_https_url),
    checked at submit and again before every delivery, since DNS can change in between.

    `allowed_hosts` (host or host:port) may be http and private: the local stack lists its
    loopback receivers there; deployed stacks leave it empty."""
    if allowed_hosts and isinstance(url, str) and len(url) <= MAX_URL_LENGTH:
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            host, port = "", None
        if (
            host
            and parts.scheme.lower() in ("http", "https")
            and "@" not in parts.netloc
            and (host in allowed_hosts or f"{host}:{port}" in allowed_hosts)
        ):
            return
    check_public_https_url(url, strict_dns=strict_dns, resolver=resolver)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or "@" in parts.netloc:
        return None
    scheme = parts.scheme.lower()
    try:
        host = _normalise_host(parts.hostname)
    except UnsafeUrlError:
        return None
    return scheme, host, port or {"https": 443, "http": 80}.get(scheme)


def download_url_checker(
    trusted_base_url: str, *, strict_dns: bool, resolver: Resolver = socket.getaddrinfo
) -> Callable[[str], None]:
    """The check for URLs this service downloads itself (the provider's finished-video link and
    each redirect it leads to): a URL on the origin (scheme, host, port) of `trusted_base_url`,
    the provider base URL the deployer configured, is accepted as is (locally that is the
    simulator on 127.0.0.1); any other URL must pass check_public_https_url."""
    trusted = _origin(trusted_base_url)

    def check(url: str) -> None:
        if (
            isinstance(url, str)
            and trusted is not None
            and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url)
            and _origin(url) == trusted
        ):
            return
        check_public_https_url(url, strict_dns=strict_dns, resolver=resolver)

    return check
