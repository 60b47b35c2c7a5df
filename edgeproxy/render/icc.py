"""ICC colour profiles: the one fact edgeproxy reads from a profile, its description.

A profile (ICC.1:2010, International Color Consortium) is a 128-byte header, a tag table and the
tags. Only the ``desc`` tag is read here: it names the colour space (``"sRGB IEC61966-2.1"``,
``"Display P3"``), which tells whether transforming the pixels to sRGB would be a costly no-op
(``is_srgb_profile``) and what ``/info`` reports (``SourceInfo.icc``). Pure bytes parsing: no
libvips, no Pillow.
"""

from __future__ import annotations


def is_srgb_profile(profile: bytes) -> bool:
    """Whether an ICC profile's description names sRGB (so transforming to sRGB would be a no-op).
    Skipping the no-op transform halves the cost of a typical camera JPEG (the lcms transform costs
    more than the decode)."""
    return "sRGB" in (icc_description(profile) or "")


def icc_description(profile: bytes) -> str | None:
    """An ICC profile's description (``"sRGB IEC61966-2.1"``), or None when it has none readable.

    Reads the ``desc`` tag (ICC.1:2001-04 ``textDescriptionType`` or ICC.1:2010 ``multiLocalizedUnicodeType``)
    from the tag table that follows the 128-byte header.
    """
    try:
        count = int.from_bytes(profile[128:132], "big")
        for i in range(min(count, 64)):
            entry = profile[132 + 12 * i : 144 + 12 * i]
            if entry[:4] != b"desc":
                continue
            offset = int.from_bytes(entry[4:8], "big")
            size = int.from_bytes(entry[8:12], "big")
            tag = profile[offset : offset + size]
            if tag[:4] == b"desc":
                return tag[12 : 12 + int.from_bytes(tag[8:12], "big")].decode("latin-1").rstrip("\x00")
            if tag[:4] == b"mluc":
                length = int.from_bytes(tag[20:24], "big")
                start = int.from_bytes(tag[24:28], "big")
                return tag[start : start + length].decode("utf-16-be", "replace").rstrip("\x00")
            return None
    except (IndexError, ValueError):
        return None
    return None
