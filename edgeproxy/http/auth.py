"""The admin token: ``Authorization: Bearer <admin_token>`` (RFC 6750 §2.1), which opens
``POST /purge`` and the whole ``/info`` of a blocked original."""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.requests import Request


def is_admin(request: Request, token: SecretStr | None) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer <token>``, compared in constant time.
    Never without a ``token``, for an empty one (settings refuse it at start-up) or for an empty
    credential."""
    secret = token.get_secret_value().encode() if token is not None else b""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    credential = given.strip().encode()
    if scheme.lower() != "bearer" or not credential or not secret:
        return False
    return hmac.compare_digest(credential, secret)
