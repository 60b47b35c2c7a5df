"""Content negotiation: output format from ``Accept``, size and quality from client hints.

Format (``f:auto``, the default): JPEG XL when enabled (``auto_jxl``) and ``Accept`` lists
``image/jxl`` with q > 0, else AVIF when it lists ``image/avif`` with q > 0, else WebP when it lists
``image/webp`` with q > 0, else the legacy format the source calls for (GIF when animated,
PNG when it has alpha, JPEG otherwise). An animated source prefers WebP over AVIF, since libvips
writes AVIF as a still. Wildcards (``image/*``, ``*/*``) do not count as AVIF or WebP support: old
clients send them without decoding either. ``q`` parameters follow RFC 9110 §12.5.1 / §12.4.2.

An explicit ``f:webp`` is served whatever ``Accept`` says: the URL is the contract, and no ``Vary``
is needed. Client hints (``Sec-CH-DPR``, ``Sec-CH-Width``, ``Save-Data``; RFC 8942 and the W3C
Client Hints drafts) are honoured only when enabled; each one the URL leaves open goes into ``Vary``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from edgeproxy.spec import Format, TransformSpec

ACCEPT_CH = "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width, Save-Data"
#: The ``Accept`` values a CDN normalises every request's ``Accept`` to before its ``Vary`` lookup
#: (``config/accept-buckets.json``, the shipped VCL and CloudFront Function): one per answer ``f:auto``
#: gives a still image. A client listing AVIF but not WebP goes to ``none`` (always acceptable).
ACCEPT_BUCKETS = {"avif+webp": "image/avif,image/webp", "webp": "image/webp", "none": "*/*"}


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
        """The concrete output format once the source's facts are known."""
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


def negotiate(
    spec: TransformSpec,
    headers: Mapping[str, str],
    *,
    client_hints: bool,
    save_data_quality: int,
    max_dimension: int,
    jxl: bool = False,
) -> Negotiated:
    """Apply ``Accept`` and (if ``client_hints``) the client hints in ``headers`` to ``spec``.

    ``headers`` is case-insensitive (Starlette's ``Headers``). Explicit URL options always win over
    hints. ``jxl``: JPEG XL may be chosen for ``f:auto`` (``auto_jxl`` with the encoder installed).
    ``Sec-CH-Width`` is in device pixels, so it sets the width with dpr 1; it is used only
    when the URL gives neither width nor height, and is capped at ``max_dimension``.
    """
    vary: list[str] = []
    accepts: frozenset[str] = frozenset()
    if spec.format is Format.AUTO:
        vary.append("Accept")
        accepts = accepted_image_types(headers.get("accept", ""), jxl)
    if client_hints:
        changes: dict[str, object] = {}
        if spec.width is None and spec.height is None:
            vary.append("Sec-CH-Width")
            width = _hint_number(headers.get("sec-ch-width"), 1, max_dimension)
            if width is not None:
                changes.update(width=int(width), dpr=1.0)
        if spec.dpr == 1.0 and (spec.width or spec.height):
            vary.append("Sec-CH-DPR")
            dpr = _hint_number(headers.get("sec-ch-dpr"), 1.0, 4.0)
            if dpr is not None:
                changes["dpr"] = dpr
        if spec.quality is None:
            vary.append("Save-Data")
            if headers.get("save-data", "").strip().lower() == "on":
                changes["quality"] = save_data_quality
        if changes:
            spec = replace(spec, **changes)
    return Negotiated(spec, accepts, tuple(vary))
