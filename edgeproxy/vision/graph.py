"""CenterFace's ONNX graph made to take images of any size.

The ``centerface.onnx`` file (:mod:`edgeproxy.vision.models`) declares a fixed input [10,3,32,32]
and lists its weights as graph inputs; :func:`dynamic` rewrites it once, when the model is loaded
(``faces.FaceModel.load``), with the ``onnx`` package, to take [N,3,H,W].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeproxy.vision.runtime import ModelError

#: Channels of CenterFace's four outputs, in the graph's order: heatmap, scale, offset, landmarks.
OUTPUT_CHANNELS = (1, 2, 2, 10)
OUTPUT_LABELS = ("heatmap [N,1,H/4,W/4]", "scale [N,2,H/4,W/4]", "offset [N,2,H/4,W/4]", "landmarks [N,10,H/4,W/4]")


def dynamic(data: bytes, path: Path) -> bytes:
    """``data`` (a CenterFace ONNX model) rewritten to take [N,3,H,W]: the image input's dimensions
    and the outputs' batch and spatial ones made symbolic, stale intermediate shapes dropped,
    weights removed from the graph inputs (IR version 4+ allows initializers that are not inputs,
    which lets ONNX Runtime fold them as constants) and weights no node uses deleted. Raises
    :class:`ModelError` when ``data`` is not ONNX or not shaped like CenterFace."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError as error:
        raise ModelError(
            path, f"the onnx package is not installed ({error}): pip install 'edgeproxy[vision]'"
        ) from None
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ModelError(path, f"not an ONNX model: {error}") from None
    graph = model.graph
    if not graph.node:
        raise ModelError(path, "not an ONNX model: no graph nodes")
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]

    def describe(value: Any) -> str:
        dims = ",".join(
            str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value.type.tensor_type.shape.dim
        )
        kind = (
            onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name
            if value.type.tensor_type.elem_type
            else "?"
        )
        return f"{value.name} [{dims}] {'float' if kind == 'float32' else kind}"

    def channels(value: Any) -> int | None:
        dims = value.type.tensor_type.shape.dim
        return dims[1].dim_value if len(dims) == 4 and dims[1].HasField("dim_value") else None

    if len(inputs) != 1 or channels(inputs[0]) != 3 or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(path, f"expected input [N,3,H,W] float, found {', '.join(map(describe, inputs)) or 'none'}")
    outputs = list(graph.output)
    found = [channels(value) for value in outputs]
    if len(outputs) != 4 or any(c is not None and c != want for c, want in zip(found, OUTPUT_CHANNELS, strict=False)):
        raise ModelError(
            path,
            f"expected 4 outputs {', '.join(f'{label} float' for label in OUTPUT_LABELS)}, "
            f"found {', '.join(map(describe, outputs)) or 'none'}",
        )
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
    rewritten: bytes = model.SerializeToString()
    return rewritten
