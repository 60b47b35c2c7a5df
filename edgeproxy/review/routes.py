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
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from edgeproxy import boundedjson
from edgeproxy.errors import ProxyError, bad_request, not_found, origin_error
from edgeproxy.http.edge import Endpoint, route
from edgeproxy.http.logs import AccessRecord
from edgeproxy.ingest.record import AnalysisRecord, analysis_key
from edgeproxy.review import answers, audit
from edgeproxy.review.auth import COOKIE, COOKIE_PATH, LOGIN_COOKIE
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
#: Longest reason kept (characters).
MAX_REASON = 500
#: Audit log lines shown by ``/review/log``.
LOG_LINES = 1000
_LOG_FIELDS = ("at", "who", "origin", "key", "verdict", "previous", "reason", "hash")


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
    review = answers.review_of(request)
    reviewer = await answers.reviewer_of(request, review)
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
    if answers.wants_json(request):
        body = {"items": rows, "page": page, "pages": pages, "total": total, "csrf": csrf}
        return JSONResponse(body, headers=answers.private_headers())
    notice = {name: request.query_params.get(name, "") for name in ("decided", "verdict", "purge")}
    if notice["verdict"] not in SETTLED or notice["purge"] not in ("ok", "failed"):
        notice = {"decided": "", "verdict": "", "purge": ""}  # only what /review/decide redirects with
    return answers.page(
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
    record.path = answers.LOGIN_PATH
    review = answers.review_of(request)
    if request.method != "POST":
        return answers.login_page(review, 200)
    form = await answers.read_form(request)
    if not review.gate.login_token_ok(form.get("login", ""), request.cookies.get(LOGIN_COOKIE, "")):
        raise answers.forbidden("the login form expired or came from elsewhere: load it again")
    if not review.gate.matches(form.get("token", "")):
        _log.warning("review login refused", extra={"fields": {"who": form.get("name", "")[:64]}})
        components.metrics.errors.labels("auth").inc()
        return answers.login_page(review, 401, "wrong token")
    response = RedirectResponse("/review", status_code=303, headers=answers.private_headers())
    response.set_cookie(
        COOKIE,
        review.gate.session(form.get("name", "")),
        max_age=review.gate.max_age,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=answers.LOGIN_PATH, secure=True, httponly=True, samesite="strict")
    return response


async def logout(request: Request, components: Components, record: AccessRecord) -> Response:
    """``POST /review/logout``: clear the session cookie (CSRF-checked)."""
    record.path = "/review/logout"
    checked = await answers.posted(request)
    if isinstance(checked, Response):
        return checked
    response = RedirectResponse(answers.LOGIN_PATH, status_code=303, headers=answers.private_headers())
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")
    return response


async def decide(request: Request, components: Components, record: AccessRecord) -> Response:
    """``POST /review/decide``: a verdict (module docstring)."""
    record.path = "/review/decide"
    checked = await answers.posted(request)
    if isinstance(checked, Response):
        return checked
    review, reviewer, form = checked
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
        analysed = AnalysisRecord.from_json(data, review.queue.record_key)
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
    if answers.wants_json(request):
        answer = {"origin": origin, "key": key, "verdict": verdict, "previous": previous, "purge": purged.answer()}
        return JSONResponse(answer, status_code=200 if purged.ok else 502, headers=answers.private_headers())
    query = urlencode({"decided": f"{origin}/{key}", "verdict": verdict, "purge": "ok" if purged.ok else "failed"})
    return RedirectResponse(f"/review?{query}", status_code=303, headers=answers.private_headers())


async def audit_log(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /review/log``: the audit log (module docstring)."""
    record.path = "/review/log"
    review = answers.review_of(request)
    reviewer = await answers.reviewer_of(request, review)
    if isinstance(reviewer, Response):
        return reviewer
    lines = await review.audit.tail(LOG_LINES)
    if answers.wants_json(request):
        body = b"".join(line + b"\n" for line in lines)
        return Response(body, media_type="application/x-ndjson", headers=answers.private_headers())
    entries = []
    for line in reversed(lines):
        try:
            parsed = boundedjson.loads(line, max_bytes=65_536, max_depth=4)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            parsed = {"reason": "(unreadable line)"}
        entries.append({name: parsed.get(name) for name in _LOG_FIELDS})
    return answers.page(review, "log.html", entries=entries, who=reviewer.who)


async def thumb(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET /review/thumb/{origin}/{key}``: a (blurred) thumbnail (module docstring).

    Raises:
        ProxyError: 404 (unknown origin, missing original), and an original's errors as a render's.
    """
    record.path = "/review/thumb"
    review = answers.review_of(request)
    reviewer = await answers.reviewer_of(request, review)
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
    return Response(jpeg, media_type="image/jpeg", headers=answers.private_headers())


READ = ("GET", "HEAD")


def review_routes() -> list[BaseRoute]:
    """The review page's routes, mounted by ``http.app.routes`` when ``review = true``."""
    return [
        route("/review", Endpoint(answers.private(review_page), READ)),
        route(answers.LOGIN_PATH, Endpoint(answers.private(login), (*READ, "POST"))),
        route("/review/logout", Endpoint(answers.private(logout), ("POST",))),
        route("/review/decide", Endpoint(answers.private(decide), ("POST",))),
        route("/review/log", Endpoint(answers.private(audit_log), READ)),
        route("/review/thumb/{path:path}", Endpoint(answers.private(thumb), READ)),
    ]
