"""Where a decoder's failure becomes the request's error, and where libvips' work is cancelled.

``failures`` is the one place where an exception out of pyvips, libvips or Pillow becomes the
request's error (422, or 504 past the deadline) and where libvips' process-wide error buffer is
cleared, so that nothing a hostile original left there reaches the next request. ``Deadline``
cancels pixel work inside libvips once a render's deadline has passed. Every libvips and Pillow
call of the render package runs inside ``failures``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyvips

from edgeproxy.errors import ProxyError, timed_out, undecodable
from edgeproxy.render.headers import DecodeError

#: Top-level packages whose exceptions are a decoder's failure on the original's bytes (pyvips and
#: its compiled binding, Pillow and its plugins), as opposed to a bug in edgeproxy.
_DECODER_PACKAGES = frozenset({"pyvips", "_libvips", "cffi", "PIL", "pillow_heif", "pillow_jxl"})


class Deadline:
    """Cancels libvips' pixel work once ``at`` (a ``time.monotonic()`` value, seconds) has passed.

    ``watch(image)`` turns on libvips' progress signals for ``image`` (``vips_image_set_progress``):
    while its pixels, or those of an image made from it, are computed (a save, ``copy_memory``,
    ``smartcrop``'s measurement, a numpy export), libvips emits ``eval`` after each tile or strip,
    and past ``at`` the handler sets the image's kill flag (``vips_image_set_kill``); libvips then
    fails the computation at the next region it prepares or strip it writes (``vips_image_iskilled``
    also checks the image that signals progress: libvips ``iofuncs/image.c``, ``region.c``,
    ``sink.c``), so the render thread is free within one tile's work of the deadline. An infinite
    ``at`` watches nothing. Watched images are kept until the render ends: the signal handler must
    not outlive the Python object that pyvips keeps it in. The handler holds ``at``, not the
    ``Deadline``: pyvips keeps it in the image, so a bound method would make a reference cycle
    (image, handler, ``Deadline``, image) that only a cyclic-GC pass frees, holding the render's
    pixel memory until then and freeing it on whichever thread runs that pass.

    Work outside libvips' tiles is not interrupted: a Pillow decode (AVIF, HEIC, ...), the AV1 or
    JPEG XL encoder once it has the pixels, ``smartcrop``'s attention measure (it reports progress
    once, at its end; its input is in memory and at most the output's size).
    """

    def __init__(self, at: float = math.inf) -> None:
        self.at = at
        self._watched: list[pyvips.Image] = []

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() > self.at

    def watch(self, image: pyvips.Image) -> pyvips.Image:
        """``image``, its pixel work now cancelled past the deadline."""
        if math.isinf(self.at):
            return image
        at = self.at

        def on_eval(image: pyvips.Image, _progress: Any) -> None:
            if time.monotonic() > at:
                image.set_kill(True)

        image.set_progress(True)
        image.signal_connect("eval", on_eval)
        self._watched.append(image)
        return image


def clear_errors() -> None:
    """Empty libvips' error buffer (process-wide: ``vips_error_clear``)."""
    pyvips.vips_lib.vips_error_clear()


def from_decoder(exc: BaseException) -> bool:
    """Whether ``exc`` is a decoder's failure: a pyvips or ``headers.DecodeError``, or any exception
    raised inside pyvips or Pillow (pyvips raises ``UnicodeDecodeError`` reading an error text
    that is not UTF-8, e.g. a box type libheif quotes raw from a crafted AVIF)."""
    if isinstance(exc, pyvips.Error | DecodeError):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return module.partition(".")[0] in _DECODER_PACKAGES


@contextmanager
def failures(deadline: Deadline | None = None) -> Iterator[None]:
    """Where failures inside pyvips, libvips and Pillow become the request's error, and libvips'
    error buffer is cleared (on entry, and after any failure) so that no request inherits text a
    previous one left there: pyvips reads that buffer on every attribute lookup, so an unreadable
    one failed every later render of the process (issue 20).

    Raises:
        ProxyError(504): a decoder failed after ``deadline`` passed (``Deadline`` killed its work).
        ProxyError(422): a decoder failed otherwise: the original's bytes are not a valid image.
        ProxyError: raised inside, unchanged; any other exception (a bug) unchanged.
    """
    clear_errors()
    try:
        yield
    except ProxyError:
        clear_errors()
        raise
    except Exception as exc:
        clear_errors()
        if not from_decoder(exc):
            raise
        if deadline is not None and deadline.expired:
            raise timed_out("render deadline exceeded") from None
        raise undecodable() from None
