"""Signed derivatives through the proxy (``c2pa_origins``): what a client downloads carries a C2PA
manifest naming the original as its parent and the actions done, read back with c2pa-python; other
origins are untouched; private metadata is still stripped. Certificates: testkit.c2pa (generated).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pyvips

pytest.importorskip("c2pa", reason="c2pa-python comes with the [vision] extra")

from edgeproxy.compose import StartupError, compose  # noqa: E402
from edgeproxy.provenance.context import C2paContexts  # noqa: E402
from edgeproxy.provenance.read import read_manifest  # noqa: E402
from edgeproxy.settings import load_settings  # noqa: E402
from testkit.app import KEY, make_client, signed  # noqa: E402
from testkit.c2pa import make_credentials  # noqa: E402
from testkit.images import decode  # noqa: E402

#: What the proxy's own compose() makes: the c2pa contexts reads go through.
CONTEXTS = C2paContexts()


@pytest.fixture(scope="module")
def setup(corpus: Path, tmp_path_factory) -> tuple[dict[str, str], dict[str, str]]:
    """(origins, c2pa settings): ``signed`` and ``plain`` folders holding the same photos."""
    root = tmp_path_factory.mktemp("c2pa")
    origins = {}
    for name in ("signed", "plain"):
        folder = root / name
        folder.mkdir()
        for photo in ("giunchedi-portrait.jpg", "exif-copyright.jpg", "c2pa-signed.jpg"):
            shutil.copyfile(corpus / photo, folder / photo)
        origins[name] = str(folder)
    credentials = make_credentials()
    (root / "chain.pem").write_bytes(credentials.chain)
    (root / "key.pem").write_bytes(credentials.key)
    return origins, {
        "c2pa_origins": ["signed"],
        "c2pa_certificate": str(root / "chain.pem"),
        "c2pa_private_key": str(root / "key.pem"),
    }


@pytest.fixture(scope="module")
def client(setup):
    origins, c2pa = setup
    with make_client(origins, **c2pa) as client:
        yield client


@pytest.mark.parametrize(("fmt", "mime"), [("jpeg", "image/jpeg"), ("webp", "image/webp"), ("png", "image/png")])
def test_a_derivative_of_a_signed_origin_names_its_parent_and_actions(client, fmt, mime):
    response = client.get(signed(f"/w:200/h:200/fit:cover/f:{fmt}/signed/giunchedi-portrait.jpg"))
    assert response.status_code == 200
    assert response.headers["content-type"] == mime
    assert response.headers["etag"].startswith('W/"')  # a signature differs on each render: weak
    image = decode(response.content)
    assert (image.width, image.height) == (200, 200)
    manifest = read_manifest(response.content, mime, CONTEXTS)
    assert manifest["validation_state"] == "Valid"  # the test CA is not a trust anchor: Valid, not Trusted
    assert manifest["title"] == "giunchedi-portrait.jpg"
    assert [(i["title"], i["format"], i["relationship"]) for i in manifest["ingredients"]] == [
        ("giunchedi-portrait.jpg", "image/jpeg", "parentOf")
    ]
    assert [a["action"] for a in manifest["actions"]] == [
        "c2pa.opened",
        "c2pa.resized",
        "c2pa.cropped",
        "c2pa.transcoded",
    ]
    assert manifest["claim_generator"].startswith("edgeproxy")


def test_the_weak_etag_revalidates(client):
    path = signed("/w:120/f:jpeg/signed/giunchedi-portrait.jpg")
    etag = client.get(path).headers["etag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag


def test_other_origins_are_not_signed(client):
    response = client.get(signed("/w:200/f:jpeg/plain/giunchedi-portrait.jpg"))
    assert response.status_code == 200
    assert read_manifest(response.content, "image/jpeg", CONTEXTS) is None
    assert response.headers["etag"].startswith('"')


def test_filters_are_declared_and_private_metadata_is_still_stripped(client):
    response = client.get(signed("/w:300/blur:2/f:jpeg/signed/exif-copyright.jpg"))
    assert response.status_code == 200
    manifest = read_manifest(response.content, "image/jpeg", CONTEXTS)
    assert [a["action"] for a in manifest["actions"]] == [
        "c2pa.opened",
        "c2pa.resized",
        "c2pa.filtered",
        "c2pa.transcoded",
    ]
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert image.get_typeof("exif-data") == 0  # EXIF (camera serials, GPS) gone; the manifest is C2PA's own
    assert image.get_typeof("xmp-data") == 0


def test_an_original_with_content_credentials_is_the_parent_of_the_derivative(client):
    response = client.get(signed("/w:300/f:jpeg/signed/c2pa-signed.jpg"))
    manifest = read_manifest(response.content, "image/jpeg", CONTEXTS)
    assert manifest["validation_state"] == "Valid"
    assert [(i["title"], i["relationship"]) for i in manifest["ingredients"]] == [("c2pa-signed.jpg", "parentOf")]


def test_a_certificate_c2pa_refuses_stops_start_up(setup, tmp_path):
    origins, c2pa = setup
    other = make_credentials()
    key = tmp_path / "other-key.pem"
    key.write_bytes(other.key)  # a key that does not match the certificate
    settings = load_settings(origins=origins, signing_key=KEY, **{**c2pa, "c2pa_private_key": str(key)})
    with pytest.raises(StartupError) as info:
        compose(settings)
    assert str(info.value).startswith("c2pa: ")
    assert str(key) in str(info.value)
