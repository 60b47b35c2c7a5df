"""What ``GET /info/{signature}/{origin}/{key}`` says about an original: its header facts, its
moderation, the faces found, its provenance and its Content Credentials (C2PA), as one JSON object.

``info`` is the route's work, over the service's first steps (``Service.examine``: fetch, metadata,
analysis, decision); ``facts`` is blocking (it parses the header and, when c2pa-python is installed,
the C2PA manifest): it runs in the render pool (``Service.read``). ``document`` assembles the
answer from the parts the service already has.

Who sees what:

- The signature covers ``/info/{origin}/{key}`` (``edgeproxy.url.signing``): an ``/info`` URL is no
  transform URL, and a transform URL is no ``/info`` URL.
- An original that moderation blocks (its derivatives answer 451) is described only as blocked,
  ``BLOCKED``: no facts, faces, hash, score, provenance or C2PA, which would describe what is
  withheld. That answer is public and cached ``moderation_max_age`` like the 451 itself.
- Placeholders (``dominant_color``, ``thumbhash``, ``thumbhash_png``) are computed from what a
  viewer's derivative shows (moderation's blur, the origin's forced face redaction:
  ``Service.placeholders``), never from the untreated original; a blocked original has none, also
  in the admin view.
- A request with the admin token (``Authorization: Bearer <admin_token>``) gets the whole document,
  blocked or not, with ``Cache-Control: private, no-store``: no shared cache (nor the browser's)
  stores it, so it is never served to anyone else. Every answer says ``Vary: Authorization``.
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edgeproxy.errors import ProxyError, bad_request, not_found
from edgeproxy.http.auth import is_admin
from edgeproxy.http.logs import AccessRecord
from edgeproxy.http.transform import resolve, split_signature
from edgeproxy.render import pipeline
from edgeproxy.render.geometry import Face
from edgeproxy.render.placeholder import Placeholders
from edgeproxy.service.validators import Validators, etag_matches, strong_etag
from edgeproxy.url.grammar import parse_path
from edgeproxy.url.media import input_mime
from edgeproxy.url.signing import INFO_PREFIX
from edgeproxy.url.spec import TransformSpec
from edgeproxy.vision.moderation import Action, Decision, Metadata

if TYPE_CHECKING:
    from edgeproxy.compose import Components
    from edgeproxy.provenance.context import C2paContexts


#: The whole public ``/info`` answer about an original that moderation blocks.
BLOCKED: dict[str, Any] = {"moderation": {"verdict": "block"}}


async def info(request: Request, components: Components, record: AccessRecord) -> Response:
    """``GET|HEAD /info/{signature}/{origin}/{key}``: what is known about an original, as JSON.
    Signed over ``/info/{origin}/{key}``, its own signature domain: an ``/info`` signature renders
    no image and a transform signature answers no ``/info``. The answer is the JSON ``document``,
    or only ``BLOCKED`` when moderation blocks the original and the request does not carry the
    admin token (``auth.is_admin``); public answers are cached ``moderation_max_age`` (verdicts
    change) with an ETag and the original's surrogate key; admin answers are ``private,
    no-store``. A 304 when ``If-None-Match`` lists the ETag. For an id of a manifest origin
    (``/info/{signature}/{manifest}/{id}``): the document of the original it maps to, with a
    ``manifest`` member (``name``, ``id`` and the entry), tagged with the id's surrogate key too.

    Raises:
        ProxyError: 403 (signature), 400 (options in the path), 404 (origin or original), 413, 415,
            422 (the original), 502/504 (the origin), 503 (render queue full); those about the
            original with its surrogate key.
    """
    settings = components.settings
    service = components.service
    deadline = time.monotonic() + settings.request_timeout
    signature, path = split_signature(request, INFO_PREFIX)
    record.path = INFO_PREFIX + path
    components.signer.verify(signature, INFO_PREFIX + path)
    spec, origin_name, key = parse_path(path)
    if spec != TransformSpec():
        raise bad_request("/info takes no options: /info/{signature}/{origin}/{key}")
    target = resolve(components, origin_name, key)
    origin = target.origin
    record.origin = origin_name
    if origin is None:  # an id its manifest lacks
        raise not_found(f"no id {key!r} in manifest {origin_name!r}").about(target.id_tag or "")
    key = target.key
    admin = is_admin(request, settings.admin_token)
    try:
        examined = await service.examine(origin, key, deadline)
    except ProxyError as error:
        raise _about(error, target.also) from None
    decision = examined.decision  # what moderation would decide; not counted: no derivative is served
    if settings.moderation and decision.action is Action.BLOCK and not admin:
        body = BLOCKED
    else:
        found = await service.read(examined, partial(facts, contexts=components.c2pa_contexts), deadline)
        shown = await service.placeholders(origin, key, examined, deadline)
        analysis = examined.analysis
        faces = analysis.faces if analysis is not None else None
        body = document(found, examined.metadata, decision, faces, shown)
        if target.entry is not None:  # what the manifest says of the id
            body["manifest"] = {"name": origin_name, "id": target.ident, **target.entry.to_json()}
    etag = strong_etag(json.dumps(body, sort_keys=True), service.fingerprint)
    validators = Validators(" ".join((examined.surrogate_key, *target.also)), etag)
    headers = components.headers.document(validators, max_age=settings.moderation_max_age, private=admin)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)


def _about(error: ProxyError, also: tuple[str, ...]) -> ProxyError:
    """``error`` (about an original, with its surrogate key) also tagged with ``also``."""
    if not also or error.surrogate_key is None:
        return error
    tagged = ProxyError(
        error.status,
        error.message,
        error.category,
        error.retry_after,
        error.max_age,
        error.headers,
        cacheable=error.cacheable,
    )
    return tagged.about(" ".join((error.surrogate_key, *also)))


def facts(data: bytes, limits: pipeline.Limits, contexts: C2paContexts | None = None) -> dict[str, Any]:
    """Header facts of an original (``data``, its bytes): ``format`` (the input format name),
    ``width`` and ``height`` (pixels of one frame, upright: after EXIF orientation), ``pages``
    (frames or pages), ``alpha``, ``icc`` (the embedded profile's description, None without one),
    ``bytes``, ``sha256`` (hex), ``mime``, and ``c2pa`` (``provenance.read.read_manifest`` under
    ``contexts``: None when the original carries no manifest, or without ``contexts``: c2pa-python is
    not installed).

    Raises:
        ProxyError: 413, 415 or 422 as a render would (``pipeline.inspect``).
    """
    info = pipeline.inspect(data, limits).info
    mime = input_mime(info.format)
    manifest = None
    if contexts is not None:  # c2pa-python (the [vision] extra) is installed
        from edgeproxy.provenance.read import read_manifest

        manifest = read_manifest(data, mime, contexts)
    return {
        "format": info.format,
        "mime": mime,
        "width": info.width,
        "height": info.height,
        "pages": info.pages,
        "alpha": info.alpha,
        "icc": info.icc,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "c2pa": manifest,
    }


def document(
    facts: dict[str, Any],
    metadata: Metadata,
    decision: Decision,
    faces: tuple[Face, ...] | None,
    placeholders: Placeholders | None = None,
) -> dict[str, Any]:
    """The ``/info`` JSON: ``facts``, then ``moderation`` (``verdict``, ``score``, ``source``:
    ``moderation.Decision``), ``faces`` (``{x, y, w, h, score}`` fractions 0..1 of the upright
    original, best first; None without a face model or when it failed), ``provenance`` (every
    metadata member but the verdict, and where it came from: ``metadata`` or ``sidecar``; None
    when there is none), ``c2pa``, then the ``placeholders`` (``dominant_color``, ``thumbhash``,
    ``thumbhash_png``: ``Service.placeholders``, of what a viewer sees) when given: absent
    (no key) for an original moderation blocks."""
    out = {k: v for k, v in facts.items() if k != "c2pa"}
    out["moderation"] = {"verdict": decision.verdict, "score": decision.score, "source": decision.source}
    out["faces"] = (
        None
        if faces is None
        else [
            {
                "x": round(f.box.x, 4),
                "y": round(f.box.y, 4),
                "w": round(f.box.w, 4),
                "h": round(f.box.h, 4),
                "score": round(f.score, 4),
            }
            for f in faces
        ]
    )
    provenance = metadata.provenance
    out["provenance"] = {"source": metadata.source, **provenance} if provenance else None
    out["c2pa"] = facts["c2pa"]
    if placeholders is not None:
        out.update(placeholders)
    return out
