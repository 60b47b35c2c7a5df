"""SVG input, made safe before librsvg sees it (SVG input is off by default).

An SVG is a program-like document: it can declare entities (billion laughs, XXE), pull in other
files (``xi:include``, ``<image href="file:...">``, CSS ``@import``; librsvg's CVE-2023-38633 read
arbitrary files through ``xi:include``), and carry scripts. libvips hands SVG to librsvg whole, even
to read the header, so the bytes are rebuilt here first:

1. gzip (SVGZ) is inflated with a size cap (a gzip bomb is a 413);
2. the XML is parsed with ``defusedxml`` (entity declarations and external references refused: 422);
3. the tree is written out again with only SVG-namespace elements (so no XInclude, no editor
   metadata), without ``script`` and ``foreignObject`` elements, event-handler (``on*``),
   ``xml:base`` and foreign-namespace attributes, any ``href`` that is not a same-document
   fragment (``#id``) or an embedded PNG/JPEG/GIF/WebP ``data:`` URL, and styles with ``@import`` or
   ``url(...)`` of anything but a fragment or embedded data;
4. that document (no DOCTYPE, comments, processing instructions or entities) goes to librsvg.

The same ideas as imgproxy's SVG sanitiser, which strips scripts and event handlers from SVG it
passes through; here the output is raster, so what matters is that nothing is fetched or read.
"""

from __future__ import annotations

import re
import zlib
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from edgeproxy.errors import too_large, undecodable

_GZIP = b"\x1f\x8b"
#: How far into the (inflated) bytes to look for the root element when sniffing.
_SNIFF_BYTES = 4096
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK = "{http://www.w3.org/1999/xlink}"
_XML = "{http://www.w3.org/XML/1998/namespace}"
_XML_BASE = _XML + "base"
_DROPPED_ELEMENTS = {"script", "foreignObject"}
#: Same-document fragments and embedded raster images (not embedded SVG: it would skip this).
_SAFE_HREF = re.compile(r"\s*(#|data:image/(png|jpeg|jpg|gif|webp)[;,])", re.IGNORECASE)
_UNSAFE_STYLE = re.compile(r"@import|url\(\s*['\"]?\s*(?!#|data:image/(png|jpeg|jpg|gif|webp)[;,])", re.IGNORECASE)


def _head(data: bytes) -> bytes:
    if data.startswith(_GZIP):
        try:
            return zlib.decompressobj(wbits=31).decompress(data, _SNIFF_BYTES)
        except zlib.error:
            return b""
    return data[:_SNIFF_BYTES]


def looks_like_svg(data: bytes) -> bool:
    """Whether ``data`` (an original's bytes, maybe gzip) may be SVG: an XML-ish text with an
    ``<svg`` element in its first 4 KiB. A superset of libvips' own check (``<svg`` in the first
    1000 bytes), so no SVG reaches libvips unsanitised."""
    head = _head(data).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and b"<svg" in head.lower()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _svg_name(tag: object) -> str | None:
    """The SVG element name of ``tag``, or None for anything else (other namespaces, comments)."""
    if not isinstance(tag, str):
        return None
    namespace, _, local = tag.rpartition("}")
    return local if namespace in ("", "{" + _SVG_NS) else None


def _attribute(name: str, value: str) -> str | None:
    """``name`` as written in the output, or None to drop the attribute."""
    if name.startswith(_XLINK):
        name = "xlink:" + name.removeprefix(_XLINK)
    elif name.startswith(_XML) and name != _XML_BASE:
        name = "xml:" + name.removeprefix(_XML)
    elif name.startswith("{"):
        return None  # editor metadata (inkscape:, sodipodi:, ...) and xml:base
    local = name.rpartition(":")[2].lower()
    if local.startswith("on") or (local == "href" and not _SAFE_HREF.match(value)):
        return None
    if _UNSAFE_STYLE.search(value):  # style="...", fill="url(...)", ...
        return None
    return name


def _write(element: Element, out: list[str], root: bool = False) -> None:
    name = _svg_name(element.tag)
    if name is None or name in _DROPPED_ELEMENTS:
        return
    if name == "style" and _UNSAFE_STYLE.search(element.text or ""):
        return
    out.append(f"<{name}")
    if root:
        out.append(f' xmlns="{_SVG_NS}" xmlns:xlink="{_XLINK[1:-1]}"')
    for key, value in element.attrib.items():
        written = _attribute(key, value)
        if written is not None:
            out.append(f" {written}={quoteattr(value)}")
    out.append(">")
    if element.text:
        out.append(escape(element.text))
    for child in element:
        _write(child, out)
        if child.tail:
            out.append(escape(child.tail))
    out.append(f"</{name}>")


def sanitize(data: bytes, max_bytes: int) -> bytes:
    """A rebuilt SVG document (UTF-8 XML bytes) that librsvg can render without reading anything
    but itself; see the module docstring for what is removed.

    Args:
        data: SVG or SVGZ bytes.
        max_bytes: the most bytes the inflated document may have (``max_source_bytes``).

    Raises:
        ProxyError(413): the inflated document is over ``max_bytes``.
        ProxyError(422): not well-formed XML, declares entities, references external entities, or
            its root element is not ``svg``.
    """
    if data.startswith(_GZIP):
        inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(data, max_bytes + 1)
        except zlib.error:
            raise undecodable("the SVG could not be decompressed") from None
        if len(data) > max_bytes or inflater.unconsumed_tail:
            raise too_large(f"the decompressed SVG is over the limit of {max_bytes} bytes")
    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise undecodable("SVG with entity declarations or external references is not allowed") from None
    except (ParseError, ValueError):
        raise undecodable("the SVG is not well-formed XML") from None
    if _svg_name(root.tag) != "svg":
        raise undecodable("the document's root element is not svg")
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write(root, out, root=True)
    return "".join(out).encode("utf-8")
