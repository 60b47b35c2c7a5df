"""Vision models on ONNX Runtime: open_nsfw moderation scores (:mod:`.nsfw`), CenterFace face
detection (:mod:`.faces`), the session layer they share (:mod:`.runtime`) and ``edgeproxy models
fetch`` (:mod:`.models`). Needs the ``vision`` extra; importing this package does not import
onnxruntime."""

from edgeproxy.vision.runtime import ModelError

__all__ = ["ModelError"]
