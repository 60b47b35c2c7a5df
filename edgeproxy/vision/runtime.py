"""ONNX Runtime sessions for the vision models: loading, provider choice, and the errors a bad model gives.

onnxruntime is imported lazily (it is the optional ``vision`` extra), so importing this module never
fails; :func:`create_session` raises :class:`ModelError` when the runtime is missing. The sessions it
builds are used from several render threads at once: ``InferenceSession.run`` is thread-safe
(ONNX Runtime's documentation, "Thread management"), and nothing here keeps per-call state.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnxruntime

#: The execution providers asked for by default: CUDA where onnxruntime-gpu finds CUDA and cuDNN,
#: else the CPU. onnxruntime-gpu lists CUDA as available even where its libraries cannot load; the
#: session then falls back to the next provider, so always read :func:`providers_used`.
DEFAULT_PROVIDERS: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")

#: ONNX Runtime's own logger severity (0 verbose .. 4 fatal; its default is 2, warnings), set once
#: when it is imported: fatal only. Its lines are not edgeproxy's JSON (docs/observability.md: logs are JSON lines
#: on stderr); its errors reach edgeproxy as Python exceptions, which are logged as JSON (a model
#: that fails to load stops start-up naming it, a failed inference degrades the answer and is
#: logged), and which providers a session got is logged at start-up and shown on /readyz. The
#: failed load of the CUDA provider library on a machine without a GPU is one of the error lines
#: this hides.
_ORT_SEVERITY = 4
_import_lock = threading.Lock()


class Model(enum.StrEnum):
    """The vision models: the ``model`` label of ``edgeproxy_vision_failures_total``."""

    NSFW = "nsfw"  # open_nsfw, the moderation classifier (vision.nsfw)
    FACES = "faces"  # CenterFace, the face detector (vision.faces)


@dataclass(frozen=True, slots=True)
class ModelFailure:
    """A ``model`` that failed at inference time on one original, and why (``error``: the exception's
    type and message). ``str()`` gives ``"faces: ValueError: ..."``, as logged."""

    model: Model
    error: str

    def __str__(self) -> str:
        return f"{self.model}: {self.error}"


class ModelError(Exception):
    """A vision model that cannot be used: a missing or unreadable file, bytes that are not an ONNX
    model, inputs or outputs of the wrong shape, or no onnxruntime module.

    ``ModelError(path, problem)``: ``str()`` is ``"{path}: {problem}"``, e.g. ``/m/x.onnx: expected
    input [N,224,224,3] float, found input.1 [10,3,32,32] float``; ``path`` and ``problem`` are
    attributes. ``ModelError(message)`` (no path known): ``str()`` is the message, ``path`` is None.
    """

    def __init__(self, path: str | Path, problem: str | None = None) -> None:
        self.path = None if problem is None else str(path)
        self.problem = str(path) if problem is None else problem
        super().__init__(self.problem if self.path is None else f"{self.path}: {self.problem}")


def read_model(path: str | Path) -> tuple[bytes, str]:
    """The bytes of the model file at ``path`` and their sha256 (lowercase hex, used in ETags).

    Raises :class:`ModelError` when the file is missing, is not a regular file, or cannot be read.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(path, "no such model file (edgeproxy models fetch installs the models)") from None
    except OSError as error:
        raise ModelError(path, f"cannot read the model: {error.strerror or error}") from None
    return data, hashlib.sha256(data).hexdigest()


def _import_ort(path_for_errors: str | Path) -> Any:
    """The onnxruntime module, imported with its telemetry off and its logger at ``_ORT_SEVERITY``.

    ``ORT_DISABLE_TELEMETRY=1`` (unless the environment sets it) is read when onnxruntime is first
    imported: without it, ONNX Runtime 1.31 builds a telemetry client that writes a device id under
    ``$HOME/.cache/Microsoft`` and, where it cannot (a read-only container), prints a coloured
    warning that is not a JSON line. A proxy has no business sending usage data either.
    """
    with _import_lock:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        try:
            import onnxruntime
        except ImportError as error:
            raise ModelError(
                path_for_errors, f"onnxruntime is not installed ({error}): pip install 'edgeproxy[vision]'"
            ) from None
        onnxruntime.set_default_logger_severity(_ORT_SEVERITY)
    return onnxruntime


#: Options per execution provider. CUDA: cuDNN's convolution algorithm chosen by heuristics, not
#: by an exhaustive benchmark (ONNX Runtime's default) that runs again for every new input shape:
#: CenterFace sees one shape per aspect ratio (ONNX Runtime docs, "CUDA Execution Provider",
#: ``cudnn_conv_algo_search``). Untested on a GPU here (none is lent to this project).
PROVIDER_OPTIONS: dict[str, dict[str, str]] = {"CUDAExecutionProvider": {"cudnn_conv_algo_search": "HEURISTIC"}}


def create_session(
    model: str | Path | bytes, *, providers: Sequence[str], threads: int, path_for_errors: str | Path | None = None
) -> onnxruntime.InferenceSession:
    """An ``onnxruntime.InferenceSession`` for ``model`` (a file path, or the serialized model).

    Session options: ``intra_op_num_threads=threads`` (the threads one ``run`` may use),
    ``inter_op_num_threads=1`` and sequential execution: the proxy runs several renders at once, so
    parallelism comes from callers, not from inside one inference. ``providers`` are tried in the
    order given; those that this onnxruntime build does not list in ``get_available_providers()``
    are skipped. ONNX Runtime's own logger is at fatal only (``_import_ort``): a CUDA provider that
    cannot load on a machine without a GPU falls back silently. Which providers the session really
    got: :func:`providers_used`.

    ``path_for_errors`` names the model in errors (default: ``model`` when it is a path, else
    ``<bytes>``). Raises :class:`ModelError` for a missing or unreadable file, bytes that ONNX
    Runtime cannot load as a model, no usable provider among ``providers``, ``threads < 1``, or a
    missing onnxruntime module.
    """
    if path_for_errors is None:
        path_for_errors = "<bytes>" if isinstance(model, bytes | bytearray) else model
    if threads < 1:
        raise ModelError(path_for_errors, f"threads must be >= 1, got {threads}")
    ort = _import_ort(path_for_errors)
    if not isinstance(model, bytes | bytearray):
        model, _ = read_model(model)
    if not model:
        raise ModelError(path_for_errors, "not an ONNX model: the file is empty")

    available = set(ort.get_available_providers())
    chosen = [name for name in dict.fromkeys(providers) if name in available]
    if not chosen:
        raise ModelError(
            path_for_errors,
            f"none of the execution providers {list(providers)} is available in "
            f"this onnxruntime (available: {sorted(available)})",
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with_options = [(name, PROVIDER_OPTIONS[name]) if name in PROVIDER_OPTIONS else name for name in chosen]
    try:
        return ort.InferenceSession(bytes(model), sess_options=options, providers=with_options)
    except Exception as error:  # onnxruntime's pybind errors (InvalidProtobuf, Fail...) derive from Exception only
        message = re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", str(error)).strip()
        raise ModelError(path_for_errors, f"onnxruntime cannot load it as an ONNX model: {message}") from None


def providers_used(session: onnxruntime.InferenceSession) -> tuple[str, ...]:
    """The execution providers ``session`` actually runs on, best first (``session.get_providers()``),
    e.g. ``("CPUExecutionProvider",)`` where CUDA was requested but could not load."""
    return tuple(session.get_providers())


def check_rgb(rgb: object) -> None:
    """Raise ``ValueError`` unless ``rgb`` is what the models take: a numpy array [H,W,3] of uint8
    (sRGB, 0..255) with H, W >= 1."""
    import numpy as np  # here: this module is imported without the vision extra

    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")


def describe_value(value: Any) -> str:
    """``name [d0,d1,...] type`` of an ``onnxruntime.NodeArg`` (symbolic dimensions by name, unknown
    ones as ``?``), for error messages."""
    dims = ",".join(str(d) if d is not None else "?" for d in value.shape)
    kind = {"tensor(float)": "float"}.get(value.type, value.type)
    return f"{value.name} [{dims}] {kind}"


def check_signature(
    session: onnxruntime.InferenceSession,
    path: str | Path,
    *,
    inputs: Sequence[tuple[str, Sequence[int | None]]],
    outputs: Sequence[tuple[str, Sequence[int | None]]],
) -> None:
    """Check ``session``'s inputs and outputs against ``(label, dims)`` pairs, in order.

    ``dims`` gives each dimension's required size, ``None`` for any (symbolic or not); every
    tensor must be float32. ``label`` is how the expected shape reads in the error, e.g.
    ``"[N,224,224,3]"``. Raises :class:`ModelError` naming ``path``, the expected shape and what
    the model has.
    """
    for kind, expected, found in (("input", inputs, session.get_inputs()), ("output", outputs, session.get_outputs())):
        wanted = ", ".join(f"{label} float" for label, _ in expected)
        have = ", ".join(describe_value(value) for value in found) or "none"
        if len(found) != len(expected):
            raise ModelError(path, f"expected {len(expected)} {kind}(s) {wanted}, found {have}")
        for (label, dims), value in zip(expected, found, strict=True):
            shape = list(value.shape)
            ok = (
                value.type == "tensor(float)"
                and len(shape) == len(dims)
                and all(want is None or have_dim == want for want, have_dim in zip(dims, shape, strict=True))
            )
            if not ok:
                raise ModelError(path, f"expected {kind} {label} float, found {describe_value(value)}")
