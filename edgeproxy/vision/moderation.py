"""What is known about an original besides its pixels (its metadata: a moderation verdict and
provenance), and the moderation policy that turns it and the classifier's score into an action.

Metadata comes from the origin: S3 object metadata (``x-amz-meta-moderation``, ``x-amz-meta-model``,
...; ``Original.metadata``), or for local folders and HTTP origins a sidecar ``KEY.json`` beside the
original: one JSON object whose ``moderation`` member is the human verdict and whose other members
are provenance, e.g. ``{"moderation": "approved", "model": "sdxl-1.0", "created_at":
"2026-11-02T10:00:00Z", "license": "CC-BY-4.0"}``.

The policy (``decide``), in order:

1. a human verdict overrides everything: ``approved`` allows, ``rejected`` blocks, ``blurred``
   blurs (the review page's Blur button), ``pending`` (or any other value: a typo must not publish
   an image) is pending;
2. else the nsfw score: at or above ``block_threshold`` blocks, at or above ``blur_threshold``
   blurs, else allows;
3. else (no classifier, or it failed) pending.

A pending original is served, blurred or blocked as ``moderation_pending`` says. Every answer that
is not a plain allow is cached briefly (``moderation_max_age``), so a verdict given later reaches
the CDN within that time, or at once through a purge of the original's surrogate key.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgeproxy import boundedjson

_log = logging.getLogger("edgeproxy.vision.moderation")
#: The metadata member (S3: ``x-amz-meta-moderation``) holding the human verdict.
VERDICT_FIELD = "moderation"


class Action(enum.StrEnum):
    """What an answer does with the derivative."""

    SERVE = "serve"
    BLUR = "blur"
    BLOCK = "block"


class Verdict(enum.StrEnum):
    """The moderation verdict on an original (the ``verdict`` label of ``edgeproxy_moderation_total``
    and of ``/info``'s ``moderation``): ``pending`` until a human or the classifier says."""

    ALLOW = "allow"
    BLUR = "blur"
    BLOCK = "block"
    PENDING = "pending"


class Source(enum.StrEnum):
    """Where an original's metadata, or a verdict, came from (the ``source`` label of
    ``edgeproxy_moderation_total`` and of ``/info``): the origin's object ``metadata`` (S3), a
    ``sidecar`` ``KEY.json``, the nsfw ``classifier``'s score, ``none`` (nothing to go by) or an
    ``error`` (the sidecar or the classifier failed)."""

    METADATA = "metadata"
    SIDECAR = "sidecar"
    CLASSIFIER = "classifier"
    NONE = "none"
    ERROR = "error"


#: Human verdicts (a sidecar's or the object metadata's ``moderation`` member) and what they say.
_HUMAN = {
    "approved": Verdict.ALLOW,
    "rejected": Verdict.BLOCK,
    "blurred": Verdict.BLUR,
    "pending": Verdict.PENDING,
}
#: The action of each verdict but ``pending``, which the policy decides.
_ACTIONS = {Verdict.ALLOW: Action.SERVE, Verdict.BLUR: Action.BLUR, Verdict.BLOCK: Action.BLOCK}


@dataclass(frozen=True, slots=True)
class Metadata:
    """An original's metadata: ``values`` (JSON values by member name) and where they came from,
    ``source``: ``Source.METADATA`` (the origin's object metadata), ``Source.SIDECAR``
    (``KEY.json``) or ``Source.NONE``.
    ``error``: why a sidecar that exists could not be used (then ``values`` is empty and the
    verdict is pending: an unreadable verdict never publishes an image)."""

    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    source: Source = Source.NONE
    error: str | None = None

    @property
    def verdict(self) -> str | None:
        """The human verdict as given (``approved``, ``blurred``, ``pending``, ``rejected``, ...), or None."""
        value = self.values.get(VERDICT_FIELD)
        return str(value).strip().lower() if value is not None else None

    @property
    def provenance(self) -> dict[str, Any]:
        """Every member but the verdict: generator or model id, creation time, licence, ..."""
        return {k: v for k, v in self.values.items() if k != VERDICT_FIELD}


#: Deepest nesting of arrays and objects a sidecar may have by default (``sidecar_max_depth``).
SIDECAR_MAX_DEPTH = 32


def parse_sidecar(
    data: bytes, max_bytes: int, *, max_depth: int = SIDECAR_MAX_DEPTH, name: str | None = None
) -> Metadata:
    """The ``Metadata`` of a sidecar ``KEY.json`` (UTF-8 JSON, one object, at most ``max_bytes``
    bytes and nested at most ``max_depth`` levels, both checked before it is parsed:
    ``edgeproxy.boundedjson``). Never raises: a sidecar that is too large, too deep, not JSON or
    not an object gives a ``Metadata`` with ``error`` set, and so a pending verdict, and a warning
    (logger ``edgeproxy.vision.moderation``) naming the sidecar (``name``, e.g. ``origin/key.json``) and
    the problem, never its content."""
    try:
        values = boundedjson.loads(data, max_bytes=max_bytes, max_depth=max_depth)
    except boundedjson.LimitError as exc:
        error = f"sidecar is {exc}"
    except ValueError as exc:  # not UTF-8, not JSON
        error = f"sidecar is not JSON: {exc}"
    else:
        if isinstance(values, dict):
            return Metadata(MappingProxyType(values), Source.SIDECAR)
        error = "sidecar is not a JSON object"
    _log.warning("unusable sidecar", extra={"fields": {"sidecar": name, "error": error}})
    return Metadata(source=Source.SIDECAR, error=error)


@dataclass(frozen=True, slots=True)
class Policy:
    """The moderation settings (``Settings.moderation_*``); thresholds are nsfw scores 0..1."""

    block_threshold: float
    blur_threshold: float
    pending: Action


@dataclass(frozen=True, slots=True)
class Decision:
    """The moderation outcome for one original.

    - ``verdict``: ``allow``, ``blur``, ``block`` or ``pending`` (the label of
      ``edgeproxy_moderation_total``);
    - ``source``: ``metadata``, ``sidecar`` (a human verdict), ``classifier`` (the nsfw score),
      ``none`` (no verdict and no classifier) or ``error`` (the classifier, or the sidecar, failed);
    - ``score``: the nsfw score when the classifier ran, else None;
    - ``action``: what the answer does (``pending`` resolved through the policy).
    """

    verdict: Verdict
    source: Source
    score: float | None
    action: Action

    @property
    def short_lived(self) -> bool:
        """True for every answer but a plain allow: cached ``moderation_max_age``, not immutable."""
        return self.verdict is not Verdict.ALLOW


def decide(metadata: Metadata, score: float | None, policy: Policy, *, classifier_failed: bool = False) -> Decision:
    """The moderation decision for an original with ``metadata`` and nsfw ``score`` (0..1, None
    when there is no classifier or it failed, ``classifier_failed`` telling which)."""
    human = metadata.verdict
    verdict: Verdict
    source: Source
    if metadata.error is not None:
        verdict, source = Verdict.PENDING, Source.ERROR
    elif human is not None:
        verdict, source = _HUMAN.get(human, Verdict.PENDING), metadata.source
    elif score is not None:
        source = Source.CLASSIFIER
        if score >= policy.block_threshold:
            verdict = Verdict.BLOCK
        elif score >= policy.blur_threshold:
            verdict = Verdict.BLUR
        else:
            verdict = Verdict.ALLOW
    else:
        verdict, source = Verdict.PENDING, Source.ERROR if classifier_failed else Source.NONE
    return Decision(verdict, source, score, _ACTIONS.get(verdict, policy.pending))
