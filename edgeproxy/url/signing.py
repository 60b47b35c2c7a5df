"""URL signatures: HMAC-SHA256 over the exact raw path, through itsdangerous.

The signature of a URL ``/{signature}/{rest}`` is ``base64url(HMAC-SHA256(key, "/" + rest))`` without
padding (RFC 2104 HMAC, RFC 4648 §5 alphabet), over the bytes exactly as they appear in the request
line: still percent-encoded, so no decoding ambiguity can make two paths share a signature.

Several keys may be configured for rotation: the first signs, all verify. Comparison is constant
time (``hmac.compare_digest``) over the encoded signature, so exactly one spelling is valid.

``/info`` URLs are their own signature domain: ``/info/{signature}/{origin}/{key}`` carries the
HMAC of ``/info/{origin}/{key}`` (the whole path after the signature segment, with the route
prefix), so an ``/info`` signature is never that of the option-less transform path ``/{origin}/{key}``
(the full-size original) and a transform signature never answers ``/info``. No origin may be named
``info`` (``edgeproxy.settings``), so no transform path is ever ``/info/...``.

Signatures may be truncated to the first ``size`` bytes of the HMAC (8..32, as imgproxy's
``IMGPROXY_SIGNATURE_SIZE``; RFC 2104 §5 allows truncation to no less than half the hash length
for general use, so 16 is the smallest size worth configuring for the internet) for shorter URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Sequence

from itsdangerous import Signer
from itsdangerous.encoding import base64_encode

from edgeproxy.errors import forbidden

UNSIGNED = "unsafe"
#: The route prefix of ``GET /info``; also part of what its signatures cover.
INFO_PREFIX = "/info"
#: Bytes of HMAC-SHA256 in a full signature.
FULL_SIZE = 32


class PathSigner:
    """Signs and verifies URL paths.

    Args:
        keys: secret keys, newest first; ``keys[0]`` signs, every key verifies. May be empty only
            when ``allow_unsigned`` is true.
        allow_unsigned: accept the literal signature ``unsafe`` (local development only).
        size: bytes of the HMAC kept in the signature, 8..32 (32: the whole HMAC, 43 characters).

    Raises:
        ValueError: no keys and unsigned URLs not allowed, or ``size`` out of range.
    """

    def __init__(self, keys: Sequence[str | bytes], allow_unsigned: bool = False, size: int = FULL_SIZE):
        if not keys and not allow_unsigned:
            raise ValueError("no signing key configured")
        if not 8 <= size <= FULL_SIZE:
            raise ValueError("signature size must be 8..32 bytes")
        self.allow_unsigned = allow_unsigned
        self.size = size
        self._shape = re.compile(rf"[A-Za-z0-9_-]{{{math.ceil(size * 4 / 3)}}}")
        # One itsdangerous signer per key (HMAC-SHA256 of the raw key, no derivation), newest first.
        self._signers = [Signer(key, key_derivation="none", digest_method=hashlib.sha256) for key in keys]

    def _signature(self, signer: Signer, path: str | bytes) -> str:
        value = path.encode() if isinstance(path, str) else path
        digest = signer.algorithm.get_signature(signer.derive_key(), value)
        return base64_encode(digest[: self.size]).decode("ascii")

    def sign(self, path: str | bytes) -> str:
        """Signature (base64url, ``ceil(4 × size / 3)`` characters) of ``path``, which starts with ``/``."""
        if not self._signers:
            raise ValueError("no signing key configured")
        return self._signature(self._signers[0], path)

    def verify(self, signature: str, path: str | bytes) -> None:
        """Check ``signature`` for ``path`` against every key.

        Raises:
            ProxyError(403): the signature is missing, malformed, of another length, or does not
                match any key.
        """
        if signature == UNSIGNED and self.allow_unsigned:
            return
        if not self._signers or not self._shape.fullmatch(signature):
            raise forbidden()
        given = signature.encode("ascii")
        matches = [hmac.compare_digest(self._signature(s, path).encode("ascii"), given) for s in self._signers]
        if not any(matches):
            raise forbidden()


def sign_path(path: str, key: str | bytes, size: int = FULL_SIZE) -> str:
    """The signed URL path for ``path`` (already percent-encoded): ``/{signature}{path}`` for a
    transform path ``/{options}/{origin}/{key}``; for an ``/info`` path ``/info/{origin}/{key}``,
    ``/info/{signature}/{origin}/{key}`` with the signature over the whole ``path``.

    Example (the test vector of docs/signing.md, "Test vectors")::

        >>> sign_path("/w:400/f:auto/demo/photo.jpg", "edgeproxy-test-key")
        '/rqufbFtvkzI1TYyIM7jKdQdcFfaR8jZ4ZsKp2s1zEzc/w:400/f:auto/demo/photo.jpg'

    Raises:
        ValueError: a path that does not start with ``/``, or a key or ``size`` ``PathSigner`` refuses.
    """
    if not path.startswith("/"):
        raise ValueError("path must start with '/'")
    signature = PathSigner([key], size=size).sign(path)
    if path.startswith(INFO_PREFIX + "/"):
        return f"{INFO_PREFIX}/{signature}{path.removeprefix(INFO_PREFIX)}"
    return f"/{signature}{path}"
