"""The analysis object: what ``edgeproxy ingest`` found in one original, stored beside it as
``KEY.analysis.json`` (``analysis_key``) in the original's own origin, and read by the proxy (like a
sidecar) and by the review queue.

One JSON object, UTF-8, schema ``version`` 1::

    {"version": 1, "origin": "media", "key": "cats/tom.jpg",
     "etag": "\\"9b2cf535f27731c974343645a3985328\\"", "sha256": "…64 hex…",
     "models": "nsfw=…|faces=…|side=…|min=…|candidates=…",
     "uploaded_at": 1733323000.5, "analysed_at": 1733323002.1,
     "width": 4000, "height": 3000,
     "nsfw": 0.42, "faces": [{"x": 0.1, "y": 0.2, "w": 0.05, "h": 0.07, "score": 0.91}],
     "failures": [], "verdict": "blur", "provenance": {"model": "sdxl-1.0"}}

- ``etag``: the origin's ETag of the bytes analysed (``Original.etag``); ``sha256``: their hash (the
  audit log's content hash). A record applies to an original only while both match it
  (``applies_to``): a replaced original is analysed again.
- ``models``: ``Vision.fingerprint()`` of the models that produced it: another model (or model
  setting) makes the record stale, and the original is analysed again.
- ``nsfw``: the classifier's score 0..1, null without a classifier or when it failed; ``faces``:
  boxes in fractions 0..1 of the upright original with the detector's score, null likewise;
  ``failures``: the names of the models that failed (``runtime.Model`` values).
- ``verdict``: what the moderation policy decided from the score alone when the record was written
  (``allow``, ``blur``, ``block``, ``pending``); a human verdict (S3 metadata or the sidecar's
  ``moderation`` member) always wins over it, as in ``vision.moderation.decide``.
- ``uploaded_at``/``analysed_at``: Unix seconds (the queue event's time, or the file's mtime; and
  when the analysis finished): their difference is the analysis latency from upload.
- ``mac``: HMAC-SHA256 (RFC 2104) of the object without it, under ``record_key(signing_key)``.
  Whoever can put objects beside an original (a user uploading into the bucket) could otherwise
  write "no faces, nsfw 0" for it and bypass redaction and moderation: an object whose ``mac`` does
  not verify is refused (``from_json``) and the original analysed as if none were stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgeproxy import boundedjson
from edgeproxy.render.geometry import Box, Face
from edgeproxy.vision.moderation import Verdict

#: Suffix of the analysis object beside an original: ``KEY`` + this.
ANALYSIS_SUFFIX = ".analysis.json"
#: The schema version written; records of another version are ignored (analysed again).
VERSION = 1
#: Largest analysis object read (bytes): a record with hundreds of faces is a few tens of KiB.
MAX_BYTES = 256 * 1024


def record_key(signing_key: str | None) -> bytes:
    """The key analysis objects are authenticated with: HMAC-SHA256 of a fixed label under the
    deployment's ``signing_key`` (RFC 2104), so the proxy and its ingest workers share it without a
    setting of its own, and it verifies no URL (a different label, a different key). Without a
    signing key (``allow_unsigned``, local development only) the objects are keyed with nothing."""
    return hmac.new((signing_key or "").encode(), b"edgeproxy analysis object v1", hashlib.sha256).digest()


def _mac(key: bytes, body: dict[str, Any]) -> str:
    """The hex HMAC-SHA256 of ``body`` (without ``mac``) as ``to_json`` writes it."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def analysis_key(key: str) -> str:
    """The key of ``key``'s analysis object: ``cats/tom.jpg`` → ``cats/tom.jpg.analysis.json``."""
    return key + ANALYSIS_SUFFIX


def is_analysis_key(key: str) -> bool:
    """Whether ``key`` names an analysis object (never an original to analyse or list)."""
    return key.endswith(ANALYSIS_SUFFIX)


def content_hash(data: bytes) -> str:
    """SHA-256 of an original's bytes, hex (FIPS 180-4): the record's and the audit log's hash."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class AnalysisRecord:
    """One original's analysis (module docstring: fields, units, schema)."""

    origin: str
    key: str
    etag: str
    sha256: str
    models: str
    uploaded_at: float
    analysed_at: float
    width: int
    height: int
    nsfw: float | None
    faces: tuple[Face, ...] | None
    failures: tuple[str, ...] = ()
    verdict: Verdict = Verdict.PENDING
    provenance: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def applies_to(self, etag: str, models: str) -> bool:
        """Whether this record describes the original whose origin ETag is ``etag``, analysed by
        the models whose fingerprint is ``models`` (else the original is analysed again)."""
        return self.etag == etag and self.models == models

    @property
    def latency(self) -> float:
        """Seconds from upload to the stored analysis."""
        return max(0.0, self.analysed_at - self.uploaded_at)

    def to_json(self, key: bytes) -> bytes:
        """The analysis object's bytes (UTF-8 JSON, keys sorted: the same record, the same bytes,
        so that a redelivered event rewrites an identical object), authenticated with ``key``
        (``record_key``)."""
        faces = None
        if self.faces is not None:
            faces = [{"x": f.box.x, "y": f.box.y, "w": f.box.w, "h": f.box.h, "score": f.score} for f in self.faces]
        body = {
            "version": VERSION,
            "origin": self.origin,
            "key": self.key,
            "etag": self.etag,
            "sha256": self.sha256,
            "models": self.models,
            "uploaded_at": self.uploaded_at,
            "analysed_at": self.analysed_at,
            "width": self.width,
            "height": self.height,
            "nsfw": self.nsfw,
            "faces": faces,
            "failures": list(self.failures),
            "verdict": self.verdict.value,
            "provenance": dict(self.provenance),
        }
        body["mac"] = _mac(key, body)
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, key: bytes) -> AnalysisRecord:
        """Parse an analysis object (at most ``MAX_BYTES``, nested at most 16 levels) written with
        ``key`` (``record_key``).

        Raises:
            ValueError: not JSON, too large or deep, another schema version, a ``mac`` that does
                not verify under ``key`` (not written by this deployment), or a member missing or
                of the wrong type (the message names it).
        """
        try:
            body = boundedjson.loads(data, max_bytes=MAX_BYTES, max_depth=16)
        except boundedjson.LimitError as exc:
            raise ValueError(f"analysis object is {exc}") from None
        if not isinstance(body, dict):
            raise ValueError("analysis object is not a JSON object")
        if body.get("version") != VERSION:
            raise ValueError(f"analysis object has version {body.get('version')!r}, not {VERSION}")
        mac = body.pop("mac", None)
        if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, body)):
            raise ValueError("analysis object is not authenticated by this deployment's key")
        try:
            raw_faces = body["faces"]
            faces = (
                None
                if raw_faces is None
                else tuple(
                    Face(Box(float(f["x"]), float(f["y"]), float(f["w"]), float(f["h"])), float(f["score"]))
                    for f in raw_faces
                )
            )
            nsfw = body["nsfw"]
            return cls(
                origin=str(body["origin"]),
                key=str(body["key"]),
                etag=str(body["etag"]),
                sha256=str(body["sha256"]),
                models=str(body["models"]),
                uploaded_at=float(body["uploaded_at"]),
                analysed_at=float(body["analysed_at"]),
                width=int(body["width"]),
                height=int(body["height"]),
                nsfw=None if nsfw is None else float(nsfw),
                faces=faces,
                failures=tuple(str(name) for name in body.get("failures", ())),
                verdict=Verdict(body.get("verdict", Verdict.PENDING.value)),
                provenance=MappingProxyType(dict(body.get("provenance") or {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"analysis object is malformed: {type(exc).__name__}: {exc}") from None
