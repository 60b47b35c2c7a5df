"""Content negotiation: output format from ``Accept``, size and quality from client hints.

Format (``f:auto``, the default): JPEG XL when enabled (``auto_jxl``) and ``Accept`` lists
``image/jxl`` with q > 0, else AVIF when it lists ``image/avif`` with q > 0, else WebP when it lists
``image/webp`` with q > 0, else the legacy format the source calls for (GIF when animated,
PNG when it has alpha, JPEG otherwise). An animated source prefers WebP over AVIF, since libvips
writes AVIF as a still. Wildcards (``image/*``, ``*/*``) do not count as AVIF or WebP support: old
clients send them without decoding either. ``q`` parameters follow RFC 9110 §12.5.1 / §12.4.2.

An explicit ``f:webp`` is served whatever ``Accept`` says: the URL is the contract, and no ``Vary``
is needed. Client hints (RFC 8942; ``Sec-CH-Width`` and ``Sec-CH-DPR`` from the W3C/WICG
"Responsive Image Client Hints", ``Save-Data`` from WICG "Save Data") are honoured only when enabled
(``client_hints``), and only where the URL asks for them: ``w:auto`` reads ``Sec-CH-Width``,
``dpr:auto`` reads ``Sec-CH-DPR``, and a URL without ``q`` reads ``Save-Data``. Each header read goes
into ``Vary``, and no other: a URL that asks for no hint has no hint in its ``Vary``. Widths and DPRs
from hints are rounded up to configured buckets (``AutoSize``), so that a CDN (which keys on the
normalised header: config/cdn.md) stores a handful of variants, not one per device.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from edgeproxy.url.spec import Format, TransformSpec

#: The hints the proxy reads (``Accept-CH`` when ``client_hints`` is on). Chromium ignores
#: ``Accept-CH`` on image responses: the page itself must send it and delegate the hints to the
#: proxy's origin (docs/negotiation.md, "Client hints in browsers").
ACCEPT_CH = "Sec-CH-DPR, Sec-CH-Width, Save-Data"
#: The ``Accept`` values a CDN normalises every request's ``Accept`` to before its ``Vary`` lookup
#: (``config/accept-buckets.json``, the shipped VCL and CloudFront Function): one per answer ``f:auto``
#: gives a still image. A client listing AVIF but not WebP goes to ``none`` (always acceptable).
ACCEPT_BUCKETS = {"avif+webp": "image/avif,image/webp", "webp": "image/webp", "none": "*/*"}
#: The default ``auto_width_buckets`` (device pixels): from 320 to 2560 each at most 17.2 % above the
#: one before (750 / 640), so a hinted width is served on average 7 % wider than asked (15 % more
#: pixels) and never over 17 % wider, against 20 % (46 %) and 50 % with the halving steps 320, 480,
#: 640, 960, ... used before (a 665-pixel slot got 960). Common device widths are buckets of their
#: own (640, 750, 828, 1080, 1440, 1920, 2560); below 320 and above 2560 the steps are coarser, where
#: few slots fall. 20 buckets, 16 of them in 320..2560: the cost is CDN fragmentation, at most one
#: object (one render) per bucket a URL's visitors reach, times the ``Accept`` and ``Save-Data``
#: buckets (docs/negotiation.md, "Width buckets").
DEFAULT_WIDTH_BUCKETS: tuple[int, ...] = (
    160, 240, 320, 368, 424, 480, 560, 640, 750, 828, 960, 1080, 1240, 1440, 1680, 1920, 2240, 2560, 3072, 3840,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The concrete request: spec with hints applied, what ``Accept`` allows, and ``Vary``.

    ``accepts`` is a subset of {"avif", "jxl", "webp"}: what ``resolve_format`` may choose for ``f:auto``
    (``jxl`` only where JPEG XL output is enabled).
    ``vary`` lists request header names that changed (or would change) the bytes, in a fixed order.
    """

    spec: TransformSpec
    accepts: frozenset[str]
    vary: tuple[str, ...]

    def resolve_format(self, animated: bool, alpha: bool) -> Format:
        """The concrete output format once the source's facts are known: the URL's, else from
        ``accepts``; an ``animated`` source never gets AVIF from ``f:auto`` (animated WebP, else
        GIF: an AVIF sequence is larger at the fast tier's effort, docs/formats.md "Animations")."""
        fmt = self.spec.format
        if fmt is not Format.AUTO:
            return fmt
        if animated:
            return Format.WEBP if "webp" in self.accepts else Format.GIF
        if "jxl" in self.accepts:
            return Format.JXL
        if "avif" in self.accepts:
            return Format.AVIF
        if "webp" in self.accepts:
            return Format.WEBP
        return Format.PNG if alpha else Format.JPEG


def accepted_image_types(accept: str, jxl: bool = False) -> frozenset[str]:
    """Which of AVIF and WebP (and JPEG XL when ``jxl``) an ``Accept`` header names explicitly with q > 0.

    >>> sorted(accepted_image_types("image/avif;q=0, image/webp, */*;q=0.8"))
    ['webp']
    """
    wanted = ("image/avif", "image/webp", "image/jxl") if jxl else ("image/avif", "image/webp")
    found = set()
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        media = media.lower()
        if media not in wanted:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and math.isfinite(q):
            found.add(media.removeprefix("image/"))
    return frozenset(found)


def accept_bucket(accepts: frozenset[str]) -> str:
    """The name of what ``Accept`` allowed ``f:auto`` to choose: ``avif+webp``, ``avif``, ``webp``
    or ``none`` (and ``avif+jxl+webp`` and the like with ``auto_jxl``). Clients in one bucket get the
    same bytes; these are the buckets a CDN should collapse ``Accept`` into before its ``Vary`` lookup."""
    return "+".join(sorted(accepts)) or "none"


def _hint_number(value: str | None, lo: float, hi: float) -> float | None:
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return min(max(number, lo), hi)


@dataclass(frozen=True, slots=True)
class AutoSize:
    """How ``w:auto`` and ``dpr:auto`` turn hints into sizes (the ``auto_*`` settings).

    ``width_buckets``: ascending widths in device pixels; a width is rounded up to the first bucket
    at or above it (the last bucket above them all). ``width_fallback``: CSS pixels for ``w:auto``
    without a hint or a fallback in the URL. ``dpr_buckets``: ascending DPRs (1..4), likewise.
    """

    width_buckets: tuple[int, ...] = DEFAULT_WIDTH_BUCKETS
    width_fallback: int = 640
    dpr_buckets: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0)


def round_up(value: float, buckets: Sequence[float]) -> float:
    """The first of ascending ``buckets`` at or above ``value``; the last one when ``value`` is above
    them all.

    >>> round_up(600, (320, 640, 960)), round_up(2.625, (1, 1.5, 2, 3)), round_up(5000, (320, 640))
    (640, 3, 640)
    """
    return buckets[min(bisect_left(buckets, value), len(buckets) - 1)]


def negotiate(
    spec: TransformSpec,
    headers: Mapping[str, str],
    *,
    client_hints: bool,
    save_data_quality: int,
    max_dimension: int,
    jxl: bool = False,
    auto: AutoSize = AutoSize(),
) -> Negotiated:
    """Apply ``Accept`` and (if ``client_hints``) the client hints in ``headers`` to ``spec``.

    ``headers`` is case-insensitive (Starlette's ``Headers``). ``jxl``: JPEG XL may be chosen for
    ``f:auto`` (``auto_jxl`` with the encoder installed). The returned spec is concrete: no
    ``width_auto`` or ``dpr_auto`` left.

    - ``dpr:auto``: ``Sec-CH-DPR`` (clamped to 1..4) rounded up to ``auto.dpr_buckets``; 1 without
      the hint.
    - ``w:auto[:N]``: ``Sec-CH-Width`` (device pixels: the image's slot width × DPR, which Chromium
      sends for an ``<img>`` whose ``sizes`` or ``width`` attribute states its slot), else N or
      ``auto.width_fallback`` CSS pixels × the DPR; rounded up to ``auto.width_buckets`` and capped
      at ``max_dimension``; the spec then holds device pixels with dpr 1.
    - ``Save-Data: on`` with no ``q`` in the URL, or ``q:auto`` without a target: the fixed quality
      ``save_data_quality`` (fewer bytes than any target would give).

    With ``client_hints`` off, no hint is read: ``w:auto`` gives its fallback, ``dpr:auto`` 1.
    """
    vary: list[str] = []
    accepts: frozenset[str] = frozenset()
    if spec.format is Format.AUTO:
        vary.append("Accept")
        accepts = accepted_image_types(headers.get("accept", ""), jxl)
    concrete = spec  # ``spec`` keeps what the URL asked for; ``concrete`` gathers the hints' answers
    if spec.dpr_auto:
        dpr = 1.0
        hint = _hint_number(headers.get("sec-ch-dpr"), 1.0, 4.0) if client_hints else None
        if hint is not None:
            dpr = float(round_up(hint, auto.dpr_buckets))
        concrete = replace(concrete, dpr=dpr, dpr_auto=False)
    if spec.width_auto:
        hint = _hint_number(headers.get("sec-ch-width"), 1, max_dimension) if client_hints else None
        if hint is None:
            hint = (spec.width or auto.width_fallback) * concrete.dpr
        width = min(int(round_up(math.ceil(hint), auto.width_buckets)), max_dimension)
        concrete = replace(concrete, width=width, dpr=1.0, width_auto=False)
    if client_hints:
        if spec.width_auto:
            vary.append("Sec-CH-Width")
        if spec.dpr_auto:
            vary.append("Sec-CH-DPR")
        if spec.quality is None:
            vary.append("Save-Data")
            if headers.get("save-data", "").strip().lower() == "on":
                concrete = replace(concrete, quality=save_data_quality, quality_auto=False)
    return Negotiated(concrete, accepts, tuple(vary))
