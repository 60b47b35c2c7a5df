"""Which derivatives have an optimised tier, and the background's job for one (issue 26).

A derivative has a SSIMULACRA2 target (``quality_target``) unless it has a fixed quality or is asked
for as a format without a search; once rendered, it has an optimised tier only if its output is one
frame of JPEG, WebP or AVIF (``searchable``). ``Service.derive`` answers the tiers; the background
runs ``background_job`` (``service.optimise``), in a worker process as ``BackgroundRender``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeproxy.http.negotiate import Negotiated
from edgeproxy.render import pipeline
from edgeproxy.service.results import Treatment
from edgeproxy.settings import Settings
from edgeproxy.url.spec import Format

if TYPE_CHECKING:
    from edgeproxy.service.renderer import Renderer


def quality_target(settings: Settings, negotiated: Negotiated) -> float | None:
    """The SSIMULACRA2 target of a derivative: ``q:auto:N``'s N, ``q:auto``'s ``quality_target``,
    and for a URL without ``q`` under ``quality_policy = "target"`` ``quality_target`` too; None
    for a fixed quality (the URL's ``q:N``, ``Save-Data``'s, ``quality_policy = "fixed"``) and
    for the formats that have no search (PNG, GIF, JPEG XL asked for by name)."""
    spec = negotiated.spec
    if spec.format in (Format.PNG, Format.GIF, Format.JXL):
        return None
    if spec.quality_auto:
        return float(spec.quality if spec.quality is not None else settings.quality_target)
    if spec.quality is None and settings.quality_policy == "target":
        return float(settings.quality_target)
    return None


def searchable(rendered: pipeline.Rendered) -> bool:
    """Whether ``rendered`` has an optimised tier: one frame of JPEG, WebP or AVIF (a quality search
    exists for it: ``edgeproxy.quality.search``)."""
    return rendered.frames == 1 and rendered.format in (Format.JPEG, Format.WEBP, Format.AVIF)


def background_job(
    render: Callable[..., pipeline.Rendered], treatment: Treatment, title: str | None, target: float, until: float
) -> tuple[bytes, str]:
    """The background tier's job: the optimised render by ``until`` (``time.monotonic()``)."""
    rendered = render(until, treatment, title, target, True)
    return rendered.body, rendered.mime


@dataclass(frozen=True, slots=True)
class BackgroundRender:
    """The background tier's job as a worker process runs it (``service.optimise_process``): picklable,
    with what ``background_job`` needs besides the renderer (the worker's own): the original's
    bytes ``data``, the ``negotiated`` request, the ``treatment``, the C2PA ``title`` and the target."""

    data: bytes
    negotiated: Negotiated
    treatment: Treatment
    title: str | None
    target: float

    def __call__(self, renderer: Renderer, until: float) -> tuple[bytes, str]:
        """``background_job`` with ``renderer``, by ``until`` (``time.monotonic()``)."""
        render = functools.partial(renderer.render, self.data, self.negotiated)
        return background_job(render, self.treatment, self.title, self.target, until)
