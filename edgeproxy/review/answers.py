"""The review page's answers, for its routes (``review.routes``): every one ``private, no-store``
with a strict Content-Security-Policy (``private_headers``), templated pages, the login form and the
401 challenge, the form body read within ``MAX_FORM`` bytes, errors no cache may store
(``private``), and the reviewer a request carries (``reviewer_of``)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from edgeproxy.errors import ProxyError, bad_request, too_large
from edgeproxy.http.edge import Handler
from edgeproxy.http.logs import AccessRecord
from edgeproxy.http.responses import ErrorForm
from edgeproxy.review.auth import COOKIE, LOGIN_COOKIE, Reviewer
from edgeproxy.review.service import Review

if TYPE_CHECKING:
    from edgeproxy.compose import Components

#: Largest form body read (bytes).
MAX_FORM = 8192
NO_STORE = "private, no-store"
LOGIN_PATH = "/review/login"


def private_headers(nonce: str = "") -> dict[str, str]:
    """Every review answer's headers: ``private, no-store``, a Content-Security-Policy with no
    script and styles only by ``nonce`` (none without), no framing, no sniffing, no referrer."""
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Cache-Control": NO_STORE,
        "Content-Security-Policy": (
            f"default-src 'none'; img-src 'self'; style-src {style}; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def review_of(request: Request) -> Review:
    """The app's ``Review`` (``app.state.review``)."""
    review: Review = request.app.state.review
    return review


def wants_json(request: Request) -> bool:
    """Whether the client asks for JSON (``Accept``: ``application/json`` or ``application/x-ndjson``)."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "application/x-ndjson" in accept


def page(review: Review, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The template ``name`` rendered with ``context`` and a fresh style nonce, as ``status``."""
    nonce = secrets.token_urlsafe(12)
    body = review.templates.get_template(name).render(nonce=nonce, **context)
    return HTMLResponse(body, status_code=status, headers=private_headers(nonce))


def login_page(review: Review, status: int, error: str = "") -> HTMLResponse:
    """The login form (with ``error``) as ``status``, its one-hour login cookie set (the form's
    token is bound to it)."""
    nonce = review.gate.login_nonce()
    response = page(review, "login.html", status, token=review.gate.login_token(nonce), error=error)
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, path=LOGIN_PATH, secure=True, httponly=True, samesite="strict"
    )
    return response


def challenge(request: Request, review: Review, message: str) -> Response:
    """401 asking for the admin token: Basic (browsers) or Bearer (scripts); the login form as body.
    Counted in ``edgeproxy_errors_total{category="auth"}`` like every refused credential."""
    request.app.state.components.metrics.errors.labels("auth").inc()
    challenge = {"WWW-Authenticate": 'Basic realm="edgeproxy review", charset="UTF-8", Bearer realm="edgeproxy"'}
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=401, headers={**private_headers(), **challenge})
    response = login_page(review, 401, message)
    response.headers.update(challenge)
    return response


async def read_form(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body, each field's first value.

    Raises:
        ProxyError: 413 over ``MAX_FORM`` bytes, 400 for another content type or bad encoding.
    """
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise bad_request("expected an application/x-www-form-urlencoded form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise too_large(f"form over {MAX_FORM} bytes")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the form is not UTF-8 URL-encoded") from None
    return {name: values[0] for name, values in fields.items()}


def forbidden(message: str) -> ProxyError:
    """A 403 about one reviewer (``auth``), never cached."""
    return ProxyError(403, message, "auth", cacheable=False)


def private(handler: Handler) -> Handler:
    """``handler`` whose errors no cache may store (``no-store``: they are about one reviewer),
    answered ``{"error": message}`` to a client that accepts JSON and as text otherwise; counted in
    ``edgeproxy_errors_total`` either way."""

    async def answer(request: Request, components: Components, record: AccessRecord) -> Response:
        try:
            return await handler(request, components, record)
        except ProxyError as error:
            private = error
            if error.cacheable:
                private = ProxyError(
                    error.status,
                    error.message,
                    error.category,
                    error.retry_after,
                    headers=error.headers,
                    cacheable=False,
                )
            if wants_json(request):
                components.metrics.errors.labels(private.category).inc()
                return components.headers.error(private, form=ErrorForm.JSON)
            raise private from None

    return answer


async def reviewer_of(request: Request, review: Review) -> Reviewer | Response:
    """The reviewer ``request`` carries (token or session cookie), or the 401 challenge to answer."""
    found = review.gate.reviewer(request)
    if found is None:
        given = request.headers.get("authorization") or request.cookies.get(COOKIE)
        return challenge(request, review, "wrong or expired credentials" if given else "log in with the admin token")
    return found


async def posted(request: Request) -> tuple[Review, Reviewer, dict[str, str]] | Response:
    """A reviewer's form POST, checked: (the ``Review``, the reviewer, the form), or the 401
    challenge to answer when the request carries no reviewer.

    Raises:
        ProxyError(403): a missing or wrong CSRF token (``Gate.csrf_ok``); ``read_form``'s errors.
    """
    review = review_of(request)
    reviewer = await reviewer_of(request, review)
    if isinstance(reviewer, Response):
        return reviewer
    form = await read_form(request)
    if not review.gate.csrf_ok(reviewer, form.get("csrf", "")):
        raise forbidden("missing or wrong CSRF token")
    return review, reviewer, form
