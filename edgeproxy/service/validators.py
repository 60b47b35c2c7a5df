"""The names of an original and of its derivatives: the surrogate key that tags every answer about
an original (one purge clears them all), and the ETag that names one derivative's bytes.

ETags and ``If-None-Match`` follow RFC 9110 §8.8.3 and §13.1.2; surrogate keys are what Fastly
(``Surrogate-Key``), Cloudflare (``Cache-Tag``) and Varnish's xkey purge by.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def surrogate_key(origin: str, key: str) -> str:
    """Stable tag for one original: purging it clears every derivative (``k`` + 16 hex digits)."""
    return "k" + hashlib.blake2b(f"{origin}/{key}".encode(), digest_size=8).hexdigest()


def strong_etag(*parts: str) -> str:
    """A strong ETag (quoted, 32 hex digits) over ``parts``: every input that decides the bytes."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()
    return f'"{digest}"'


def tier_etag(etag: str, tier: str) -> str:
    """The ETag of ``tier`` (``results.Tier``: fast, optimised) of the derivative whose ETag is
    ``etag``: another strong ETag over both (weak when ``etag`` is: a C2PA-signed derivative)."""
    weak = etag.startswith("W/")
    tagged = strong_etag(etag.removeprefix("W/"), tier)
    return "W/" + tagged if weak else tagged


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` lists ``etag`` (strong, or weak: ``W/"x"``) by the weak
    comparison (RFC 9110 §13.1.2 and §8.8.3.2): ``W/"x"`` matches ``"x"``, as caches send the
    weak form of a tag after they transform a response (Varnish after gzipping it).

    ``*`` is not honoured: the proxy decides to answer 304 before rendering, so ``*`` would
    validate a derivative that may not exist (an original that cannot be decoded); a cache
    revalidates with the ETag it holds.
    """
    if not if_none_match:
        return False
    etag = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(","))


@dataclass(frozen=True, slots=True)
class Validators:
    """What names an answer about an original: its ``surrogate_key`` (``Surrogate-Key`` and
    ``Cache-Tag``; one key, or several separated by spaces: an id of a manifest origin carries its
    original's and its own), the derivative's ``etag`` (a quoted strong ETag, or ``W/``-prefixed weak when
    the bytes differ on every render: a C2PA signature; None for a fallback image, which has none)
    and the original's ``last_modified`` (an HTTP date from the origin, or None)."""

    surrogate_key: str
    etag: str | None = None
    last_modified: str | None = None
