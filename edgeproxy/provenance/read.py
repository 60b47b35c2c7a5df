"""``/info``'s summary of an original's C2PA manifest store (C2PA Technical Specification 2.x,
"Validation states", "Actions", "Ingredient"), read under edgeproxy's settings: no network.
"""

from __future__ import annotations

import io
import json
from typing import Any

import c2pa

from edgeproxy.provenance.context import C2paContexts

#: Limits of a summary (hostile manifests may list thousands of actions or very long strings).
MAX_ITEMS = 50  # actions, ingredients, errors
MAX_TEXT = 256  # characters of any string


def _text(value: Any) -> str | None:
    """A string of at most ``MAX_TEXT`` characters, or None for anything else."""
    return value[:MAX_TEXT] if isinstance(value, str) else None


def _generator(info: Any) -> str | None:
    """``name/version`` of a generator-info map (C2PA 2.x ``claim_generator_info``, actions v2
    ``softwareAgent``), or the string itself (1.x); None when neither."""
    if isinstance(info, dict):
        name, version = _text(info.get("name")), _text(info.get("version"))
        return f"{name}/{version}" if name and version else name
    return _text(info)


def _summary(store: dict[str, Any]) -> dict[str, Any]:
    """The summary of a manifest store (c2pa's ``Reader.json()``), see :func:`read_manifest`."""
    state = _text(store.get("validation_state")) or "Invalid"
    manifests = store.get("manifests")
    active = manifests.get(store.get("active_manifest")) if isinstance(manifests, dict) else None
    if not isinstance(active, dict):
        return {"validation_state": "Invalid", "error": "the manifest store has no active manifest"}
    truncated = False

    generator = _text(active.get("claim_generator"))
    if generator is None and isinstance(active.get("claim_generator_info"), list):
        generator = " ".join(filter(None, map(_generator, active["claim_generator_info"][:4]))) or None

    actions: list[dict[str, Any]] = []
    for assertion in active.get("assertions") or []:
        if not (isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions")):
            continue
        data = assertion.get("data")
        for action in (data.get("actions") or []) if isinstance(data, dict) else []:
            if not isinstance(action, dict) or not _text(action.get("action")):
                continue
            if len(actions) == MAX_ITEMS:
                truncated = True
                break
            item = {"action": _text(action["action"])}
            for key in ("softwareAgent", "when", "digitalSourceType", "description", "reason"):
                value = _generator(action.get(key)) if key == "softwareAgent" else _text(action.get(key))
                if value is not None:
                    item[key] = value
            actions.append(item)

    ingredients = []
    for ingredient in (active.get("ingredients") or [])[:MAX_ITEMS]:
        if isinstance(ingredient, dict):
            ingredients.append({key: _text(ingredient.get(key)) for key in ("title", "format", "relationship")})
    truncated |= len(active.get("ingredients") or []) > MAX_ITEMS

    summary: dict[str, Any] = {
        "validation_state": state,
        "title": _text(active.get("title")),
        "claim_generator": generator,
        "actions": actions,
        "ingredients": ingredients,
    }
    signature = active.get("signature_info")
    if isinstance(signature, dict):
        summary["signature"] = {key: _text(signature.get(key)) for key in ("issuer", "common_name", "alg", "time")}
    codes = [
        _text(status.get("code"))
        for status in store.get("validation_status") or []
        if isinstance(status, dict) and _text(status.get("code"))
    ]
    if codes:
        summary["errors"] = codes[:MAX_ITEMS]
        truncated |= len(codes) > MAX_ITEMS
    if truncated:
        summary["truncated"] = True
    return summary


def read_manifest(data: bytes, mime: str, contexts: C2paContexts) -> dict[str, Any] | None:
    """Summary of the C2PA manifest store embedded in an image, for ``/info``.

    Args:
        data: the image file (the original, as the origin sent it).
        mime: its media type (``image/jpeg``...); c2pa also sniffs the bytes and prefers what it
            finds there. Empty: detected from the bytes only.
        contexts: the app's c2pa contexts (read under ``contexts.reading``).

    Returns:
        None when there is no manifest: no C2PA data in the file, or a format c2pa cannot carry one
        in (``NotSupported``: unknown or garbage bytes as well). Otherwise a JSON-ready dict::

            {"validation_state": "Valid",    # c2pa's state: "Invalid" | "Valid" | "Trusted"
             "title": "C.jpg",               # of the active manifest, or None
             "claim_generator": "make_test_images/0.26.0 c2pa-rs/0.26.0",   # or None
             "actions": [{"action": "c2pa.created", "softwareAgent": "...", "when": "...",
                          "digitalSourceType": "http://cv.iptc.org/..."}],   # optional keys
             "ingredients": [{"title": "...", "format": "image/jpeg", "relationship": "parentOf"}],
             "signature": {"issuer": "...", "common_name": "...", "alg": "Ps256", "time": "2023-..."},
             "errors": ["signingCredential.untrusted"]}   # validation_status codes, when any

        ``validation_state``: "Trusted" needs a trust list, which edgeproxy does not configure, so a
        well-signed original reads "Valid"; ``errors`` then lists ``signingCredential.untrusted``
        ("Validation status codes"). ``actions`` come from every ``c2pa.actions`` assertion of the
        active manifest, in order; strings are cut at ``MAX_TEXT`` characters and lists at
        ``MAX_ITEMS`` (``"truncated": True`` then). A file c2pa cannot parse, or whose manifest is
        malformed, gives ``{"validation_state": "Invalid", "error": "<c2pa's message>"}``; a file
        whose manifest is only a remote reference gives ``{"validation_state": "Unverified",
        "error": ...}`` (edgeproxy never fetches it).

    Never raises on hostile input and never makes a network request (:data:`.context.SETTINGS`). Blocking and
    CPU-bound in c2pa: about 2.5 ms for a 138 KB JPEG with a 50 KB manifest, 0.1 ms for a JPEG without
    one (``bench/c2pa.py``); call it from a worker thread.
    """
    if not data:
        return None
    try:
        with c2pa.Reader(mime or None, io.BytesIO(data), context=contexts.reading) as reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported):
        return None
    except Exception as error:  # any failure on hostile input is an invalid manifest
        # c2pa-rs 0.91 says "Remote: ...", which c2pa-python 0.38 maps to the base C2paError, not
        # C2paError.RemoteManifest: accept both.
        if isinstance(error, c2pa.C2paError.RemoteManifest) or str(error).startswith("Remote:"):
            return {"validation_state": "Unverified", "error": _text(f"remote manifest not fetched: {error}")}
        message = str(error) if isinstance(error, c2pa.C2paError) else f"{type(error).__name__}: {error}"
        return {"validation_state": "Invalid", "error": _text(message)}
    try:
        return (
            _summary(store)
            if isinstance(store, dict)
            else {"validation_state": "Invalid", "error": "the manifest store is not an object"}
        )
    except Exception as error:
        return {"validation_state": "Invalid", "error": _text(f"unreadable manifest store: {error}")}
