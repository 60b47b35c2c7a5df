"""imgproxy's processing options: read and applied in imgproxy's order into its own vocabulary
(``Options``); ``edgeproxy.compat.imgproxy_spec`` maps them to edgeproxy's ``TransformSpec``.

Options are applied as imgproxy's ``options/parser`` applies them (``processing_options.go``,
``apply.go``, ``parse.go``): a later option overrides an earlier one, ``pr:NAME`` expands in place
(a preset already being expanded is skipped), the ``default`` preset first. An option edgeproxy
does not map is a 400 naming it, never ignored (docs/migration/imgproxy.md lists them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgeproxy.errors import bad_request, not_found

#: imgproxy's resizing types (``rt``).
RESIZING_TYPES = ("fit", "fill", "fill-down", "force", "auto")
#: imgproxy's gravity types -> edgeproxy's compass names (``sm`` and ``fp`` are their own).
COMPASS = {
    "ce": "center",
    "no": "north",
    "so": "south",
    "ea": "east",
    "we": "west",
    "noea": "northeast",
    "nowe": "northwest",
    "soea": "southeast",
    "sowe": "southwest",
}
#: imgproxy output format names (``f``, ``@ext``, ``.ext``) -> edgeproxy's ``f``.
FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "avif": "avif", "gif": "gif", "jxl": "jxl"}
#: Go's ``strconv.ParseBool`` spellings, which imgproxy's boolean arguments take.
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})
_HEX = re.compile(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INT = re.compile(r"[+-]?[0-9]{1,18}")
#: A preset name (``compat_imgproxy_presets``' keys).
PRESET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: One imgproxy option as written: its name and its arguments.
Option = tuple[str, tuple[str, ...]]


def _trim(name: str, args: Sequence[str]) -> tuple[float, str | None]:
    """``trim:THRESHOLD[:COLOR[:EQUAL_HOR[:EQUAL_VER]]]`` -> (threshold, RRGGBB or None). imgproxy's
    threshold is libvips ``find_trim``'s, as edgeproxy's ``trim``; ``equal_hor``/``equal_ver`` (cut
    as much from opposite sides) have no equivalent: 400 when set."""
    _max_args(name, args, 4)
    if not args or not args[0]:
        raise bad_request(f"option {name}: expected {name}:THRESHOLD[:COLOR]")
    threshold = _float(name, args[0], positive=True)
    if threshold > 255:
        raise bad_request(f"option {name}: threshold {args[0]} is over 255")
    colour = None
    if len(args) > 1 and args[1]:
        if not _HEX.fullmatch(args[1]):
            raise bad_request(f"option {name}: {args[1]!r} is not a hex colour")
        colour = args[1] if len(args[1]) == 6 else "".join(c * 2 for c in args[1])
    for flag, arg in zip(("equal_hor", "equal_ver"), args[2:], strict=False):
        if arg and _bool(name, arg):
            raise bad_request(f"option {name}: {flag} is not supported (edgeproxy trims each side on its own)")
    return threshold, colour


def split_options(segments: Sequence[str]) -> tuple[Option, ...]:
    """Option segments (``["rs:fill:300:300", "q:80"]``) as (name, arguments); empty ones skipped."""
    options = []
    for segment in segments:
        if not segment:
            continue
        name, *args = segment.split(":")
        options.append((name, tuple(args)))
    return tuple(options)


# --------------------------------------------------------------------------- options


@dataclass(slots=True)
class Options:
    """imgproxy's processing options as the URL (and its presets) set them, in imgproxy's terms.

    A gravity is (type, x offset, y offset); ``crop_gravity`` None means "the ``gravity`` option's".
    """

    resizing_type: str = "fit"
    width: int = 0
    height: int = 0
    enlarge: bool = False
    extend: bool = False
    extend_gravity: tuple[str, float, float] = ("ce", 0.0, 0.0)
    gravity: tuple[str, float, float] = ("ce", 0.0, 0.0)
    crop: tuple[float, float] | None = None
    crop_gravity: tuple[str, float, float] | None = None
    dpr: float = 1.0
    quality: int = 0
    max_bytes: int = 0  # 0: none
    trim: tuple[float, str | None] | None = None  # (threshold, RRGGBB or None: the top-left pixel's)
    format: str | None = None
    background: tuple[int, int, int] | None = None
    blur: float = 0.0
    sharpen: float = 0.0
    rotate: int = 0
    flip: tuple[bool, bool] = (False, False)
    cachebuster: str = ""
    expires: int = 0


def _max_args(name: str, args: Sequence[str], most: int) -> None:
    if len(args) > most:
        raise bad_request(f"option {name}: at most {most} arguments, got {len(args)}")


def _float(name: str, arg: str, *, positive: bool = False) -> float:
    if not _FLOAT.fullmatch(arg):
        raise bad_request(f"option {name}: {arg!r} is not a number")
    value = float(arg)
    if positive and value < 0:
        raise bad_request(f"option {name}: {arg} is negative")
    return value


def _int(name: str, arg: str, *, positive: bool = False) -> int:
    if not _INT.fullmatch(arg):
        raise bad_request(f"option {name}: {arg!r} is not a whole number")
    value = int(arg)
    if positive and value < 0:
        raise bad_request(f"option {name}: {arg} is negative")
    return value


def _bool(name: str, arg: str) -> bool:
    """Go's ``strconv.ParseBool`` (imgproxy treats anything else as false with a warning; a 400 here)."""
    if arg in _TRUE:
        return True
    if arg in _FALSE:
        return False
    raise bad_request(f"option {name}: {arg!r} is not a boolean (1, 0, true, false)")


def _gravity(name: str, args: Sequence[str], *, smart: bool = True) -> tuple[str, float, float]:
    """``TYPE[:X:Y]`` (imgproxy's ``parseGravity``): a compass type with optional offsets, ``sm``
    (no offsets; only where ``smart``), or ``fp:X:Y`` (both 0..1)."""
    kind = args[0] if args else ""
    if kind == "sm" and smart:
        if len(args) > 1:
            raise bad_request(f"option {name}: sm takes no offsets")
        return ("sm", 0.0, 0.0)
    if kind == "fp":
        if len(args) != 3:
            raise bad_request(f"option {name}: fp needs fp:X:Y")
        x, y = _float(name, args[1]), _float(name, args[2])
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise bad_request(f"option {name}: fp:X:Y takes X and Y in 0..1")
        return ("fp", x, y)
    if kind not in COMPASS:
        allowed = ", ".join([*COMPASS, *(["sm"] if smart else []), "fp"])
        raise bad_request(f"option {name}: unknown gravity {kind!r} (one of {allowed})")
    _max_args(name, args, 3)
    x = _float(name, args[1]) if len(args) > 1 and args[1] else 0.0
    y = _float(name, args[2]) if len(args) > 2 and args[2] else 0.0
    return (kind, x, y)


def _extend(o: Options, name: str, args: Sequence[str]) -> None:
    _max_args(name, args, 4)
    o.extend = _bool(name, args[0])
    if len(args) > 1:
        o.extend_gravity = _gravity(name, args[1:], smart=False)


def _size(o: Options, name: str, args: Sequence[str]) -> None:
    """``s:W:H:ENLARGE:EXTEND[:GRAVITY...]``; empty arguments keep what was set."""
    _max_args(name, args, 7)
    if len(args) > 0 and args[0]:
        o.width = _int(name, args[0], positive=True)
    if len(args) > 1 and args[1]:
        o.height = _int(name, args[1], positive=True)
    if len(args) > 2 and args[2]:
        o.enlarge = _bool(name, args[2])
    if len(args) > 3 and args[3]:
        _extend(o, name, args[3:])


def _resizing_type(name: str, arg: str) -> str:
    if arg not in RESIZING_TYPES:
        raise bad_request(f"option {name}: {arg!r} is not one of {', '.join(RESIZING_TYPES)}")
    return arg


def _background(name: str, args: Sequence[str]) -> tuple[int, int, int] | None:
    """``bg:R:G:B``, ``bg:RRGGBB``/``bg:RGB`` (hex), or ``bg:`` (none)."""
    if len(args) == 1:
        if not args[0]:
            return None
        if not _HEX.fullmatch(args[0]):
            raise bad_request(f"option {name}: {args[0]!r} is not a hex colour (RGB or RRGGBB)")
        h = args[0] if len(args[0]) == 6 else "".join(c * 2 for c in args[0])
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    if len(args) == 3:
        values = [_int(name, a, positive=True) for a in args]
        if any(v > 255 for v in values):
            raise bad_request(f"option {name}: R, G and B are 0..255")
        return (values[0], values[1], values[2])
    raise bad_request(f"option {name}: expected bg:R:G:B or bg:RRGGBB")


def format_name(name: str, arg: str) -> str:
    """edgeproxy's ``f`` value for imgproxy's format ``arg`` (option ``name``).

    Raises:
        ProxyError(400): a format edgeproxy does not write.
    """
    fmt = FORMATS.get(arg.lower())
    if fmt is None:
        raise bad_request(f"option {name}: {arg!r} is not a format edgeproxy writes ({', '.join(FORMATS)})")
    return fmt


def _apply(o: Options, option: Option, presets: Mapping[str, tuple[Option, ...]], used: tuple[str, ...]) -> None:
    """Apply one option to ``o``, as imgproxy's ``applyURLOption`` (``processing_options.go``).

    Raises:
        ProxyError(400): an unknown or unsupported option, or a bad argument; the message names it.
        ProxyError(404): ``exp`` in the past ("Expired URL", as imgproxy answers it).
    """
    name, args = option
    if not args:
        raise bad_request(f"option {name}: no arguments")
    match name:
        case "resize" | "rs":
            _max_args(name, args, 8)
            if args[0]:
                o.resizing_type = _resizing_type(name, args[0])
            if len(args) > 1:
                _size(o, name, args[1:])
        case "size" | "s":
            _size(o, name, args)
        case "resizing_type" | "rt":
            _max_args(name, args, 1)
            o.resizing_type = _resizing_type(name, args[0])
        case "width" | "w":
            _max_args(name, args, 1)
            o.width = _int(name, args[0], positive=True)
        case "height" | "h":
            _max_args(name, args, 1)
            o.height = _int(name, args[0], positive=True)
        case "enlarge" | "el":
            _max_args(name, args, 1)
            o.enlarge = _bool(name, args[0])
        case "extend" | "ex":
            _extend(o, name, args)
        case "gravity" | "g":
            o.gravity = _gravity(name, args)
        case "crop" | "c":
            _max_args(name, args, 5)
            w = _float(name, args[0], positive=True)
            h = _float(name, args[1], positive=True) if len(args) > 1 else 0.0
            o.crop = (w, h)
            if len(args) > 2:
                o.crop_gravity = _gravity(name, args[2:])
        case "dpr":
            _max_args(name, args, 1)
            o.dpr = _float(name, args[0])
            if o.dpr <= 0:
                raise bad_request(f"option {name}: must be above 0")
        case "quality" | "q":
            _max_args(name, args, 1)
            o.quality = _int(name, args[0])
            if not 0 <= o.quality <= 100:
                raise bad_request(f"option {name}: {args[0]} is outside 0..100")
        case "max_bytes" | "mb":
            _max_args(name, args, 1)
            o.max_bytes = _int(name, args[0], positive=True)
        case "format" | "f" | "ext":
            _max_args(name, args, 1)
            o.format = format_name(name, args[0])
        case "background" | "bg":
            o.background = _background(name, args)
        case "blur" | "bl":
            _max_args(name, args, 1)
            o.blur = _float(name, args[0], positive=True)
        case "sharpen" | "sh":
            _max_args(name, args, 1)
            o.sharpen = _float(name, args[0], positive=True)
        case "rotate" | "rot":
            _max_args(name, args, 1)
            o.rotate = _int(name, args[0])
            if o.rotate % 90:
                raise bad_request(f"option {name}: the angle must be a multiple of 90")
        case "flip" | "fl":
            _max_args(name, args, 2)
            horizontal, vertical = o.flip
            if args[0]:
                horizontal = _bool(name, args[0])
            if len(args) > 1 and args[1]:
                vertical = _bool(name, args[1])
            o.flip = (horizontal, vertical)
        case "auto_rotate" | "ar":
            _max_args(name, args, 1)
            if not _bool(name, args[0]):
                raise bad_request(f"option {name}: 0 is not supported (edgeproxy always applies the EXIF orientation)")
        case "cachebuster" | "cb":
            _max_args(name, args, 1)
            o.cachebuster = args[0]
        case "expires" | "exp":
            _max_args(name, args, 1)
            o.expires = _int(name, args[0])
            if 0 < o.expires < time.time():
                raise not_found("Expired URL")
        case "preset" | "pr":
            for preset in args:
                if preset in used:  # imgproxy skips a preset already being applied (a loop)
                    continue
                options = presets.get(preset)
                if options is None:
                    raise bad_request(f"option {name}: unknown preset {preset!r}")
                for inner in options:
                    _apply(o, inner, presets, (*used, preset))
        case "trim" | "t":
            o.trim = _trim(name, args)
        case _:
            raise bad_request(f"option {name}: not supported by edgeproxy's imgproxy compatibility")


def apply_all(options: Sequence[Option], presets: Mapping[str, tuple[Option, ...]]) -> Options:
    """imgproxy's options after the ``default`` preset (when configured) and then ``options``, in order.

    Raises:
        ProxyError: as ``_apply``: 400 for an unknown, unsupported or malformed option (named), 404
            for an ``exp`` in the past.
    """
    o = Options()
    if "default" in presets:
        _apply(o, ("pr", ("default",)), presets, ())
    for option in options:
        _apply(o, option, presets, ())
    return o
