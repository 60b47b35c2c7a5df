"""Per-original analysis: every configured model runs once per original, on one small copy.

``Vision.analyse(key, original bytes)`` (blocking: it runs in a render thread, never on the event
loop) decodes the first frame of the original, upright and in sRGB, at most ``vision_max_side``
pixels on its long side (shrink-on-load, so a 24-megapixel JPEG costs a fraction of a full
decode), within the same source limits as a render (413/415/422 as the render would answer), and
hands that copy to the nsfw classifier and the face detector (``FaceModel.find``: faces from
about 1 % of the long side up). From the same copy it computes the grids that obscure each face
and the whole original (``vision.cells``), so every derivative obscures them the same way,
whatever its crop or scale (``edgeproxy.render.obscure``). The result (``Analysis``) is cached
per (origin, key, origin ETag): the second derivative of an original, in any size or format,
costs a dictionary lookup. A model that fails at inference time does not fail the request: its
part of the analysis is None, the failure is named in ``errors`` (never cached), and callers
degrade (``g:face`` falls back to ``smart``, moderation to ``pending``) with a short max-age.

Animated originals are analysed on their first frame only; the boxes found there are applied to
every frame (docs/faces.md, "Limits").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import cachetools

from edgeproxy.render import load, pipeline, vips
from edgeproxy.render.failures import failures
from edgeproxy.render.obscure import Grid
from edgeproxy.vision import cells
from edgeproxy.vision.runtime import Model, ModelError, ModelFailure

if TYPE_CHECKING:
    import numpy as np

    from edgeproxy.render.geometry import Face
    from edgeproxy.settings import Settings
    from edgeproxy.vision.faces import FaceModel
    from edgeproxy.vision.nsfw import NsfwModel

_log = logging.getLogger("edgeproxy")


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the models found in one original.

    - ``nsfw``: the classifier's nsfw probability 0..1; None without a classifier or when it failed;
    - ``faces``: the faces found (``geometry.Face``: boxes in fractions 0..1 of the upright
      original, and scores), best first;
      None without a detector or when it failed; an empty tuple when there are none;
    - ``failures``: each model that failed (``runtime.ModelFailure``); empty when all ran;
    - ``timings``: seconds per stage (``decode``, ``nsfw``, ``faces``, ``grids``);
    - ``grids``: for each redaction mode (``blur``, ``pixelate``), each face's ``obscure.Grid``
      (the face and its margin), in the order of ``faces``; empty when ``faces`` is None;
    - ``wash``: the whole original's grid (moderation blur; redaction when the detector failed);
      None only for an ``Analysis`` built without a decode (tests).
    """

    nsfw: float | None = None
    faces: tuple[Face, ...] | None = None
    failures: tuple[ModelFailure, ...] = ()
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    grids: Mapping[str, tuple[Grid, ...]] = field(default_factory=dict, compare=False)
    wash: Grid | None = field(default=None, compare=False)

    def face_grids(self, mode: str) -> tuple[Grid, ...] | None:
        """The grids that redact every face in ``mode`` (``blur``, ``pixelate``); None when the
        detector did not run or failed (then the whole image is obscured)."""
        return None if self.faces is None else self.grids.get(mode, ())

    @property
    def degraded(self) -> bool:
        """True when a model failed: answers built on this analysis are cached briefly."""
        return bool(self.failures)

    def failed(self, model: Model) -> bool:
        """Whether ``model`` ran on this original and failed."""
        return any(failure.model is model for failure in self.failures)


def small_rgb(data: bytes, limits: pipeline.Limits, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The first frame of ``data`` as an upright sRGB array, height × width × 3 ``uint8``, at most
    ``max_side`` pixels on its long side (never enlarged); alpha flattened onto white; and the
    original's (width, height) in pixels, upright.

    Raises:
        ProxyError: 413 (over the source limits), 415 (format not allowed), 422 (undecodable): the
            same checks, in the same order, as a render's (``pipeline.inspect``).
    """
    with failures():  # a hostile original is this request's 422 and leaves libvips clean
        found = pipeline.inspect(data, limits)
        info = found.info
        scale = min(1.0, max_side / max(info.width, info.height))
        width, height = max(1, round(info.width * scale)), max(1, round(info.height * scale))
        return vips.rgb_array(load.flat_srgb(found.data, info, width, height)), (info.width, info.height)


class Vision:
    """The loaded models (either may be None) and the per-original analysis cache.

    One ONNX Runtime session per model per process, built at start-up (``load``); sessions are
    shared by every render thread (``InferenceSession.run`` is thread-safe).
    """

    def __init__(
        self,
        nsfw: NsfwModel | None,
        faces: FaceModel | None,
        *,
        max_side: int,
        min_score: float,
        cache_entries: int,
        candidate_score: float = 0.05,
    ):
        self.nsfw = nsfw
        self.faces = faces
        self.max_side = max_side
        self.min_score = min_score
        self.candidate_score = candidate_score
        self._cache: cachetools.LRUCache[Hashable, Analysis] | None = (
            cachetools.LRUCache(maxsize=cache_entries) if cache_entries else None
        )
        self._lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings) -> Vision:
        """The models named by ``settings`` (``nsfw_model``, ``face_model``), loaded and checked.

        Raises:
            ModelError: a missing or malformed model file, or the vision extra not installed; the
                message names the path and what is wrong.
        """
        try:
            from edgeproxy.vision.faces import FaceModel
            from edgeproxy.vision.nsfw import NsfwModel
        except ImportError as exc:
            raise ModelError(
                f"the vision models need the [vision] extra: pip install 'edgeproxy[vision]' ({exc})"
            ) from None
        start = time.monotonic()
        options: dict[str, Any] = {"providers": tuple(settings.vision_providers), "threads": settings.vision_threads}
        nsfw = NsfwModel.load(settings.nsfw_model, **options) if settings.nsfw_model else None
        faces = FaceModel.load(settings.face_model, **options) if settings.face_model else None
        vision = cls(
            nsfw,
            faces,
            max_side=settings.vision_max_side,
            min_score=settings.face_min_score,
            candidate_score=settings.face_candidate_score,
            cache_entries=settings.vision_cache_entries,
        )
        _log.info(
            "vision models loaded",
            extra={"fields": {"providers": vision.providers(), "seconds": round(time.monotonic() - start, 3)}},
        )
        return vision

    def providers(self) -> dict[str, list[str]]:
        """Execution providers each loaded model got, e.g. ``{"nsfw": ["CPUExecutionProvider"]}``."""
        models = {"nsfw": self.nsfw, "faces": self.faces}
        return {name: list(model.providers) for name, model in models.items() if model is not None}

    def fingerprint(self) -> str:
        """Everything here that changes a derivative's pixels or moderation, for ETags."""
        return "|".join(
            (
                f"nsfw={self.nsfw.sha256 if self.nsfw else '-'}",
                f"faces={self.faces.sha256 if self.faces else '-'}",
                f"side={self.max_side}",
                f"min={self.min_score}",
                f"candidates={self.candidate_score}",
            )
        )

    def cached(self, key: Hashable) -> Analysis | None:
        """The cached analysis of the original ``key`` (origin, object key, origin ETag), or None."""
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(key)

    def analyse(self, key: Hashable, data: bytes, limits: pipeline.Limits) -> Analysis:
        """Blocking: run every loaded model on ``data`` (an original's bytes) and cache the result
        under ``key`` unless a model failed.

        Raises:
            ProxyError: 413/415/422 from decoding the original (``small_rgb``); model failures are
                not raised but reported in ``Analysis.failures``.
        """
        start = time.monotonic()
        rgb, original = small_rgb(data, limits, self.max_side)
        timings = {"decode": time.monotonic() - start}
        nsfw: float | None = None
        faces: tuple[Face, ...] | None = None
        failures: list[ModelFailure] = []
        if self.nsfw is not None:
            start = time.monotonic()
            try:
                nsfw = float(self.nsfw.score(rgb))
            except Exception as exc:  # an inference failure degrades the answer, never a 500
                failures.append(ModelFailure(Model.NSFW, f"{type(exc).__name__}: {exc}"))
            timings["nsfw"] = time.monotonic() - start
        if self.faces is not None:
            start = time.monotonic()
            try:
                faces = tuple(self.faces.find(rgb, min_score=self.min_score, candidate_score=self.candidate_score))
            except Exception as exc:
                failures.append(ModelFailure(Model.FACES, f"{type(exc).__name__}: {exc}"))
            timings["faces"] = time.monotonic() - start
        if failures:
            _log.warning("vision model failed", extra={"fields": {"errors": [str(f) for f in failures]}})
        return self._finish(key, rgb, original, nsfw, faces, tuple(failures), timings)

    def from_record(
        self, key: Hashable, data: bytes, limits: pipeline.Limits, nsfw: float | None, faces: tuple[Face, ...] | None
    ) -> Analysis:
        """Blocking: the ``Analysis`` of ``data`` from a stored analysis (``nsfw`` score 0..1 and
        ``faces`` as ``edgeproxy ingest`` found them: ``ingest.record.AnalysisRecord``): no model
        runs; the grids come from the same small decode as ``analyse``'s, so derivatives are the
        same pixels as with an inline analysis. Cached under ``key`` like ``analyse``'s result.

        Raises:
            ProxyError: 413/415/422 from decoding the original (``small_rgb``).
        """
        start = time.monotonic()
        rgb, original = small_rgb(data, limits, self.max_side)
        return self._finish(key, rgb, original, nsfw, faces, (), {"decode": time.monotonic() - start})

    def _finish(
        self,
        key: Hashable,
        rgb: np.ndarray,
        original: tuple[int, int],
        nsfw: float | None,
        faces: tuple[Face, ...] | None,
        failures: tuple[ModelFailure, ...],
        timings: dict[str, float],
    ) -> Analysis:
        """The analysis with its grids (from ``rgb``, the small copy of an ``original`` of
        (width, height) pixels), cached under ``key`` unless a model failed."""
        start = time.monotonic()
        grids = MappingProxyType(cells.face_grids(rgb, faces, original) if faces else {})
        wash = cells.wash(rgb, original)
        timings["grids"] = time.monotonic() - start
        analysis = Analysis(nsfw, faces, failures, timings, grids, wash)
        if not failures and self._cache is not None:
            with self._lock:
                self._cache[key] = analysis
        return analysis
