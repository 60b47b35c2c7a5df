"""The transform spec: the URL grammar parsed into a frozen, typed value, and its canonical form.

Grammar (see README, "URL grammar")::

    /{option}/{option}/.../{origin}/{key...}      option = name:arg[:arg...]

The first segment without ``:`` names the origin; everything after it is the object key
(percent-decoded, may contain ``/``). Options may come in any order, each at most once. Parsing does
no I/O and knows no configuration: limits that depend on settings are checked by the caller.

``canonical(spec)`` is the exact inverse of ``parse_options``: ``parse_options(canonical(s)) == s``
for every valid spec (tested as a property), and equal specs have equal canonical forms, so the
canonical form is what goes into ETags and variant keys.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, fields
from decimal import Decimal
from urllib.parse import quote, unquote

from edgeproxy.errors import bad_request

#: Upper bound on width/height in the grammar itself (CSS pixels); the configured
#: ``max_output_dimension`` (device pixels) is usually lower.
MAX_DIMENSION = 16384


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
    JXL = "jxl"  # JPEG XL: only with the [jxl] extra installed (edgeproxy.pillow.encode_jxl)


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
_COMPASS_ALIASES = {
    "c": "center", "ce": "center", "centre": "center",
    "n": "north", "no": "north", "s": "south", "so": "south",
    "e": "east", "ea": "east", "w": "west", "we": "west",
    "ne": "northeast", "nw": "northwest", "se": "southeast", "sw": "southwest",
}


@dataclass(frozen=True, slots=True)
class Gravity:
    """Where to anchor a crop or a pad.

    ``kind`` is a compass name (``center``, ``north``, ... ``southwest``), ``smart`` (libvips
    attention: edges, skin tones and saturated colour, as ``vips_smartcrop``), ``face`` (reserved;
    needs the face model) or ``fp`` (focal point at ``x``, ``y``, fractions 0..1 of the width and
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
class TransformSpec:
    """Everything a URL asks for, typed and immutable. ``None`` means "not given"."""

    width: int | None = None  # CSS pixels; multiplied by dpr
    height: int | None = None  # CSS pixels; multiplied by dpr
    fit: Fit = Fit.INSIDE
    gravity: Gravity = Gravity()
    dpr: float = 1.0  # device pixel ratio, 1..4
    format: Format = Format.AUTO
    quality: int | None = None  # 1..100; None: the format's configured default
    crop: Crop | None = None
    rotate: int = 0  # clockwise degrees, 0/90/180/270, after EXIF orientation
    flip: Flip = Flip.NONE
    blur: float | None = None  # Gaussian sigma, pixels
    sharpen: float | None = None  # sigma, pixels
    background: tuple[int, int, int, int] | None = None  # RGBA 0..255
    enlarge: bool = False
    strip: bool = True
    preset: str | None = None  # reserved: presets come with a later issue
    expires: int | None = None  # UNIX seconds; the URL is refused after it
    version: str | None = None  # cache buster; no effect on pixels

    def box(self) -> tuple[int | None, int | None]:
        """Target box in device pixels: (width × dpr, height × dpr), rounded; None where not given."""
        w = round(self.width * self.dpr) if self.width else None
        h = round(self.height * self.dpr) if self.height else None
        return w, h


# --------------------------------------------------------------------------- value parsers

_INT = re.compile(r"[0-9]{1,13}")
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,20})?")
_HEX = re.compile(r"[0-9a-fA-F]{6}([0-9a-fA-F]{2})?")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,64}")


def _int(name: str, arg: str, lo: int, hi: int) -> int:
    if not _INT.fullmatch(arg):
        raise bad_request(f"option {name}: {arg!r} is not a whole number")
    value = int(arg)
    if not lo <= value <= hi:
        raise bad_request(f"option {name}: {value} is outside {lo}..{hi}")
    return value


def _num(name: str, arg: str, lo: float, hi: float, *, open_lo: bool = False) -> float:
    if not _DECIMAL.fullmatch(arg):
        raise bad_request(f"option {name}: {arg!r} is not a decimal number")
    value = float(arg)
    if not (lo < value if open_lo else lo <= value) or value > hi:
        raise bad_request(f"option {name}: {arg} is outside {lo}..{hi}")
    return value


def _fmt_num(value: float) -> str:
    """Shortest positional decimal that parses back to exactly ``value`` (no exponent)."""
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _bool(name: str, arg: str) -> bool:
    if arg not in ("0", "1"):
        raise bad_request(f"option {name}: expected 0 or 1, got {arg!r}")
    return arg == "1"


def _one(name: str, args: list[str]) -> str:
    if len(args) != 1:
        raise bad_request(f"option {name}: expected one value, got {len(args)}")
    return args[0]


def _parse_gravity(name: str, args: list[str]) -> Gravity:
    kind = args[0].lower() if args else ""
    if kind == "fp":
        if len(args) != 3:
            raise bad_request(f"option {name}: fp needs fp:X:Y")
        return Gravity("fp", _num(name, args[1], 0.0, 1.0), _num(name, args[2], 0.0, 1.0))
    if len(args) != 1:
        raise bad_request(f"option {name}: expected one value")
    kind = _COMPASS_ALIASES.get(kind, kind)
    if kind in COMPASS:
        return Gravity(kind, *COMPASS[kind])
    if kind == "smart":
        return Gravity("smart")
    if kind == "face":
        raise bad_request(f"option {name}: face gravity needs the face model, which is not enabled")
    raise bad_request(f"option {name}: unknown gravity {args[0]!r}")


def _parse_crop(name: str, args: list[str]) -> Crop:
    if len(args) != 4:
        raise bad_request(f"option {name}: expected {name}:X:Y:W:H")
    fraction = any("." in a for a in args)
    if fraction:
        x, y, w, h = (_num(name, a, 0.0, 1.0) for a in args)
        if w == 0 or h == 0:
            raise bad_request(f"option {name}: width and height must be above 0")
    else:
        x, y = (_int(name, a, 0, 10**9) for a in args[:2])
        w, h = (_int(name, a, 1, 10**9) for a in args[2:])
    return Crop(x, y, w, h, fraction)


def _parse_background(name: str, arg: str) -> tuple[int, int, int, int]:
    if not _HEX.fullmatch(arg):
        raise bad_request(f"option {name}: expected RRGGBB or RRGGBBAA hex, got {arg!r}")
    if len(arg) == 6:
        arg += "ff"
    r, g, b, a = (int(arg[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


def _enum(name: str, arg: str, enum_cls: type[enum.StrEnum], aliases: dict[str, str] | None = None):
    value = (aliases or {}).get(arg.lower(), arg.lower())
    try:
        member = enum_cls(value)
    except ValueError:
        allowed = "|".join(m.value for m in enum_cls if m.value)
        raise bad_request(f"option {name}: {arg!r} is not one of {allowed}") from None
    if not member.value:
        raise bad_request(f"option {name}: empty value")
    return member


def _parse_one(field: str, name: str, args: list[str]) -> object:
    """Value of spec field ``field`` from option ``name`` (as written) with arguments ``args``."""
    if field == "gravity":
        return _parse_gravity(name, args)
    if field == "crop":
        return _parse_crop(name, args)
    arg = _one(name, args)
    match field:
        case "width" | "height":
            return _int(name, arg, 1, MAX_DIMENSION)
        case "fit":
            return _enum(name, arg, Fit)
        case "dpr":
            return _num(name, arg, 1.0, 4.0)
        case "format":
            return _enum(name, arg, Format, {"jpg": "jpeg"})
        case "quality":
            return _int(name, arg, 1, 100)
        case "rotate":
            value = _int(name, arg, 0, 270)
            if value % 90:
                raise bad_request(f"option {name}: must be 0, 90, 180 or 270")
            return value
        case "flip":
            return _enum(name, arg, Flip, {"vh": "hv"})
        case "blur":
            return _num(name, arg, 0.0, 100.0, open_lo=True)
        case "sharpen":
            return _num(name, arg, 0.0, 10.0, open_lo=True)
        case "background":
            return _parse_background(name, arg)
        case "enlarge" | "strip":
            return _bool(name, arg)
        case "preset":
            raise bad_request(f"option {name}: no presets are configured")
        case "expires":
            return _int(name, arg, 0, 2**40)
        case "version":
            if not _TOKEN.fullmatch(arg):
                raise bad_request(f"option {name}: expected 1-64 of A-Z a-z 0-9 . _ ~ -")
            return arg
    raise AssertionError(field)  # pragma: no cover


#: option name or alias -> spec field. The first alias of each field is its canonical name.
OPTION_NAMES: dict[str, str] = {
    "w": "width", "width": "width",
    "h": "height", "height": "height",
    "fit": "fit",
    "g": "gravity", "gravity": "gravity",
    "dpr": "dpr",
    "f": "format", "format": "format",
    "q": "quality", "quality": "quality",
    "c": "crop", "crop": "crop",
    "rot": "rotate", "rotate": "rotate",
    "flip": "flip",
    "blur": "blur",
    "sharpen": "sharpen",
    "bg": "background", "background": "background",
    "enlarge": "enlarge",
    "strip": "strip",
    "pr": "preset", "preset": "preset",
    "exp": "expires", "expires": "expires",
    "v": "version", "version": "version",
}
_CANONICAL_NAME = {field: name for name, field in reversed(OPTION_NAMES.items())}
_DEFAULTS = TransformSpec()


def parse_options(segments: list[str]) -> TransformSpec:
    """Build a spec from option segments (``["w:400", "f:auto"]``, already percent-decoded).

    Raises:
        ProxyError(400): unknown option, bad value, or an option given twice; the message names it.
    """
    values: dict[str, object] = {}
    for segment in segments:
        name, _, rest = segment.partition(":")
        field = OPTION_NAMES.get(name.lower())
        if field is None:
            raise bad_request(f"unknown option {name!r}")
        if field in values:
            raise bad_request(f"option {name}: given more than once")
        values[field] = _parse_one(field, name, rest.split(":"))
    return TransformSpec(**values)


def parse_path(path: str) -> tuple[TransformSpec, str, str]:
    """Split ``/{options...}/{origin}/{key...}`` (raw, percent-encoded) into (spec, origin, key).

    Raises:
        ProxyError(400): no origin or key, a bad option, or a key that does not percent-decode to UTF-8.
    """
    segments = path.lstrip("/").split("/")
    try:
        decoded = [unquote(raw, errors="strict") for raw in segments]
        for i, segment in enumerate(decoded):
            if ":" not in segment:
                if not segment:
                    raise bad_request("missing origin name")
                key = unquote("/".join(segments[i + 1 :]), errors="strict")
                if not key:
                    raise bad_request("missing object key")
                return parse_options(decoded[:i]), segment, key
    except UnicodeDecodeError:
        raise bad_request("URL is not valid percent-encoded UTF-8") from None
    raise bad_request("missing origin name and object key")


def _format_field(field: str, value: object) -> str:
    match value:
        case bool():
            return "1" if value else "0"
        case Gravity(kind="fp", x=x, y=y):
            return f"fp:{_fmt_num(x)}:{_fmt_num(y)}"
        case Gravity(kind=kind):
            return kind
        case Crop(x=x, y=y, width=w, height=h, fraction=True):
            return ":".join(_fmt_num(v) if v not in (0, 1) else f"{v:.1f}" for v in (x, y, w, h))
        case Crop(x=x, y=y, width=w, height=h):
            return f"{int(x)}:{int(y)}:{int(w)}:{int(h)}"
        case tuple():
            r, g, b, a = value
            return f"{r:02x}{g:02x}{b:02x}" + ("" if a == 255 else f"{a:02x}")
        case float():
            return _fmt_num(value)
        case enum.Enum():
            return str(value.value)
    return str(value)


def canonical(spec: TransformSpec) -> str:
    """The canonical option path of ``spec``: non-default options in field order, short names.

    Example: ``"/w:400/fit:cover/f:webp"``; the default spec gives ``""``.
    """
    parts = []
    for f in fields(spec):
        value = getattr(spec, f.name)
        if value == getattr(_DEFAULTS, f.name):
            continue
        parts.append(f"{_CANONICAL_NAME[f.name]}:{_format_field(f.name, value)}")
    return "".join("/" + p for p in parts)


def build_path(spec: TransformSpec, origin: str, key: str) -> str:
    """Unsigned URL path for ``spec`` on ``origin``/``key``: the inverse of ``parse_path``."""
    return f"{canonical(spec)}/{origin}/{quote(key, safe='/')}"
