"""URL signatures: HMAC-SHA256 over the exact raw path, through itsdangerous.

The signature of a URL ``/{signature}/{rest}`` is ``base64url(HMAC-SHA256(key, "/" + rest))`` without
padding (RFC 2104 HMAC, RFC 4648 §5 alphabet), over the bytes exactly as they appear in the request
line: still percent-encoded, so no decoding ambiguity can make two paths share a signature.

Several keys may be configured for rotation: the first signs, all verify. Comparison is constant
time (``hmac.compare_digest`` inside itsdangerous).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from itsdangerous import Signer

from edgeproxy.errors import forbidden

UNSIGNED = "unsafe"
#: 32 bytes of HMAC-SHA256 in unpadded base64url.
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")


class PathSigner:
    """Signs and verifies URL paths.

    Args:
        keys: secret keys, newest first; ``keys[0]`` signs, every key verifies. May be empty only
            when ``allow_unsigned`` is true.
        allow_unsigned: accept the literal signature ``unsafe`` (local development only).

    Raises:
        ValueError: no keys and unsigned URLs not allowed.
    """

    def __init__(self, keys: Sequence[str | bytes], allow_unsigned: bool = False):
        if not keys and not allow_unsigned:
            raise ValueError("no signing key configured")
        self.allow_unsigned = allow_unsigned
        # itsdangerous signs with the *last* key of its list and verifies with all of them.
        self._signer = (
            Signer(list(reversed(keys)), key_derivation="none", digest_method=hashlib.sha256)
            if keys
            else None
        )

    def sign(self, path: str | bytes) -> str:
        """Signature (43 base64url characters) of ``path``, which starts with ``/``."""
        if self._signer is None:
            raise ValueError("no signing key configured")
        return self._signer.get_signature(path).decode("ascii")

    def verify(self, signature: str, path: str | bytes) -> None:
        """Check ``signature`` for ``path``.

        Raises:
            ProxyError(403): the signature is missing, malformed or does not match any key.
        """
        if signature == UNSIGNED and self.allow_unsigned:
            return
        if self._signer is None or not _SIGNATURE.fullmatch(signature):
            raise forbidden()
        if not self._signer.verify_signature(path, signature):
            raise forbidden()


def sign_path(path: str, key: str | bytes) -> str:
    """``/{signature}{path}`` for ``path`` = ``/{options}/{origin}/{key}`` (already percent-encoded).

    Example (the README's test vector)::

        >>> sign_path("/w:400/f:auto/demo/photo.jpg", "edgeproxy-test-key")
        '/rqufbFtvkzI1TYyIM7jKdQdcFfaR8jZ4ZsKp2s1zEzc/w:400/f:auto/demo/photo.jpg'
    """
    if not path.startswith("/"):
        raise ValueError("path must start with '/'")
    return "/" + PathSigner([key]).sign(path) + path
