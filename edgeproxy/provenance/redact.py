"""What of an original's C2PA manifest store a derivative must not carry ("Redaction of
Assertions"): every assertion but those the chain of custody needs.
"""

from __future__ import annotations

import io
import json

import c2pa

from edgeproxy.provenance.context import C2paContexts

#: Assertions of an original's manifest store (every manifest of it) that a derivative keeps; every
#: other one is redacted ("Redaction of Assertions"). Actions and hard bindings (``c2pa.hash.*``) may
#: not be redacted; ingredients hold the chain (redacting one drops the manifest it points to);
#: time-stamps and certificate status make the signatures checkable. None is about the picture's
#: content or the people in it (but actions keep whatever free text their signer wrote into them).
#: Labels may carry an instance suffix (``__1``), ignored here.
KEPT_ASSERTIONS = frozenset(
    {
        "c2pa.actions",
        "c2pa.actions.v2",
        "c2pa.ingredient",
        "c2pa.ingredient.v2",
        "c2pa.ingredient.v3",
        "c2pa.time-stamp",
        "c2pa.certificate-status",
    }
)
#: JUMBF labels of manifest parts that are not assertions and may hold anything: deprecated data boxes
#: and C2PA 1.x W3C verifiable credentials. A store with one is not carried (:func:`redactions`).
UNREDACTABLE_STORES = (b"c2pa.databoxes", b"c2pa.credentials")
#: The ``reason`` of each ``c2pa.redacted`` action ("Actions", reasons for redaction).
REDACTION_REASON = "c2pa.PII.present"


def _kept(label: str) -> bool:
    """Whether an assertion ``label`` (with its instance suffix, if any) is in :data:`KEPT_ASSERTIONS`
    or a hard binding."""
    base = label.split("__", 1)[0]
    return base in KEPT_ASSERTIONS or base.startswith("c2pa.hash.")


def redactions(original: bytes, mime: str, contexts: C2paContexts) -> list[str] | None:
    """The JUMBF URIs of every assertion of ``original``'s manifest store a derivative must not carry.

    Every manifest of the store (the active one and every one before it, as c2pa-python reports them:
    ``Reader.detailed_json``, read under :data:`.context.SETTINGS` without validation:
    :data:`.context.LISTING_SETTINGS`, ``contexts.listing``),
    every assertion present in its assertion store whose label is not kept (:data:`KEPT_ASSERTIONS`,
    ``c2pa.hash.*``), as
    ``self#jumbf=/c2pa/{manifest label}/c2pa.assertions/{assertion label}`` ("URI References"), the
    form c2pa's ``ManifestDefinition.redactions`` takes. Assertions an earlier manifest already
    redacted are absent from the store and not listed again.

    Args:
        original: the original's bytes, as fetched.
        mime: its media type, as given to :meth:`.sign.DerivativeSigner.sign`.
        contexts: the app's c2pa contexts.

    Returns:
        ``[]`` when the original has no manifest store (or c2pa cannot read one in this format), only
        a remote one (never fetched, so never carried), or nothing to redact; the URIs otherwise
        (sorted); None when the store must not be carried at all: c2pa cannot enumerate it (malformed
        beyond what validation reports, a format mismatch), or it holds what cannot be redacted
        (:data:`UNREDACTABLE_STORES`: data boxes, verifiable credentials).

    Never raises; blocking: c2pa parses the store, 1.5-3 ms for a store of two manifests with
    thumbnails, 0.2 ms for a JPEG without one (``bench/c2pa.py``).
    """
    if any(label in original for label in UNREDACTABLE_STORES):
        return None
    try:
        with c2pa.Reader(mime or None, io.BytesIO(original), context=contexts.listing) as reader:
            store = json.loads(reader.detailed_json())
    except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported):
        return []
    except Exception as error:
        if isinstance(error, c2pa.C2paError.RemoteManifest) or str(error).startswith("Remote:"):
            return []  # only a reference to a remote store, never fetched (context.SETTINGS): nothing to carry
        return None  # any other failure: a store c2pa cannot enumerate is not carried
    uris = []
    manifests = store.get("manifests") if isinstance(store, dict) else None
    if not isinstance(manifests, dict):
        return None
    for label, manifest in manifests.items():
        if not isinstance(manifest, dict) or not isinstance(manifest.get("assertion_store"), dict):
            return None
        if manifest.get("credential_store"):
            return None
        uris += [
            f"self#jumbf=/c2pa/{label}/c2pa.assertions/{name}"
            for name in manifest["assertion_store"]
            if not _kept(name)
        ]
    return sorted(uris)
