"""The URL grammar: option segments and paths parsed into a ``TransformSpec``, presets expanded.

Grammar (see docs/url-grammar.md)::

    /{option}/{option}/.../{origin}/{key...}      option = name:arg[:arg...]

The first segment without ``:`` names the origin; everything after it is the object key
(percent-decoded, may contain ``/``). Options may come in any order, each at most once. Parsing does
no I/O; the only configuration it takes is the presets (``Presets``, compiled once at start-up);
limits that depend on settings are checked by the caller. The inverse, the canonical form, is
``edgeproxy.url.spec.canonical``.

Presets (``pr:NAME[:NAME...]``) are expanded while parsing: the ``default`` preset (when configured)
first, then each named one in order, then the URL's own options, each overriding what came before.
A spec never holds a preset name, so the canonical form, and with it the ETag, is always the
expanded options: changing a preset's definition changes the ETags of the URLs that use it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

from edgeproxy.errors import ProxyError, bad_request
from edgeproxy.url.spec import (
    COMPASS,
    MAX_ASPECT_RATIO,
    MAX_DIMENSION,
    MAX_MAX_BYTES,
    MIN_MAX_BYTES,
    OPTION_NAMES,
    SHORT_NAMES,
    Crop,
    Fit,
    Flip,
    Format,
    Gravity,
    Redact,
    TransformSpec,
    Trim,
    decimal_text,
)

# --------------------------------------------------------------------------- value parsers

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


def _parse_fields(field: str, name: str, args: list[str]) -> dict[str, object]:
    """Spec fields set by option ``name`` (as written, for ``field``) with arguments ``args``.

    Most options set their one field; ``w`` also sets ``width_auto``, ``dpr`` sets ``dpr_auto`` and
    ``q`` sets ``quality_auto``, so that a URL's ``w:300`` overrides a preset's ``w:auto`` wholly,
    and the other way round.
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


#: Preset names: what ``pr:NAME`` accepts and the ``presets`` setting's keys.
PRESET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The preset applied to every URL before its own ``pr:`` presets, when configured (as imgproxy's).
DEFAULT_PRESET = "default"
#: Options a URL may carry under ``only_presets``: they change no pixels.
PRESET_ONLY_ALLOWED = frozenset({"expires", "version"})

#: Spec fields by name, as the option parsers set them (each value checked by its parser, so the
#: ``TransformSpec`` built from them is well typed).
SpecFields = dict[str, Any]
#: Compiled presets: name -> the spec fields its option path sets (``compile_presets``).
Presets = Mapping[str, Mapping[str, object]]


def _split_segments(segments: list[str]) -> tuple[SpecFields, dict[str, str], list[str] | None]:
    """(spec fields, field -> option name as written, preset names or None) of option segments.

    Raises:
        ProxyError(400): unknown option, bad value, or an option given twice.
    """
    values: SpecFields = {}
    written: dict[str, str] = {}
    names: list[str] | None = None
    for segment in segments:
        name, _, rest = segment.partition(":")
        field = OPTION_NAMES.get(name.lower())
        if field is None:
            raise bad_request(f"unknown option {name!r}")
        if field in written:
            raise bad_request(f"option {name}: given more than once")
        written[field] = name
        args = rest.split(":")
        if field == "preset":
            bad = [arg for arg in args if not PRESET_NAME.fullmatch(arg)]
            if bad:
                raise bad_request(f"option {name}: {bad[0]!r} is not a preset name (1-64 of A-Z a-z 0-9 _ -)")
            names = args
            continue
        values.update(_parse_fields(field, name, args))
    return values, written, names


def compile_presets(presets: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Parse the ``presets`` setting (name -> option path such as ``"w:200/h:200/fit:cover"``, a
    leading ``/`` allowed) once, at start-up, into the spec fields each preset sets.

    Raises:
        ValueError: a bad name, an empty preset, an option that does not parse (the parser's
            message), ``pr``/``exp`` inside a preset (presets do not nest, and an expiry belongs
            to one signed URL, not to every URL of a preset), ``w:auto`` with ``h``, or ``ar`` with
            both ``w`` and ``h``. Every problem
            is listed.
    """
    compiled: dict[str, dict[str, object]] = {}
    problems: list[str] = []
    for name, path in presets.items():
        if not PRESET_NAME.fullmatch(name):
            problems.append(f"preset {name!r}: names are 1-64 of A-Z a-z 0-9 _ -")
            continue
        segments = [segment for segment in path.split("/") if segment]
        try:
            values, written, nested = _split_segments(segments)
        except ProxyError as error:
            problems.append(f"preset {name}: {error.message}")
            continue
        if nested is not None or "expires" in written:
            problems.append(f"preset {name}: may not contain pr or exp")
        elif (conflict := _conflict(values)) is not None:
            problems.append(f"preset {name}: {conflict}")
        elif not values:
            problems.append(f"preset {name}: no options")
        else:
            compiled[name] = values
    if problems:
        raise ValueError("; ".join(problems))
    return compiled


def _conflict(values: SpecFields) -> str | None:
    """What is wrong with a combination of spec fields (a URL's, with its presets), or None:
    ``w:auto`` with ``h`` (the hint gives a width only), or ``ar`` with both ``w`` and ``h`` (the
    ratio sets the side that is not given)."""
    has_width = values.get("width") is not None or bool(values.get("width_auto"))
    has_height = values.get("height") is not None
    if values.get("width_auto") and has_height:
        return "option w:auto: sets the width only and cannot be combined with h"
    if values.get("aspect_ratio") is not None and has_width and has_height:
        return "option ar: cannot be combined with both w and h (the ratio sets the side not given)"
    return None


def _check_only_presets(written: Mapping[str, str], names: list[str] | None, presets: Presets) -> None:
    """What ``only_presets`` allows, given the options as written (field -> name) and the preset
    names (None: no ``pr``): ``pr``, ``exp`` and ``v`` only, written so (the short name, lower
    case), each preset named once, and a preset named unless ``default`` is configured. So every
    derivative has one URL per ``exp``/``v`` value, and the original is never served as it is.

    Raises:
        ProxyError(400): any other option, another spelling, a preset named twice, or no preset.
    """
    extra = [written[field] for field in written if field not in PRESET_ONLY_ALLOWED | {"preset"}]
    if extra:
        raise bad_request(f"only presets are allowed on this server (pr:NAME); not {', '.join(extra)}")
    for field, name in written.items():
        if name != SHORT_NAMES[field]:
            raise bad_request(f"only presets are allowed on this server: write {SHORT_NAMES[field]}:, not {name}:")
    listed = names or []
    for i, name in enumerate(listed):
        if name in listed[:i]:
            raise bad_request(f"option pr: preset {name!r} named twice")
    if names is None and DEFAULT_PRESET not in presets:
        raise bad_request("only presets are allowed on this server: name one (pr:NAME)")


def parse_options(segments: list[str], presets: Presets | None = None, *, only_presets: bool = False) -> TransformSpec:
    """Build a spec from option segments (``["w:400", "f:auto"]``, already percent-decoded).

    ``presets`` (from ``compile_presets``) expands ``pr:NAME[:NAME...]``: the ``default`` preset
    when configured, then each named preset in order, then the URL's own options, each overriding
    the ones before. ``only_presets``: the URL must name a preset (unless ``default`` is configured)
    and may carry only ``pr``, ``exp`` and ``v``, with those names, each preset once (imgproxy's
    only-presets mode, stricter), so no URL can ask for a transform the operator did not configure,
    nor for the original as it is, nor spell one derivative in several ways.

    Raises:
        ProxyError(400): unknown option, bad value, an option given twice, an unknown preset (named),
            under ``only_presets`` an option other than ``pr``/``exp``/``v``, another spelling of them,
            a preset named twice or none, ``w:auto`` with ``h`` (the hint gives a width only), or
            ``ar`` with both ``w`` and ``h`` (after presets); the message names the option or preset.
    """
    values, written, names = _split_segments(segments)
    presets = presets or {}
    if only_presets:
        _check_only_presets(written, names, presets)
    if names is not None or DEFAULT_PRESET in presets:
        merged: SpecFields = dict(presets.get(DEFAULT_PRESET, {}))
        for name in names or ():
            preset = presets.get(name)
            if preset is None:
                raise bad_request(f"option {written['preset']}: unknown preset {name!r}")
            merged.update(preset)
        merged.update(values)
        values = merged
    conflict = _conflict(values)
    if conflict is not None:
        raise bad_request(conflict)
    return TransformSpec(**values)


def parse_path(
    path: str, presets: Presets | None = None, *, only_presets: bool = False
) -> tuple[TransformSpec, str, str]:
    """Split ``/{options...}/{origin}/{key...}`` (raw, percent-encoded) into (spec, origin, key);
    ``presets`` and ``only_presets`` as for ``parse_options``.

    Raises:
        ProxyError(400): no origin or key, a bad option or preset, or a key that does not
            percent-decode to UTF-8.
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
                return parse_options(decoded[:i], presets, only_presets=only_presets), segment, key
    except UnicodeDecodeError:
        raise bad_request("URL is not valid percent-encoded UTF-8") from None
    raise bad_request("missing origin name and object key")
