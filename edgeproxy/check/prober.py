"""``edgeproxy check``'s requests: each target fetched with its ``Accept`` and every check run on
the answer (``probe``), one target at a time over one connection pool (``run``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpx

from edgeproxy.check.contract import Result, check_caching, check_type, check_vary, size_problem
from edgeproxy.check.sniffing import decode, sniff
from edgeproxy.check.targets import Target, split_url
from edgeproxy.http.negotiate import accepted_image_types, negotiate
from edgeproxy.url.spec import MAX_DIMENSION, Format


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
    check_type(result, spec.format, accepted_image_types(target.accept, True))
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
    check_caching(result, response.headers, spec.expires, time.time() if now is None else now)
    check_vary(result, response.headers, spec.format is Format.AUTO)
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
