"""``GET|HEAD /{signature}/{options...}/{origin}/{key...}``: the transform route, HTTP only.

One request flows one way::

    raw path -> split signature -> verify (403) -> parse -> TransformSpec (400)
      -> negotiate(Accept, client hints) -> concrete spec + Vary
      -> Service.derive(negotiated, origin, key, deadline, If-None-Match)   (edgeproxy.service)
      -> the response: derivative (200), 304, fallback image, or the error (raised to the edge)

An ``{origin}`` that names a manifest origin (``manifest_origins``) is resolved first
(``resolve``): ``{key}`` is an id, and the request is for the original the manifest maps it to,
tagged with the id's surrogate key too; ``g:fp`` at the entry's ``focal`` when the URL names no
gravity; an id the manifest lacks answers the fallback image, or 404.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from edgeproxy.errors import bad_request, forbidden, no_route, not_found, unsupported_format
from edgeproxy.http.auth import is_admin
from edgeproxy.http.logs import AccessRecord
from edgeproxy.http.negotiate import Negotiated, accept_bucket, accepted_image_types, negotiate
from edgeproxy.http.responses import server_timing
from edgeproxy.manifest import Entry
from edgeproxy.origins import Origin
from edgeproxy.render.geometry import check_box
from edgeproxy.service.results import Derivative, Derived, Failure, Fallback, NotModified
from edgeproxy.service.validators import surrogate_key
from edgeproxy.url.grammar import parse_path
from edgeproxy.url.spec import Format, Gravity, TransformSpec

if TYPE_CHECKING:
    from edgeproxy.compose import Components

#: ``X-Edgeproxy-Optimise: wait`` with the admin token: the request waits for the optimised tier of a
#: quality target (made now and stored, when it is not stored yet) instead of the fast one.
OPTIMISE_HEADER = "x-edgeproxy-optimise"


def split_signature(request: Request, prefix: str = "") -> tuple[str, str]:
    """(signature, path after it) of a transform URL (or of an ``/info`` URL after ``prefix``
    ``/info``), the path still percent-encoded as sent.

    Raises:
        ProxyError(400): a query string (it is not signed, and CDNs key on it: each new one would
            buy a render), or a path that is not ASCII.
        ProxyError(404): a path of one segment, which no transform URL is (``/metrics`` when it is
            served on ``metrics_bind`` only, ``/favicon.ico``).
    """
    if request.scope.get("query_string"):
        raise bad_request("query strings are not part of signed URLs: put every option in the path")
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        path = raw.decode("ascii")
    except UnicodeDecodeError:
        raise bad_request("URL path must be ASCII (percent-encode other bytes)") from None
    signature, sep, rest = path[1 + len(prefix) :].partition("/")
    if not sep or not rest:
        raise no_route()
    return signature, "/" + rest


@dataclass(frozen=True, slots=True)
class Target:
    """The original a URL names: ``origin``'s ``key``. For an id of a manifest origin, also ``id_tag``
    (the id's surrogate key, which every answer about it carries), the ``entry`` the manifest maps it
    to, and ``ident`` (the id); ``origin`` and ``entry`` None for an id the manifest lacks."""

    origin: Origin | None
    key: str
    id_tag: str | None = None
    entry: Entry | None = None
    ident: str | None = None

    @property
    def also(self) -> tuple[str, ...]:
        """The surrogate keys answers carry after the original's: the id's, for an id."""
        return (self.id_tag,) if self.id_tag is not None else ()

    def with_focal(self, spec: TransformSpec) -> TransformSpec:
        """``spec`` with ``g:fp`` at the entry's ``focal`` when it names no gravity (``g:center``
        written out is the default, so it is replaced too)."""
        if self.entry is None or self.entry.focal is None or spec.gravity != Gravity():
            return spec
        return dataclasses.replace(spec, gravity=Gravity("fp", *self.entry.focal))


def resolve(components: Components, origin_name: str, key: str) -> Target:
    """The original that ``/{origin_name}/{key}`` names: a configured origin's key, or the target of
    the id ``key`` in the manifest origin ``origin_name`` (an id it lacks: ``Target.origin`` None).

    Raises:
        ProxyError(404): neither an origin nor a manifest origin.
    """
    origin = components.origins.get(origin_name)
    if origin is not None:
        return Target(origin, key)
    manifest = components.manifests.get(origin_name)
    if manifest is None:
        raise not_found(f"unknown origin {origin_name!r}")
    tag = surrogate_key(origin_name, key)
    entry = manifest.resolve(key)
    if entry is None:
        return Target(None, key, tag, None, key)
    return Target(components.origins[entry.origin], entry.key, tag, entry, key)


def admit(
    request: Request, components: Components, record: AccessRecord, spec: TransformSpec, origin_name: str, key: str
) -> tuple[Negotiated, Target]:
    """A parsed, verified request (``spec`` on ``origin_name``/``key``) checked against this server
    and negotiated: the negotiated spec and the original it names (``resolve``: an origin's key or a
    manifest id's target). Every URL grammar that maps to a ``TransformSpec`` (the native one,
    ``edgeproxy.compat``'s) goes through here, so the same spec is served the same way whatever URL
    asked for it. The request's facts go into ``record`` as they are known (the ``exp`` once it is
    valid, which caps every answer's ``max-age``).

    Raises:
        ProxyError: 400 (an option this server refuses), 403 (expired), 404 (no such origin or
            manifest origin), 415 (JPEG XL output without the [jxl] extra).
    """
    settings = components.settings
    if spec.expires is not None:
        if spec.expires < time.time():
            raise forbidden("URL expired")
        record.expires = spec.expires
    if not spec.strip and not settings.allow_keep_metadata:
        raise bad_request("option strip:0 is not allowed on this server (metadata is always stripped)")
    if spec.format is Format.JXL and not components.jxl_output:
        raise unsupported_format("output format jxl needs the [jxl] extra: pip install 'edgeproxy[jxl]'")
    target = resolve(components, origin_name, key)
    spec = target.with_focal(spec)
    record.origin = origin_name
    check_box(spec, settings.max_output_dimension)
    vision = components.service.vision
    if (spec.gravity.kind == "face" or spec.redact is not None) and (vision is None or vision.faces is None):
        raise bad_request("g:face and redact:faces need the face model: this server has no face_model setting")
    auto_jxl = settings.auto_jxl and components.jxl_output
    negotiated = negotiate(
        spec,
        request.headers,
        client_hints=settings.client_hints,
        save_data_quality=settings.save_data_quality,
        max_dimension=settings.max_output_dimension,
        jxl=auto_jxl,
        auto=components.auto_size,
    )
    record.accept = accept_bucket(
        negotiated.accepts
        if spec.format is Format.AUTO
        else accepted_image_types(request.headers.get("accept", ""), auto_jxl)
    )
    return negotiated, target


async def transform(request: Request, components: Components, record: AccessRecord) -> Response:
    """A derivative, its 304, or the fallback image; an error is raised to the edge (with the
    original's surrogate key when it is about the original).

    Raises:
        ProxyError: 400 (a malformed URL or option, a query string), 403 (signature), 404 (no such
            route or origin), and ``render``'s.
    """
    signature, path = split_signature(request)
    record.path = path
    components.signer.verify(signature, path)
    spec, origin_name, key = parse_path(path, components.presets, only_presets=components.settings.only_presets)
    return await render(request, components, record, spec, origin_name, key)


async def render(
    request: Request, components: Components, record: AccessRecord, spec: TransformSpec, origin_name: str, key: str
) -> Response:
    """The answer for ``spec`` on ``origin_name``/``key`` once a URL is verified and parsed: the
    native route's and every route that maps another URL grammar to a spec (``edgeproxy.compat``),
    so the same spec gets the same caching, negotiation, moderation, ETag and bytes whatever URL
    asked for it.

    Raises:
        ProxyError: ``admit``'s, and a ``Failure``'s error.
    """
    deadline = time.monotonic() + components.settings.request_timeout
    negotiated, target = admit(request, components, record, spec, origin_name, key)
    return await serve(request, components, record, negotiated, target, deadline)


async def serve(
    request: Request,
    components: Components,
    record: AccessRecord,
    negotiated: Negotiated,
    target: Target,
    deadline: float,
) -> Response:
    """The derivative of an admitted request (``admit``), its 304 or the fallback image, made by
    the service before ``deadline`` (``time.monotonic()`` seconds); an error is raised to the edge.
    """
    service = components.service
    if target.origin is None:  # an id its manifest lacks
        assert target.id_tag is not None
        missing = not_found(f"no id {target.key!r} in manifest {record.origin!r}")
        return respond(await service.missing(negotiated, missing, target.id_tag, deadline), components, record)
    # A prewarm that waits for the optimised tier (edgeproxy prewarm --optimise-url): the admin's only.
    wait = request.headers.get(OPTIMISE_HEADER, "").strip().lower() == "wait"
    derived = await service.derive(
        negotiated,
        target.origin,
        target.key,
        deadline,
        if_none_match=request.headers.get("if-none-match"),
        optimise_now=wait and is_admin(request, components.settings.admin_token),
        also=target.also,
    )
    return respond(derived, components, record)


def respond(derived: Derived, components: Components, record: AccessRecord) -> Response:
    """The response for ``derived`` (its work noted in ``record``).

    Raises:
        ProxyError: a ``Failure``'s error.
    """
    work = derived.work
    record.cache = work.cache.value if work.cache is not None else None
    record.stages.update(work.stages())
    record.bytes_in = work.bytes_in
    policy = components.headers
    if isinstance(derived, Failure):
        raise derived.error
    if isinstance(derived, NotModified):
        headers = policy.image(
            derived.caching, vary=derived.vary, expires=record.expires, validators=derived.validators
        )
        return Response(status_code=304, headers=headers)
    image = derived.image
    record.format = image.format
    headers = policy.image(derived.caching, vary=derived.vary, expires=record.expires, validators=derived.validators)
    if isinstance(derived, Fallback):
        error = derived.error
        record.fallback = error
        headers["X-Fallback-Reason"] = f"{error.status} {error.message}".encode("ascii", "replace").decode()
        return Response(image.body, status_code=derived.status, media_type=image.mime, headers=headers)
    assert isinstance(derived, Derivative)
    headers["Server-Timing"] = server_timing(work.server_timing())
    return Response(image.body, media_type=image.mime, headers=headers)
