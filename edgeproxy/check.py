"""``edgeproxy check``: a synthetic probe of derivatives from the outside (through the CDN or the
proxy itself), for a cron job or a deployment pipeline.

Each target is one signed URL requested with one ``Accept`` string; its answer is checked against
what the URL asks for, parsed with the proxy's own grammar (``edgeproxy.url.grammar``) and
negotiated as the proxy would (``edgeproxy.http.negotiate``), and against the caching contract
(docs/headers.md, ``edgeproxy.http.responses.HeaderPolicy``). The checks, by name:

- ``request``: an answer came (no connection error or timeout);
- ``status``: 200;
- ``content-type``: the header names the format the bytes are (their magic number,
  ``sniff``), and that format is the URL's ``f:`` or, for ``f:auto``, one ``Accept`` allowed (or a
  legacy one: JPEG, PNG, GIF);
- ``decode``: libvips decodes every pixel (every frame);
- ``dimensions``: one frame's width × height fits the URL's box (``expected_size``): exact where
  the original's size is known (a manifest's ``width``/``height``: ``geometry.plan``), else the
  bounds every fit keeps (never over the box, exactly the box for ``pad`` and ``fill``...); not
  checked for ``w:auto`` (its width is the server's ``auto_width_fallback``, in its buckets);
- ``cache-control``: ``public`` with a ``max-age``, and ``immutable``, or the fast tier of a
  quality target (``stale-while-revalidate``, not ``immutable``); for a URL with ``exp``, never
  ``immutable``, a ``max-age`` no longer than the seconds left, and an ``Expires``;
- ``etag``: present, quoted (strong, or weak for C2PA-signed derivatives);
- ``vary``: ``Accept`` for ``f:auto`` and not for an explicit format, never ``*``;
- ``ttfb``, ``decode-time``: under ``--max-ttfb`` / ``--max-decode`` seconds, when given.

Output: a table (``table``), JSON (``as_json``) or a Prometheus textfile for node_exporter's
textfile collector (``write_textfile``, prometheus_client's ``write_to_textfile``: written to a
temporary file and renamed, so the collector never reads half a file). Requests go one at a time,
so their timings are not each other's queueing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from edgeproxy.errors import ProxyError
from edgeproxy.http.negotiate import accepted_image_types, negotiate
from edgeproxy.prewarm import variant_options
from edgeproxy.render.geometry import plan
from edgeproxy.url.builders import UrlBuilder
from edgeproxy.url.grammar import parse_path
from edgeproxy.url.media import OUTPUT_MIME
from edgeproxy.url.spec import MAX_DIMENSION, Fit, Format, TransformSpec

#: What ``check`` sends when no ``--accept`` is given: Chrome's ``Accept`` for images.
DEFAULT_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"
#: Formats ``f:auto`` may answer whatever ``Accept`` says (``negotiate``'s legacy choices).
LEGACY = frozenset({"jpeg", "png", "gif"})


@dataclass(frozen=True, slots=True)
class Target:
    """One probe: ``url`` (absolute, signed), sent with ``accept``; ``original`` the original's
    (width, height) in pixels when known (a manifest says), which makes ``dimensions`` exact."""

    url: str
    accept: str = DEFAULT_ACCEPT
    original: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed check: its name (``status``, ``content-type``...) and what was wrong."""

    check: str
    detail: str


@dataclass(slots=True)
class Result:
    """What one probe saw. ``target`` is the URL's path without its signature (what the URL asks
    for); times in milliseconds; ``width``/``height`` of one frame in pixels (0: not decoded)."""

    url: str
    target: str
    accept: str
    status: int = 0
    content_type: str = ""
    sniffed: str = ""
    bytes: int = 0
    width: int = 0
    height: int = 0
    frames: int = 0
    ttfb_ms: float = 0.0
    decode_ms: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, check: str, detail: str) -> None:
        self.failures.append(Failure(check, detail))


# ---------------------------------------------------------------------------- what the URL asks


def split_url(url: str) -> tuple[str, TransformSpec, str, str]:
    """(path without the signature, spec, origin, key) of a signed transform URL
    ``{base}/{signature}/{options...}/{origin}/{key}``.

    Raises:
        ValueError: not an http(s) URL, no signature segment, or a path the grammar refuses
            (the grammar's message: it names the option).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url}: not an http(s) URL")
    _signature, sep, rest = parts.path.lstrip("/").partition("/")
    if not sep or not rest:
        raise ValueError(f"{url}: expected /SIGNATURE/OPTIONS.../ORIGIN/KEY")
    try:
        spec, origin, key = parse_path("/" + rest)
    except ProxyError as error:
        raise ValueError(f"{url}: {error.message}") from None
    return "/" + unquote(rest), spec, origin, key


def expected_size(spec: TransformSpec, original: tuple[int, int] | None) -> tuple[int, int] | None:
    """The exact (width, height) in pixels of the answer to ``spec`` (negotiated: no ``w:auto``
    left) where the original's upright size is known and the spec does not ``trim``
    (``geometry.plan``, as the proxy plans it, at the grammar's largest output); else None, and
    ``size_problem`` checks the bounds."""
    if original is not None and spec.trim is None:
        return plan(spec, original[0], original[1], MAX_DIMENSION).output_size
    return None


def size_problem(spec: TransformSpec, size: tuple[int, int], original: tuple[int, int] | None) -> str | None:
    """Why a ``size`` (width, height, pixels of one frame) cannot be the answer to ``spec`` (already
    negotiated), or None.

    Exact when ``expected_size`` knows; otherwise the bounds every fit keeps: no side over the box
    (``inside``, ``cover``, ``contain``, ``fill``, ``pad``; ``outside`` has no upper bound), the
    given sides exactly for ``pad`` and ``fill``, and at least one given side exactly for
    ``contain`` (which always reaches the box) and for ``enlarge:1`` (``inside``).
    """
    exact = expected_size(spec, original)
    width, height = size
    if exact is not None:
        return None if exact == size else f"{width}x{height}, expected {exact[0]}x{exact[1]}"
    bw, bh = spec.box()
    given = [(name, side, box) for name, side, box in (("wider", width, bw), ("taller", height, bh)) if box]
    if not given or spec.fit is Fit.OUTSIDE:
        return None
    for name, side, box in given:
        if side > box:
            return f"{width}x{height} is {name} than the box {box}"
    reaches = [side == box for _name, side, box in given]
    if spec.fit in (Fit.PAD, Fit.FILL) and not all(reaches):
        return f"{width}x{height} is not the {spec.fit.value} box {bw or '*'}x{bh or '*'}"
    if (spec.fit is Fit.CONTAIN or (spec.enlarge and spec.fit is Fit.INSIDE)) and not any(reaches):
        return f"{width}x{height} does not reach the box {bw or '*'}x{bh or '*'}"
    return None


# ---------------------------------------------------------------------------- what the bytes are


def sniff(data: bytes) -> str:
    """The output format of ``data`` by its magic number (``jpeg``, ``png``, ``gif``, ``webp``,
    ``avif``, ``jxl``), or ``""``. AVIF: an ISO BMFF ``ftyp`` box of brand ``avif``/``avis`` (or
    listing one, AV1 Image File Format §9); JPEG XL: a codestream (``FF 0A``) or its container."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":
        box = int.from_bytes(data[:4], "big")
        brands = {data[i : i + 4] for i in range(8, min(box, len(data), 64), 4)}
        if brands & {b"avif", b"avis"}:
            return "avif"
    if data.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    return ""


def decode(data: bytes) -> tuple[int, int, int]:
    """(width, height of one frame, frames) of ``data``, every pixel of every frame decoded.

    Raises:
        pyvips.Error: libvips could not decode it.
    """
    import pyvips

    image = pyvips.Image.new_from_buffer(data, "", fail_on="error")
    if image.get("vips-loader").startswith(("gifload", "webpload", "heifload")):
        image = pyvips.Image.new_from_buffer(data, "", n=-1, fail_on="error")
    image.avg()  # pulls every pixel through the decoder
    page = image.get("page-height") if image.get_typeof("page-height") else image.height
    return image.width, page, image.height // page


# ---------------------------------------------------------------------------- the checks


def _check_type(result: Result, negotiated_format: Format, accepts: frozenset[str]) -> None:
    declared = result.content_type.split(";")[0].strip().lower()
    sniffed_mime = OUTPUT_MIME.get(Format(result.sniffed)) if result.sniffed else None
    if sniffed_mime is None:
        result.fail("content-type", f"the bytes are no image format edgeproxy writes (declared {declared or 'none'})")
    elif declared != sniffed_mime:
        result.fail("content-type", f"declared {declared or 'none'}, the bytes are {sniffed_mime}")
    elif negotiated_format is not Format.AUTO and result.sniffed != negotiated_format.value:
        result.fail("content-type", f"{sniffed_mime} answered for f:{negotiated_format.value}")
    elif negotiated_format is Format.AUTO and result.sniffed not in accepts | LEGACY:
        result.fail("content-type", f"{sniffed_mime} answered for f:auto, which Accept does not allow")


def _check_caching(result: Result, headers: httpx.Headers, expires: int | None, now: float) -> None:
    cache_control = headers.get("cache-control", "")
    directives = {d.strip().split("=")[0].lower(): d.strip() for d in cache_control.split(",") if d.strip()}
    max_age = directives.get("max-age", "").partition("=")[2]
    if "public" not in directives or not max_age.isdigit():
        result.fail("cache-control", f"{cache_control or 'none'}: not public with a max-age")
    elif expires is not None:
        left = max(0, int(expires - now))
        if "immutable" in directives or int(max_age) > left + 5 or "expires" not in headers:
            result.fail(
                "cache-control", f"{cache_control}: an exp URL ({left} s left) needs max-age <= that and Expires"
            )
    elif "immutable" not in directives and "stale-while-revalidate" not in directives:
        result.fail("cache-control", f"{cache_control}: neither immutable nor a quality target's fast tier")
    etag = headers.get("etag", "")
    if not (len(etag.removeprefix("W/")) > 2 and etag.removeprefix("W/").startswith('"') and etag.endswith('"')):
        result.fail("etag", f"{etag or 'none'}: not a quoted entity tag")


def _check_vary(result: Result, headers: httpx.Headers, auto: bool) -> None:
    vary = {v.strip().lower() for v in headers.get("vary", "").split(",") if v.strip()}
    if "*" in vary:
        result.fail("vary", "Vary: * (no cache can store it)")
    elif auto and "accept" not in vary:
        result.fail("vary", f"f:auto without Vary: Accept (Vary: {headers.get('vary') or 'none'})")
    elif not auto and "accept" in vary:
        result.fail("vary", "Vary: Accept on an explicit format (needless CDN variants)")


def probe(
    client: httpx.Client,
    target: Target,
    *,
    max_ttfb: float | None = None,
    max_decode: float | None = None,
    now: float | None = None,
) -> Result:
    """Request ``target`` and run every check on its answer (see the module's docstring); never
    raises for a wrong answer: each failure is a ``Failure`` in the result.

    Raises:
        ValueError: the target's URL is no transform URL (``split_url``).
    """
    path, spec, _origin, _key = split_url(target.url)
    result = Result(target.url, path, target.accept)
    negotiated = negotiate(
        spec, {"accept": target.accept}, client_hints=False, save_data_quality=50, max_dimension=MAX_DIMENSION
    )
    start = time.perf_counter()
    try:
        with client.stream("GET", target.url, headers={"Accept": target.accept}) as response:
            result.ttfb_ms = (time.perf_counter() - start) * 1000
            body = response.read()
    except httpx.HTTPError as error:
        result.fail("request", f"{type(error).__name__}: {error}")
        return result
    result.status, result.bytes = response.status_code, len(body)
    result.content_type = response.headers.get("content-type", "")
    if response.status_code != 200:
        result.fail("status", f"{response.status_code} {body[:120].decode('utf-8', 'replace').strip()}")
        return result
    result.sniffed = sniff(body)
    # What Accept allows, JPEG XL included: whether the server offers it (auto_jxl) is its choice.
    _check_type(result, spec.format, accepted_image_types(target.accept, True))
    started = time.perf_counter()
    try:
        result.width, result.height, result.frames = decode(body)
    except Exception as error:  # pyvips.Error, and anything a hostile answer makes libvips raise
        result.fail("decode", str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    else:
        result.decode_ms = (time.perf_counter() - started) * 1000
        # w:auto without a hint: the width is the server's auto_width_fallback in its buckets, unknown here
        problem = (
            None if spec.width_auto else size_problem(negotiated.spec, (result.width, result.height), target.original)
        )
        if problem:
            result.fail("dimensions", problem)
    _check_caching(result, response.headers, spec.expires, time.time() if now is None else now)
    _check_vary(result, response.headers, spec.format is Format.AUTO)
    if max_ttfb is not None and result.ttfb_ms > max_ttfb * 1000:
        result.fail("ttfb", f"{result.ttfb_ms:.1f} ms > {max_ttfb * 1000:g} ms")
    if max_decode is not None and result.decode_ms > max_decode * 1000:
        result.fail("decode-time", f"{result.decode_ms:.1f} ms > {max_decode * 1000:g} ms")
    return result


def run(
    targets: Iterable[Target],
    *,
    timeout: float = 30.0,
    max_ttfb: float | None = None,
    max_decode: float | None = None,
) -> list[Result]:
    """``probe`` every target, one at a time, over one connection pool; ``timeout`` seconds per request."""
    with httpx.Client(timeout=timeout) as client:
        return [probe(client, t, max_ttfb=max_ttfb, max_decode=max_decode) for t in targets]


# ---------------------------------------------------------------------------- targets


def url_targets(urls: Sequence[str], accepts: Sequence[str]) -> list[Target]:
    """One target per URL and ``Accept`` string.

    Raises:
        ValueError: a URL that is no transform URL (``split_url``).
    """
    for url in urls:
        split_url(url)
    return [Target(url, accept) for url in urls for accept in accepts]


def manifest_targets(
    manifest: Mapping[str, Any],
    variants: Sequence[str],
    *,
    base_url: str,
    key: str,
    signature_size: int = 32,
    origin: str | None = None,
    accepts: Sequence[str] = (DEFAULT_ACCEPT,),
) -> list[Target]:
    """Targets for every id of an image ``manifest`` (a JSON object: id -> ``{"origin", "key"}``
    plus optional ``width``, ``height`` in pixels of the upright original) in every variant (an
    option path, ``w:400/f:auto``), each with every ``Accept`` string; URLs signed with ``key`` as
    ``UrlBuilder`` signs them. With ``origin`` (a manifest origin's configured name) the URLs name
    the id (``/w:400/catalog/SKU-1``); without, the entry's own origin and key.

    Raises:
        ValueError: an entry that is not an object with ``origin`` and ``key`` strings (named), a
            bad variant or a key the builder refuses.
    """
    builder = UrlBuilder(base_url, key, signature_size=signature_size)
    targets: list[Target] = []
    for variant in variants:
        options = variant_options(variant)
        for ident, entry in manifest.items():
            if not isinstance(entry, Mapping) or not all(isinstance(entry.get(k), str) for k in ("origin", "key")):
                raise ValueError(f"manifest entry {ident!r}: expected an object with origin and key strings")
            width, height = entry.get("width"), entry.get("height")
            size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
            try:
                url = (
                    builder.url(origin, ident, **options)
                    if origin
                    else builder.url(entry["origin"], entry["key"], **options)
                )
            except (ValueError, TypeError) as error:
                raise ValueError(f"variant {variant!r}, id {ident!r}: {error}") from None
            targets.extend(Target(url, accept, size) for accept in accepts)
    return targets


# ---------------------------------------------------------------------------- output


def table(results: Sequence[Result]) -> str:
    """The results as a fixed-width text table, one row per probe, each failure on a line below it."""
    rows = [("", "status", "type", "size", "bytes", "ttfb ms", "decode ms", "accept", "target")]
    for r in results:
        size = f"{r.width}x{r.height}" + (f"x{r.frames}" if r.frames > 1 else "") if r.width else "-"
        kind = r.content_type.split(";")[0].removeprefix("image/") or "-"
        accept = r.accept if len(r.accept) <= 24 else r.accept[:21] + "..."
        rows.append(
            ("ok" if r.ok else "FAIL", str(r.status or "-"), kind, size, str(r.bytes), f"{r.ttfb_ms:.1f}",
             f"{r.decode_ms:.1f}", accept, r.target)
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append(" ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i:
            lines.extend(f"    {f.check}: {f.detail}" for f in results[i - 1].failures)
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} passed" + (f"; {failed} failed" if failed else ""))
    return "\n".join(lines)


def as_json(results: Sequence[Result]) -> str:
    """The results as a JSON array: each ``Result``'s fields, ``ok``, and ``failures`` as
    ``[{"check", "detail"}]``."""
    return json.dumps([{**asdict(r), "ok": r.ok} for r in results], indent=2)


def write_textfile(results: Sequence[Result], path: str) -> None:
    """The results as Prometheus metrics in ``path``, for node_exporter's textfile collector
    (prometheus_client's ``write_to_textfile``: a temporary file renamed into place). Per target
    (``target``: the URL's path without the signature; ``accept``):
    ``edgeproxy_check_success`` (1/0), ``edgeproxy_check_failed{check}`` (1 per failed check),
    ``edgeproxy_check_ttfb_seconds``, ``edgeproxy_check_decode_seconds``,
    ``edgeproxy_check_response_bytes``; and ``edgeproxy_check_last_run_timestamp_seconds``.

    Raises:
        OSError: the file could not be written.
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    labels = ["target", "accept"]
    success = Gauge("edgeproxy_check_success", "1 when every check of the target passed", labels, registry=registry)
    failed = Gauge("edgeproxy_check_failed", "1 for each check that failed", [*labels, "check"], registry=registry)
    ttfb = Gauge("edgeproxy_check_ttfb_seconds", "Time to the response headers", labels, registry=registry)
    decode_time = Gauge(
        "edgeproxy_check_decode_seconds", "Time libvips took to decode the answer", labels, registry=registry
    )
    size = Gauge("edgeproxy_check_response_bytes", "Bytes of the answer's body", labels, registry=registry)
    last = Gauge(
        "edgeproxy_check_last_run_timestamp_seconds", "When the check last ran (UNIX seconds)", registry=registry
    )
    for r in results:
        values = (r.target, r.accept)
        success.labels(*values).set(1 if r.ok else 0)
        for failure in r.failures:
            failed.labels(*values, failure.check).set(1)
        ttfb.labels(*values).set(r.ttfb_ms / 1000)
        decode_time.labels(*values).set(r.decode_ms / 1000)
        size.labels(*values).set(r.bytes)
    last.set(math.floor(time.time()))
    write_to_textfile(path, registry)
