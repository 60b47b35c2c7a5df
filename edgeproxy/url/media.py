"""Media types (RFC 6838) of every format edgeproxy reads or writes, in one place: the
``Content-Type`` of a derivative, the ``type`` of a ``<source>`` the URL builders write, and the
media type an original is described with (``/info``, a C2PA ingredient).

Input format names are those of ``SourceInfo.format`` and of the ``allowed_input_formats``
setting; output formats are ``edgeproxy.url.spec.Format`` (``auto`` is negotiated, so has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from edgeproxy.url.spec import Format

#: Media type of each output format.
OUTPUT_MIME: Mapping[Format, str] = MappingProxyType(
    {
        Format.AVIF: "image/avif",
        Format.WEBP: "image/webp",
        Format.JPEG: "image/jpeg",
        Format.PNG: "image/png",
        Format.GIF: "image/gif",
        Format.JXL: "image/jxl",
    }
)
#: Media type of each input format. bmp, ico, psd, jp2 decode through Pillow; heif (HEIC) and jxl
#: need the [heif] and [jxl] extras (``edgeproxy.render.pillow``).
#: Media type -> output format (of a stored derivative).
FORMAT_OF: Mapping[str, Format] = MappingProxyType({mime: fmt for fmt, mime in OUTPUT_MIME.items()})

INPUT_MIME: Mapping[str, str] = MappingProxyType(
    {
        "jpeg": "image/jpeg",
        "png": "image/png",
        "webp": "image/webp",
        "gif": "image/gif",
        "avif": "image/avif",
        "heif": "image/heif",
        "tiff": "image/tiff",
        "svg": "image/svg+xml",
        "bmp": "image/bmp",
        "ico": "image/vnd.microsoft.icon",
        "psd": "image/vnd.adobe.photoshop",
        "jp2": "image/jp2",
        "jxl": "image/jxl",
    }
)
#: Every input format name edgeproxy knows.
INPUT_FORMATS: frozenset[str] = frozenset(INPUT_MIME)
#: What an original of unknown format is described as.
UNKNOWN_MIME = "application/octet-stream"


def input_mime(fmt: str) -> str:
    """The media type of input format ``fmt`` (``"jpeg"`` -> ``"image/jpeg"``), or
    ``application/octet-stream`` for a name not in ``INPUT_MIME``."""
    return INPUT_MIME.get(fmt, UNKNOWN_MIME)
