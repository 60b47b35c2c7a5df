"""A byte budget (``mb:N``): the highest encoder quality whose output fits in N bytes, by bisection.

``fit_budget(image, "webp", 20_000, first, options)`` takes the encode the render already made
(``first``, at the quality it chose: the URL's ``q``, a target's, or the format's default) and,
when it is over the budget, bisects the qualities from ``floor`` up to one below ``first``'s:
an encode that fits raises the bracket's floor, one that does not lowers its ceiling. At most
``max_encodes`` encodes in all (``first`` included: 6 by default, which closes a range of 32
qualities exactly; a wider one to within a few steps). The answer is the highest quality tried
that fits; when none fits (the budget is below what even ``floor`` gives), the smallest body made,
as imgproxy answers its last, lowest-quality encode then; so ``mb`` never turns a render into an
error.

The size of an encode falls with its quality almost everywhere, but not strictly (JPEG's chroma
subsampling switches at Q 90; WebP and AVIF have small steps), so the answer is the highest fitting
quality the bisection saw, not always the highest that exists: a few bytes of headroom may be
left, never a byte over the budget (when anything fits). imgproxy (``processing/save_fit_bytes.go``,
github.com/imgproxy/imgproxy at 017722e9) instead scales the quality by 0.75, 0.5 or 0.25 as the
body is up to 1.5, 3 or more times the budget, until it fits or the quality is 10 or less, with no
bound on the encodes; a bisection bounds them at 6 and ends nearer the budget.

Only lossy formats have a quality to lower (``LOSSY``: JPEG, WebP, AVIF); PNG (lossless, or a
palette at a URL's ``q``), GIF and JPEG XL answer as encoded (docs/url-grammar.md). Blocking: run
it in a render thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from edgeproxy.render import encoding
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.render.failures import Deadline

#: Output formats whose quality ``mb`` lowers (imgproxy's ``max_bytes`` applies to the same three).
LOSSY = frozenset({"jpeg", "webp", "avif"})
#: Encodes one budget may cost, the render's own first encode included.
MAX_ENCODES = 6


@dataclass(frozen=True, slots=True)
class Fitted:
    """What ``fit_budget`` answers: ``body`` (bytes), the encoder ``quality`` it was made at
    (1..100), whether it ``fits`` the budget (False: nothing did, and ``body`` is the smallest
    made), and ``encodes``, the encodes done here (``first``'s not counted)."""

    body: bytes
    quality: int
    fits: bool
    encodes: int


def fit_budget(
    image: pyvips.Image,
    fmt: str,
    budget: int,
    first: tuple[int, bytes],
    options: EncodeOptions,
    *,
    floor: int,
    strip: bool = True,
    deadline: Deadline | None = None,
    max_encodes: int = MAX_ENCODES,
) -> Fitted:
    """``image`` (the render's output, any bands, animations too; computed into memory by the
    caller, so that each encode does not run its pipeline again) encoded as ``fmt`` (one of
    ``LOSSY``) in at most ``budget`` bytes: ``first`` (quality, body) when it fits; else the highest
    quality from ``floor`` to ``first``'s minus one that fits, bisected (``encoding.encode`` with
    ``options``, ``strip`` and ``deadline``); else the smallest body made.

    Raises:
        ValueError: a format not in ``LOSSY``, ``budget`` < 1, ``floor`` outside 1..100, or
            ``max_encodes`` < 2.
        ProxyError: as ``encoding.encode`` (422, 504).
    """
    if fmt not in LOSSY:
        raise ValueError(f"no byte budget for format {fmt!r} (only {', '.join(sorted(LOSSY))})")
    if budget < 1 or not 1 <= floor <= 100 or max_encodes < 2:
        raise ValueError(f"bad budget: {budget} bytes, floor {floor}, {max_encodes} encodes")
    quality, body = first
    if len(body) <= budget:
        return Fitted(body, quality, True, 0)
    smallest = (len(body), quality, body)
    best: tuple[int, bytes] | None = None
    low, high = floor, quality - 1  # the fitting quality, if any, is in low..high
    encodes = 0
    while low <= high and encodes < max_encodes - 1:
        # Nothing fits yet and one encode is left: the floor, the smallest there is.
        mid = low if best is None and encodes == max_encodes - 2 else (low + high + 1) // 2
        candidate = encoding.encode(image, fmt, mid, strip, options, deadline)
        encodes += 1
        if len(candidate) <= budget:
            best, low = (mid, candidate), mid + 1
        else:
            high = mid - 1
            if len(candidate) < smallest[0]:
                smallest = (len(candidate), mid, candidate)
    if best is not None:
        return Fitted(best[1], best[0], True, encodes)
    return Fitted(smallest[2], smallest[1], False, encodes)
