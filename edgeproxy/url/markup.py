"""HTML the URL builders write around their URLs: escaped attributes, checked attribute names,
placeholder styles and the client-hint delegation ``<meta>``.

``edgeproxy.url.builders`` composes ``<picture>`` and ``<link rel=preload>`` from these pieces; the
JavaScript builder (``clients/js``) has the same rules, and both are held to
``clients/url-fixtures.json``.

Attributes come from template authors (``picture(..., attrs={...})``), not from page visitors, but
they are still written so that no value can leave its attribute: every value is escaped with
``html.escape(quote=True)``, names must be plain HTML attribute names, and event handlers (``on*``)
are refused (a CSP that forbids inline scripts would block them anyway; use ``addEventListener``).
CSS that the builder writes itself (placeholders) only ever holds checked values: a ``#rrggbb``
colour, a base64 PNG data URI, or a signed URL without quotes or backslashes, so it cannot close its
``url(...)``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from edgeproxy.url.options import format_value

__all__ = [
    "ACCEPT_CH",
    "ATTRIBUTE_NAME",
    "RESERVED_ATTRIBUTES",
    "attribute_text",
    "checked_attrs",
    "client_hints_meta",
    "escape",
    "merge_style",
    "placeholder_style",
]

#: An attribute name ``attrs`` accepts: a letter, then letters, digits, ``-``, ``_``, ``.`` or ``:``
#: (``class``, ``data-sku``, ``aria-label``, ``xml:lang``); compared lower-cased, as HTML does.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
#: ``<img>`` attributes the builder computes from its arguments: ``attrs`` may not set them
#: (``alt``: the ``alt`` argument; ``width``/``height``: ``original`` or ``aspect``).
RESERVED_ATTRIBUTES = frozenset({"src", "srcset", "sizes", "alt", "width", "height"})
#: The ``Accept-CH`` response header line the page's own server sends so that Chromium sends client
#: hints at all (with ``client_hints_meta``'s delegation to the proxy's origin).
ACCEPT_CH = "Accept-CH: Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width"
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
_PNG_DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+={0,2}")
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def escape(text: object) -> str:
    """``text`` as an attribute value or text: ``& < > " '`` escaped (``html.escape``, quotes too)."""
    return html.escape(str(text), quote=True)


def checked_attrs(attrs: Mapping[str, Any] | None) -> dict[str, str | bool | None]:
    """``attrs`` with lower-cased, checked names and values as written (see ``attribute_text``).

    Values: str, int or float (written as ``format_value`` writes them), ``True`` (the bare name:
    a boolean attribute), ``False`` or None (the attribute left out, a builder default removed).

    Raises:
        ValueError: a name that is not an HTML attribute name (``ATTRIBUTE_NAME``), an event
            handler (``on*``), one of ``RESERVED_ATTRIBUTES``, or a name given twice (in any case).
        TypeError: ``attrs`` that is not a mapping, or a value of another type.
    """
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise TypeError(f"attrs is a mapping of attribute names to values, not {type(attrs).__name__}")
    out: dict[str, str | bool | None] = {}
    for name, value in attrs.items():
        lower = _checked_name(name)
        if lower in out:
            raise ValueError(f"attribute {lower!r} is given twice")
        out[lower] = _attribute_value(lower, value)
    return out


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
        raise ValueError(f"attribute name {name!r}: a letter, then letters, digits, - _ . :")
    lower = name.lower()
    if lower.startswith("on"):
        raise ValueError(f"attribute {name!r}: event handler attributes are refused (use addEventListener)")
    if lower in RESERVED_ATTRIBUTES:
        raise ValueError(f"attribute {name!r} is written by the builder from its own arguments")
    return lower


def _attribute_value(name: str, value: object) -> str | bool | None:
    if value is None or isinstance(value, bool):
        return True if value else None
    if isinstance(value, str | int | float):
        return format_value(value)
    raise TypeError(f"attribute {name!r}: values are str, int, float, bool or None, not {type(value).__name__}")


def attribute_text(attributes: Mapping[str, str | bool | None]) -> str:
    """``' name="value"'`` per attribute, in order, each value escaped; ``True``: the bare name;
    None or ``False``: left out."""
    parts = []
    for name, value in attributes.items():
        if value is True:
            parts.append(f" {name}")
        elif value is not None and value is not False:
            parts.append(f' {name}="{escape(value)}"')
    return "".join(parts)


def merge_style(first: str | None, second: str | bool | None) -> str | None:
    """Two ``style`` values as one (``first; second``: the second's declarations win); None when both
    are empty."""
    texts = [t.strip().rstrip(";").strip() for t in (first, second) if isinstance(t, str) and t.strip()]
    return "; ".join(texts) or None


def placeholder_style(kind: str, info: Mapping[str, Any] | None, blur_url: str | None) -> str | None:
    """The ``style`` that shows a placeholder in the ``<img>``'s box until the image paints over it.

    Args:
        kind: ``"color"`` (``info["dominant_color"]``), ``"thumbhash"`` (``info["thumbhash_png"]``,
            the thumbhash decoded to a PNG data URI by ``/info``) or ``"blur"`` (``blur_url``).
        info: the ``/info`` JSON of the original, needed for ``color`` and ``thumbhash``.
        blur_url: a tiny blurred derivative's signed URL (for ``blur``).

    Returns:
        ``background: #rrggbb`` or ``background: url(...) center/cover`` (an unquoted CSS URL:
        every character it holds is checked); None when ``info``
        lacks the value (``/info`` leaves it out for a blocked original: no placeholder then).

    Raises:
        ValueError: an unknown kind, ``color``/``thumbhash`` without ``info``, a value that is not a
            ``#rrggbb`` colour or a base64 PNG data URI, or a URL with a quote, backslash or space.
    """
    if kind == "blur":
        if blur_url is None or re.search(r"[\"'\\\s()]", blur_url):
            raise ValueError(
                f"a blur placeholder needs a URL without quotes, backslashes, spaces or parentheses: {blur_url!r}"
            )
        return f"background: url({blur_url}) center/cover"
    if kind not in ("color", "thumbhash"):
        raise ValueError(f"placeholder must be 'color', 'thumbhash' or 'blur', got {kind!r}")
    if info is None:
        raise ValueError(f"placeholder {kind!r} needs info=, the original's /info JSON")
    field, rule = ("dominant_color", _COLOR) if kind == "color" else ("thumbhash_png", _PNG_DATA_URI)
    value = info.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise ValueError(f"info[{field!r}] is not a {'#rrggbb colour' if kind == 'color' else 'base64 PNG data URI'}")
    return f"background: {value}" if kind == "color" else f"background: url({value}) center/cover"


def client_hints_meta(proxy_origin: str) -> str:
    """The ``<meta http-equiv="Delegate-CH">`` that lets Chromium send ``Sec-CH-DPR``,
    ``Sec-CH-Width`` and ``Sec-CH-Viewport-Width`` to the proxy's origin (for ``w:auto``,
    ``dpr:auto``); the page's server must also send ``ACCEPT_CH``. Client Hints Infrastructure,
    https://wicg.github.io/client-hints-infrastructure/ (the ``Delegate-CH`` meta).

    Args:
        proxy_origin: ``scheme://host[:port]`` of the proxy (or its CDN), e.g.
            ``"https://img.example.com"``; a trailing ``/`` is dropped.

    Raises:
        ValueError: not an http(s) origin (a path, query, credentials or other characters).
    """
    origin = proxy_origin.rstrip("/") if isinstance(proxy_origin, str) else ""
    if not _ORIGIN.fullmatch(origin):
        raise ValueError(f"proxy_origin must be an origin such as https://img.example.com, got {proxy_origin!r}")
    content = "; ".join(f"{hint} {origin}" for hint in ("sec-ch-dpr", "sec-ch-width", "sec-ch-viewport-width"))
    return f'<meta http-equiv="Delegate-CH" content="{escape(content)}">'
