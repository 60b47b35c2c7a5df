"""What a URL builder writes into a path: option keywords as validated, canonically ordered
segments, the origin name and the percent-encoded key.

Every rule comes from the server's own modules, so a path written here is one the proxy parses:
option names and order from ``edgeproxy.url.spec``, values checked by ``edgeproxy.url.grammar``
(the proxy's parser), origin names and keys by ``edgeproxy.url.keys``. ``edgeproxy.url.builders``
signs what this module writes.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import fields
from typing import Any
from urllib.parse import quote

from edgeproxy.errors import ProxyError
from edgeproxy.url.grammar import PRESET_NAME, parse_options
from edgeproxy.url.keys import ORIGIN_NAME_RULE, is_origin_name, is_safe_key
from edgeproxy.url.spec import OPTION_NAMES as SPEC_OPTION_NAMES
from edgeproxy.url.spec import SHORT_NAMES, TransformSpec, decimal_text

#: Option keyword (long name or short name) -> the short name written in the path: the grammar's own
#: names (``edgeproxy.url.spec.OPTION_NAMES``).
OPTION_NAMES: dict[str, str] = {name: SHORT_NAMES[field] for name, field in SPEC_OPTION_NAMES.items()}
#: The order options are written in, whatever order they were given in: presets first, then the
#: canonical order (``edgeproxy.url.spec.canonical``), ``pr, w, h, ar, fit, g, dpr, f, q, mb, trim, c, rot,
#: flip, blur, sharpen, gray, bg, redact, enlarge, strip, exp, v``.
OPTION_ORDER: tuple[str, ...] = ("pr", *(SHORT_NAMES[f.name] for f in fields(TransformSpec) if f.name in SHORT_NAMES))
# What an option segment may hold: no percent-encoding needed, nothing a URL parser rewrites.
_SEGMENT = re.compile(r"[A-Za-z0-9._~:-]+")


def format_value(value: object) -> str:
    """One option value as the path writes it.

    ``bool`` -> ``"1"``/``"0"``; ``int`` -> decimal; ``float`` -> the shortest decimal that reads
    back as the same float, never in exponent notation, trailing zeros and ``.`` dropped
    (``2.0`` -> ``"2"``, ``0.25`` -> ``"0.25"``, ``1e-7`` -> ``"0.0000001"``); ``str`` as given (an
    enum member: its value); a tuple or list: its items formatted so and joined with ``:``
    (``("fp", 0.3, 0.4)`` -> ``"fp:0.3:0.4"``).

    Raises:
        ValueError: a float that is NaN or infinite, or an empty or nested tuple/list.
        TypeError: any other type (None included: the caller drops None options).
    """
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("an empty list is no option value")
        if any(isinstance(item, list | tuple) for item in value):
            raise ValueError(f"nested lists are no option value: {value!r}")
        return ":".join(format_value(item) for item in value)
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is no option value")
        return "0" if value == 0 else decimal_text(value)  # -0.0 too
    if isinstance(value, str):
        return value
    raise TypeError(f"option values are bool, int, float, str or a list of them, not {type(value).__name__}")


def checked_origin(origin: str) -> str:
    """``origin`` when it is a valid origin name (``edgeproxy.url.keys``, as the proxy's settings
    check configured names).

    Raises:
        ValueError: anything else.
    """
    if not isinstance(origin, str) or not is_origin_name(origin):
        raise ValueError(f"origin name {origin!r}: {ORIGIN_NAME_RULE}")
    return origin


def quoted_key(key: str) -> str:
    """``key`` percent-encoded as UTF-8, ``/`` and the unreserved characters kept.

    Raises:
        TypeError: a key that is not a str.
        ValueError: an empty key, a key no origin serves (``edgeproxy.url.keys.is_safe_key``: an
            empty, ``.`` or ``..`` segment, a leading or doubled ``/``, a backslash or NUL: every
            origin answers 404, and browsers rewrite dot segments, which breaks the signature), or
            one that is not valid Unicode.
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("the object key is empty")
    if not is_safe_key(key):
        raise ValueError(f"object key {key!r} has an empty, '.' or '..' segment, a backslash or NUL")
    try:
        return quote(key, safe="/")
    except UnicodeEncodeError:
        raise ValueError(f"object key {key!r} is not valid Unicode (a lone surrogate)") from None


def short_names(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` keyed by short name, None values dropped.

    Raises:
        ValueError: an unknown option, or one given by both its long and its short name.
    """
    out: dict[str, Any] = {}
    for name, value in options.items():
        short = OPTION_NAMES.get(name)
        if short is None:
            raise ValueError(f"unknown option {name!r}")
        if value is None:
            continue
        if short in out:
            raise ValueError(f"option {short} ({name}): given more than once")
        out[short] = value
    return out


def pop_option(options: dict[str, Any], short: str) -> Any:
    """Remove option ``short`` (by either name) from ``options``; its value or None."""
    value = None
    for name in [n for n in options if OPTION_NAMES.get(n) == short]:
        found = options.pop(name)
        if found is not None and value is not None:
            raise ValueError(f"option {short} ({name}): given more than once")
        value = found if found is not None else value
    return value


def segments(options: dict[str, Any]) -> list[str]:
    """The option segments (``["w:400", "f:auto"]``), in ``OPTION_ORDER``, validated.

    Raises:
        ValueError: an unknown or twice-given option, a bad preset name, characters that would need
            percent-encoding, or a value or combination ``edgeproxy.url.grammar.parse_options`` refuses (its
            message; e.g. ``w:auto`` with ``h``).
    """
    values = short_names(options)
    written: list[str] = []
    for short in OPTION_ORDER:
        if short not in values:
            continue
        text = format_value(values[short])
        segment = f"{short}:{text}"
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(f"option {short}: {text!r} has characters outside A-Z a-z 0-9 . _ ~ - :")
        if short == "pr":
            bad = [name for name in text.split(":") if not PRESET_NAME.fullmatch(name)]
            if bad:
                raise ValueError(f"option pr: preset names are 1-64 of A-Z a-z 0-9 _ -, got {bad}")
        written.append(segment)
    # Together, not one by one: the parser also refuses some combinations (w:auto with h). Presets are
    # the proxy's configuration, which the builder does not know: only their names are checked.
    try:
        parse_options([s for s in written if not s.startswith("pr:")])
    except ProxyError as exc:
        raise ValueError(exc.message) from None
    return written
