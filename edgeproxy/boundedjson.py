"""JSON from untrusted bytes (sidecars, purge bodies), its size and nesting bounded before parsing.

Python's ``json`` parses nested arrays and objects by recursion: a few kilobytes of ``[[[[...``
exhaust the interpreter's recursion limit and raise ``RecursionError``, which is no ``ValueError``
and would surface as a 500. ``loads`` checks the size, then the depth, in one linear pre-scan
(strings removed by one regular expression, so brackets inside them do not count; then the
brackets alone are counted), and only then calls ``json.loads`` (RFC 8259 JSON, UTF-8).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: A JSON string (RFC 8259 §7): quotes around anything but an unescaped quote or backslash
#: (the "unrolled loop" form: linear, no backtracking).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class LimitError(ValueError):
    """JSON over its size or depth limit; ``str(error)`` says which (``"N bytes; the limit is M"``
    or ``"nested deeper than D levels"``)."""


def depth(text: str, stop: int | None = None) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (0 for a scalar, 1 for ``[]`` or
    ``{"a": 1}``), brackets inside strings not counted; with ``stop``, counting ends as soon as the
    depth passes it (the answer is then ``stop + 1``). ``text`` need not be valid JSON: a closing
    bracket without an opening one counts as nothing."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    level = deepest = 0
    for bracket in brackets:
        if bracket in "[{":
            level += 1
            if level > deepest:
                deepest = level
                if stop is not None and deepest > stop:
                    break
        elif level:
            level -= 1
    return deepest


def loads(data: bytes, *, max_bytes: int, max_depth: int) -> Any:
    """``json.loads`` of ``data`` (UTF-8) once it is known to be at most ``max_bytes`` bytes and
    nested at most ``max_depth`` levels (``depth``).

    Raises:
        LimitError: over either limit (nothing parsed).
        ValueError: not UTF-8 (``UnicodeDecodeError``) or not JSON (``json.JSONDecodeError``).
    """
    if len(data) > max_bytes:
        raise LimitError(f"{len(data)} bytes; the limit is {max_bytes}")
    text = data.decode("utf-8")
    if depth(text, stop=max_depth) > max_depth:
        raise LimitError(f"nested deeper than {max_depth} level{'s' if max_depth != 1 else ''}")
    return json.loads(text)
