"""HTTP to hosts a caller named, connecting to the address that was checked.

`url_safety` checks that a URL's host resolves only to public addresses. Checking and then letting
requests resolve the name again to connect leaves a gap: the name's DNS answer can change in
between (DNS rebinding: public at the check, 127.0.0.1 or 169.254.169.254 at the connection).
`PinnedAdapter` closes it: it resolves the host ONCE, checks every address, and connects to the
checked address itself, while the request still names the host: the Host header, TLS SNI and the
certificate check all use the host name (urllib3's `server_hostname` and `assert_hostname` pool
arguments), so https stays verified against the name, not the address.

Why hand-written: the libraries that do this are not usable here. `advocate` (the requests
wrapper that pins addresses) has had no release since 2020 and does not support urllib3 2;
`drawbridge` and `safehttpx` wrap httpx, not the requests + urllib3 stack this project uses
everywhere (retries, sessions, tests); requests-toolbelt's HostHeaderSSLAdapter connects to an
address it is given but neither resolves nor checks. The adapter is a thin subclass of requests'
HTTPAdapter that only changes which pool a request is sent through.

`Deadline` bounds one whole exchange (connect, send, wait for the answer, read the body) in time:
requests' timeouts are per socket operation, so a peer that sends one byte every few seconds is
never timed out. Every socket opened or reused under a deadline is shut down when it expires, which
ends whatever read or write is blocked on it."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, cast

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import parse_url

from videogen.adapters.url_safety import Resolver, is_public_address

_PIN = "_videogen_pinned_address"
_DEFAULT_PORTS = {"http": 80, "https": 443}

# (scheme, host, port) -> True when the host's addresses need no check (the local stack's
# allow-listed loopback receivers, the configured provider's own origin). They are still pinned.
TrustedOrigin = Callable[[str, str, int], bool]


class UnsafeAddressError(requests.exceptions.ConnectionError):
    """The host resolved to an address that is not public: nothing was sent."""


class UnresolvableHostError(requests.exceptions.ConnectionError):
    """The host has no address."""


def _never(scheme: str, host: str, port: int) -> bool:
    return False


def choose_address(
    host: str,
    port: int,
    *,
    resolver: Resolver,
    check: bool,
) -> str:
    """One address of `host`, resolved once. With `check`, every address it resolves to must be
    public (one private answer among public ones refuses the host: a client could pick it).
    IPv4 first: Lambda outside a VPC has no IPv6 route."""
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHostError(f"host does not resolve ({type(exc).__name__})") from None
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos or ():
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            raise UnsafeAddressError("host resolves to something that is not an IP address") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHostError("host does not resolve")
    if check and not all(is_public_address(a) for a in addresses):
        raise UnsafeAddressError("host resolves to a non-public address")
    return str(sorted(addresses, key=lambda a: a.version)[0])


class Deadline:
    """A total time limit on what runs inside `with deadline:` on this thread (one webhook attempt).

    Connections that a PinnedAdapter opens or reuses meanwhile are registered here; when the
    time is up a timer thread shuts their sockets down (both ways), so a blocked read or write
    fails at once. `expired` then tells a caller that the failure was the deadline's."""

    _current = threading.local()

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.expires_at = clock() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer: threading.Timer | None = None

    @classmethod
    def current(cls) -> Deadline | None:
        return getattr(cls._current, "deadline", None)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self.clock())

    def watch(self, sock: socket.socket | None) -> None:
        """Shut `sock` down at the deadline. A duplicate of its descriptor is kept (closed when the
        deadline ends): shutdown acts on the connection, whichever descriptor names it, and a
        duplicate cannot be reused for something else meanwhile."""
        if sock is None:
            return
        try:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return
        with self._lock:
            self._watched.append(duplicate)
            if self.expired:
                _shutdown(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._watched:
                _shutdown(sock)

    def __enter__(self) -> Deadline:
        self.expires_at = self.clock() + self.seconds
        self._current.deadline = self
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._current.deadline = None
        with self._lock:
            for sock in self._watched:
                sock.close()
            self._watched.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: Any) -> None:
    deadline = Deadline.current()
    if deadline is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # the TCP socket, before the TLS handshake: it is watched too
        _watch(sock)
        return sock


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _watch(getattr(conn, "sock", None))  # a kept-alive connection: already connected
        return conn


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _watch(getattr(conn, "sock", None))
        return conn


class PinnedAdapter(HTTPAdapter):
    """requests' HTTPAdapter, except that each request's host is resolved once by `resolver`,
    checked (unless `trusted` says the origin needs no check) and connected to by address.

    Mount it for both schemes on a session (`pinned_session`); proxies are not supported (a
    proxy would resolve the name again), so such sessions ignore the environment's."""

    def __init__(
        self,
        *,
        resolver: Resolver = socket.getaddrinfo,
        trusted: TrustedOrigin = _never,
        **kwargs: Any,
    ) -> None:
        self.resolver = resolver
        self.trusted = trusted
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = parse_url(request.url or "")
        scheme, host = (url.scheme or "").lower(), (url.host or "").lower()
        if scheme not in _DEFAULT_PORTS or not host:
            raise requests.exceptions.InvalidURL("only http and https URLs with a host", request=request)
        port = url.port or _DEFAULT_PORTS[scheme]
        literal = _literal(host)
        check = not self.trusted(scheme, host.strip("[]"), port)  # "[::1]" is listed as "::1"
        if literal is not None:
            if check and not is_public_address(literal):
                raise UnsafeAddressError("URL points to a non-public address", request=request)
        else:
            address = choose_address(host, port, resolver=self.resolver, check=check)
            setattr(request, _PIN, address)
            # The Host header names the host (with a port that is not the scheme's default), as
            # it would without pinning; urllib3 then does not add its own (the address).
            request.headers["Host"] = host if url.port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
        return super().send(request, *args, **kwargs)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Any = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        address = getattr(request, _PIN, None)
        if address is None:  # an IP literal: nothing to resolve
            return cast(
                HTTPConnectionPool, super().get_connection_with_tls_context(request, verify, None, cert)
            )
        host_params, key_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs: dict[str, Any] = dict(key_kwargs)
        hostname = host_params["host"]
        host_params["host"] = address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname  # SNI
            pool_kwargs["assert_hostname"] = hostname  # the certificate must name the host
        pool: HTTPConnectionPool = self.poolmanager.connection_from_host(
            **host_params, pool_kwargs=pool_kwargs
        )
        return pool


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def pinned_session(
    *,
    resolver: Resolver = socket.getaddrinfo,
    trusted: TrustedOrigin = _never,
    pool_maxsize: int = 10,
) -> requests.Session:
    """A session whose every request goes through one PinnedAdapter (no retries: callers retry)."""
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment (see PinnedAdapter)
    adapter = PinnedAdapter(resolver=resolver, trusted=trusted, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def trusted_hosts(hosts: Sequence[str] | frozenset[str]) -> TrustedOrigin:
    """Trust `host` or `host:port` entries (url_safety.allowed_host_set): the local stack's
    loopback receivers."""
    entries = frozenset(hosts)

    def trusted(scheme: str, host: str, port: int) -> bool:
        return bool(entries) and (host in entries or f"{host}:{port}" in entries)

    return trusted


def trusted_origin(base_url: str) -> TrustedOrigin:
    """Trust exactly the origin (scheme, host, port) of `base_url`: the provider the deployer
    configured (locally the simulator on 127.0.0.1)."""
    parts = parse_url(base_url)
    scheme = (parts.scheme or "").lower()
    origin = (scheme, (parts.host or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme))

    def trusted(scheme: str, host: str, port: int) -> bool:
        return (scheme, host, port) == origin

    return trusted
