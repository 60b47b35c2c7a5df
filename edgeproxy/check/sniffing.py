"""What the bytes of an answer are: their format by magic number (``sniff``) and every pixel
decoded by libvips (``decode``), for ``edgeproxy check``."""

from __future__ import annotations


def sniff(data: bytes) -> str:
    """The output format of ``data`` by its magic number (``jpeg``, ``png``, ``gif``, ``webp``,
    ``avif``, ``jxl``), or ``""``. AVIF: an ISO BMFF ``ftyp`` box of brand ``avif``/``avis`` (or
    listing one, AV1 Image File Format §9); JPEG XL: a codestream (``FF 0A``) or its container."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":
        box = int.from_bytes(data[:4], "big")
        brands = {data[i : i + 4] for i in range(8, min(box, len(data), 64), 4)}
        if brands & {b"avif", b"avis"}:
            return "avif"
    if data.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    return ""


def decode(data: bytes) -> tuple[int, int, int]:
    """(width, height of one frame, frames) of ``data``, every pixel of every frame decoded.

    Raises:
        pyvips.Error: libvips could not decode it.
    """
    import pyvips

    image = pyvips.Image.new_from_buffer(data, "", fail_on="error")
    if image.get("vips-loader").startswith(("gifload", "webpload", "heifload")):
        image = pyvips.Image.new_from_buffer(data, "", n=-1, fail_on="error")
    image.avg()  # pulls every pixel through the decoder
    page = image.get("page-height") if image.get_typeof("page-height") else image.height
    return image.width, page, image.height // page
