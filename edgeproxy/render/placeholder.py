"""Placeholders for an image that is still loading: its dominant colour and its ThumbHash.

``compute`` reads a small rendered derivative (at most ``SIDE`` pixels a side: ThumbHash's own
limit), never the original: the service renders that derivative with the treatment a viewer's
derivative gets (moderation blur, face redaction), so a placeholder shows nothing a viewer could
not see (``Service.placeholders``, docs/info.md).

- ``dominant_color``: ``#rrggbb``, the mean colour of the most populated cell of a 16×16×16 RGB
  histogram (4 bits a channel) over the opaque pixels (alpha ≥ 128; all pixels when none is): the
  colour covering the most of the image, exact for a solid image, not the grey a mean of a
  two-colour image would give.
- ``thumbhash``: ThumbHash (Evan Wallace, https://evanw.github.io/thumbhash/), the ``thash``
  package's encoder over the RGBA pixels, base64 (standard alphabet, padded), about 25 bytes.
- ``thumbhash_png``: that hash decoded by ``thash`` (32 px on its longer side) as a PNG data URI,
  so a page needs no decoder.
"""

from __future__ import annotations

import base64
from typing import TypedDict

import numpy as np
import pyvips
import thash

#: The longest side, in pixels, of the derivative the placeholders are computed from.
SIDE = 100


class Placeholders(TypedDict):
    """``compute``'s answer, the keys ``/info`` adds."""

    dominant_color: str
    thumbhash: str
    thumbhash_png: str


def rgba_pixels(png: bytes) -> np.ndarray:
    """The pixels of ``png`` (an encoded image, at most ``SIDE`` px a side in practice) as an
    ``(height, width, 4)`` uint8 RGBA array in sRGB (one frame: the first).

    Raises:
        pyvips.Error: the bytes do not decode.
    """
    image = pyvips.Image.new_from_buffer(png, "", access="sequential")
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb").cast("uchar")
    if image.bands < 3:  # grey, grey + alpha
        alpha = image[1] if image.bands == 2 else None
        image = image[0].bandjoin([image[0], image[0]])
        image = image.bandjoin(alpha) if alpha is not None else image
    if image.bands == 3:
        image = image.bandjoin(255)
    return np.ndarray(buffer=image[:4].write_to_memory(), dtype=np.uint8, shape=(image.height, image.width, 4))


def dominant_color(rgba: np.ndarray) -> str:
    """``#rrggbb``: the mean colour of the most populated cell of a 16×16×16 histogram of the
    opaque pixels of ``rgba`` (``(h, w, 4)`` uint8); all the pixels when none is opaque. Ties
    go to the lowest cell index (the darker, deterministic)."""
    pixels = rgba.reshape(-1, 4)
    opaque = pixels[pixels[:, 3] >= 128]
    rgb = (opaque if len(opaque) else pixels)[:, :3].astype(np.int64)
    cells = (rgb[:, 0] >> 4) * 256 + (rgb[:, 1] >> 4) * 16 + (rgb[:, 2] >> 4)
    mode = int(np.bincount(cells, minlength=4096).argmax())
    mean = rgb[cells == mode].mean(axis=0)
    r, g, b = (int(round(float(c))) for c in mean)
    return f"#{r:02x}{g:02x}{b:02x}"


def thumbhash(rgba: np.ndarray) -> bytes:
    """The ThumbHash of ``rgba`` (``(h, w, 4)`` uint8, at most ``SIDE`` px a side), ``thash``'s
    encoder (https://evanw.github.io/thumbhash/).

    Raises:
        ValueError: a side is over ``SIDE``.
    """
    height, width = rgba.shape[:2]
    return bytes(thash.rgba_to_thumb_hash(width, height, rgba))


def thumbhash_png(hashed: bytes) -> str:
    """``hashed`` (a ThumbHash) decoded by ``thash`` (32 px on the longer side) and encoded as a
    ``data:image/png;base64,...`` URI (1-2 kB: RGB unless the hash has transparency, every PNG
    filter tried)."""
    width, height, rgba = thash.thumb_hash_to_rgba(list(hashed))
    image = pyvips.Image.new_from_memory(rgba, width, height, 4, "uchar").copy(interpretation="srgb")
    if all(alpha == 255 for alpha in rgba[3::4]):  # opaque: RGB, a quarter smaller
        image = image[:3]
    png = image.pngsave_buffer(strip=True, compression=9, filter="all")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def compute(png: bytes) -> Placeholders:
    """The placeholders of ``png``, an encoded derivative at most ``SIDE`` px a side (blocking:
    run it in the render pool).

    Raises:
        pyvips.Error: the bytes do not decode.
        ValueError: a side is over ``SIDE``.
    """
    rgba = rgba_pixels(png)
    hashed = thumbhash(rgba)
    return {
        "dominant_color": dominant_color(rgba),
        "thumbhash": base64.b64encode(hashed).decode("ascii"),
        "thumbhash_png": thumbhash_png(hashed),
    }
