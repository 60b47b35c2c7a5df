"""The contract a derivative must keep, checked on one answer (``edgeproxy check``): its format
(``check_type``), its size against the URL's box (``size_problem``, exact with ``expected_size``),
its caching headers (``check_caching``) and ``Vary`` (``check_vary``); each failure recorded in the
probe's ``Result`` as a named ``Failure``."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from edgeproxy.render.geometry import plan
from edgeproxy.url.media import OUTPUT_MIME
from edgeproxy.url.spec import MAX_DIMENSION, Fit, Format, TransformSpec

#: Formats ``f:auto`` may answer whatever ``Accept`` says (``negotiate``'s legacy choices).
LEGACY = frozenset({"jpeg", "png", "gif"})


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


def check_type(result: Result, negotiated_format: Format, accepts: frozenset[str]) -> None:
    """``content-type``: the declared type is the format the bytes are (``result.sniffed``), and that
    format is ``negotiated_format`` or, for ``f:auto``, one of ``accepts`` or a legacy one."""
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


def check_caching(result: Result, headers: httpx.Headers, expires: int | None, now: float) -> None:
    """``cache-control`` and ``etag``: public with a max-age, and immutable or a quality target's
    fast tier; for a URL with ``exp`` (``expires``, UNIX seconds; ``now`` likewise) never
    immutable, a max-age within the seconds left and an ``Expires``; a quoted entity tag."""
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


def check_vary(result: Result, headers: httpx.Headers, auto: bool) -> None:
    """``vary``: ``Accept`` for ``f:auto`` (``auto``) and not for an explicit format, never ``*``."""
    vary = {v.strip().lower() for v in headers.get("vary", "").split(",") if v.strip()}
    if "*" in vary:
        result.fail("vary", "Vary: * (no cache can store it)")
    elif auto and "accept" not in vary:
        result.fail("vary", f"f:auto without Vary: Accept (Vary: {headers.get('vary') or 'none'})")
    elif not auto and "accept" in vary:
        result.fail("vary", "Vary: Accept on an explicit format (needless CDN variants)")
