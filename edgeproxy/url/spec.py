"""The transform spec: what a URL asks for, as a frozen, typed value, and its canonical form.

Grammar (see docs/url-grammar.md; parsed by ``edgeproxy.url.grammar``)::

    /{option}/{option}/.../{origin}/{key...}      option = name:arg[:arg...]

This module holds the vocabulary: the value types (``Fit``, ``Format``, ``Gravity``, ``Crop``,
``TransformSpec``...), the option names and their aliases (``OPTION_NAMES``), and the canonical
form. ``canonical(spec)`` is the exact inverse of ``grammar.parse_options``:
``parse_options(canonical(s)) == s`` for every valid spec (tested as a property), and equal specs
have equal canonical forms, so the canonical form is what goes into ETags and variant keys. A spec
never holds a preset name: its canonical form is always the options the presets expanded to.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from decimal import Decimal
from urllib.parse import quote

#: Upper bound on width/height in the grammar itself (CSS pixels); the configured
#: ``max_output_dimension`` (device pixels) is usually lower.
MAX_DIMENSION = 16384
#: The most extreme aspect ratio ``ar`` takes, either way: 100:1 (a banner) to 1:100.
MAX_ASPECT_RATIO = 100.0
#: The byte budgets ``mb`` (``max_bytes``) takes: 1 KiB (below it even the lowest quality of a
#: thumbnail rarely fits, and the answer would be the smallest encode anyway) to 100 MiB.
MIN_MAX_BYTES = 1024
MAX_MAX_BYTES = 100 * 1024 * 1024


class Fit(enum.StrEnum):
    """How the image is fitted into the ``width`` × ``height`` box.

    - ``inside``: as large as possible inside the box, aspect kept, no padding (sharp ``inside``).
    - ``contain``: like ``inside`` but always touches the box, enlarging if needed
      (Cloudflare Images ``contain``; ``enlarge`` is implied).
    - ``cover``: covers the box, aspect kept, the overflow cropped by ``gravity`` (sharp ``cover``).
    - ``fill``: exactly the box, aspect ignored (sharp ``fill``).
    - ``outside``: as small as possible while covering the box, no crop (sharp ``outside``).
    - ``pad``: as ``inside``, then padded to exactly the box with ``background``
      (Cloudflare ``pad``, sharp ``contain``).
    """

    INSIDE = "inside"
    CONTAIN = "contain"
    COVER = "cover"
    FILL = "fill"
    OUTSIDE = "outside"
    PAD = "pad"


class Format(enum.StrEnum):
    """Output format; ``auto`` is negotiated from ``Accept`` (see ``negotiate``)."""

    AUTO = "auto"
    AVIF = "avif"
    WEBP = "webp"
    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    JXL = "jxl"  # JPEG XL: only with the [jxl] extra installed (edgeproxy.render.pillow.encode_jxl)


class Redact(enum.StrEnum):
    """How ``redact:faces`` hides each detected face: ``blur`` (a Gaussian blur whose sigma is a
    quarter of the face's size) or ``pixelate`` (blocks of a sixth of the face's size): both leave
    no facial features to recognise. See ``pipeline.redact``."""

    BLUR = "blur"
    PIXELATE = "pixelate"


class Flip(enum.StrEnum):
    NONE = ""
    H = "h"
    V = "v"
    HV = "hv"


#: Compass gravities as (x, y) fractions of the free space: west/north = 0, east/south = 1.
COMPASS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "north": (0.5, 0.0),
    "south": (0.5, 1.0),
    "east": (1.0, 0.5),
    "west": (0.0, 0.5),
    "northeast": (1.0, 0.0),
    "northwest": (0.0, 0.0),
    "southeast": (1.0, 1.0),
    "southwest": (0.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class Gravity:
    """Where to anchor a crop or a pad.

    ``kind`` is a compass name (``center``, ``north``, ... ``southwest``), ``smart`` (libvips
    attention: edges, skin tones and saturated colour, as ``vips_smartcrop``), ``face`` (the crop
    centred on the union of the faces the face model finds, ``smart`` where it finds none; needs the
    ``face_model`` setting) or ``fp`` (focal point at ``x``, ``y``, fractions 0..1 of the width and
    height, 0,0 = top-left).
    """

    kind: str = "center"
    x: float = 0.5
    y: float = 0.5

    def anchor(self) -> tuple[float, float]:
        """(x, y) in 0..1: compass fraction of the free space, or the focal point itself."""
        if self.kind == "fp":
            return self.x, self.y
        return COMPASS.get(self.kind, (0.5, 0.5))


@dataclass(frozen=True, slots=True)
class Crop:
    """A source region, applied after EXIF orientation and before resizing.

    ``fraction`` False: pixels of the upright original. True: fractions 0..1 of its width/height.
    """

    x: float
    y: float
    width: float
    height: float
    fraction: bool = False


@dataclass(frozen=True, slots=True)
class Trim:
    """``trim:THRESHOLD[:RRGGBB]``: uniform borders removed from the upright original before ``crop``
    and resizing (libvips ``find_trim``, as imgproxy's and thumbor's ``trim``).

    ``threshold``: how far (0..255, per band, after libvips' 3x3 median) a pixel may differ from the
    border colour and still be border. ``colour``: the border's sRGB colour, or None for the colour of
    the top-left pixel; on an image with alpha whose top-left pixel is transparent (and no colour
    given), the border is the transparent pixels (alpha at most ``threshold``).
    """

    threshold: float
    colour: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class TransformSpec:
    """Everything a URL asks for, typed and immutable. ``None`` means "not given"."""

    width: int | None = None  # CSS pixels; multiplied by dpr
    height: int | None = None  # CSS pixels; multiplied by dpr
    # ar:W:H: the box's other side from the one given (height = width × H/W, or width = height × W/H);
    # alone, the largest W:H box inside the (cropped, rotated) original. Never with both w and h.
    aspect_ratio: tuple[float, float] | None = None
    fit: Fit = Fit.INSIDE
    gravity: Gravity = Gravity()
    dpr: float = 1.0  # device pixel ratio, 1..4
    format: Format = Format.AUTO
    quality: int | None = None  # 1..100; None: the format's configured default
    # mb:N: lossy output (JPEG, WebP, AVIF) re-encoded at lower qualities until its body is at most N
    # bytes (``edgeproxy.quality.budget``); other formats ignore it. MIN_MAX_BYTES..MAX_MAX_BYTES.
    max_bytes: int | None = None
    # trim:T[:RRGGBB]: uniform borders removed first (before crop: c's pixels are the trimmed image's)
    trim: Trim | None = None
    crop: Crop | None = None
    rotate: int = 0  # clockwise degrees, 0/90/180/270, after EXIF orientation
    flip: Flip = Flip.NONE
    blur: float | None = None  # Gaussian sigma, pixels
    sharpen: float | None = None  # sigma, pixels
    grayscale: bool = False  # gray:1: the output in grey (libvips "b-w": R = G = B), alpha kept
    background: tuple[int, int, int, int] | None = None  # RGBA 0..255
    redact: Redact | None = None  # redact:faces[:blur|:pixelate]: every detected face hidden
    enlarge: bool = False
    strip: bool = True
    expires: int | None = None  # UNIX seconds; the URL is refused after it
    version: str | None = None  # cache buster; no effect on pixels
    # w:auto[:N]: the width comes from the Sec-CH-Width client hint (``width``, when given, is the
    # fallback N in CSS pixels); dpr:auto: the dpr from Sec-CH-DPR. ``negotiate`` resolves both, so
    # the spec a render sees never has them set.
    width_auto: bool = False
    dpr_auto: bool = False
    # q:auto[:N]: the quality is chosen per image, the lowest whose output reaches a SSIMULACRA2 score
    # (``quality``, when given, is that target N, 1..100; None: the server's ``quality_target``);
    # ``edgeproxy.quality.search`` does it. Unlike w:auto it stays set: it is resolved per image.
    quality_auto: bool = False

    def box(self) -> tuple[int | None, int | None]:
        """Target box in device pixels: (width × dpr, height × dpr), rounded; None where not given.

        With ``aspect_ratio`` (W, H) and one side given, the other is that side × H/W (or × W/H),
        rounded, at least 1: ``w:300/ar:16:9`` at dpr 2 is (600, 338). With neither side given it
        stays (None, None): the box then comes from the original (``geometry.plan``).
        """
        w = round(self.width * self.dpr) if self.width else None
        h = round(self.height * self.dpr) if self.height else None
        if self.aspect_ratio is not None:
            rw, rh = self.aspect_ratio
            if w is not None and h is None:
                h = max(1, round(w * rh / rw))
            elif h is not None and w is None:
                w = max(1, round(h * rw / rh))
        return w, h


#: option name or alias -> spec field. The first alias of each field is its canonical name.
OPTION_NAMES: dict[str, str] = {
    "w": "width",
    "width": "width",
    "h": "height",
    "height": "height",
    "ar": "aspect_ratio",
    "aspect_ratio": "aspect_ratio",
    "fit": "fit",
    "g": "gravity",
    "gravity": "gravity",
    "dpr": "dpr",
    "f": "format",
    "format": "format",
    "q": "quality",
    "quality": "quality",
    "mb": "max_bytes",
    "max_bytes": "max_bytes",
    "trim": "trim",
    "c": "crop",
    "crop": "crop",
    "rot": "rotate",
    "rotate": "rotate",
    "flip": "flip",
    "blur": "blur",
    "sharpen": "sharpen",
    "gray": "grayscale",
    "grayscale": "grayscale",
    "bg": "background",
    "background": "background",
    "redact": "redact",
    "enlarge": "enlarge",
    "strip": "strip",
    "pr": "preset",
    "preset": "preset",
    "exp": "expires",
    "expires": "expires",
    "v": "version",
    "version": "version",
}
#: spec field (and ``preset``) -> the short name canonical paths and URL builders write.
SHORT_NAMES = {field: name for name, field in reversed(OPTION_NAMES.items())}
_DEFAULTS = TransformSpec()


def decimal_text(value: float) -> str:
    """The shortest positional decimal that parses back to exactly ``value``: no exponent, trailing
    zeros and ``.`` dropped (``2.0`` -> ``"2"``, ``0.25`` -> ``"0.25"``, ``1e-7`` -> ``"0.0000001"``)."""
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _format_field(field: str, value: object) -> str:
    if field == "aspect_ratio" and isinstance(value, tuple):
        return ":".join(decimal_text(v) for v in value)
    match value:
        case bool():
            return "1" if value else "0"
        case Gravity(kind="fp", x=x, y=y):
            return f"fp:{decimal_text(x)}:{decimal_text(y)}"
        case Gravity(kind=kind):
            return kind
        case Trim(threshold=t, colour=None):
            return decimal_text(t)
        case Trim(threshold=t, colour=(r, g, b)):
            return f"{decimal_text(t)}:{r:02x}{g:02x}{b:02x}"
        case Redact():
            return f"faces:{value.value}"
        case Crop(x=x, y=y, width=w, height=h, fraction=True):
            return ":".join(decimal_text(v) if v not in (0, 1) else f"{v:.1f}" for v in (x, y, w, h))
        case Crop(x=x, y=y, width=w, height=h):
            return f"{int(x)}:{int(y)}:{int(w)}:{int(h)}"
        case tuple():
            r, g, b, a = value
            return f"{r:02x}{g:02x}{b:02x}" + ("" if a == 255 else f"{a:02x}")
        case float():
            return decimal_text(value)
        case enum.Enum():
            return str(value.value)
    return str(value)


def canonical(spec: TransformSpec) -> str:
    """The canonical option path of ``spec``: non-default options in field order, short names.

    Example: ``"/w:400/fit:cover/f:webp"``; the default spec gives ``""``. Presets never appear: a
    spec holds the options they expanded to.
    """
    parts = []
    for f in fields(spec):
        value = getattr(spec, f.name)
        if f.name == "width" and spec.width_auto:
            parts.append("w:auto" + (f":{value}" if value is not None else ""))
        elif f.name == "dpr" and spec.dpr_auto:
            parts.append("dpr:auto")
        elif f.name == "quality" and spec.quality_auto:
            parts.append("q:auto" + (f":{value}" if value is not None else ""))
        elif f.name in ("width_auto", "dpr_auto", "quality_auto") or value == getattr(_DEFAULTS, f.name):
            continue
        else:
            parts.append(f"{SHORT_NAMES[f.name]}:{_format_field(f.name, value)}")
    return "".join("/" + p for p in parts)


def build_path(spec: TransformSpec, origin: str, key: str) -> str:
    """Unsigned URL path for ``spec`` on ``origin``/``key``: the inverse of ``grammar.parse_path``."""
    return f"{canonical(spec)}/{origin}/{quote(key, safe='/')}"
