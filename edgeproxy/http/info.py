"""What ``GET /info/{signature}/{origin}/{key}`` says about an original: its header facts, its
moderation, the faces found, its provenance and its Content Credentials (C2PA), as one JSON object.

``answer`` is the route's work; ``facts`` is blocking (it parses the header and, when c2pa-python
is installed, the C2PA manifest): it runs in the render pool. ``document`` assembles the answer
from the parts the proxy already has.

Who sees what:

- The signature covers ``/info/{origin}/{key}`` (``edgeproxy.url.signing``): an ``/info`` URL is no
  transform URL, and a transform URL is no ``/info`` URL.
- An original that moderation blocks (its derivatives answer 451) is described only as blocked,
  ``BLOCKED``: no facts, faces, hash, score, provenance or C2PA, which would describe what is
  withheld. That answer is public and cached ``moderation_max_age`` like the 451 itself.
- A request with the admin token (``Authorization: Bearer <admin_token>``) gets the whole document,
  blocked or not, with ``Cache-Control: private, no-store``: no shared cache (nor the browser's)
  stores it, so it is never served to anyone else. Every answer says ``Vary: Authorization``.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from edgeproxy.errors import bad_request, not_found
from edgeproxy.http.responses import etag_matches, strong_etag, surrogate_key
from edgeproxy.render import pipeline
from edgeproxy.render.geometry import Face
from edgeproxy.url.grammar import parse_path
from edgeproxy.url.media import input_mime
from edgeproxy.url.signing import INFO_PREFIX
from edgeproxy.url.spec import TransformSpec
from edgeproxy.vision.moderation import Action, Decision, Metadata

if TYPE_CHECKING:
    from edgeproxy.provenance.context import C2paContexts
    from edgeproxy.proxy import Proxy


#: The whole public ``/info`` answer about an original that moderation blocks.
BLOCKED: dict[str, Any] = {"moderation": {"verdict": "block"}}
#: ``Cache-Control`` of an answer to the admin token: stored by no cache, shared or private.
PRIVATE = "private, no-store"


async def answer(
    proxy: Proxy, signature: str, path: str, if_none_match: str | None, *, admin: bool = False
) -> Response:
    """The ``/info`` answer for ``path`` (``/{origin}/{key}``, percent-encoded as sent, after the
    signature) signed with ``signature`` over ``/info{path}``: the JSON ``document``, or only
    ``BLOCKED`` when moderation blocks the original and the request is not ``admin`` (it carried
    the admin token). Public answers are cached ``moderation_max_age`` with an ETag and the
    original's surrogate key; ``admin`` answers are ``private, no-store``. A 304 when
    ``if_none_match`` lists the ETag.

    Raises:
        ProxyError: 403 (signature), 400 (options in the path), 404 (origin or original), 413, 415,
            422 (the original), 502/504 (the origin), 503 (render queue full).
    """
    settings = proxy.settings
    deadline = time.monotonic() + settings.request_timeout
    proxy.signer.verify(signature, INFO_PREFIX + path)
    spec, origin_name, key = parse_path(path)
    if spec != TransformSpec():
        raise bad_request("/info takes no options: /info/{signature}/{origin}/{key}")
    origin = proxy.origins.get(origin_name)
    if origin is None:
        raise not_found(f"unknown origin {origin_name!r}")
    original, _outcome = await proxy.original(origin, key)
    metadata = await proxy.metadata(origin, key, original)
    analysis = await proxy.analysis(origin, key, original, deadline) if proxy.vision is not None else None
    decision = proxy.decide(metadata, analysis)  # what moderation would decide; not counted: no answer served
    if settings.moderation and decision.action is Action.BLOCK and not admin:
        body = BLOCKED
    else:
        _queued, found = await proxy.pool.run(
            facts, original.data, proxy.limits, proxy.c2pa_contexts, deadline=deadline
        )
        body = document(found, metadata, decision, analysis.faces if analysis is not None else None)
    tag = surrogate_key(origin_name, key)
    etag = strong_etag(json.dumps(body, sort_keys=True), proxy.fingerprint)
    headers = {"Cache-Control": PRIVATE} if admin else proxy.headers.caching(200, short=settings.moderation_max_age)
    headers.update({"Vary": "Authorization", "ETag": etag, "Surrogate-Key": tag, "Cache-Tag": tag})
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)


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
    facts: dict[str, Any], metadata: Metadata, decision: Decision, faces: tuple[Face, ...] | None
) -> dict[str, Any]:
    """The ``/info`` JSON: ``facts``, then ``moderation`` (``verdict``, ``score``, ``source``:
    ``moderation.Decision``), ``faces`` (``{x, y, w, h, score}`` fractions 0..1 of the upright
    original, best first; None without a face model or when it failed), ``provenance`` (every
    metadata member but the verdict, and where it came from: ``metadata`` or ``sidecar``; None
    when there is none), and ``c2pa``."""
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
    return out
