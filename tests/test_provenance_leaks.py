"""A C2PA-signed derivative carries nothing the derivative itself does not show (issue 19, item 1;
DESIGN section 5, "Nothing leaks past a transform").

The originals are made here with c2pa-python the way a camera and an editor sign a photo: a
"camera" signs giunchedi-portrait.jpg (one face) with a claim thumbnail (a clear copy of the whole
picture) and a ``stds.exif`` assertion holding a GPS position and the camera body's serial number;
an "editor" opens that file and signs the result with its own claim thumbnail, an ingredient
thumbnail of the camera's file, a ``stds.exif`` assertion with another serial number and a
``cawg.metadata`` assertion naming the photographer and the place. The editor's file, with its
ingredient chain two levels deep, is the original edgeproxy serves, through the real HTTP app, from a
``redact_origins`` origin (faces pixelated) and from a moderation origin that blurs the picture; both
origins are in ``c2pa_origins``.

Every derivative is then searched the way an attacker would: its raw bytes for the GPS, serial and
name strings (c2pa stores assertions as CBOR or JSON text, so the strings appear as they are), every
resource c2pa-python's Reader lists (thumbnails, the ingredients' manifest stores, read again as
manifest stores, recursively), and every JPEG, PNG or WebP stream found anywhere in those bytes,
decoded and compared with the original's face (:func:`shows_face`). The check is shown to catch the
original's own claim thumbnail, so it can fail. The provenance chain must stay checkable: the
derivative names its parent, with the parent's manifest and claim signature hashes, the editor's
and the camera's claims and actions survive, and c2pa validates the whole store.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvips

pytest.importorskip("c2pa", reason="c2pa-python comes with the [vision] extra")

import c2pa  # noqa: E402

from edgeproxy.provenance import sign as provenance_sign  # noqa: E402
from edgeproxy.provenance.context import SETTINGS, C2paContexts  # noqa: E402
from edgeproxy.provenance.redact import redactions  # noqa: E402
from edgeproxy.provenance.sign import DerivativeSigner, derivative_actions  # noqa: E402
from testkit.app import make_client, signed  # noqa: E402
from testkit.c2pa import DIGITAL_CAPTURE, Credentials, make_credentials, sign_original  # noqa: E402

PORTRAIT = "giunchedi-portrait.jpg"  # 800x533, one face
#: The c2pa contexts the app would build at start-up (``compose.compose``).
CONTEXTS = C2paContexts()
#: Hand-labelled face of giunchedi-portrait.jpg (x0, y0, x1, y1), pixels of the 800x533 original
#: (the same box as tests/test_vision_http.py).
FACE = (312, 75, 480, 297)
#: The size (width, height) at which pictures are compared with the original: 800x533 / 2.67.
COMPARE = (300, 200)

#: What the camera and the editor wrote into their manifests and no derivative may carry.
GPS = ("39,21.102N", "74,26.5737W", "48,51.500N")
SERIALS = ("CAMERA-BODY-4711-0815", "EDITOR-WS-2231-7734")
PERSONAL = ("Jane Q. Photographer", "12 Rue de Rivoli")
SECRETS = tuple(s.encode() for s in (*GPS, *SERIALS, *PERSONAL))

EXIF_CONTEXT = {"exif": "http://ns.adobe.com/exif/1.0/", "tiff": "http://ns.adobe.com/tiff/1.0/"}


# --- the originals ---------------------------------------------------------------------------------------------------


def camera_and_editor(portrait: bytes, credentials: Credentials) -> tuple[bytes, bytes]:
    """(camera's file, editor's file): the chain described in the module docstring."""
    camera = sign_original(
        portrait,
        "image/jpeg",
        credentials,
        title="DSC_4711.jpg",
        generator="test-camera",
        assertions=[
            {
                "label": "stds.exif",
                "data": {
                    "@context": EXIF_CONTEXT,
                    "exif:GPSLatitude": GPS[0],
                    "exif:GPSLongitude": GPS[1],
                    "exif:BodySerialNumber": SERIALS[0],
                    "tiff:Make": "Test Camera Co.",
                },
            }
        ],
    )
    editor = sign_original(
        camera,
        "image/jpeg",
        credentials,
        title="portrait.jpg",
        generator="test-editor",
        parent=camera,
        parent_title="DSC_4711.jpg",
        assertions=[
            {
                "label": "stds.exif",
                "data": {"@context": EXIF_CONTEXT, "exif:GPSLatitude": GPS[2], "exif:BodySerialNumber": SERIALS[1]},
            },
            {
                "label": "cawg.metadata",
                "data": {
                    "@context": {
                        "dc": "http://purl.org/dc/elements/1.1/",
                        "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
                    },
                    "dc:creator": [PERSONAL[0]],
                    "Iptc4xmpCore:Location": PERSONAL[1],
                },
            },
        ],
    )
    return camera, editor


def read_store(data: bytes, mime: str, *, detailed: bool = False, settings: dict | None = None) -> dict:
    """The manifest store c2pa reports for ``data`` (edgeproxy's reading settings by default)."""
    with (
        c2pa.Context.from_dict(settings or SETTINGS) as context,
        c2pa.Reader(mime, io.BytesIO(data), context=context) as reader,
    ):
        return json.loads(reader.detailed_json() if detailed else reader.json())


@pytest.fixture(scope="module")
def chain(corpus: Path) -> dict:
    """The camera's and the editor's files, their manifest labels and the credentials."""
    credentials = make_credentials()
    camera, editor = camera_and_editor((corpus / PORTRAIT).read_bytes(), credentials)
    camera_label = read_store(camera, "image/jpeg")["active_manifest"]
    editor_store = read_store(editor, "image/jpeg")
    return {
        "camera": camera,
        "editor": editor,
        "credentials": credentials,
        "camera_label": camera_label,
        "editor_label": editor_store["active_manifest"],
        "editor_store": editor_store,
    }


# --- what an attacker looks at ---------------------------------------------------------------------------------------


def identifiers(value) -> Iterator[str]:
    """Every resource ``identifier`` anywhere in a Reader's JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "identifier" and isinstance(item, str):
                yield item
            else:
                yield from identifiers(item)
    elif isinstance(value, list):
        for item in value:
            yield from identifiers(item)


def resources(data: bytes, mime: str, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every resource c2pa-python's Reader gives out of ``data``, and of the
    resources of every manifest store among them (``application/c2pa``), recursively."""
    assert depth < 6, "manifest stores nested deeper than any chain made here"
    with (
        c2pa.Context.from_dict(SETTINGS) as context,
        c2pa.Reader(mime, io.BytesIO(data), context=context) as reader,
    ):
        store = json.loads(reader.json())
        found = []
        for uri in sorted(set(identifiers(store))):
            stream = io.BytesIO()
            try:
                reader.resource_to_stream(uri, stream)
            except c2pa.C2paError:  # listed but gone (a redacted thumbnail): nothing to read
                continue
            found.append((uri, stream.getvalue()))
    for uri, blob in found:
        yield f"{'  ' * depth}{uri}", blob
        if blob[:64].find(b"jumb") >= 0:  # a manifest store (JUMBF): read it as one
            yield from resources(blob, "application/c2pa", depth + 1)


def embedded_images(data: bytes) -> Iterator[tuple[int, pyvips.Image]]:
    """(offset, decoded image) of every JPEG, PNG or WebP stream that starts anywhere in ``data``
    (offset 0 included) and libvips can decode."""
    starts = sorted(
        {
            m.start()
            for pattern in (rb"\xff\xd8\xff", rb"\x89PNG\r\n\x1a\n", rb"RIFF....WEBPVP8")
            for m in re.finditer(pattern, data, re.DOTALL)
        }
    )
    for start in starts:
        try:
            image = pyvips.Image.new_from_buffer(data[start:], "", access="sequential")
            image = image.copy_memory()  # decode now: a broken stream fails here
        except pyvips.Error:
            continue
        yield start, image


def grey(image: pyvips.Image, size: tuple[int, int]) -> np.ndarray:
    """``image`` as float grey levels, resized to ``size`` (width, height)."""
    image = image.copy_memory()  # random access for resize, whatever the loader's access was
    if image.hasalpha():
        image = image.flatten()
    image = image.colourspace("b-w")[0]
    image = image.resize(size[0] / image.width, vscale=size[1] / image.height)
    return image.numpy().astype(np.float64)[: size[1], : size[0]]


def face_likeness(image: pyvips.Image, original: np.ndarray) -> float | None:
    """How much of the original's face detail ``image`` shows: both seen at ``COMPARE`` size (grey),
    the correlation (-1..1) of the fine detail (the picture minus its Gaussian blur, sigma 1 px) over
    the face. Measured: the c2pa claim thumbnail 0.93, 600- and 300-px copies 1.0, a 200-px copy
    0.51, a 120-px copy 0.40, a light blur (sigma 3 px of the original) 0.66; the face pixelated into
    6 or 12 blocks -0.03, a strong blur (sigma 8 px) 0.18. None when ``image`` is not of the original's
    aspect ratio (it cannot be a copy of the whole picture). ``original``: :func:`grey` at ``COMPARE``."""
    width, height = COMPARE
    if abs(image.width / image.height - width / height) > 0.02:
        return None
    x0, y0, x1, y1 = (round(v * width / 800) for v in FACE)

    def detail(grey_pixels: np.ndarray) -> np.ndarray:
        blurred = pyvips.Image.new_from_array(grey_pixels).gaussblur(1.0).numpy()
        return (grey_pixels - blurred)[y0:y1, x0:x1].ravel()

    return float(np.corrcoef(detail(grey(image, COMPARE)), detail(original))[0, 1])


def shows_face(image: pyvips.Image, original: np.ndarray) -> bool:
    """True when ``image`` shows the original's face (see :func:`face_likeness`), or when it is a
    picture that cannot be compared (another aspect ratio): nothing unexplained may be embedded."""
    likeness = face_likeness(image, original)
    return likeness is None or likeness > 0.3


def leaks(derivative: bytes, mime: str, original: np.ndarray) -> list[str]:
    """What ``derivative`` carries that it does not show: secret strings in its bytes or in any
    resource, and embedded images (other than the derivative's own picture) that show the face."""
    found = [f"{secret.decode()!r} in the bytes" for secret in SECRETS if secret in derivative]
    blobs = list(resources(derivative, mime))
    for where, blob in blobs:
        found += [f"{secret.decode()!r} in resource {where.strip()}" for secret in SECRETS if secret in blob]
    for where, blob in [("the file", derivative), *blobs]:
        for offset, image in embedded_images(blob):
            if where == "the file" and offset == 0:
                continue  # the derivative's own picture: checked by the caller
            if shows_face(image, original):
                found.append(
                    f"a {image.width}x{image.height} image at byte {offset} of {where.strip()} shows the "
                    f"face (likeness {face_likeness(image, original)})"
                )
    return found


# --- the check can fail ----------------------------------------------------------------------------------------------


def test_the_originals_carry_what_derivatives_must_not(chain: dict, corpus: Path):
    """The attacker's tools find the face and the strings in the editor's file itself: the checks
    below can fail."""
    original = grey(pyvips.Image.new_from_file(str(corpus / PORTRAIT)), COMPARE)
    found = leaks(chain["editor"], "image/jpeg", original)
    assert all(any(secret.decode() in item for item in found) for secret in SECRETS), found
    faces = [item for item in found if "shows the face" in item]
    assert len(faces) >= 3, faces  # the editor's and the camera's claim thumbnails, the ingredient thumbnail
    # A thumbnail really is the face: likeness far above the threshold.
    thumbnails = [
        image
        for where, blob in resources(chain["editor"], "image/jpeg")
        if "thumbnail" in where
        for _, image in embedded_images(blob)
    ]
    assert thumbnails and min(face_likeness(image, original) for image in thumbnails) > 0.8


# --- through the HTTP app --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(chain: dict, tmp_path_factory) -> dict[str, str]:
    """Settings serving the editor's file as ``portrait.jpg`` from folder ``o``, signed with C2PA."""
    root = tmp_path_factory.mktemp("leaks")
    folder = root / "o"
    folder.mkdir()
    (folder / "portrait.jpg").write_bytes(chain["editor"])
    (root / "chain.pem").write_bytes(chain["credentials"].chain)
    (root / "key.pem").write_bytes(chain["credentials"].key)
    return {
        "folder": str(folder),
        "c2pa_certificate": str(root / "chain.pem"),
        "c2pa_private_key": str(root / "key.pem"),
    }


def derivatives(served: dict[str, str], models: dict[str, Path]) -> Iterator[tuple[str, str, bytes]]:
    """(what, mime, body) of derivatives of the editor's file from a redact origin and a blurring
    moderation origin, as JPEG, WebP and PNG."""
    credentials = {"c2pa_certificate": served["c2pa_certificate"], "c2pa_private_key": served["c2pa_private_key"]}
    formats = (("jpeg", "image/jpeg"), ("webp", "image/webp"), ("png", "image/png"))
    with make_client(
        {"r": served["folder"]},
        face_model=str(models["face"]),
        redact_origins={"r": "pixelate"},
        c2pa_origins=["r"],
        **credentials,
    ) as client:
        for fmt, mime in formats:
            response = client.get(signed(f"/w:600/f:{fmt}/r/portrait.jpg"))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == mime
            yield f"redacted {fmt}", mime, response.content
    with make_client(
        {"m": served["folder"]},
        nsfw_model=str(models["nsfw"]),
        moderation=True,
        moderation_blur_threshold=0.0,
        moderation_block_threshold=1.0,
        c2pa_origins=["m"],
        **credentials,
    ) as client:
        for fmt, mime in formats:
            response = client.get(signed(f"/w:600/f:{fmt}/m/portrait.jpg"))
            assert response.status_code == 200, response.text
            assert response.headers["cache-control"] != "public, max-age=31536000, immutable"  # the blurred answer
            yield f"moderation-blurred {fmt}", mime, response.content


@pytest.fixture(scope="module")
def served_derivatives(served: dict[str, str], models: dict[str, Path]) -> list[tuple[str, str, bytes]]:
    return list(derivatives(served, models))


def test_a_derivative_carries_no_pixels_or_metadata_it_does_not_show(served_derivatives, corpus: Path):
    original = grey(pyvips.Image.new_from_file(str(corpus / PORTRAIT)), COMPARE)
    problems = {}
    for what, mime, body in served_derivatives:
        own = pyvips.Image.new_from_buffer(body, "")
        assert (own.width, own.height) == (600, 400)
        assert not shows_face(own, original), f"{what}: the derivative's own face is not obscured"
        found = leaks(body, mime, original)
        if found:
            problems[what] = found
    assert not problems, json.dumps(problems, indent=1)


def test_the_provenance_chain_survives_and_validates(served_derivatives, chain: dict):
    """The derivative still names its parent (the editor's manifest, with its hash and the hash of its
    claim signature); the editor's and the camera's claims and actions are all there; c2pa validates
    the store: Valid, with the test CA's untrusted signer its only complaint, and Trusted once the
    test CA is a trust anchor."""
    trusting = {**SETTINGS, "trust": {"user_anchors": chain["credentials"].ca.decode()}}
    for what, mime, body in served_derivatives:
        store = read_store(body, mime)
        print(
            what,
            store["validation_state"],
            [s["code"] for s in store.get("validation_status", [])],
            [
                c["code"]
                for d in store["validation_results"].get("ingredientDeltas", [])
                for c in d["validationDeltas"]["informational"]
            ],
        )
        assert store["validation_state"] == "Valid", what
        assert [s["code"] for s in store["validation_status"]] == ["signingCredential.untrusted"], what
        assert read_store(body, mime, settings=trusting)["validation_state"] == "Trusted", what
        deltas = store["validation_results"].get("ingredientDeltas", [])
        assert all(not d["validationDeltas"]["failure"] for d in deltas), (what, deltas)

        manifests = store["manifests"]
        assert set(manifests) == {store["active_manifest"], chain["editor_label"], chain["camera_label"]}, what
        (parent,) = manifests[store["active_manifest"]]["ingredients"]
        assert (parent["title"], parent["relationship"], parent["active_manifest"]) == (
            "portrait.jpg",
            "parentOf",
            chain["editor_label"],
        ), what
        (grandparent,) = manifests[chain["editor_label"]]["ingredients"]
        assert (grandparent["title"], grandparent["active_manifest"]) == ("DSC_4711.jpg", chain["camera_label"])

        def actions(label: str, manifests: dict = manifests) -> list[dict]:
            return [
                action
                for assertion in manifests[label]["assertions"]
                if assertion["label"].startswith("c2pa.actions")
                for action in assertion["data"]["actions"]
            ]

        assert [a["action"] for a in actions(chain["editor_label"])] == ["c2pa.opened"]
        assert [(a["action"], a["digitalSourceType"]) for a in actions(chain["camera_label"])] == [
            ("c2pa.created", DIGITAL_CAPTURE)
        ]
        assert manifests[chain["camera_label"]]["claim_generator_info"][0]["name"] == "test-camera"
        assert manifests[chain["editor_label"]]["title"] == "portrait.jpg"

        # The parent is named by hashes: its manifest and its claim signature (ingredient v3).
        detailed = read_store(body, mime, detailed=True)
        active = detailed["manifests"][store["active_manifest"]]
        ingredient = active["assertion_store"]["c2pa.ingredient.v3"]
        assert ingredient["activeManifest"]["url"] == f"self#jumbf=/c2pa/{chain['editor_label']}"
        assert ingredient["activeManifest"]["hash"] and ingredient["claimSignature"]["hash"]

        # What was removed is said: the claim's redacted_assertions, and one c2pa.redacted action each.
        camera, editor = chain["camera_label"], chain["editor_label"]
        removed = {
            (camera, "c2pa.thumbnail.claim"),
            (camera, "stds.exif"),
            (editor, "c2pa.thumbnail.claim"),
            (editor, "c2pa.thumbnail.ingredient"),
            (editor, "stds.exif"),
            (editor, "cawg.metadata"),
        }
        uris = {f"self#jumbf=/c2pa/{label}/c2pa.assertions/{name}" for label, name in removed}
        assert set(active["claim"]["redacted_assertions"]) == uris, what
        mine = actions(store["active_manifest"])
        assert [a["action"] for a in mine] == [
            "c2pa.opened",
            *["c2pa.redacted"] * 6,
            "c2pa.resized",
            "c2pa.filtered",
            "c2pa.transcoded",
        ], what  # filtered: pixelate, blur
        assert {a["parameters"]["redacted"] for a in mine[1:7]} == uris
        assert {a["reason"] for a in mine[1:7]} == {"c2pa.PII.present"}
        # Only the chain is left in the ancestors' assertion stores.
        for label in (chain["camera_label"], chain["editor_label"]):
            assert set(detailed["manifests"][label]["assertion_store"]) <= {
                "c2pa.actions.v2",
                "c2pa.hash.data",
                "c2pa.ingredient.v3",
            }, what


# --- DerivativeSigner without the HTTP app ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(chain: dict) -> DerivativeSigner:
    return DerivativeSigner.from_pem(chain["credentials"].chain, chain["credentials"].key, contexts=CONTEXTS)


def sign(signer: DerivativeSigner, original: bytes, title: str = "portrait.jpg") -> bytes:
    """A 300-px JPEG derivative of ``original`` signed with it as parent."""
    body = pyvips.Image.thumbnail_buffer(original, 300).jpegsave_buffer(strip=True)
    return signer.sign(
        body,
        "image/jpeg",
        original=original,
        original_mime="image/jpeg",
        original_title=title,
        actions=derivative_actions(resized=True, cropped=False, transcoded=True),
    )


#: Assertions of every kind an original may carry, each with a string no derivative may hold.
ASSORTED = [
    {"label": "stds.exif", "data": {"@context": EXIF_CONTEXT, "exif:GPSLatitude": "11,11.111N"}},
    {"label": "stds.exif__1", "data": {"@context": EXIF_CONTEXT, "exif:BodySerialNumber": "SECOND-EXIF-SERIAL"}},
    {
        "label": "stds.iptc",
        "data": {
            "@context": {"Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"},
            "Iptc4xmpCore:Location": "IPTC-SUBLOCATION",
        },
    },
    {
        "label": "c2pa.metadata",
        "data": {"@context": {"photoshop": "http://ns.adobe.com/photoshop/1.0/"}, "photoshop:City": "METADATA-CITY"},
    },
    {
        "label": "stds.schema-org.CreativeWork",
        "data": {
            "@context": "http://schema.org/",
            "@type": "CreativeWork",
            "author": [{"@type": "Person", "name": "SCHEMA-AUTHOR"}],
        },
    },
    {
        "label": "cawg.training-mining",
        "data": {"entries": {"cawg.ai_training": {"use": "notAllowed", "constraint_info": "TDM-CONTACT"}}},
    },
    {"label": "com.example.sensor", "data": {"serial": "VENDOR-SENSOR-SERIAL"}},
]
ASSORTED_SECRETS = (
    b"11,11.111N",
    b"SECOND-EXIF-SERIAL",
    b"IPTC-SUBLOCATION",
    b"METADATA-CITY",
    b"SCHEMA-AUTHOR",
    b"TDM-CONTACT",
    b"VENDOR-SENSOR-SERIAL",
)


def test_every_assertion_but_the_chain_is_redacted(signer, chain: dict, corpus: Path):
    """Whatever the label (EXIF twice, IPTC, c2pa.metadata, CreativeWork, training-mining, a vendor's),
    only actions, hard bindings and ingredients stay: an allow-list, not a list of known leaks."""
    original = sign_original(
        (corpus / PORTRAIT).read_bytes(), "image/jpeg", chain["credentials"], title="x.jpg", assertions=ASSORTED
    )
    assert all(secret in original for secret in ASSORTED_SECRETS)
    signed = sign(signer, original)
    assert [secret.decode() for secret in ASSORTED_SECRETS if secret in signed] == []
    detailed = read_store(signed, "image/jpeg", detailed=True)
    parent = read_store(original, "image/jpeg")["active_manifest"]
    assert set(detailed["manifests"][parent]["assertion_store"]) == {"c2pa.actions.v2", "c2pa.hash.data"}
    assert len(detailed["manifests"][detailed["active_manifest"]]["claim"]["redacted_assertions"]) == 8
    assert read_store(signed, "image/jpeg")["validation_state"] == "Valid"


def test_a_claim_v1_original_is_redacted_too(signer, corpus: Path):
    """c2pa-signed.jpg (corpus): a C2PA 1.x manifest with a JPEG claim thumbnail and a CreativeWork
    assertion; neither reaches the derivative, which validates."""
    original = (corpus / "c2pa-signed.jpg").read_bytes()
    with (
        c2pa.Context.from_dict(SETTINGS) as context,
        c2pa.Reader("image/jpeg", io.BytesIO(original), context=context) as reader,
    ):
        store = json.loads(reader.json())
        thumbnail = io.BytesIO()
        reader.resource_to_stream(store["manifests"][store["active_manifest"]]["thumbnail"]["identifier"], thumbnail)
    assert len(thumbnail.getvalue()) > 30_000
    signed = sign(signer, original, "c2pa-signed.jpg")
    assert thumbnail.getvalue()[2000:2064] not in signed
    derivative = read_store(signed, "image/jpeg", detailed=True)
    assert set(derivative["manifests"][store["active_manifest"]]["assertion_store"]) == {
        "c2pa.actions",
        "c2pa.hash.data",
    }
    assert read_store(signed, "image/jpeg")["validation_state"] == "Valid"


def test_a_store_that_cannot_be_redacted_is_not_carried(signer, chain: dict, monkeypatch: pytest.MonkeyPatch):
    """Fail closed: when c2pa refuses a redaction (here: one of an assertion that is not there), or
    the store holds parts that are not assertions (data boxes, verifiable credentials), the derivative
    carries no store of the original at all: the ingredient is its title, format and relationship."""
    monkeypatch.setattr(
        provenance_sign,
        "redactions",
        lambda data, mime, contexts: [
            *redactions(data, mime, contexts),
            f"self#jumbf=/c2pa/{chain['editor_label']}/c2pa.assertions/com.example.absent",
        ],
    )
    refused = sign(signer, chain["editor"])
    monkeypatch.undo()
    assert redactions(chain["editor"] + b"c2pa.databoxes", "image/jpeg", CONTEXTS) is None
    assert redactions(chain["editor"] + b"c2pa.credentials", "image/jpeg", CONTEXTS) is None
    unredactable = sign(signer, chain["editor"] + b"c2pa.credentials")
    for derivative in (refused, unredactable):
        assert [secret.decode() for secret in SECRETS if secret in derivative] == []
        store = read_store(derivative, "image/jpeg")
        assert list(store["manifests"]) == [store["active_manifest"]]  # no manifest of the original
        (ingredient,) = store["manifests"][store["active_manifest"]]["ingredients"]
        assert (ingredient["title"], ingredient["format"], ingredient["relationship"]) == (
            "portrait.jpg",
            "image/jpeg",
            "parentOf",
        )
        assert "manifest_data" not in ingredient and "thumbnail" not in ingredient
        assert store["validation_state"] == "Valid"
