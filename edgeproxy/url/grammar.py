"""The URL grammar: option segments and paths parsed into a ``TransformSpec``, presets expanded.

Grammar (see docs/url-grammar.md)::

    /{option}/{option}/.../{origin}/{key...}      option = name:arg[:arg...]

The first segment without ``:`` names the origin; everything after it is the object key
(percent-decoded, may contain ``/``). Options may come in any order, each at most once. Parsing does
no I/O; the only configuration it takes is the presets (``Presets``, compiled once at start-up);
limits that depend on settings are checked by the caller. Each option's arguments are read by
``edgeproxy.url.arguments``. The inverse, the canonical form, is
``edgeproxy.url.spec.canonical``.

Presets (``pr:NAME[:NAME...]``) are expanded while parsing: the ``default`` preset (when configured)
first, then each named one in order, then the URL's own options, each overriding what came before.
A spec never holds a preset name, so the canonical form, and with it the ETag, is always the
expanded options: changing a preset's definition changes the ETags of the URLs that use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from edgeproxy.errors import ProxyError, bad_request
from edgeproxy.url.arguments import parse_fields
from edgeproxy.url.spec import (
    OPTION_NAMES,
    SHORT_NAMES,
    TransformSpec,
)

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
        values.update(parse_fields(field, name, args))
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
