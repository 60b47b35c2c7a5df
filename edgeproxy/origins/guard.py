"""SSRF guard for HTTP origins: connect only to public addresses, checked after DNS resolution.

The check sits in the socket layer (an ``httpcore`` network backend), so it covers every
connection the origin client opens: the first request, each redirect hop, and each reconnect. The
host name is resolved once per connection and the socket is opened to the address that was
checked, so a DNS answer that changes between check and connect (DNS rebinding) cannot slip
through. An image proxy that fetched whatever a URL resolves to was imgproxy's CVE-2023-30019.

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
import ipaddress
import socket
from collections.abc import Iterable, Sequence

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
        ForbiddenAddress: an address is refused (an ``httpcore.ConnectError``, so httpx maps it to
            ``httpx.ConnectError`` with this as its ``__cause__``).
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
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for text in addresses:
            kind = refusal(ipaddress.ip_address(text.partition("%")[0]), self.allowed)
            if kind is not None:
                raise ForbiddenAddress(f"origin host resolves to a {kind} address")
        return addresses

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last: Exception | None = None
        for address in await self.resolve(host, port):
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError("origin host has no address")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise ForbiddenAddress("unix sockets are not origins")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through ``GuardedBackend``.

    httpx takes no network backend, so the connection pool it builds is replaced by an identical
    one with the guard (no proxy: origin traffic never goes through one, ``trust_env`` is off).
    """

    def __init__(self, *, allowed: Iterable[IPNetwork], limits: httpx.Limits):
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allowed),
        )
