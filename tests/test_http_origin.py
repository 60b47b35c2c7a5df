"""The HTTP origin against a real HTTP server on 127.0.0.1 that can misbehave on request, and the
SSRF guard that refuses non-public origin addresses after DNS resolution."""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import importlib
import inspect
import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpcore
import httpx
import psutil
import pytest
import trustme

import edgeproxy
from edgeproxy.origins.guard import ForbiddenAddress, ForbiddenOrigin, GuardedBackend, public_errors, refusal
from edgeproxy.settings import SettingsError, load_settings
from testkit.app import make_client, raw_get, signed
from testkit.images import decode, loader_format
from testkit.origin import Fault, Origin, Reply, redirect, serve_origin

LOOPBACK = ["127.0.0.0/8"]  # the test origin is on 127.0.0.1, which the guard refuses by default


PHOTO = "photo.jpg"  # the synthetic library's 800 x 533 JPEG


def misbehave(origin: Origin, photo: bytes) -> None:
    """The origin's misbehaving keys beside the library's files (``photo``: the bytes of one)."""
    origin["reset.jpg"] = Reply(  # headers, part of the body, then a TCP reset
        200, b"\xff\xd8" + b"\x00" * 500, headers={"Content-Length": "100000"}, fault=Fault.RESET_AFTER_BODY
    )
    origin["reset-early.jpg"] = Reply(fault=Fault.RESET_BEFORE_RESPONSE)
    origin["to-loopback.jpg"] = redirect("http://127.0.0.1:9/admin")  # another service on this machine
    origin["to-metadata.jpg"] = redirect("http://169.254.169.254/latest/meta-data/")  # the cloud metadata service
    origin["slow.jpg"] = Reply(200, b"late", delay=3)
    origin["error.jpg"] = Reply(500, b"boom")
    origin["gone.jpg"] = Reply(410, b"gone")
    origin["moved.jpg"] = redirect(f"/img/{PHOTO}")
    origin["offhost.jpg"] = redirect("http://127.0.0.2:9/x.jpg")
    origin["loop.jpg"] = redirect("/img/loop.jpg")
    origin["big.jpg"] = Reply(200, b"\xff" * 300_000)
    origin["lying-length.jpg"] = Reply(200, b"\xff" * 300_000, fault=Fault.UNDECLARED_LENGTH)
    origin["truncated-body.jpg"] = Reply(
        200, photo[:1000], headers={"Content-Length": str(len(photo))}, fault=Fault.CLOSE_AFTER_BODY
    )


#: What the origin sends with each of the library's files.
FILE_HEADERS = {"ETag": '"v1"', "Last-Modified": "Tue, 01 Sep 2026 10:00:00 GMT"}


@contextlib.contextmanager
def http_origin(photos: Path, tls: ssl.SSLContext | None = None) -> Iterator[Origin]:
    """The synthetic library under ``/img`` on 127.0.0.1, with the misbehaving keys."""
    with serve_origin(photos, prefix="/img", file_headers=FILE_HEADERS, tls=tls) as origin:
        misbehave(origin, (photos / PHOTO).read_bytes())
        yield origin


@pytest.fixture(scope="module")
def origin(photos: Path) -> Iterator[Origin]:
    with http_origin(photos) as served:
        yield served


@pytest.fixture(scope="module")
def remote(origin: Origin):
    with make_client(
        {"web": origin.url},
        origin_timeout=1.0,
        max_source_bytes=250_000,
        origin_allowed_networks=LOOPBACK,
        origin_max_connections=4,
    ) as c:
        yield c


def test_fetches_and_transforms_from_http_origin(remote):
    r = remote.get(signed(f"/w:200/web/{PHOTO}"), headers={"Accept": "image/webp"})
    assert r.status_code == 200
    image = decode(r.content)
    assert (loader_format(image), image.width, image.height) == ("webp", 200, 133)
    assert r.headers["last-modified"] == "Tue, 01 Sep 2026 10:00:00 GMT"


def test_same_host_redirect_is_followed(remote):
    r = remote.get(signed("/w:100/f:png/web/moved.jpg"))
    assert r.status_code == 200
    assert decode(r.content).width == 100


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("missing.jpg", 404, "original not found"),
        ("gone.jpg", 404, "original not found"),
        ("error.jpg", 502, "origin answered 500"),
        ("offhost.jpg", 502, "origin redirected off its host"),
        ("loop.jpg", 502, "origin redirected too many times"),
        ("slow.jpg", 504, "origin timed out"),
        ("big.jpg", 413, "the original is over the limit of 250000 bytes"),
        ("lying-length.jpg", 413, "the original is over the limit of 250000 bytes"),
        ("truncated-body.jpg", 502, "origin connection failed"),
        ("reset.jpg", 502, "origin connection failed"),
        ("reset-early.jpg", 502, "origin connection failed"),
        ("to-loopback.jpg", 502, "origin redirected off its host"),
        ("to-metadata.jpg", 502, "origin redirected off its host"),
    ],
)
def test_origin_failures_map_to_statuses(remote, key, status, message):
    r = remote.get(signed(f"/w:100/web/{key}"))
    assert (r.status_code, r.text) == (status, message + "\n")
    expected_age = 1 if status >= 500 else 60
    assert r.headers["cache-control"] == f"public, max-age={expected_age}"


def test_readyz_reports_http_origin(remote):
    assert remote.get("/readyz").json()["origins"] == {"web": True}


@pytest.mark.parametrize(
    "key",
    [
        "a/../../secret.jpg",
        "%2F%2Fevil.example/x.jpg",
        "/etc/passwd",
        "a%5C..%5Cb.jpg",
        "a/./b.jpg",
        "x%00.jpg",
        "..",
        "a//b.jpg",
    ],
)
def test_keys_cannot_leave_the_base_url(remote, origin, key):
    before = len(origin.requests)
    assert raw_get(remote, signed(f"/w:100/web/{key}")) == (404, b"original not found\n")
    assert origin.requests[before:] == []  # nothing was fetched, from this host or any other


def _origin_sockets(origin_port: int) -> int:
    """This process's established client sockets to the origin (the proxy's pool runs in-process)."""
    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == origin_port and c.status == psutil.CONN_ESTABLISHED
    )


def test_faults_leave_no_connections_behind(photos):
    """A burst of good and misbehaving fetches at concurrency 16: the proxy never holds more origin
    connections than its pool limit (4), and once the burst is over at most those 4 stay open."""
    keys = [
        PHOTO,
        "reset.jpg",
        "error.jpg",
        "truncated-body.jpg",
        "lying-length.jpg",
        "big.jpg",
        "reset-early.jpg",
        "missing.jpg",
        "slow.jpg",
    ] * 6
    with (
        http_origin(photos) as origin,
        make_client(
            {"web": origin.url},
            origin_timeout=1.0,
            max_source_bytes=250_000,
            origin_allowed_networks=LOOPBACK,
            origin_max_connections=4,
        ) as remote,
    ):
        port = origin.port
        peak, stop = [0], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _origin_sockets(port))
                time.sleep(0.002)

        sampler = threading.Thread(target=sample)
        sampler.start()
        paths = [signed(f"/w:{100 + i}/web/{key}") for i, key in enumerate(keys)]
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            statuses = list(ex.map(lambda p: remote.get(p).status_code, paths))
        stop.set()
        sampler.join()
        assert sorted(set(statuses)) == [200, 404, 413, 502, 504]
        assert 1 <= peak[0] <= 4
        time.sleep(0.2)
        assert _origin_sockets(port) <= 4


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("224.0.0.251", "multicast"),
        ("239.1.2.3", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped (Python >= 3.13 also says loopback directly)
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:100.64.0.1", "shared (CGNAT) (embedded in IPv6)"),
        ("::10.0.0.1", "private (embedded in IPv6)"),  # IPv4-compatible (deprecated)
        ("64:ff9b::a00:1", "private (embedded in IPv6)"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback (embedded in IPv6)"),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::808:808", "private"),  # local-use NAT64 (RFC 8215): refused whatever it embeds
        ("2002:7f00:1::1", "loopback (embedded in IPv6)"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local (embedded in IPv6)"),  # 6to4 of 169.254.169.254
    ],
)
def test_guard_refuses_every_non_public_range(address, kind):
    got = refusal(ipaddress.ip_address(address))
    # Python versions differ on whether a few embedded forms are flagged directly or via the IPv4.
    assert got is not None and got.removesuffix(" (embedded in IPv6)") == kind.removesuffix(" (embedded in IPv6)")


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_guard_accepts_public_addresses(address):
    assert refusal(ipaddress.ip_address(address)) is None


def test_guard_accepts_explicitly_allowed_networks():
    allowed = [ipaddress.ip_network("10.20.0.0/16")]
    assert refusal(ipaddress.ip_address("10.20.3.4"), allowed) is None
    assert refusal(ipaddress.ip_address("10.21.3.4"), allowed) == "private"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]"])
def test_guard_checks_after_resolution(host):
    backend = GuardedBackend()
    with pytest.raises(ForbiddenAddress):
        asyncio.run(backend.connect_tcp(host.strip("[]"), 80, timeout=1))


def test_guard_reports_unresolvable_hosts():
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(GuardedBackend().connect_tcp("no-such-host.invalid", 80, timeout=1))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_origin_is_refused_unless_allowed(photos, host):
    with http_origin(photos) as origin:
        base = origin.url_for(host)
        with make_client({"web": base}) as c:
            r = c.get(signed(f"/w:100/web/{PHOTO}"))
            assert (r.status_code, r.text) == (502, "origin host resolves to a loopback address\n")
            assert r.headers["cache-control"] == "public, max-age=1"
            assert c.get("/readyz").json()["origins"] == {"web": False}
        with make_client({"web": base}, origin_allowed_networks=["127.0.0.1/32", "::1/128"]) as c:
            assert c.get(signed(f"/w:100/web/{PHOTO}")).status_code == 200


@pytest.fixture(scope="module")
def origin_ca() -> trustme.CA:
    return trustme.CA()


@contextlib.contextmanager
def https_origin(photos: Path, ca: trustme.CA) -> Iterator[tuple[str, Origin]]:
    """An HTTPS origin on 127.0.0.1 with a certificate for ``localhost`` issued by ``ca``; yields its
    base URL (by host name, so the client sends SNI) and the origin (its ``accepted`` connections,
    ``sni`` names and ``requests``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with http_origin(photos, tls=context) as origin:
        yield origin.url_for("localhost"), origin


def test_https_origin_goes_through_the_guard_with_sni(photos, origin_ca, tmp_path):
    """TLS runs over the guarded socket (opened to 127.0.0.1), verified against the CA of
    ``origin_ca_file`` for the host name ``localhost``, which is also the SNI name sent."""
    ca_file = tmp_path / "origin-ca.pem"
    origin_ca.cert_pem.write_to_path(str(ca_file))
    with (
        https_origin(photos, origin_ca) as (base, server),
        make_client(
            {"web": base},
            origin_ca_file=str(ca_file),
            origin_allowed_networks=["127.0.0.0/8", "::1/128"],
        ) as c,
    ):
        r = c.get(signed(f"/w:200/web/{PHOTO}"), headers={"Accept": "image/webp"})
        assert r.status_code == 200, r.text
        image = decode(r.content)
        assert (loader_format(image), image.width, image.height) == ("webp", 200, 133)
        assert server.sni and set(server.sni) == {"localhost"}
        assert server.gets() == [f"/img/{PHOTO}"]


def test_https_origin_on_loopback_is_refused_before_connecting(photos, origin_ca, tmp_path):
    ca_file = tmp_path / "origin-ca.pem"
    origin_ca.cert_pem.write_to_path(str(ca_file))
    with (
        https_origin(photos, origin_ca) as (base, server),
        make_client(
            {"web": base},
            origin_ca_file=str(ca_file),
        ) as c,
    ):
        r = c.get(signed(f"/w:100/web/{PHOTO}"))
        assert (r.status_code, r.text) == (502, "origin host resolves to a loopback address\n")
        assert (server.accepted, server.sni, server.requests) == ([], [], [])  # no TCP connection, no handshake


def test_https_origin_with_an_untrusted_certificate_is_a_502(photos, origin_ca):
    with (
        https_origin(photos, origin_ca) as (base, server),
        make_client(
            {"web": base},
            origin_allowed_networks=["127.0.0.0/8", "::1/128"],
        ) as c,
    ):
        r = c.get(signed(f"/w:100/web/{PHOTO}"))
        assert (r.status_code, r.text) == (502, "origin connection failed\n")
        assert server.sni  # the handshake was tried, and the client gave up on the certificate
        assert server.requests == []


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ForbiddenAddress("origin host resolves to a private address"), ForbiddenOrigin),
        (httpcore.ConnectTimeout("t"), httpx.ConnectTimeout),
        (httpcore.ReadTimeout("t"), httpx.ReadTimeout),
        (httpcore.WriteTimeout("t"), httpx.WriteTimeout),
        (httpcore.PoolTimeout("t"), httpx.PoolTimeout),
        (httpcore.ConnectError("e"), httpx.ConnectError),
        (httpcore.ReadError("e"), httpx.ReadError),
        (httpcore.WriteError("e"), httpx.WriteError),
        (httpcore.NetworkError("e"), httpx.NetworkError),
        (httpcore.RemoteProtocolError("e"), httpx.RemoteProtocolError),
        (httpcore.LocalProtocolError("e"), httpx.LocalProtocolError),
        (httpcore.ProtocolError("e"), httpx.ProtocolError),
        (httpcore.UnsupportedProtocol("e"), httpx.UnsupportedProtocol),
        (httpcore.ProxyError("e"), httpx.ProxyError),
        (httpcore.TimeoutException("t"), httpx.TimeoutException),
    ],
)
def test_transport_raises_the_matching_public_httpx_error(raised, expected):
    request = httpx.Request("GET", "https://origin.example/x.jpg")
    with pytest.raises(httpx.TransportError) as info, public_errors(request):
        raise raised
    assert type(info.value) is expected
    assert (str(info.value), info.value.request, info.value.__cause__) == (str(raised), request, raised)


def test_other_errors_pass_through_unmapped():
    with pytest.raises(ValueError), public_errors(httpx.Request("GET", "https://origin.example/")):
        raise ValueError("not a transport error")


def test_origin_ca_file_must_be_a_file():
    with pytest.raises(SettingsError, match=r"origin_ca_file: '/nonexistent.pem' is not a file"):
        load_settings(signing_key="k", origin_ca_file="/nonexistent.pem")
    assert load_settings(signing_key="k").origin_ca_file is None


# -- No private httpx/httpcore internals: the guard plugs in through public seams only.

HTTP_LIBRARIES = {"httpx", "httpcore"}
#: httpx/httpcore internals a subclass might reach for, whatever the installed version's source says.
KNOWN_INTERNALS = {
    "_pool",
    "_transport",
    "_transport_for_url",
    "_mounts",
    "_network_backend",
    "_ssl_context",
    "_connections",
    "_requests",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _inherited_private_names(cls: type) -> set[str]:
    """``self._x`` names that httpx/httpcore classes in ``cls``'s MRO use (their own internals)."""
    names = set(KNOWN_INTERNALS)
    for base in cls.__mro__:
        if base.__module__.partition(".")[0] in HTTP_LIBRARIES:
            with contextlib.suppress(OSError, TypeError):
                names.update(re.findall(r"\bself\.(_[A-Za-z]\w*)", inspect.getsource(base)))
    return {name for name in names if _private(name)}


def private_http_uses(source: str) -> list[str]:
    """Where ``source`` touches a private part of httpx or httpcore, as ``line: what``.

    - imports of a ``_``-prefixed module or name from httpx/httpcore (``httpx._transports``);
    - in a module importing httpx/httpcore, ``x._name`` (or ``getattr(x, "_name")``) on anything but
      ``self``/``cls``, whose own attributes are the module's business;
    - in a subclass of an httpx/httpcore class, ``self._name`` when ``_name`` is an attribute of the
      library's classes (e.g. ``AsyncHTTPTransport._pool``).
    """
    tree = ast.parse(source)
    found: list[str] = []
    imported: dict[str, object] = {}  # local name -> httpx/httpcore object
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in HTTP_LIBRARIES:
                    if any(_private(part) for part in parts):
                        found.append(f"{node.lineno}: import {alias.name}")
                    imported[alias.asname or parts[0]] = importlib.import_module(parts[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in HTTP_LIBRARIES:
            parts = node.module.split(".")
            for alias in node.names:
                if any(_private(part) for part in [*parts, alias.name]):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                else:
                    module = importlib.import_module(node.module)
                    imported[alias.asname or alias.name] = getattr(module, alias.name, None)
    if not imported:
        return found

    def library_object(expr: ast.expr) -> object:
        if isinstance(expr, ast.Name):
            return imported.get(expr.id)
        if isinstance(expr, ast.Attribute):
            owner = library_object(expr.value)
            return None if owner is None else getattr(owner, expr.attr, None)
        return None

    for node in ast.walk(tree):
        if _reaches_into_other_object(node):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ClassDef):
            bases = [b for b in map(library_object, node.bases) if isinstance(b, type)]
            internals = set().union(*map(_inherited_private_names, bases)) if bases else set()
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Attribute)
                    and inner.attr in internals
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id == "self"
                ):
                    found.append(f"{inner.lineno}: self.{inner.attr} (an attribute of {node.name}'s base)")
    return found


def _reaches_into_other_object(node: ast.AST) -> bool:
    """``x._name`` or ``getattr(x, "_name")`` (also set/has/delattr), ``x`` not ``self``/``cls``."""
    if isinstance(node, ast.Attribute):
        return _private(node.attr) and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2:
        name = node.args[1]
        return (
            node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and isinstance(name, ast.Constant)
            and isinstance(name.value, str)
            and _private(name.value)
        )
    return False


def test_no_module_touches_private_parts_of_httpx_or_httpcore():
    package = Path(edgeproxy.__file__).parent
    found = [
        f"{path.relative_to(package.parent)}:{where}"
        for path in sorted(package.rglob("*.py"))
        for where in private_http_uses(path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        # what origins/guard.py did before: replace the pool httpx.AsyncHTTPTransport built
        "import httpcore, httpx\nclass T(httpx.AsyncHTTPTransport):\n"
        "    def __init__(self):\n        super().__init__()\n        self._pool = httpcore.AsyncConnectionPool()\n",
        "from httpx import AsyncHTTPTransport\nclass T(AsyncHTTPTransport):\n"
        "    async def aclose(self):\n        await self._pool.aclose()\n",
        "from httpx._transports.default import AsyncResponseStream\n",
        "import httpx._config\n",
        "from httpx import _exceptions\n",
        "import httpx\nclient = httpx.AsyncClient()\npool = client._transport\n",
        "import httpx\nbackend = getattr(httpx.AsyncHTTPTransport(), '_pool')\n",
    ],
)
def test_private_use_check_catches_internals(source):
    assert private_http_uses(source) != []
