"""The lowest encoder quality whose output reaches a SSIMULACRA2 target, in a few encodes.

``find_quality(image, "avif", 70, options)`` encodes the resized output ``image`` at a few qualities,
decodes each candidate (libvips) and scores it against ``image`` (``ssimulacra2.Reference``, prepared
once), and returns the lowest quality in ``[low, high]`` that reached the target, with its bytes.

The search follows a model of the q–score curve. The score rises with the quality, but not
strictly: encoders switch modes between qualities (chroma subsampling, quantiser tables), so the
curve has steps and small dips (on corpus photos, 1 step in 100 goes down, by up to 5 points). The
search keeps a bracket: ``miss``, the highest quality tried that missed the target (``low - 1`` at
first), and ``hit``, the lowest that reached it (``high + 1`` at first: none yet). Each encode falls
strictly inside and narrows it, whatever its score. The next quality is the ``ceil`` of a guess at
where the curve crosses the target:
- the first: ``PRIOR``, the quality at which corpus photos typically reach the target;
- with scores on both sides: linear interpolation between ``miss`` and ``hit``;
- with scores on one side only: a line from the nearest one, of ``SLOPE`` points per quality step,
  or flatter when the scores so far say so (so a flat curve is crossed in long strides);
- ``high`` when one encode is left and nothing reached the target yet.
It stops when ``hit - miss == 1``: ``hit`` reached the target and ``hit - 1`` missed (or is below
``low``), so no lower quality does as far as the curve is monotone there (``minimal``). A dip below
``hit`` that would also reach the target is not looked for: the result may spend a few bytes more,
never fall under the target. When the encodes run out first, the result is ``hit`` (``minimal``
False); when even ``high`` misses, ``high``'s encode (``reached`` False). On the corpus's q–score
curves (12 photos at 800 px, 3 formats, targets 60 to 85: 216 searches) it took 3.6 encodes on
average (2 to 6), ended minimal in 212 and on the lowest quality that reaches the target in 214;
a bisection of the same ranges takes 6 every time. On a linear curve it always ends on the exact
answer (``tests/test_quality_search.py``).

Blocking (encodes and numpy): run it in a render thread. Source of the metric: ``ssimulacra2``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import pyvips

from edgeproxy.quality.ssimulacra2 import Reference
from edgeproxy.render import encoding, pillow
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.render.failures import Deadline


@dataclass(frozen=True, slots=True)
class QualityRange:
    """The encoder qualities (libvips ``Q``, 1..100) a search may choose from, ``low`` to ``high``."""

    low: int
    high: int


#: Per format, the qualities a search chooses from: they cover the qualities at which the corpus
#: photos at 800 px reach targets 60 to 85 at edgeproxy's default efforts (JPEG 33..92, WebP 37..96,
#: AVIF 40..87; WebP tops out near 89). ``low`` is a floor (a flat image reaches any target at the
#: first quality; below it photos score about 50 or less); above ``high`` bytes grow fast for little
#: gain. 63 qualities each: a bisection would close them in 6 encodes.
RANGES: Final[Mapping[str, QualityRange]] = MappingProxyType(
    {"jpeg": QualityRange(30, 92), "webp": QualityRange(34, 96), "avif": QualityRange(28, 90)}
)
#: The first quality tried, per format: ``(target, quality)`` points, linear between them: the median
#: quality at which those photos reach the target (at the default efforts: other efforts move the
#: curve a little, which may cost an encode, never the result).
PRIOR: Final[Mapping[str, tuple[tuple[float, float], ...]]] = MappingProxyType(
    {
        "jpeg": ((50.0, 33.0), (60.0, 44.0), (70.0, 65.5), (80.0, 83.0), (85.0, 90.0), (90.0, 94.0)),
        "webp": ((50.0, 36.5), (60.0, 54.5), (70.0, 77.5), (80.0, 88.0), (85.0, 94.0)),
        "avif": ((50.0, 40.0), (60.0, 47.0), (70.0, 55.5), (80.0, 71.0), (85.0, 82.5), (90.0, 90.0)),
    }
)
#: ``PRIOR`` for the optimised tier's encoders (``EncodeOptions.optimised``, taken ``for_target``).
#: JPEG, mozjpeg's table 5 and 4:2:0 below target 85, table 8 from it (``encoding.OPTIMISED_JPEG``):
#: fitted as ``PRIOR`` (the median quality at which the photos reach each target) by
#: ``python -m bench.encoders --formats jpeg --candidates 9,7 --floors 50,60,70,80,85,90`` (8 corpus
#: photos at 800 px; full bisections): table 5 with 4:2:0 up to 80, table 8 from 85. AVIF, effort 4
#: in 4:4:4, 8-bit below 75 and 10-bit from it (``encoding.OPTIMISED_AVIF_BITDEPTH``): 60 to 85 the
#: medians of ``python -m bench.encoders --formats avif --avif-photos 4 --candidates 0,3,6,7`` (4
#: photos: AVIF's slow efforts; both decoders judging), 50 and 90 shifted as their nearest target. WebP:
#: ``PRIOR``'s. ``SLOPE`` is kept (a worse guess costs an encode, never the result).
OPTIMISED_PRIOR: Final[Mapping[str, tuple[tuple[float, float], ...]]] = MappingProxyType(
    {
        **PRIOR,
        "jpeg": ((50.0, 30.5), (60.0, 44.0), (70.0, 64.5), (80.0, 84.0), (85.0, 87.5), (90.0, 90.5)),
        "avif": ((50.0, 33.0), (60.0, 40.0), (70.0, 50.5), (80.0, 65.0), (85.0, 76.0), (90.0, 83.5)),
    }
)
#: Score points per quality step, per format (the photos' median between q40 and q80), for a guess
#: where only one side of the bracket has a score.
SLOPE: Final[Mapping[str, float]] = MappingProxyType({"jpeg": 0.6, "webp": 0.5, "avif": 0.6})
#: Backgrounds an image with alpha is flattened onto for the metric, as the reference tool does
#: (``ssimulacra2_main.cc``: dark 0.1 and light 0.9, the lower score counts), in 8-bit sRGB.
BACKGROUNDS: Final = (26, 230)


@dataclass(frozen=True, slots=True)
class QualityChoice:
    """What ``find_quality`` found.

    ``quality``: the chosen encoder quality; ``body``: the image encoded at it (bytes, what to serve);
    ``score``: its SSIMULACRA2 against the reference; ``reached``: ``score >= target`` (False: even the
    range's ``high`` missed, and ``body`` is ``high``'s); ``minimal``: ``quality - 1`` was tried and
    missed, or ``quality`` is the range's ``low`` (False: the encodes ran out first, and a lower
    quality might reach the target too); ``encodes``: how many encodes the search did; ``tried``:
    ``(quality, score)`` of each, in order.
    """

    quality: int
    body: bytes
    score: float
    reached: bool
    minimal: bool
    encodes: int
    tried: tuple[tuple[int, float], ...]


class _Judge:
    """Scores encoded candidates against one reference image (any bands; alpha flattened twice; AVIF
    decoded twice: ``browser_decodes``): the lowest score counts."""

    def __init__(self, image: pyvips.Image) -> None:
        self._backgrounds = BACKGROUNDS if image.hasalpha() else (None,)
        self._references = [Reference(_metric_view(image, bg)) for bg in self._backgrounds]

    def score(self, body: bytes) -> float:
        return min(
            ref.score(_metric_view(decoded, bg))
            for decoded in browser_decodes(body)
            for ref, bg in zip(self._references, self._backgrounds, strict=True)
        )


#: The ``ftyp`` brands of an AVIF file (ISO/IEC 23000-22, AV1 Image File Format: image, sequence).
AVIF_BRANDS: Final = (b"ftypavif", b"ftypavis")


def browser_decodes(body: bytes) -> tuple[pyvips.Image, ...]:
    """An encoded image ``body`` decoded as browsers may decode it, to judge it: AVIF by libvips
    (libheif: 10-bit converted at 16 bits, 4:2:0 chroma upsampled its way) and by libavif (Pillow's
    AVIF plugin, to 8-bit RGB(A); Chromium's AVIF decoder is built on libavif), whose outputs score
    up to about 1.5 SSIMULACRA2 points apart on the same file (either may be the lower); every
    other format by libvips alone. Judges take the lowest score, so that a target holds in
    either. libavif's decode carries the embedded ICC profile as ``icc-profile-data``.

    Raises:
        pyvips.Error: libvips cannot decode ``body``.
        DecodeError: Pillow cannot decode an AVIF ``body``.
    """
    decoded = pyvips.Image.new_from_buffer(body, "")
    if body[4:12] not in AVIF_BRANDS:
        return (decoded,)
    pixels = pillow.decode(body, "avif")
    image = pyvips.Image.new_from_memory(pixels.data, pixels.width, pixels.height, pixels.bands, "uchar")
    image = image.copy(interpretation=pixels.interpretation)
    if pixels.icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", pixels.icc)
    return decoded, image


def _metric_view(image: pyvips.Image, background: int | None) -> pyvips.Image:
    """``image`` as the metric takes it: 3-band 8-bit sRGB, alpha flattened onto ``background`` (grey)."""
    if image.hasalpha():
        image = image.flatten(background=[background if background is not None else 255] * (image.bands - 1))
    if image.bands < 3 or image.format != "uchar":  # grey, 16-bit or float: to 8-bit sRGB
        image = image.colourspace("srgb")
    return image if image.format == "uchar" else image.cast("uchar")


def _prior(fmt: str, target: float, prior: Mapping[str, tuple[tuple[float, float], ...]] = PRIOR) -> float:
    """``prior``'s quality for ``target``, linear between its points, flat beyond them."""
    points = prior[fmt]
    if target <= points[0][0]:
        return points[0][1]
    for (t0, q0), (t1, q1) in itertools.pairwise(points):
        if target <= t1:
            return q0 + (q1 - q0) * (target - t0) / (t1 - t0)
    return points[-1][1]


def typical_quality(fmt: str, target: float) -> int:
    """The encoder quality (1..100) at which photos typically reach ``target`` as ``fmt`` (jpeg,
    webp, avif: ``PRIOR``, rounded up, within ``RANGES``): what a fast encode uses for a target
    without searching (the fast tier).

    Raises:
        KeyError: a format without a search.
    """
    span = RANGES[fmt]
    return min(max(math.ceil(_prior(fmt, target)), span.low), span.high)


def _next_quality(
    miss: int,
    hit: int,
    scores: Mapping[int, float],
    target: float,
    left: int,
    span: QualityRange,
    fmt: str,
    prior: Mapping[str, tuple[tuple[float, float], ...]] = PRIOR,
) -> int:
    """The next quality to encode, strictly between ``miss`` and ``hit`` (see the module's docstring)."""
    if hit > span.high and left == 1:
        return span.high
    if not scores:
        guess = _prior(fmt, target, prior)
    elif miss in scores and hit in scores:
        guess = miss + (target - scores[miss]) * (hit - miss) / max(scores[hit] - scores[miss], 1e-6)
    else:  # one side only: from the nearest score, along SLOPE or the flatter line through that side
        near = miss if miss in scores else hit
        slope = SLOPE[fmt]
        if len(scores) >= 2:  # all on one side: its lowest and highest quality
            q0, q1 = min(scores), max(scores)
            slope = min(slope, max((scores[q1] - scores[q0]) / (q1 - q0), 0.05))
        guess = near + (target - scores[near]) / slope
    return min(max(math.ceil(guess), miss + 1), hit - 1)


def find_quality(
    image: pyvips.Image,
    fmt: str,
    target: float,
    options: EncodeOptions,
    *,
    low: int | None = None,
    high: int | None = None,
    max_encodes: int = 6,
    strip: bool = True,
    deadline: Deadline | None = None,
    prior: Mapping[str, tuple[tuple[float, float], ...]] = PRIOR,
) -> QualityChoice:
    """The lowest quality in ``[low, high]`` (default ``RANGES[fmt]``) at which ``image`` encoded as
    ``fmt`` (jpeg, webp, avif; ``encoding.encode`` with ``options`` and ``strip``) and decoded again
    scores at least ``target`` (SSIMULACRA2, 0..100; 70 high quality, 80 very high) against ``image``.

    ``image``: the resized output (any bands; it is computed into memory once here). At most
    ``max_encodes`` encodes; each also costs one decode and one score (``Reference.score``, about 30 ms
    at 800 × 533 px on one core). ``deadline`` is passed to every encode. ``options`` are taken
    ``for_target(target)`` (the optimised tier's JPEG tables by target). ``prior``: the first
    guesses (``PRIOR``: the default encoders'; ``OPTIMISED_PRIOR``: the optimised tier's).

    Raises:
        ValueError: a format without a search (png, gif, jxl), a range outside 1..100 or empty,
            ``max_encodes`` < 1, an animation, or an image smaller than 8 × 8 px.
        ProxyError: as ``encoding.encode`` (422, 504).
    """
    if fmt not in RANGES:
        raise ValueError(f"no quality search for format {fmt!r} (only {', '.join(RANGES)})")
    span = QualityRange(RANGES[fmt].low if low is None else low, RANGES[fmt].high if high is None else high)
    if not 1 <= span.low <= span.high <= 100 or max_encodes < 1:
        raise ValueError(f"bad search: qualities {span.low}..{span.high}, {max_encodes} encodes")
    if image.get_typeof("page-height") and image.get("page-height") < image.height:
        raise ValueError("no quality search for animations: their frames would be scored as one strip")
    image = image.copy_memory()
    options = options.for_target(target)
    judge = _Judge(image)
    bodies: dict[int, bytes] = {}
    scores: dict[int, float] = {}
    miss, hit = span.low - 1, span.high + 1
    while hit - miss > 1 and len(bodies) < max_encodes:
        quality = _next_quality(miss, hit, scores, target, max_encodes - len(bodies), span, fmt, prior)
        bodies[quality] = encoding.encode(image, fmt, quality, strip, options, deadline)
        scores[quality] = judge.score(bodies[quality])
        if scores[quality] >= target:
            hit = quality
        else:
            miss = quality
    chosen = hit if hit <= span.high else span.high
    return QualityChoice(
        quality=chosen,
        body=bodies[chosen],
        score=scores[chosen],
        reached=hit <= span.high,
        minimal=hit <= span.high and hit - miss == 1,
        encodes=len(bodies),
        tried=tuple(scores.items()),
    )
