"""The encode step's choice of quality: fixed, the format's typical quality for a target, or searched.

A render with a SSIMULACRA2 ``target`` (``q:auto[:N]``, or the ``quality_target`` policy) either
searches the lowest quality that reaches it (``search.find_quality``: the optimised tier, slow) or
uses the quality at which photos typically reach it (``search.typical_quality``: the fast tier).
Formats without a search (PNG: lossless, or a palette at a URL's ``q``; GIF; JPEG XL) and animations
take the fixed quality. Then a byte budget (``mb:N``), when the URL sets one and the format is lossy,
lowers the quality until the body fits (``budget.fit_budget``): the budget wins over a target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyvips

from edgeproxy.quality.budget import LOSSY, fit_budget
from edgeproxy.quality.search import OPTIMISED_PRIOR, RANGES, find_quality, typical_quality
from edgeproxy.render import encoding
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.render.failures import Deadline
from edgeproxy.render.vips import in_memory, page_height


@dataclass(frozen=True, slots=True)
class Encoded:
    """An encode: its ``body`` (bytes), the encoder ``quality`` used (1..100; None for lossless and
    GIF), and the SSIMULACRA2 ``score`` it reached when the quality was searched (else None)."""

    body: bytes
    quality: int | None
    score: float | None = None


def encode(
    image: pyvips.Image,
    fmt: str,
    *,
    quality: int | None,
    target: float | None,
    search: bool,
    default_quality: Callable[[str], int],
    options: EncodeOptions,
    strip: bool,
    deadline: Deadline | None = None,
    max_bytes: int | None = None,
) -> Encoded:
    """``image`` (computed here) encoded as ``fmt``: at ``quality`` (a URL's fixed ``q``); else, with a
    ``target`` and a format that has a search (``search.RANGES``) and one frame, at the searched
    quality (``search`` True, and at most ``options.search_max_pixels``) or the typical one; else at
    ``default_quality(fmt)``. With ``max_bytes`` and a lossy ``fmt`` (``budget.LOSSY``), that encode
    when it is at most ``max_bytes`` bytes, else the highest quality down to
    ``options.max_bytes_floor`` that is (``budget.fit_budget``), else the smallest encode made; the
    score is then None (the budget's encode was not scored).

    Raises:
        ProxyError: as ``encoding.encode`` (422, 504).
    """
    if max_bytes is not None and fmt in LOSSY:
        image = in_memory(image, deadline)  # encoded several times: its pipeline computed once
        first = encode(
            image,
            fmt,
            quality=quality,
            target=target,
            search=search,
            default_quality=default_quality,
            options=options,
            strip=strip,
            deadline=deadline,
        )
        assert first.quality is not None  # lossy formats always have one
        fitted = fit_budget(
            image,
            fmt,
            max_bytes,
            (first.quality, first.body),
            options,
            floor=options.max_bytes_floor,
            strip=strip,
            deadline=deadline,
        )
        return first if fitted.encodes == 0 else Encoded(fitted.body, fitted.quality)
    searchable = target is not None and fmt in RANGES and page_height(image) == image.height
    if quality is None and searchable and target is not None:
        if search and image.width * image.height <= options.search_max_pixels:
            choice = find_quality(image, fmt, target, options, strip=strip, deadline=deadline, prior=OPTIMISED_PRIOR)
            return Encoded(choice.body, choice.quality, choice.score)
        quality = typical_quality(fmt, target)
    chosen = quality if quality is not None else default_quality(fmt)
    body = encoding.encode(image, fmt, chosen, strip, options, deadline)
    lossless = fmt == "gif" or (fmt == "png" and chosen >= 100)
    return Encoded(body, None if lossless else chosen)
