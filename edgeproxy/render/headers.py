"""Image headers parsed from their bytes, for the formats whose decoder would decode pixels to learn
its size: the ICO directory and its icon's own header, the JPEG XL codestream's SizeHeader and
ImageMetadata. So the pipeline's limits apply before any pixel is decoded (413, not a decompression
bomb). Pure bytes parsing: no Pillow, no libvips. ``DecodeError`` is also every Pillow failure
(``edgeproxy.render.pillow``).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass


class DecodeError(Exception):
    """The data could not be decoded (corrupt, truncated, or a variant Pillow does not read)."""


@dataclass(frozen=True, slots=True)
class Header:
    """What a file says about itself: upright ``width`` × ``height`` in pixels and ``alpha``."""

    width: int
    height: int
    alpha: bool


# -- ICO: Microsoft's icon container (a directory of PNG or BMP DIB images) -----------------------


def ico_header(data: bytes) -> Header:
    """The size of the icon Pillow will decode (the largest; among equals, the fewest bits per
    pixel), from that image's own PNG IHDR or BITMAPINFOHEADER: the directory holds one byte per
    side, so a 65535-pixel image can hide behind an entry saying 16. An image that disagrees with
    its entry is a lie (``DecodeError``), except behind 0 (= 256 or more, as large PNG icons say)."""
    count = struct.unpack_from("<H", data, 4)[0]
    if not count:
        raise DecodeError("an icon file without icons")
    entries = []
    for i in range(count):
        width, height, colours, _, _, bpp, _, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        depth = bpp or (colours and math.ceil(math.log2(colours))) or 256
        entries.append((width or 256, height or 256, depth, offset))
    entries.sort(key=lambda e: e[2])
    width, height, _, offset = max(entries, key=lambda e: e[0] * e[1])  # the first of the largest
    head = data[offset : offset + 26]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        real = struct.unpack_from(">II", head, 16)
    else:
        real_width, real_height = struct.unpack_from("<ii", head, 4)
        real = (abs(real_width), abs(real_height) // 2)  # XOR bitmap and AND mask, stacked
    if real != (width, height) and not (width == height == 256 and min(real) >= 256):
        raise DecodeError(f"the icon directory says {width}x{height}, its image {real[0]}x{real[1]}")
    return Header(real[0], real[1], True)


# -- JPEG XL: the codestream header (ISO/IEC 18181-1:2022, Annex A) ------------------------------


class _Bits:
    """LSB-first bit reader over a JPEG XL codestream (ISO/IEC 18181-1 §A.3)."""

    def __init__(self, data: bytes, start: int = 0) -> None:
        self.data, self.pos = data, start * 8

    def u(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte = self.data[self.pos >> 3]  # IndexError on truncated data: a DecodeError above
            value |= ((byte >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def u32(self, *dists: tuple[int, int]) -> int:
        """``U32(d0, d1, d2, d3)``: a 2-bit selector, then (offset, bits) of that distribution."""
        offset, bits = dists[self.u(2)]
        return offset + self.u(bits)


_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
_SIZE = ((1, 9), (1, 13), (1, 18), (1, 30))


def _size_header(
    bits: _Bits, dists: tuple[tuple[int, int], ...] = _SIZE, div8_dist: tuple[tuple[int, int], ...] | None = None
) -> tuple[int, int]:
    small = bits.u(1)
    height = (bits.u32(*div8_dist) if div8_dist else bits.u(5) + 1) * 8 if small else bits.u32(*dists)
    ratio = bits.u(3)
    if ratio:
        num, den = _RATIOS[ratio]
        return height * num // den, height
    width = (bits.u32(*div8_dist) if div8_dist else bits.u(5) + 1) * 8 if small else bits.u32(*dists)
    return width, height


def _codestream(data: bytes) -> bytes:
    """The codestream of a bare (``FF 0A``) or boxed (ISO/IEC 18181-2) JPEG XL file."""
    if data.startswith(b"\xff\x0a"):
        return data
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < header:
            break
        if kind == b"jxlc":
            return data[pos + header : pos + size]
        if kind == b"jxlp":  # partial codestreams: the header is in the first one
            return data[pos + header + 4 : pos + size]
        pos += size
    raise DecodeError("no JPEG XL codestream box")


def jxl_header(data: bytes) -> Header:
    stream = _codestream(data)
    if not stream.startswith(b"\xff\x0a"):
        raise DecodeError("not a JPEG XL codestream")
    bits = _Bits(stream, 2)
    width, height = _size_header(bits)
    orientation, alpha = 1, False
    if not bits.u(1):  # ImageMetadata.all_default
        if bits.u(1):  # extra_fields
            orientation = bits.u(3) + 1
            if bits.u(1):  # have_intr_size
                _size_header(bits)
            if bits.u(1):  # have_preview: PreviewHeader
                _size_header(bits, ((1, 6), (65, 8), (321, 10), (1345, 12)), ((16, 0), (32, 0), (1, 5), (33, 9)))
            if bits.u(1):  # have_animation: AnimationHeader
                bits.u32((100, 0), (1000, 0), (1, 10), (1, 30))
                bits.u32((1, 0), (1001, 0), (1, 8), (1, 10))
                bits.u32((0, 0), (0, 3), (0, 16), (0, 32))
                bits.u(1)
        if bits.u(1):  # BitDepth.float_sample
            bits.u32((32, 0), (16, 0), (24, 0), (1, 6))
            bits.u(4)
        else:
            bits.u32((8, 0), (10, 0), (12, 0), (1, 6))
        bits.u(1)  # modular_16bit_buffers
        extra_channels = bits.u32((0, 0), (1, 0), (2, 4), (1, 12))
        if extra_channels:  # the first ExtraChannelInfo: d_alpha, else its type (0 = kAlpha)
            alpha = bool(bits.u(1)) or bits.u32((0, 0), (1, 0), (2, 4), (18, 6)) == 0
    if orientation > 4:
        width, height = height, width
    return Header(width, height, alpha)
