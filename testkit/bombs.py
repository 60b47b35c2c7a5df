"""Hostile images built in a few hundred bytes: headers that declare enormous canvases.

Used by ``tests/test_hostile_images.py``, ``tests/test_soak.py`` and ``bench/attacks.py``. Each is a well-formed header
(and a tiny body) that a decoder would have to expand to gigabytes of pixels.
"""

from __future__ import annotations

import struct
import zlib

import pyvips


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int) -> bytes:
    """8-bit RGB PNG declaring ``width`` × ``height``, with four rows of compressed data."""
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def gif(width: int, height: int) -> bytes:
    """GIF89a whose screen and single image are ``width`` × ``height``, with almost no LZW data."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0, 0, 0)
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00;"
    )


def jpeg(width: int, height: int) -> bytes:
    """A 16×16 baseline JPEG whose frame header (SOF0) is rewritten to ``width`` × ``height``."""
    data = bytearray(pyvips.Image.black(16, 16).jpegsave_buffer(keep="none"))
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def webp(width: int, height: int) -> bytes:
    """Animated WebP (VP8X + ANIM) with a ``width`` × ``height`` canvas and one 1×1 frame."""
    simple = pyvips.Image.black(1, 1).webpsave_buffer(lossless=True, keep="none")
    vp8l = simple[12:]  # RIFF header (12 bytes), then the VP8L chunk
    assert vp8l[:4] == b"VP8L"
    frame = _u24(0) + _u24(0) + _u24(0) + _u24(0) + _u24(100) + b"\x00" + vp8l
    body = (
        b"WEBP"
        + _riff_chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + _u24(width - 1) + _u24(height - 1))
        + _riff_chunk(b"ANIM", bytes(6))
        + _riff_chunk(b"ANMF", frame)
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def many_frames(width: int, height: int, frames: int) -> bytes:
    """An animated GIF of ``frames`` flat ``width`` × ``height`` frames, each a different grey (so
    the encoder cannot merge them), compressing to little."""
    flat = [(pyvips.Image.black(width, height) + (i * 7 % 256)).cast("uchar") for i in range(frames)]
    strip = pyvips.Image.arrayjoin(flat, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    return strip.gifsave_buffer()
