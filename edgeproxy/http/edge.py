"""The HTTP edge: the one wrapper every route goes through (``Endpoint``, mounted with ``route``).

For every request, whatever the route:

- its method is checked against the route's (405 with ``Allow``, never stored);
- every ``ProxyError`` the route raises becomes its response here and nowhere else
  (``HeaderPolicy.error``, in the route's ``ErrorForm``), and any other exception is a bug: a 500
  with no details for the client, logged with its traceback and the request id;
- ``X-Request-ID`` is echoed (the client's when it is sane, else a new one: ``logs.request_id``);
- errors count in ``edgeproxy_errors_total`` by category.

For the routes that answer clients (``observed``: transform, ``/info``, ``/purge``) it also counts
the request (``edgeproxy_requests_total``, ``..._request_duration_seconds``, ``..._in_flight``,
the stage histograms, bytes out) and writes its access-log line from the route's ``AccessRecord``.
The probes and ``/metrics`` are not counted or logged: a kubelet probe or a scrape every few seconds
would otherwise outnumber the requests and fill the log. A route that only reads (``GET``) may be
cancelled when its client goes away (``watch_disconnect``): its queued work leaves the render queue
(logged with status 499, nothing sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from edgeproxy.errors import ProxyError, internal_error, method_not_allowed
from edgeproxy.http.logs import ACCESS, AccessRecord, header_values, request_id
from edgeproxy.http.responses import ErrorForm

if TYPE_CHECKING:
    from edgeproxy.compose import Components

_log = logging.getLogger("edgeproxy")
_access = logging.getLogger(ACCESS)

#: Logged (never sent) when the client went away first: nginx's "client closed request".
CLIENT_CLOSED = 499

#: A route's work: the response to ``request``, noting what it did in the ``AccessRecord``.
Handler = Callable[[Request, "Components", AccessRecord], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route as the edge serves it: its ``handler``, the ``methods`` it takes (``HEAD``
    wherever ``GET`` is), whether it is ``observed`` (counted in the request metrics and written
    to the access log), the ``errors`` form of what its handler raises (the edge's own 405 is
    always text), and whether it is cancelled when its client goes away (``watch_disconnect``)."""

    handler: Handler
    methods: tuple[str, ...]
    observed: bool = True
    errors: ErrorForm = ErrorForm.TEXT
    watch_disconnect: bool = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app of the route (every method reaches it: the edge answers 405 itself)."""
        request = Request(scope, receive)
        response = await self.answer(request)
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        """The response to ``request``: the handler's, or its error's; traced and counted."""
        components: Components = request.app.state.components
        metrics = components.metrics
        start = time.monotonic()
        rid = request_id(request.headers.get("x-request-id"))
        record = AccessRecord()
        error: ProxyError | None = None
        form = ErrorForm.TEXT  # the edge's own answers (405); the handler's errors are in its form
        if self.observed:
            metrics.in_flight.inc()
        try:
            if request.method not in self.methods:
                raise method_not_allowed(self.methods)
            form = self.errors
            work = self.handler(request, components, record)
            answered = await (_unless_disconnected(request, work) if self.watch_disconnect else work)
            if answered is None:
                metrics.disconnects.inc()
                answered = Response(status_code=CLIENT_CLOSED)
            response = answered
            error = record.fallback  # a fallback image answered this error
        except ProxyError as caught:
            error = caught
            response = components.headers.error(caught, record.expires, form)
        except Exception:
            _log.exception("internal error", extra={"fields": {"request_id": rid}})
            error = internal_error()
            response = components.headers.error(error, form=form)
        finally:
            if self.observed:
                metrics.in_flight.dec()
        response.headers["X-Request-ID"] = rid
        if error is not None:
            metrics.errors.labels(error.category).inc()
        if self.observed:
            self._observe(request, components, record, response, error, rid, time.monotonic() - start)
        return response

    def _observe(
        self,
        request: Request,
        components: Components,
        record: AccessRecord,
        response: Response,
        error: ProxyError | None,
        rid: str,
        duration: float,
    ) -> None:
        """Count ``response`` in the request metrics and write its access-log line."""
        metrics = components.metrics
        status_class = f"{response.status_code // 100}xx"
        image = record.format is not None  # a derivative or the fallback image
        sent = len(response.body) if image and request.method != "HEAD" else 0  # HEAD sends no body
        metrics.requests.labels(status_class, record.format.value if record.format is not None else "none").inc()
        metrics.duration.labels(status_class).observe(duration)
        for stage, seconds in record.stages.items():
            metrics.stage.labels(stage).observe(seconds)
        metrics.bytes_in.inc(record.bytes_in)
        metrics.bytes_out.inc(sent)
        settings = components.settings
        if settings.access_log:
            fields = record.fields(
                request_id=rid,
                method=request.method,
                status=response.status_code,
                duration=duration,
                bytes_out=sent,
                error=error,
                cdn=header_values(request.headers, settings.access_log_headers),
            )
            _access.info("request", extra={"fields": fields})


def route(path: str, endpoint: Endpoint, *, name: str | None = None) -> Route:
    """A Starlette route serving ``endpoint`` at ``path`` for every method (the edge checks them).

    The route's pattern matches across line breaks (``re.DOTALL``): Starlette's ``{path:path}`` is
    ``.*`` without it, so a percent-encoded newline in a path (``/%0a0``) would miss every route and
    get Starlette's own bare 404, past the edge (no ``Cache-Control``, no metrics); now it reaches
    the route, which answers it like any other path."""
    made = Route(path, endpoint, name=name)
    made.path_regex = re.compile(made.path_regex.pattern, re.DOTALL)
    return made


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (the ASGI ``http.disconnect`` message)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, work: Awaitable[Response]) -> Response | None:
    """``work``'s response, or None (and ``work`` cancelled) if the client goes away first: its
    queued render leaves the queue unless another request shares it (``SingleFlight``)."""
    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((job, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if job.done():
        return job.result()
    job.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await job
    return None
