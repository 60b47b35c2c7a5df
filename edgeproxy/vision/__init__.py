"""Vision models on ONNX Runtime: open_nsfw moderation scores (:mod:`.nsfw`), CenterFace face
detection (:mod:`.faces`, its graph made dynamic by :mod:`.graph`), the session layer they share
and their failures (:mod:`.runtime`), the per-original analysis (:mod:`.analysis`) and its
obscuring grids (:mod:`.cells`), the moderation policy (:mod:`.moderation`) and ``edgeproxy models
fetch`` (:mod:`.models`). Needs the ``vision`` extra; importing this package does not import
onnxruntime."""

from edgeproxy.vision.runtime import ModelError

__all__ = ["ModelError"]
