"""SSRF guard for HTTP origins: connect only to public addresses, checked after DNS resolution.

The check sits in the socket layer (an ``httpcore`` network backend), so it covers every
connection the origin client opens: the first request, each redirect hop, and each reconnect. The
host name is resolved once per connection and the socket is opened to the address that was
checked, so a DNS answer that changes between check and connect (DNS rebinding) cannot slip
through. An image proxy that fetched whatever a URL resolves to was imgproxy's CVE-2023-30019.
``GuardedTransport`` plugs the backend into httpx through public seams only: an
``httpx.AsyncBaseTransport`` over an ``httpcore.AsyncConnectionPool(network_backend=...)``.

Refused unless inside an explicitly allowed network (``origin_allowed_networks``): loopback,
RFC 1918 / RFC 4193 private, link-local, RFC 6598 shared (CGNAT) ``100.64.0.0/10``, multicast,
unspecified, reserved and every other non-global range of the IANA special-purpose registries
(RFC 6890), and IPv6 addresses that embed such an IPv4 address: IPv4-mapped ``::ffff:0:0/96``,
IPv4-compatible ``::/96``, NAT64 ``64:ff9b::/96`` (RFC 6052), 6to4 ``2002::/16`` (RFC 3056) and
Teredo ``2001::/32`` (RFC 4380). The local-use NAT64 prefix ``64:ff9b:1::/48`` (RFC 8215) is
refused whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence

import certifi
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the IPv4 address is the last 32 bits (RFC 6052 §2.2)
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # local use, any prefix length: never public


class ForbiddenAddress(httpcore.ConnectError):
    """A connection to a non-public address was refused; ``str()`` says which kind, not which
    address (error bodies must not map the internal network)."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses carried inside an IPv6 address (mapped, compatible, NAT64, 6to4, Teredo)."""
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    packed = address.packed
    if address in _NAT64 or (packed[:12] == bytes(12) and int(address) > 1):
        found.append(ipaddress.IPv4Address(packed[12:]))
    return found


def _kind(address: IPAddress) -> str | None:
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (CGNAT)"
    if isinstance(address, ipaddress.IPv6Address) and address in _LOCAL_NAT64:
        return "private"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


def refusal(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``address`` may not be connected to (``"loopback"``, ``"private"``, ...), or None.

    An address inside one of ``allowed`` is always accepted; otherwise the address and every IPv4
    address embedded in it must be global (see the module docstring for the ranges and RFCs).
    """
    if any(address in net for net in allowed):
        return None
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    if not embedded:
        return _kind(address)
    # The IPv6 form only carries the IPv4 address: the IPv4 address decides.
    for candidate in embedded:
        kind = _kind(candidate)
        if kind is not None:
            return f"{kind} (embedded in IPv6)"
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An ``httpcore`` network backend that resolves the host, refuses the connection if any of its
    addresses is not allowed (``refusal``), then connects to a checked address.

    Raises (from ``connect_tcp``):
        ForbiddenAddress: an address is refused (an ``httpcore.ConnectError``; ``GuardedTransport``
            raises it as ``ForbiddenOrigin``).
        httpcore.ConnectError: the name does not resolve, or no address accepts the connection.
    """

    def __init__(self, allowed: Iterable[IPNetwork] = (), backend: httpcore.AsyncNetworkBackend | None = None):
        self.allowed = tuple(allowed)
        self._backend = backend or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        """Checked addresses of ``host`` (a name or an IP literal), in resolver order."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve origin host: {exc}") from None
        # An AF_INET or AF_INET6 sockaddr starts with the address as text (typeshed also allows the
        # (int, bytes) of a Python built without IPv6, which SOCK_STREAM lookups never return here).
        addresses = list(dict.fromkeys(info[4][0] for info in infos if isinstance(info[4][0], str)))
        for text in addresses:
            kind = refusal(ipaddress.ip_address(text.partition("%")[0]), self.allowed)
            if kind is not None:
                raise ForbiddenAddress(f"origin host resolves to a {kind} address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.resolve(host, port):
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError("origin host has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenAddress("unix sockets are not origins")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def origin_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The TLS client context for HTTPS origins: certificate and host name verification on, trusting
    the certifi bundle (httpx's default) plus the PEM certificates of ``ca_file`` when given.

    Raises:
        OSError: ``ca_file`` cannot be read.
        ssl.SSLError: ``ca_file`` holds no usable PEM certificate.
    """
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


class ForbiddenOrigin(httpx.ConnectError):
    """The guard refused to connect (``ForbiddenAddress``), as raised by ``GuardedTransport``: a public
    httpx exception type that callers catch by type. ``str()`` is the guard's message: the kind of
    address, never the address."""


# httpcore exceptions and the public httpx exceptions they become, looked up along the raised
# exception's MRO, so the most specific entry wins (ForbiddenAddress before ConnectError before
# NetworkError).
_PUBLIC_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    ForbiddenAddress: ForbiddenOrigin,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProxyError: httpx.ProxyError,
}


@contextlib.contextmanager
def public_errors(request: httpx.Request) -> Iterator[None]:
    """Re-raise httpcore exceptions as the matching public httpx exception (``_PUBLIC_ERRORS``), the
    original as its ``__cause__``; anything else (cancellation included) passes through."""
    try:
        yield
    except Exception as exc:
        for kind in type(exc).__mro__:
            public = _PUBLIC_ERRORS.get(kind)
            if public is not None:
                raise public(str(exc), request=request) from exc
        raise


class GuardedBody(httpx.AsyncByteStream):
    """A response body read from an ``httpcore.Response``, with its errors made public httpx ones."""

    def __init__(self, response: httpcore.Response, request: httpx.Request):
        self.response = response
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with public_errors(self.request):
            async for chunk in self.response.aiter_stream():
                yield chunk

    async def aclose(self) -> None:
        """Release the connection (back to the pool once the body was read whole, else closed)."""
        with public_errors(self.request):
            await self.response.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connections all go through ``GuardedBackend``.

    It owns an ``httpcore.AsyncConnectionPool`` (HTTP/1.1 only, no proxy: origin traffic never goes
    through one) built with the guard as its ``network_backend``, httpcore's public seam for the
    socket layer. TLS runs over the guarded socket, with SNI and certificate checks for the URL's
    host name (RFC 6066 §3, RFC 6125), not for the address connected to.

    Arguments:
        allowed: networks accepted although not public (``refusal``).
        limits: pool size, keep-alive connections and ``keepalive_expiry`` (seconds).
        ca_file: PEM file of extra CA certificates trusted for HTTPS origins (``origin_ssl_context``).

    Raises (from the constructor): what ``origin_ssl_context`` raises for an unreadable ``ca_file``.

    Raises (from ``handle_async_request`` and while reading the body):
        ForbiddenOrigin: the guard refused the address (an ``httpx.ConnectError``).
        httpx.TransportError: the public httpx exception for any other httpcore error (connect,
            read or pool timeouts, resets, TLS failures, malformed responses).
    """

    def __init__(self, *, allowed: Iterable[IPNetwork], limits: httpx.Limits, ca_file: str | None = None):
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=origin_ssl_context(ca_file),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(allowed),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the guarded pool; the response body is streamed (``GuardedBody``).
        The ``timeout`` extension set by ``httpx.AsyncClient`` (seconds per phase) is passed on."""
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with public_errors(request):
            core_response = await self.pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=GuardedBody(core_response, request),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.pool.aclose()
