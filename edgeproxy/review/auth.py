"""Who may use the review page: the holder of ``admin_token``, presented three ways.

- ``Authorization: Bearer <admin_token>`` (RFC 6750 §2.1), for scripts;
- ``Authorization: Basic`` (RFC 7617) with any user name (recorded in the audit log as the reviewer)
  and the token as password, for browsers (the 401 challenges for it);
- a login form (reviewer name and token) that sets a session cookie: its value is signed and
  timestamped with itsdangerous (``URLSafeTimedSerializer``, HMAC-SHA1 over a key derived from the
  token, so that every worker process accepts it and changing the token ends every session),
  refused after ``review_session_max_age`` seconds; the cookie is ``HttpOnly``, ``Secure``,
  ``SameSite=Strict`` and scoped to ``/review``.

CSRF (OWASP CSRF Prevention Cheat Sheet, "synchronizer token"): every POST made with a credential
the browser sends on its own (the cookie, Basic) carries a token derived by HMAC-SHA256 from the
session (its random id; Basic: the user name), checked in constant time; the login form carries a
signed, timestamped token bound to a random nonce in a cookie of its own (double submit: valid
``LOGIN_FORM_MAX_AGE`` seconds). A bearer header is
never sent by a browser on its own, so POSTs made with it need no token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from starlette.requests import Request

from edgeproxy.http.auth import is_admin

#: The session cookie's name (scoped to ``COOKIE_PATH``).
COOKIE = "edgeproxy_review"
COOKIE_PATH = "/review"
#: The login form's cookie (a random nonce its token is bound to), scoped to ``/review/login``.
LOGIN_COOKIE = "edgeproxy_review_login"
#: Seconds a login form's token is accepted.
LOGIN_FORM_MAX_AGE = 3600
#: Longest reviewer name kept (characters).
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class Reviewer:
    """An authenticated reviewer: ``who`` (the name given at login or as the Basic user name;
    ``admin`` for a bearer token), ``via`` (``bearer``, ``basic`` or ``cookie``) and, for a cookie,
    the session's random id ``sid``."""

    who: str
    via: Literal["bearer", "basic", "cookie"]
    sid: str = ""


def clean_name(name: str) -> str:
    """A reviewer name as recorded: printable characters only, stripped, at most ``MAX_NAME``;
    ``reviewer`` when nothing is left."""
    kept = "".join(c for c in name if c.isprintable()).strip()[:MAX_NAME]
    return kept or "reviewer"


class Gate:
    """Checks the credentials of ``token`` (``admin_token``) and makes and checks sessions and
    CSRF tokens; sessions last ``max_age`` seconds."""

    def __init__(self, token: SecretStr, max_age: int):
        self._token = token
        secret = token.get_secret_value().encode()
        self._key = hmac.new(secret, b"edgeproxy review sessions v1", hashlib.sha256).digest()
        self._sessions = URLSafeTimedSerializer(self._key, salt="edgeproxy.review.session")
        self._logins = URLSafeTimedSerializer(self._key, salt="edgeproxy.review.login")
        self.max_age = max_age

    def matches(self, given: str) -> bool:
        """Whether ``given`` is the admin token (constant time; never for an empty one)."""
        secret = self._token.get_secret_value().encode()
        return bool(given) and hmac.compare_digest(given.encode(), secret)

    def reviewer(self, request: Request) -> Reviewer | None:
        """The reviewer ``request`` authenticates as, or None (no credential, a wrong one, a
        tampered or expired cookie)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return Reviewer("admin", "bearer") if is_admin(request, self._token) else None
        if scheme.lower() == "basic":
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return Reviewer(clean_name(user), "basic") if sep and self.matches(password) else None
        cookie = request.cookies.get(COOKIE)
        if cookie:
            try:
                who, sid = self._sessions.loads(cookie, max_age=self.max_age)
            except (BadSignature, ValueError, TypeError):
                return None
            return Reviewer(clean_name(str(who)), "cookie", str(sid))
        return None

    def session(self, who: str) -> str:
        """A new session cookie value for reviewer ``who`` (a fresh random session id)."""
        return self._sessions.dumps([clean_name(who), secrets.token_urlsafe(16)])

    def csrf(self, reviewer: Reviewer) -> str:
        """The CSRF token of ``reviewer``'s session (hex HMAC-SHA256); empty for a bearer token."""
        if reviewer.via == "bearer":
            return ""
        subject = f"{reviewer.via}|{reviewer.sid if reviewer.via == 'cookie' else reviewer.who}"
        return hmac.new(self._key, b"csrf|" + subject.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, reviewer: Reviewer, given: str) -> bool:
        """Whether a POST by ``reviewer`` carrying ``given`` passes the CSRF check (a bearer token
        always does; otherwise ``given`` must be the session's token)."""
        if reviewer.via == "bearer":
            return True
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf(reviewer).encode())

    @staticmethod
    def login_nonce() -> str:
        """A random value for the login form's cookie (``LOGIN_COOKIE``), which its token is bound to."""
        return secrets.token_urlsafe(16)

    def login_token(self, nonce: str) -> str:
        """The token a login form carries: ``nonce`` (also sent as the ``LOGIN_COOKIE``) signed and
        timestamped, so that a page elsewhere cannot post a login of its own (login CSRF)."""
        return self._logins.dumps(nonce)

    def login_token_ok(self, given: str, nonce: str) -> bool:
        """Whether ``given`` is this server's login token for ``nonce`` (the login cookie), at most
        ``LOGIN_FORM_MAX_AGE`` seconds old."""
        if not (given and nonce):
            return False
        try:
            signed = self._logins.loads(given, max_age=LOGIN_FORM_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed.encode(), nonce.encode())
