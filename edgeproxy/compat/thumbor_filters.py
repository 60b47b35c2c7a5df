"""thumbor's ``filters:NAME(ARGS):NAME(ARGS)...`` segment, split and checked, and its colours.

thumbor (thumbor/filters/__init__.py, 7.8) runs each filter it knows with arguments that match the
filter's patterns and skips, silently, a filter it does not know or whose arguments do not match.
edgeproxy never skips one: a filter it does not map, or bad arguments, is a 400 naming the filter
(``edgeproxy.compat.thumbor`` maps the ones it knows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgeproxy.errors import bad_request

#: One filter: a lower-case name and its parenthesised arguments (no parenthesis inside).
_FILTER = re.compile(r"([a-z_][a-z0-9_]*)\(([^()]*)\)")
_HEX = re.compile(r"[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}")
#: thumbor's ``BaseFilter.Boolean`` spellings.
_TRUE, _FALSE = frozenset({"1", "true", "on", "yes"}), frozenset({"0", "false", "off", "no", ""})


@dataclass(frozen=True, slots=True)
class Filter:
    """A filter as written: ``name`` and its comma-separated ``args`` (stripped; none for ``()``)."""

    name: str
    args: tuple[str, ...]


def split_filters(text: str) -> list[Filter]:
    """The filters of a ``filters:`` segment's body (``"quality(80):fill(fff)"``), in order.

    Raises:
        ProxyError(400): text that is not ``name(args)`` items joined by ``:``, or a filter given twice.
    """
    filters: list[Filter] = []
    pos = 0
    while pos < len(text):
        match = _FILTER.match(text, pos)
        if match is None:
            raise bad_request(f"thumbor filters: cannot read {text[pos:]!r} (expected name(arguments))")
        name, raw = match.group(1), match.group(2)
        args = tuple(arg.strip() for arg in raw.split(",")) if raw.strip() else ()
        if any(f.name == name for f in filters):
            raise bad_request(f"thumbor filter {name}: given more than once")
        filters.append(Filter(name, args))
        pos = match.end()
        if pos < len(text):
            if text[pos] != ":":
                raise bad_request(f"thumbor filters: expected ':' between filters, got {text[pos:]!r}")
            pos += 1
            if pos == len(text):
                raise bad_request("thumbor filters: a trailing ':'")
    if not filters:
        raise bad_request("thumbor filters: none given")
    return filters


def number(f: Filter, index: int, lo: float, hi: float, *, integer: bool = False) -> float:
    """Argument ``index`` of ``f`` as a number in ``lo..hi`` (a whole number with ``integer``).

    Raises:
        ProxyError(400): missing, not a number, or out of range; the message names the filter.
    """
    if index >= len(f.args):
        raise bad_request(f"thumbor filter {f.name}: missing argument {index + 1}")
    arg = f.args[index]
    pattern = r"-?[0-9]{1,9}" if integer else r"-?[0-9]{1,9}(\.[0-9]{1,9})?"
    if not re.fullmatch(pattern, arg):
        raise bad_request(f"thumbor filter {f.name}: {arg!r} is not a {'whole ' if integer else ''}number")
    value = float(arg)
    if not lo <= value <= hi:
        raise bad_request(f"thumbor filter {f.name}: {arg} is outside {_text(lo)}..{_text(hi)}")
    return value


def _text(value: float) -> str:
    """A bound as a message writes it: whole numbers in full (``104857600``), others as ``%g``."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def boolean(f: Filter, index: int) -> bool:
    """Argument ``index`` of ``f`` as thumbor's Boolean (``1``/``true``/``on``; absent: false).

    Raises:
        ProxyError(400): a value that is neither true nor false.
    """
    arg = f.args[index].lower() if index < len(f.args) else ""
    if arg in _TRUE:
        return True
    if arg in _FALSE:
        return False
    raise bad_request(f"thumbor filter {f.name}: {arg!r} is not true or false")


def arity(f: Filter, lo: int, hi: int) -> None:
    """Check that ``f`` has ``lo``..``hi`` arguments.

    Raises:
        ProxyError(400): another count, naming the filter.
    """
    if not lo <= len(f.args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise bad_request(f"thumbor filter {f.name}: expected {want} arguments, got {len(f.args)}")


def colour(f: Filter, name: str) -> tuple[int, int, int, int]:
    """A thumbor colour as RGBA 0..255: ``transparent``, a CSS/X11 colour name as Pillow's
    ``ImageColor`` knows them (thumbor hands the name to Pillow first), or hex without ``#``
    (``fff``, ``ffff``, ``ff0000``, ``ff000080``), as thumbor's ``fill`` and ``background_color``.

    Raises:
        ProxyError(400): anything else (``auto`` and ``blur``, which thumbor's ``fill`` computes
            from the image, are not supported).
    """
    from PIL import ImageColor

    text = name.lower()
    if text == "transparent":
        return (0, 0, 0, 0)
    spelled = text if text in ImageColor.colormap else f"#{text}" if _HEX.fullmatch(text) else None
    if spelled is None:
        raise bad_request(f"thumbor filter {f.name}: {name!r} is not a colour edgeproxy supports (a name or hex)")
    rgb = ImageColor.getrgb(spelled)
    return (rgb[0], rgb[1], rgb[2], rgb[3] if len(rgb) == 4 else 255)
