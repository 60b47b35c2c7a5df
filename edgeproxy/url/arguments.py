"""Each option's arguments parsed and checked: ``parse_fields`` turns one option (``w:300``,
``g:face``, ``crop:0.1:0.1:0.5:0.5``...) into the spec fields it sets, or a 400 naming the option.
The grammar around them (segments, presets, paths) is ``edgeproxy.url.grammar``'s.
"""

from __future__ import annotations

import enum
import re
from typing import TypeVar

from edgeproxy.errors import bad_request
from edgeproxy.url.spec import (
    COMPASS,
    MAX_ASPECT_RATIO,
    MAX_DIMENSION,
    MAX_MAX_BYTES,
    MIN_MAX_BYTES,
    Crop,
    Fit,
    Flip,
    Format,
    Gravity,
    Redact,
    Trim,
    decimal_text,
)

_INT = re.compile(r"[0-9]{1,13}")
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,20})?")
_HEX = re.compile(r"[0-9a-fA-F]{6}([0-9a-fA-F]{2})?")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,64}")
#: Compass gravity spellings -> the names ``COMPASS`` uses.
_COMPASS_ALIASES = {
    "c": "center",
    "ce": "center",
    "centre": "center",
    "n": "north",
    "no": "north",
    "s": "south",
    "so": "south",
    "e": "east",
    "ea": "east",
    "w": "west",
    "we": "west",
    "ne": "northeast",
    "nw": "northwest",
    "se": "southeast",
    "sw": "southwest",
}


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
    if kind in ("smart", "face"):
        return Gravity(kind)
    raise bad_request(f"option {name}: unknown gravity {args[0]!r}")


def _parse_redact(name: str, args: list[str]) -> Redact:
    """``redact:faces`` (blur) or ``redact:faces:blur|pixelate``."""
    if not args or args[0].lower() != "faces" or len(args) > 2:
        raise bad_request(f"option {name}: expected {name}:faces, {name}:faces:blur or {name}:faces:pixelate")
    return _enum(name, args[1], Redact) if len(args) == 2 else Redact.BLUR


def _parse_aspect_ratio(name: str, args: list[str]) -> tuple[float, float]:
    """``ar:W:H`` (W and H positive decimals, ``ar:16:9``, ``ar:1.91:1``) or ``ar:R`` (R:1, as
    Cloudinary's ``ar_1.5``) as (W, H), kept as written (``ar:32:18`` is not reduced to ``16:9``),
    bounded to ``MAX_ASPECT_RATIO`` either way.

    Raises:
        ProxyError(400): not one or two decimals, a zero, or a ratio beyond 100:1 or 1:100.
    """
    if len(args) not in (1, 2):
        raise bad_request(f"option {name}: expected {name}:W:H (such as {name}:16:9) or {name}:RATIO")
    w, h = (_num(name, a, 0.0, 1e6, open_lo=True) for a in (args if len(args) == 2 else [args[0], "1"]))
    if not 1 / MAX_ASPECT_RATIO <= w / h <= MAX_ASPECT_RATIO:
        limit = decimal_text(MAX_ASPECT_RATIO)
        raise bad_request(f"option {name}: {':'.join(args)} is beyond {limit}:1 or 1:{limit}")
    return (w, h)


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


def _parse_trim(name: str, args: list[str]) -> Trim:
    """``trim:THRESHOLD`` (a decimal 0..255) or ``trim:THRESHOLD:RRGGBB`` (the border colour, sRGB).

    Raises:
        ProxyError(400): no threshold, one outside 0..255, a colour that is not 6 hex digits, or
            more than two values.
    """
    if len(args) not in (1, 2):
        raise bad_request(f"option {name}: expected {name}:THRESHOLD or {name}:THRESHOLD:RRGGBB")
    threshold = _num(name, args[0], 0.0, 255.0)
    if len(args) == 1:
        return Trim(threshold)
    if not _HEX.fullmatch(args[1]) or len(args[1]) != 6:
        raise bad_request(f"option {name}: expected an RRGGBB hex colour, got {args[1]!r}")
    r, g, b = (int(args[1][i : i + 2], 16) for i in range(0, 6, 2))
    return Trim(threshold, (r, g, b))


def _parse_background(name: str, arg: str) -> tuple[int, int, int, int]:
    if not _HEX.fullmatch(arg):
        raise bad_request(f"option {name}: expected RRGGBB or RRGGBBAA hex, got {arg!r}")
    if len(arg) == 6:
        arg += "ff"
    r, g, b, a = (int(arg[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


_E = TypeVar("_E", bound=enum.StrEnum)


def _enum(name: str, arg: str, enum_cls: type[_E], aliases: dict[str, str] | None = None) -> _E:
    value = (aliases or {}).get(arg.lower(), arg.lower())
    try:
        member = enum_cls(value)
    except ValueError:
        allowed = "|".join(m.value for m in enum_cls if m.value)
        raise bad_request(f"option {name}: {arg!r} is not one of {allowed}") from None
    if not member.value:
        raise bad_request(f"option {name}: empty value")
    return member


def _parse_auto_width(name: str, args: list[str]) -> dict[str, object]:
    """``w:N`` or ``w:auto[:N]`` (N the fallback in CSS pixels) as spec fields."""
    if args[0].lower() == "auto":
        if len(args) > 2:
            raise bad_request(f"option {name}: expected {name}:auto or {name}:auto:FALLBACK")
        fallback = _int(name, args[1], 1, MAX_DIMENSION) if len(args) == 2 else None
        return {"width": fallback, "width_auto": True}
    return {"width": _int(name, _one(name, args), 1, MAX_DIMENSION), "width_auto": False}


def parse_fields(field: str, name: str, args: list[str]) -> dict[str, object]:
    """Spec fields set by option ``name`` (as written, for ``field``) with arguments ``args``.

    Most options set their one field; ``w`` also sets ``width_auto``, ``dpr`` sets ``dpr_auto`` and
    ``q`` sets ``quality_auto``, so that a URL's ``w:300`` overrides a preset's ``w:auto`` wholly,
    and the other way round.

    Raises:
        ProxyError(400): a value out of range or not of the option's form, naming the option.
    """
    if field == "width":
        return _parse_auto_width(name, args)
    if field == "quality":
        if args[0].lower() == "auto":
            if len(args) > 2:
                raise bad_request(f"option {name}: expected {name}:auto or {name}:auto:TARGET")
            target = _int(name, args[1], 1, 100) if len(args) == 2 else None
            return {"quality": target, "quality_auto": True}
        return {"quality": _int(name, _one(name, args), 1, 100), "quality_auto": False}
    if field == "dpr":
        if len(args) == 1 and args[0].lower() == "auto":
            return {"dpr": 1.0, "dpr_auto": True}
        return {"dpr": _num(name, _one(name, args), 1.0, 4.0), "dpr_auto": False}
    return {field: _parse_one(field, name, args)}


def _parse_one(field: str, name: str, args: list[str]) -> object:
    """Value of spec field ``field`` from option ``name`` (as written) with arguments ``args``."""
    if field == "gravity":
        return _parse_gravity(name, args)
    if field == "crop":
        return _parse_crop(name, args)
    if field == "redact":
        return _parse_redact(name, args)
    if field == "trim":
        return _parse_trim(name, args)
    if field == "aspect_ratio":
        return _parse_aspect_ratio(name, args)
    arg = _one(name, args)
    match field:
        case "height":
            return _int(name, arg, 1, MAX_DIMENSION)
        case "fit":
            return _enum(name, arg, Fit)
        case "format":
            return _enum(name, arg, Format, {"jpg": "jpeg"})
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
        case "enlarge" | "strip" | "grayscale":
            return _bool(name, arg)
        case "max_bytes":
            return _int(name, arg, MIN_MAX_BYTES, MAX_MAX_BYTES)
        case "expires":
            return _int(name, arg, 0, 2**40)
        case "version":
            if not _TOKEN.fullmatch(arg):
                raise bad_request(f"option {name}: expected 1-64 of A-Z a-z 0-9 . _ ~ -")
            return arg
    raise AssertionError(field)  # pragma: no cover
