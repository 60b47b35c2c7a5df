"""The review page's routes (``review = true``; docs/review.md). Every answer is ``private,
no-store`` with a strict Content-Security-Policy (no script at all; styles by nonce), and every
route but the login form needs a reviewer (``auth.Gate``): 401 otherwise, with a Basic challenge
and the login form as body. Errors are ``{"error": message}`` for ``Accept: application/json``,
one line of text otherwise.

- ``GET /review[?page=N]``: the queue (``queue``), newest first, ``review_page_size`` a page;
  HTML, or JSON with ``Accept: application/json``
  (``{"items", "page", "pages", "total", "csrf"}``);
- ``GET|POST /review/login``: the login form; a good token sets the session cookie and redirects
  (303) to ``/review``; a wrong one answers 401 with the form again;
- ``POST /review/logout``: ends the session (clears the cookie);
- ``POST /review/decide``: form fields ``origin``, ``key``, ``verdict`` (``approve``, ``block``,
  ``blur``), ``reason`` (optional, at most ``MAX_REASON`` characters) and ``csrf``: writes the
  verdict (``verdicts``), purges the original (``service.purging.Purger``), appends to the audit
  log (``audit``); 303 back to ``/review``, or JSON ``{"origin", "key", "verdict", "previous",
  "purge"}``. 400 for a bad field, 403 for a missing or wrong CSRF token, 404 for an original (or
  analysis object) that is not there, 409 when the verdict could not be written safely, 502 when
  the origin failed (nothing written) or the audit log could not be written (the verdict is stored);
- ``GET /review/log``: the audit log's last ``LOG_LINES`` lines, an HTML table (newest first), or
  JSON lines (``application/x-ndjson``) with ``Accept: application/json``;
- ``GET /review/thumb/{origin}/{key}[?clear=1]``: a thumbnail of an original the proxy withholds,
  blurred unless ``clear=1`` (``thumbs``); ``image/jpeg``.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from edgeproxy import boundedjson
from edgeproxy.errors import ProxyError, bad_request, not_found, origin_error, too_large
from edgeproxy.http.edge import Endpoint, Handler, route
from edgeproxy.http.logs import AccessRecord
from edgeproxy.http.responses import ErrorForm
from edgeproxy.ingest.record import AnalysisRecord, analysis_key
from edgeproxy.review import audit
from edgeproxy.review.auth import COOKIE, COOKIE_PATH, LOGIN_COOKIE, Reviewer
from edgeproxy.review.queue import Item
from edgeproxy.review.service import Review
from edgeproxy.review.thumbs import thumbnail
from edgeproxy.review.verdicts import SETTLED, WRITTEN, VerdictConflict, VerdictUnavailable
from edgeproxy.service.validators import surrogate_key
from edgeproxy.url.keys import is_safe_key
from edgeproxy.vision.moderation import Action

if TYPE_CHECKING:
    from edgeproxy.compose import Components

_log = logging.getLogger("edgeproxy.review")
#: Largest form body read (bytes).
MAX_FORM = 8192
#: Longest reason kept (characters).
MAX_REASON = 500
#: Audit log lines shown by ``/review/log``.
LOG_LINES = 1000
NO_STORE = "private, no-store"
LOGIN_PATH = "/review/login"
_LOG_FIELDS = ("at", "who", "origin", "key", "verdict", "previous", "reason", "hash")


def _headers(nonce: str = "") -> dict[str, str]:
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


def _review(request: Request) -> Review:
    review: Review = request.app.state.review
    return review


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "application/x-ndjson" in accept


def _page(review: Review, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(12)
    body = review.templates.get_template(name).render(nonce=nonce, **context)
    return HTMLResponse(body, status_code=status, headers=_headers(nonce))


def _login_page(review: Review, status: int, error: str = "") -> HTMLResponse:
    nonce = review.gate.login_nonce()
    response = _page(review, "login.html", status, token=review.gate.login_token(nonce), error=error)
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, path=LOGIN_PATH, secure=True, httponly=True, samesite="strict"
    )
    return response


def _challenge(request: Request, review: Review, message: str) -> Response:
    """401 asking for the admin token: Basic (browsers) or Bearer (scripts); the login form as body.
    Counted in ``edgeproxy_errors_total{category="auth"}`` like every refused credential."""
    request.app.state.components.metrics.errors.labels("auth").inc()
    challenge = {"WWW-Authenticate": 'Basic realm="edgeproxy review", charset="UTF-8", Bearer realm="edgeproxy"'}
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=401, headers={**_headers(), **challenge})
    response = _login_page(review, 401, message)
    response.headers.update(challenge)
    return response


async def _form(request: Request) -> dict[str, str]:
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


def _forbidden(message: str) -> ProxyError:
    return ProxyError(403, message, "auth", cacheable=False)


def _private(handler: Handler) -> Handler:
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
            if _wants_json(request):
                components.metrics.errors.labels(private.category).inc()
                return components.headers.error(private, form=ErrorForm.JSON)
            raise private from None

    return answer


async def _reviewer(request: Request, review: Review) -> Reviewer | Response:
    found = review.gate.reviewer(request)
    if found is None:
        given = request.headers.get("authorization") or request.cookies.get(COOKIE)
        return _challenge(request, review, "wrong or expired credentials" if given else "log in with the admin token")
    return found


def thumb_path(review: Review, item: Item, *, clear: bool = False) -> str:
    """The thumbnail of ``item``: the proxy's own signed derivative URL (moderation blurs it where
    the policy blurs), or, where the proxy withholds the original (blocked, or pending where pending
    is blocked) or has no signing key, the review page's blurred thumbnail (``clear``: not blurred)."""
    if review.urls is not None and item.decision.action is not Action.BLOCK and not clear:
        return review.urls.path(item.origin, item.key, width=review.thumb_width, format="jpeg")
    query = "?clear=1" if clear else ""
    return f"/review/thumb/{item.origin}/{quote(item.key, safe='/')}{query}"


def _row(review: Review, item: Item) -> dict[str, Any]:
    record = item.record
    return {
        "origin": item.origin,
        "key": item.key,
        "score": record.nsfw,
        "faces": None if record.faces is None else len(record.faces),
        "provenance": dict(record.provenance),
        "uploaded_at": record.uploaded_at,
        "uploaded": audit.iso(record.uploaded_at),
        "analysis_verdict": record.verdict.value,
        "human": item.human,
        "action": item.decision.action.value,
        "withheld": item.decision.action is Action.BLOCK,
        "failures": list(record.failures),
        "thumbnail": thumb_path(review, item),
        "clear": thumb_path(review, item, clear=True),
    }


async def review_page(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /review``: the queue (module docstring)."""
    record.path = "/review"
    review = _review(request)
    reviewer = await _reviewer(request, review)
    if isinstance(reviewer, Response):
        return reviewer
    page_text = request.query_params.get("page", "1")
    if not page_text.isdigit() or int(page_text) < 1:
        raise bad_request("page must be a positive integer")
    listing = await review.queue.listing()
    total = len(listing.items)
    pages = max(1, -(-total // review.page_size))
    page = min(int(page_text), pages)
    shown = listing.items[(page - 1) * review.page_size : page * review.page_size]
    rows = [_row(review, item) for item in shown]
    csrf = review.gate.csrf(reviewer)
    if _wants_json(request):
        body = {"items": rows, "page": page, "pages": pages, "total": total, "csrf": csrf}
        return JSONResponse(body, headers=_headers())
    notice = {name: request.query_params.get(name, "") for name in ("decided", "verdict", "purge")}
    if notice["verdict"] not in SETTLED or notice["purge"] not in ("ok", "failed"):
        notice = {"decided": "", "verdict": "", "purge": ""}  # only what /review/decide redirects with
    return _page(
        review,
        "list.html",
        rows=rows,
        page=page,
        pages=pages,
        total=total,
        csrf=csrf,
        who=reviewer.who,
        cookie=reviewer.via == "cookie",
        notice=notice,
    )


async def login(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /review/login``: the form; ``POST``: check it, set the session cookie."""
    record.path = LOGIN_PATH
    review = _review(request)
    if request.method != "POST":
        return _login_page(review, 200)
    form = await _form(request)
    if not review.gate.login_token_ok(form.get("login", ""), request.cookies.get(LOGIN_COOKIE, "")):
        raise _forbidden("the login form expired or came from elsewhere: load it again")
    if not review.gate.matches(form.get("token", "")):
        _log.warning("review login refused", extra={"fields": {"who": form.get("name", "")[:64]}})
        components.metrics.errors.labels("auth").inc()
        return _login_page(review, 401, "wrong token")
    response = RedirectResponse("/review", status_code=303, headers=_headers())
    response.set_cookie(
        COOKIE,
        review.gate.session(form.get("name", "")),
        max_age=review.gate.max_age,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH, secure=True, httponly=True, samesite="strict")
    return response


async def logout(request: Request, components: Components, record: AccessRecord) -> Response:
    """``POST /review/logout``: clear the session cookie (CSRF-checked)."""
    record.path = "/review/logout"
    review = _review(request)
    reviewer = await _reviewer(request, review)
    if isinstance(reviewer, Response):
        return reviewer
    form = await _form(request)
    if not review.gate.csrf_ok(reviewer, form.get("csrf", "")):
        raise _forbidden("missing or wrong CSRF token")
    response = RedirectResponse(LOGIN_PATH, status_code=303, headers=_headers())
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")
    return response


async def decide(request: Request, components: Components, record: AccessRecord) -> Response:
    """``POST /review/decide``: a verdict (module docstring)."""
    record.path = "/review/decide"
    review = _review(request)
    reviewer = await _reviewer(request, review)
    if isinstance(reviewer, Response):
        return reviewer
    form = await _form(request)
    if not review.gate.csrf_ok(reviewer, form.get("csrf", "")):
        raise _forbidden("missing or wrong CSRF token")
    origin, key, button = form.get("origin", ""), form.get("key", ""), form.get("verdict", "")
    reason = " ".join(form.get("reason", "").split())
    if button not in WRITTEN:
        raise bad_request(f"verdict must be one of {', '.join(WRITTEN)}")
    if origin not in review.verdicts:
        raise bad_request(f"origin {origin!r} is not a writable origin")
    if not is_safe_key(key):
        raise bad_request("bad key")
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise bad_request(f"reason must be printable, at most {MAX_REASON} characters")
    writer, store = review.queue.sources[origin]
    data = await writer.get(analysis_key(key))
    if data is None:
        raise not_found("no analysis object for this original")
    try:
        analysed = AnalysisRecord.from_json(data)
    except ValueError as exc:
        raise ProxyError(409, f"the analysis object is unusable: {exc}", "origin", cacheable=False) from None
    verdict = WRITTEN[button]
    try:
        previous = await store.write(key, verdict)
    except FileNotFoundError:
        raise not_found() from None
    except VerdictConflict as exc:
        raise ProxyError(409, str(exc), "origin", cacheable=False) from None
    except VerdictUnavailable as exc:
        _log.warning("review verdict not written", extra={"fields": {"origin": origin, "key": key, "error": str(exc)}})
        raise origin_error(str(exc)) from None
    review.queue.forget()
    review.metrics.decisions.labels(verdict).inc()
    purged = await components.purger.purge(surrogate_key(origin, key), origin, key)
    line = audit.entry(
        at=time.time(),
        who=reviewer.who,
        origin=origin,
        key=key,
        verdict=verdict,
        reason=reason,
        previous=previous,
        hash=analysed.sha256,
    )
    try:
        await review.audit.append(line)
    except OSError as exc:
        _log.error("review audit log not written", extra={"fields": {**line, "error": str(exc)}})
        raise origin_error(f"the verdict is stored but the audit log could not be written: {exc.strerror}") from None
    _log.info("review verdict", extra={"fields": line})
    if _wants_json(request):
        answer = {"origin": origin, "key": key, "verdict": verdict, "previous": previous, "purge": purged.answer()}
        return JSONResponse(answer, status_code=200 if purged.ok else 502, headers=_headers())
    query = urlencode({"decided": f"{origin}/{key}", "verdict": verdict, "purge": "ok" if purged.ok else "failed"})
    return RedirectResponse(f"/review?{query}", status_code=303, headers=_headers())


async def audit_log(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /review/log``: the audit log (module docstring)."""
    record.path = "/review/log"
    review = _review(request)
    reviewer = await _reviewer(request, review)
    if isinstance(reviewer, Response):
        return reviewer
    lines = await review.audit.tail(LOG_LINES)
    if _wants_json(request):
        body = b"".join(line + b"\n" for line in lines)
        return Response(body, media_type="application/x-ndjson", headers=_headers())
    entries = []
    for line in reversed(lines):
        try:
            parsed = boundedjson.loads(line, max_bytes=65_536, max_depth=4)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            parsed = {"reason": "(unreadable line)"}
        entries.append({name: parsed.get(name) for name in _LOG_FIELDS})
    return _page(review, "log.html", entries=entries, who=reviewer.who)


async def thumb(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /review/thumb/{origin}/{key}``: a (blurred) thumbnail (module docstring).

    Raises:
        ProxyError: 404 (unknown origin, missing original), and an original's errors as a render's.
    """
    record.path = "/review/thumb"
    review = _review(request)
    reviewer = await _reviewer(request, review)
    if isinstance(reviewer, Response):
        return reviewer
    name, _, key = request.path_params["path"].partition("/")
    origin = components.origins.get(name)
    if origin is None or not is_safe_key(key):
        raise not_found()
    blurred = request.query_params.get("clear") != "1"
    service = components.service
    deadline = time.monotonic() + components.settings.request_timeout
    examined = await service.examine(origin, key, deadline)
    box = review.thumb_width
    jpeg = await service.read(
        examined, lambda data, limits: thumbnail(data, limits, box, blurred=blurred), deadline=deadline
    )
    return Response(jpeg, media_type="image/jpeg", headers=_headers())


READ = ("GET", "HEAD")


def review_routes() -> list[BaseRoute]:
    """The review page's routes, mounted by ``http.app.routes`` when ``review = true``."""
    return [
        route("/review", Endpoint(_private(review_page), READ)),
        route(LOGIN_PATH, Endpoint(_private(login), (*READ, "POST"))),
        route("/review/logout", Endpoint(_private(logout), ("POST",))),
        route("/review/decide", Endpoint(_private(decide), ("POST",))),
        route("/review/log", Endpoint(_private(audit_log), READ)),
        route("/review/thumb/{path:path}", Endpoint(_private(thumb), READ)),
    ]
