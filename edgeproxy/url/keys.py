"""The rules for origin names and object keys, in one place: what the proxy's settings accept as an
origin name, what every origin serves as a key, and what the URL builders sign.

- An **origin name** is 1-32 of ``a-z 0-9 _ -``, starting alphanumeric (``ORIGIN_NAME``); ``info``
  is reserved (``RESERVED_ORIGIN_NAMES``: ``/info/{origin}/{key}`` is what ``/info`` signatures
  cover, so no transform path may start so).
- An **object key** is safe (``is_safe_key``) when it stays inside its origin: no empty, ``.`` or
  ``..`` segment (so no leading, trailing or doubled ``/``), no backslash, no NUL. Origins answer 404
  for any other key (the answer of a missing original, so nothing about the store's layout outside
  the origin is revealed), and the builders refuse to sign one (browsers rewrite dot segments, which
  would break the signature).

Pure functions and constants, no I/O: ``edgeproxy.settings``, ``edgeproxy.origins`` and
``edgeproxy.url.builders`` all read them from here.
"""

from __future__ import annotations

import re

#: An origin name: 1-32 of a-z 0-9 _ -, starting alphanumeric.
ORIGIN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
#: What ``ORIGIN_NAME`` allows, in words (for error messages).
ORIGIN_NAME_RULE = "use 1-32 of a-z 0-9 _ - (starting alphanumeric)"
#: Origin names no origin may have: ``info`` would make ``/info/{origin}/{key}`` (what /info
#: signatures cover) a transform path too.
RESERVED_ORIGIN_NAMES = frozenset({"info"})


def is_origin_name(name: str) -> bool:
    """Whether ``name`` is a well-formed origin name (``ORIGIN_NAME``; reserved names are checked
    by ``edgeproxy.settings``, which configures origins)."""
    return ORIGIN_NAME.fullmatch(name) is not None


def is_safe_key(key: str) -> bool:
    """Whether an object key stays inside its origin: no empty, ``.`` or ``..`` segment (so no
    leading, trailing or doubled ``/``), no backslash, no NUL."""
    return not ("\\" in key or "\x00" in key or any(part in ("", ".", "..") for part in key.split("/")))
