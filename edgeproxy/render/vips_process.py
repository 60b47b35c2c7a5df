"""libvips in this process, set up once at start: its threads and caches (``configure``), its log
messages kept out of Python (``silence_messages``), the memory it holds (``tracked_memory``) and its
version. ``edgeproxy.render.vips`` re-exports them beside the image operations."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import pyvips

from edgeproxy.render import pillow

#: GLib's log levels, ERROR to DEBUG, with the FATAL and RECURSION flags (``GLogLevelFlags``, bits 0-7).
_EVERY_LOG_LEVEL = 0xFF


def configure(concurrency: int) -> None:
    """Process-wide decoder set-up, once at start: libvips' log messages handled in C
    (``silence_messages``), threads per operation (libvips and the Pillow codecs,
    ``pillow.configure``), no libvips operation cache.

    The operation cache only helps when identical operations repeat on the same image object; a
    proxy decodes new buffers every time, so it would only hold memory.
    """
    silence_messages()
    pyvips.concurrency_set(concurrency)
    pillow.configure(concurrency)
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)


@functools.cache
def silence_messages() -> None:
    """Drop libvips' log messages in C, so that none of them runs Python (once per process).

    libvips logs through GLib (``g_log``, domain ``VIPS``) on the thread that does the work, its
    worker threads included: a JPEG's "read gave 1 warnings" as its loader closes, libjpeg's
    "Corrupt JPEG data", notes at INFO level. pyvips handles the domain with a Python function
    (into its ``pyvips`` logger), and Python may run the cyclic GC anywhere, inside that handler
    too. A GC pass there can finalise a pyvips image whose loader then logs as it closes: to GLib a
    message from a thread that is inside a log handler is recursion, and recursion is fatal
    (``G_LOG_FATAL_MASK``; ``g_logv`` in GLib's ``gmessages.c``), so the process aborted ("Fatal
    Python error: Aborted", the aborting thread garbage-collecting inside pyvips'
    ``_log_handler_callback``). Any corrupt original that makes a decoder warn could do it.

    The domain's handler becomes a C function that does nothing: GLib calls the handler set last
    whose levels match (``g_log_domain_get_handler_L``), so pyvips' is never called again. That
    function is libvips' ``vips_cache_get_max``, which only returns an integer: GLib passes it the
    four arguments of a ``GLogFunc`` and it reads none (extra arguments are ignored on every C ABI
    GLib runs on; GTK's ``G_CALLBACK (gtk_main_quit)`` signal handlers rely on the same).

    The messages are dropped, as edgeproxy's logging configuration dropped them before (pyvips'
    logger has only a ``NullHandler``, the root logger none), so stderr stays JSON lines. A message
    at ERROR level still aborts: GLib's rule for that level, whatever the handler.
    """
    do_nothing = pyvips.ffi.cast("GLogFunc", pyvips.ffi.addressof(pyvips.vips_lib, "vips_cache_get_max"))
    pyvips.glib_lib.g_log_set_handler(b"VIPS", _EVERY_LOG_LEVEL, do_nothing, pyvips.ffi.NULL)


@functools.cache
def _tracked_mem() -> Callable[[], int]:
    # pyvips' cffi binding does not declare vips_tracked_get_mem; the symbol is in the same libvips
    # that pyvips has loaded, reached through its extension module.
    import _libvips

    function = ctypes.CDLL(_libvips.__file__).vips_tracked_get_mem
    function.restype = ctypes.c_size_t
    return function


def tracked_memory() -> int:
    """Bytes libvips currently has allocated for pixel buffers (``vips_tracked_get_mem``)."""
    try:
        return int(_tracked_mem()())
    except (ImportError, OSError, AttributeError):
        return 0


def version() -> str:
    """libvips version, e.g. ``"8.18.7"``."""
    return ".".join(str(pyvips.version(i)) for i in range(3))
