"""The blocking work of one derivative (``Renderer``): the pipeline over the original's bytes, treated
as the decision says, with a quality target's encode, and C2PA-signed for ``c2pa_origins``. It runs in
a render thread (``Service.run_blocking``) or a background thread (``service.optimise``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from edgeproxy.http.negotiate import Negotiated
from edgeproxy.render import pipeline
from edgeproxy.render.encoding import EncodeOptions
from edgeproxy.service.results import Treatment
from edgeproxy.settings import Settings
from edgeproxy.url.media import input_mime

if TYPE_CHECKING:
    from edgeproxy.provenance.sign import DerivativeSigner

#: The treatment of a render that vision and moderation leave alone (the fallback image).
UNTREATED = Treatment()


class Renderer:
    """Renders derivatives with ``settings``' defaults, the source ``limits``, the fast tier's
    ``encode_options`` and the optimised tier's (``EncodeOptions.optimised`` with the settings'
    ``optimise_*``), signing with ``c2pa`` when a title is given."""

    def __init__(
        self,
        settings: Settings,
        limits: pipeline.Limits,
        encode_options: EncodeOptions,
        c2pa: DerivativeSigner | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.encode_options = encode_options
        self.optimised_options = encode_options.optimised(
            settings.optimise_avif_effort, settings.optimise_webp_effort, settings.optimise_max_pixels
        )
        self.c2pa = c2pa

    def render(
        self,
        data: bytes,
        negotiated: Negotiated,
        deadline: float,
        treatment: Treatment = UNTREATED,
        title: str | None = None,
        target: float | None = None,
        search: bool = False,
    ) -> pipeline.Rendered:
        """Blocking: run the pipeline over the original ``data`` (in a render thread), treated as
        ``treatment`` says (faces, redaction, moderation blur: ``pipeline.Context``); with ``title``
        (the original's key) the derivative is signed with a C2PA manifest (``sign``). With a
        SSIMULACRA2 ``target``, the quality is the format's typical one for it, or searched with the
        optimised tier's encoders when ``search`` (``edgeproxy.quality.encode``).

        Raises:
            ProxyError: the pipeline's (400, 413, 415, 422, 504).
        """
        ctx = pipeline.Context(
            data=data,
            negotiated=negotiated,
            limits=self.limits,
            encode_options=self.optimised_options if search else self.encode_options,
            default_quality=self.settings.default_quality,
            deadline=deadline,
            target=target,
            search=search,
            faces=treatment.faces,
            redact=treatment.redact,
            face_grids=treatment.face_grids,
            moderation_blur=treatment.blur,
            wash=treatment.wash,
        )
        rendered = pipeline.run(ctx)
        return self.sign(rendered, data, title, ctx) if title is not None else rendered

    def sign(
        self, rendered: pipeline.Rendered, original: bytes, title: str, ctx: pipeline.Context
    ) -> pipeline.Rendered:
        """``rendered`` with a C2PA manifest (``provenance.sign.DerivativeSigner``): the original as its
        parent ingredient, titled ``title``, and the actions done (``c2pa.resized``,
        ``c2pa.cropped``, ``c2pa.filtered``, ``c2pa.transcoded``) with the output's width, height
        and format. Blocking; its time is the ``c2pa`` step of ``rendered.timings``."""
        from edgeproxy.provenance.sign import derivative_actions

        assert self.c2pa is not None and rendered.source is not None and rendered.plan is not None
        start = time.monotonic()
        source, plan, spec = rendered.source, rendered.plan, ctx.spec
        actions = derivative_actions(
            resized=plan.resize != (source.width, source.height),
            cropped=plan.source_crop is not None or plan.final_crop is not None,
            transcoded=True,
            filtered=bool(spec.blur or spec.sharpen or spec.grayscale or ctx.redact or ctx.moderation_blur),
            parameters={"width": rendered.width, "height": rendered.height, "format": rendered.format.value},
        )
        body = self.c2pa.sign(
            rendered.body,
            rendered.mime,
            original=original,
            original_mime=input_mime(source.format),
            original_title=title,
            actions=actions,
        )
        timings = {**rendered.timings, "c2pa": time.monotonic() - start}
        return dataclasses.replace(rendered, body=body, timings=timings)
