"""The decision for one derivative (``Decider``): what moderation does with it (serve, blur, or
a 451), how its faces are redacted, and how long caches may keep it. From the original's metadata
(a human verdict), the models' analysis (the nsfw score, the faces) and the settings; the policy
itself is ``vision.moderation.decide``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from edgeproxy.errors import blocked
from edgeproxy.http.metrics import Metrics
from edgeproxy.service.results import Caching, Treatment
from edgeproxy.url.spec import Redact
from edgeproxy.vision.moderation import Action, Decision, Metadata, Policy, Verdict, decide
from edgeproxy.vision.runtime import Model

if TYPE_CHECKING:
    from edgeproxy.vision.analysis import Analysis

_log = logging.getLogger("edgeproxy")


class Decider:
    """Decisions under the moderation ``policy``, counted in ``metrics``: answers that may change
    soon are cached ``moderation_max_age`` seconds (moderated) or ``error_max_age`` at most (a
    failed model, a stale original); ``redact_origins`` maps an origin to the redaction (``blur``,
    ``pixelate``) every one of its images gets."""

    def __init__(
        self,
        policy: Policy,
        metrics: Metrics,
        *,
        moderation_max_age: int,
        error_max_age: int,
        redact_origins: Mapping[str, str],
    ) -> None:
        self.policy = policy
        self.metrics = metrics
        self.moderation_max_age = moderation_max_age
        self.error_max_age = error_max_age
        self.redact_origins = redact_origins

    def treat(
        self,
        tag: str,
        metadata: Metadata | None,
        analysis: Analysis | None,
        *,
        redact: Redact | None,
        scored: bool,
        faces_wanted: bool,
        counted: bool = True,
    ) -> Treatment:
        """The decision for one derivative of the original tagged ``tag``: moderation (when
        ``metadata`` is given: moderation is on) from its metadata and, when the score was needed
        (``scored``: no human verdict), the nsfw score of ``analysis``; the faces of ``analysis``
        redacted as ``redact`` says. A model that failed where it was needed (``faces_wanted``:
        ``g:face`` or redaction) degrades the answer (``smart`` gravity, the whole image redacted)
        and caches it ``error_max_age`` at most. ``counted``: the verdict is counted and logged
        (``moderate``), as for a derivative answered; False for what no image is answered with
        (``/info``'s placeholders).

        Raises:
            ProxyError: 451 when moderation blocks (cached ``moderation_max_age``, with ``tag``).
        """
        decision = None
        max_age: int | None = None
        if metadata is not None:
            scores = analysis if scored else None
            decision = self.moderate(metadata, scores, tag) if counted else self.decide(metadata, scores)
            if decision.action is Action.BLOCK:
                raise blocked("withheld by moderation", self.moderation_max_age, tag)
            if decision.short_lived:
                max_age = self.moderation_max_age
        faces = analysis.faces if analysis is not None else None
        degraded = faces_wanted and faces is None
        if degraded:
            max_age = min(max_age if max_age is not None else self.error_max_age, self.error_max_age)
        return Treatment(
            moderation=decision,
            redact=redact,
            blur=decision is not None and decision.action is Action.BLUR,
            degraded=degraded,
            max_age=max_age,
            faces=faces,
            face_grids=analysis.face_grids(redact.value) if analysis is not None and redact is not None else None,
            wash=analysis.wash if analysis is not None else None,
        )

    def forced_redaction(self, origin: str) -> Redact | None:
        """How ``redact_origins`` says every image of ``origin`` is redacted, or None."""
        mode = self.redact_origins.get(origin)
        return Redact(mode) if mode else None

    def decide(self, metadata: Metadata, analysis: Analysis | None) -> Decision:
        """The moderation decision for an original with ``metadata`` and ``analysis`` (its nsfw
        score, or the classifier's failure), under the configured policy (``moderation.decide``)."""
        score = analysis.nsfw if analysis is not None else None
        failed = analysis is not None and analysis.failed(Model.NSFW)
        return decide(metadata, score, self.policy, classifier_failed=failed)

    def moderate(self, metadata: Metadata, analysis: Analysis | None, tag: str) -> Decision:
        """``decide``, counted in ``edgeproxy_moderation_total`` and logged with the original's
        surrogate key ``tag``, so that a verdict that changes later can be purged: what a
        derivative's answer does."""
        decision = self.decide(metadata, analysis)
        self.metrics.moderation.labels(decision.verdict, decision.source).inc()
        if decision.verdict is not Verdict.ALLOW or metadata.error:
            fields = {
                "surrogate_key": tag,
                "verdict": decision.verdict,
                "source": decision.source,
                "score": decision.score,
                "action": decision.action.value,
                "error": metadata.error,
            }
            _log.info("moderation", extra={"fields": fields})
        return decision

    def caching(self, treatment: Treatment, *, stale: bool) -> Caching:
        """How long a derivative may be cached: ``immutable``, unless the treatment says it may
        change soon, or the original is ``stale`` (the origin could not vouch for it: it may change
        once the origin is back; ``error_max_age`` at most)."""
        short = treatment.max_age
        if stale:
            error_max_age = self.error_max_age
            short = min(short, error_max_age) if short is not None else error_max_age
        return Caching.short(short) if short is not None else Caching()


def unjudged(metadata: Metadata | None) -> bool:
    """Whether moderation needs the classifier's score: it is on (``metadata`` given), and the
    original has no human verdict and no unusable sidecar."""
    return metadata is not None and metadata.verdict is None and metadata.error is None
