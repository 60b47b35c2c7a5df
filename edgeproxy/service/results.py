"""What ``Service.derive`` answers, as frozen dataclasses: one of ``Derivative`` (the image),
``NotModified`` (the client's ETag still names it: 304), ``Fallback`` (the fallback image standing
in for an error about the original) or ``Failure`` (the error); each with what the HTTP edge needs
to write its headers (``Caching``, ``Vary``, ``Validators``), what was decided (``Treatment``) and
what it cost (``Work``: the cache outcome, stage timings, bytes read).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from edgeproxy.errors import ProxyError
from edgeproxy.render.geometry import Face
from edgeproxy.render.obscure import ALGORITHM as OBSCURE_ALGORITHM
from edgeproxy.render.obscure import Grid
from edgeproxy.service.originals import CacheOutcome, Fetched
from edgeproxy.service.validators import Validators
from edgeproxy.url.spec import Format, Redact
from edgeproxy.vision.moderation import Decision

if TYPE_CHECKING:
    from edgeproxy.origins import Original
    from edgeproxy.render import pipeline
    from edgeproxy.vision.analysis import Analysis
    from edgeproxy.vision.moderation import Metadata

_NOTHING: Mapping[str, float] = MappingProxyType({})


class Lifetime(enum.StrEnum):
    """How long shared caches may keep an answer (``http.responses.HeaderPolicy`` writes it)."""

    IMMUTABLE = "immutable"  # public, max-age=<cache_max_age>, immutable: a derivative of a published original
    SHORT = "short"  # public, max-age=<seconds>: may change soon (moderation, a failed model, a stale original)
    ERROR = "error"  # public, max-age=<error_max_age> (4xx) or <transient_error_max_age> (5xx)
    # public, max-age=<seconds>, stale-while-revalidate=<stale>: the fast tier of a derivative whose
    # optimised tier is being made; a revalidation after it finds the optimised one (a new ETag)
    PROVISIONAL = "provisional"


class Tier(enum.StrEnum):
    """Which encode a derivative is (``edgeproxy.service.optimise``): ``fixed`` (a fixed quality, the
    only tier), ``fast`` (a quality target's first answer: the typical quality, fast encoders) or
    ``optimised`` (the target's searched quality, slow encoders; from the result storage)."""

    FIXED = "fixed"
    FAST = "fast"
    OPTIMISED = "optimised"


@dataclass(frozen=True, slots=True)
class Caching:
    """The input of an answer's ``Cache-Control``: its ``lifetime``, the ``seconds`` of a ``SHORT``
    one, and the ``status`` of the error an ``ERROR`` one is about (4xx or 5xx)."""

    lifetime: Lifetime = Lifetime.IMMUTABLE
    seconds: int | None = None
    status: int = 200
    stale: int | None = None  # a PROVISIONAL one's stale-while-revalidate seconds

    def provisional(self, seconds: int, stale: int) -> Caching:
        """This caching for a fast tier: ``seconds`` of max-age and ``stale`` of
        stale-while-revalidate, unless it is already shorter (then it stays as it is)."""
        if self.lifetime is Lifetime.IMMUTABLE:
            return Caching(Lifetime.PROVISIONAL, seconds, stale=stale)
        return self

    @classmethod
    def short(cls, seconds: int) -> Caching:
        """``seconds`` (never ``immutable``)."""
        return cls(Lifetime.SHORT, seconds)

    @classmethod
    def error(cls, error: ProxyError) -> Caching:
        """An error's: its own max-age when it sets one (a 451), else the policy's for its status."""
        return cls.short(error.max_age) if error.max_age is not None else cls(Lifetime.ERROR, status=error.status)


@dataclass(frozen=True, slots=True)
class Treatment:
    """What vision and moderation decided for one derivative.

    - ``moderation``: the moderation decision (verdict, source, score, action); None when
      moderation is off;
    - ``redact``: how faces are redacted (the URL's ``redact``, or the origin's ``redact_origins``);
    - ``blur``: moderation blurs the whole derivative;
    - ``degraded``: a model the derivative needed failed (``smart`` gravity, the whole image redacted);
    - ``max_age``: seconds of an answer that may change soon (moderated, degraded), else None;
    - from the original's analysis: the ``faces`` found (None: no detector ran, or it failed), each
      face's obscuring grid in the ``redact`` mode (``face_grids``; None when ``faces`` is) and the
      whole original's (``wash``), in the original's coordinates (``edgeproxy.render.obscure``).
    """

    moderation: Decision | None = None
    redact: Redact | None = None
    blur: bool = False
    degraded: bool = False
    max_age: int | None = None
    faces: tuple[Face, ...] | None = None
    face_grids: tuple[Grid, ...] | None = None
    wash: Grid | None = None

    @property
    def stamp(self) -> str:
        """The part of the ETag that says how the pixels were treated (with the obscuring algorithm's
        version when anything is obscured)."""
        stamp = f"redact={self.redact or ''};moderation-blur={int(self.blur)};degraded={int(self.degraded)}"
        return f"{stamp};obscure={OBSCURE_ALGORITHM}" if self.redact or self.blur else stamp


@dataclass(frozen=True, slots=True)
class Work:
    """What one ``derive`` did, for the access log, the metrics and ``Server-Timing``; seconds.

    - ``cache``: where the original came from (None: it was not had);
    - ``fetch``: time to have the original; ``inference``: its analysis (a cache hit: microseconds),
      None when none was needed;
    - ``queue``: time this request's render waited for a render thread, None when it rendered
      nothing of its own (a 304, a render shared with an identical request, a failure);
    - ``render``: the render's metrics stages (``decode``, ``transform``, ``encode``: summed
      pipeline steps), empty when it was not this request's; ``rendering``: the render's seconds,
      also when it was shared;
    - ``total``: the whole ``derive``; ``bytes_in``: the original's bytes when this request rendered it.
    """

    cache: CacheOutcome | None = None
    fetch: float | None = None
    inference: float | None = None
    queue: float | None = None
    render: Mapping[str, float] = field(default_factory=lambda: _NOTHING)
    rendering: float = 0.0
    total: float = 0.0
    bytes_in: int = 0

    @classmethod
    def answered(
        cls,
        fetched: Fetched,
        inference: float | None,
        start: float,
        original: Original,
        rendered: pipeline.Rendered | None,
        queued: float | None,
        shared: bool,
    ) -> Work:
        """What a derive that answered a derivative did (``rendered``: its render, None when it
        came from the result storage)."""
        mine = rendered is not None and not shared  # a coalesced request did none of this work
        return cls(
            fetched.outcome,
            fetched.seconds,
            inference,
            queue=queued if mine else None,
            render=rendered.stage_times() if mine and rendered is not None else {},
            rendering=sum(rendered.timings.values()) if rendered is not None else 0.0,
            total=time.monotonic() - start,
            bytes_in=len(original.data) if mine else 0,
        )

    def stages(self) -> dict[str, float]:
        """Seconds per metrics stage (``edgeproxy_stage_duration_seconds``) this request spent."""
        stages = {
            name: seconds
            for name, seconds in (("fetch", self.fetch), ("inference", self.inference))
            if seconds is not None
        }
        if self.queue is not None:
            stages["queue"] = self.queue
        stages.update(self.render)
        return stages

    def server_timing(self) -> list[tuple[str, float]]:
        """(name, seconds) for ``Server-Timing``: ``fetch``, ``inference`` (when it ran), ``queue``
        (the wait that was no render: a render thread, an identical request's render), ``render``
        and ``total``."""
        fetch, inference = self.fetch or 0.0, self.inference
        waited = max(0.0, self.total - fetch - (inference or 0.0) - self.rendering)
        return [
            ("fetch", fetch),
            *([("inference", inference)] if inference is not None else []),
            ("queue", waited),
            ("render", self.rendering),
            ("total", self.total),
        ]


@dataclass(frozen=True, slots=True)
class Image:
    """An encoded image: ``body`` bytes in ``format`` (media type ``mime``)."""

    body: bytes
    format: Format
    mime: str


@dataclass(frozen=True, slots=True)
class Derivative:
    """The derivative: its ``image``, ``validators``, ``caching`` and ``vary`` (the request headers
    negotiation read), what was decided (``treatment``; ``stale``: the origin could not vouch for
    the original) and the ``work`` done."""

    image: Image
    validators: Validators
    caching: Caching
    vary: tuple[str, ...]
    treatment: Treatment
    stale: bool
    work: Work
    tier: Tier = Tier.FIXED


@dataclass(frozen=True, slots=True)
class NotModified:
    """The client's ``If-None-Match`` names the derivative: a 304 with its ``validators``,
    ``caching`` and ``vary``; nothing was rendered."""

    validators: Validators
    caching: Caching
    vary: tuple[str, ...]
    treatment: Treatment
    stale: bool
    work: Work


@dataclass(frozen=True, slots=True)
class Fallback:
    """The fallback image rendered for the request in place of ``error`` (an error about the
    original: 404, 413, 415, 422, 502, 504): never ``immutable``, no ETag, the original's surrogate
    key (``validators``). ``status`` is what is sent: the error's, or ``fallback_status``."""

    image: Image
    error: ProxyError
    status: int
    validators: Validators
    caching: Caching
    vary: tuple[str, ...]
    work: Work


@dataclass(frozen=True, slots=True)
class Failure:
    """No derivative: ``error`` (carrying the original's surrogate key when it is about the
    original), after the ``work`` done before it."""

    error: ProxyError
    work: Work


#: What ``Service.derive`` answers.
Derived = Derivative | NotModified | Fallback | Failure


@dataclass(frozen=True, slots=True)
class Examined:
    """What the service knows about one original (``Service.examine``, for ``/info``): the
    ``original``, its ``metadata``, the models' ``analysis`` (None without models), the moderation
    ``decision`` the policy would take, and its ``surrogate_key``."""

    original: Original
    metadata: Metadata
    analysis: Analysis | None
    decision: Decision
    surrogate_key: str
