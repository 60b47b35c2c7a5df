"""thumbor URLs (edgeproxy.compat.thumbor): signatures held to thumbor's and libthumbor's own vectors,
the option mapping, the /thumbor mount (the same bytes and ETag as the equivalent native URL), the
``edgeproxy translate`` command, and output sizes held to thumbor 7.8 itself on the same images.

Vectors (written here by hand from the upstream files; no upstream code is copied):

- libthumbor ``tests/test_cryptourl.py`` (github.com/thumbor/libthumbor, commit
  7712ca11f5b82cca04cc29f27d838c467685c93f): key ``my-security-key``, ``test_generated_url_1..3``.
- thumbor ``docs/libraries.rst`` (github.com/thumbor/thumbor, commit
  4a59f4e82053abf597ca3a849d726709dfed23cf), "Library Tests", scenarios 1 and 3-6.
- thumbor ``tests/handlers/test_base_handler.py`` (commit f686b58225456f95f49e272a43094105abf929a5):
  ``SECURITY_KEY="ACME-SEC"``, the signed ``smart``, percent-encoded UTF-8 and ``fill(blue)`` URLs.
- thumbor ``tests/test_url_composer.py`` (commit f686b58225456f95f49e272a43094105abf929a5): key
  ``MY-SECURITY-KEY``, ``-w 200 -e 300 myserver.com/myimg.jpg``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from edgeproxy import cli
from edgeproxy.compat.thumbor import ThumborConfig, focused, parse, sign, signature, translate, verify
from edgeproxy.errors import ProxyError
from edgeproxy.settings import SettingsError, load_settings
from edgeproxy.url.signing import sign_path
from edgeproxy.url.spec import canonical
from testkit.app import KEY, make_client
from testkit.env import IN_CI
from testkit.images import decode, encode, flat, photo, with_alpha
from testkit.net import free_port

#: (key, path after the signature, signature) from the upstream files in the module docstring.
VECTORS = [
    ("my-security-key", "300x200/my.server.com/some/path/to/image.jpg", "8ammJH8D-7tXy6kU3lTvoXlhu4o="),
    ("my-security-key", "10x10:200x200/300x200/my.server.com/some/path/to/image.jpg", "B35oBEIwztbc3jm7vsdqLez2C78="),
    (
        "my-security-key",
        "10x10:200x200/300x200/filters:brightness(20):contrast(10)/my.server.com/some/path/to/image.jpg",
        "as8U2DbUUtTMgvPF26LkjS3MocY=",
    ),
    ("my-security-key", "meta/my.server.com/some/path/to/image.jpg", "Ps3ORJDqxlSQ8y00T29GdNAh2CY="),
    ("my-security-key", "smart/my.server.com/some/path/to/image.jpg", "-2NHpejRK2CyPAm61FigfQgJBxw="),
    ("my-security-key", "fit-in/my.server.com/some/path/to/image.jpg", "uvLnA6TJlF-Cc-L8z9pEtfasO3s="),
    (
        "my-security-key",
        "filters:brightness(10):contrast(20)/my.server.com/some/path/to/image.jpg",
        "ZZtPCw-BLYN1g42Kh8xTcRs0Qls=",
    ),
    ("ACME-SEC", "smart/image.jpg", "_wIUeSaeHw8dricKG2MGhqu5thk="),
    ("ACME-SEC", "smart/alabama1_ap620%C3%A9.jpg", "lc6e3kkm_2Ww7NWho8HPOe-sqLU="),
    ("ACME-SEC", "filters:fill(blue)/image.jpg", "5YRxzS2yxZxj9SZ50SoZ11eIdDI="),
    ("MY-SECURITY-KEY", "200x300/myserver.com/myimg.jpg", "G_dykuWBGyEil5JnNh9cBke0Ajo="),
]

THUMBOR_KEY = "thumbor-test-key"
CONFIG = ThumborConfig(
    THUMBOR_KEY.encode(),
    origins=(("img.example.com/", "media"), ("", "samples")),
    signing_key=KEY,
)


def mapped(path: str, config: ThumborConfig = CONFIG) -> str:
    """The canonical edgeproxy options, origin and key of the thumbor ``path`` (signed here)."""
    m = parse(sign(path, THUMBOR_KEY), config)
    return f"{canonical(m.spec)}/{m.origin}/{m.key}"


def refused(path: str, config: ThumborConfig = CONFIG, *, signed: bool = True) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        parse(sign(path, THUMBOR_KEY) if signed else path, config)
    return info.value


@pytest.mark.parametrize(("key", "path", "expected"), VECTORS)
def test_signatures_are_thumbors_own_vectors(key: str, path: str, expected: str):
    assert signature(path, key) == expected
    assert sign(path, key) == f"/{expected}/{path}"
    assert verify(f"/{expected}/{path}", ThumborConfig(key.encode())) == path


def test_a_percent_encoded_signature_is_accepted_as_thumbor_does():
    key, path, expected = VECTORS[0]
    config = ThumborConfig(key.encode(), origins=(("", "samples"),))
    assert parse(f"/{expected.replace('=', '%3D')}/{path}", config).key == "my.server.com/some/path/to/image.jpg"


@pytest.mark.parametrize(
    "url",
    [
        "/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x201/my.server.com/some/path/to/image.jpg",  # path changed
        "/8ammJH8D-7tXy6kU3lTvoXlhu4p=/300x200/my.server.com/some/path/to/image.jpg",  # signature changed
        "/8ammJH8D-7tXy6kU3lTvoXlhu4o/300x200/my.server.com/some/path/to/image.jpg",  # padding missing
        "/unsafe/300x200/my.server.com/some/path/to/image.jpg",  # unsafe not allowed
        "/8ammJH8D-7tXy6kU3lTvoXlhu4o=",  # nothing after the signature
    ],
)
def test_a_bad_signature_is_403(url: str):
    config = ThumborConfig(b"my-security-key", origins=(("", "samples"),))
    assert refused(url, config, signed=False).status == 403


def test_the_signature_is_checked_before_anything_else():
    # An unsupported filter, an unmapped image and a malformed crop: still 403 with a wrong key.
    for path in ("filters:brightness(10)/a.jpg", "300x200/nowhere.jpg", "20x20:10x10/a.jpg"):
        config = ThumborConfig(b"another-key", origins=(("img/", "media"),))
        assert refused(path, config).status == 403
    assert refused("filters:brightness(10)/a.jpg").status == 400  # and with the right key, the 400


def test_unsafe_urls_only_when_allowed():
    allowed = ThumborConfig(None, allow_unsafe=True, origins=(("", "samples"),))
    assert parse("/unsafe/300x200/a.jpg", allowed).spec.width == 300
    assert refused("/unsafe/300x200/a.jpg", CONFIG, signed=False).message == (
        "unsafe thumbor URLs are not allowed on this server (compat_thumbor_unsafe)"
    )
    assert refused("/unsafe/300x200/a.jpg", ThumborConfig(None, origins=(("", "samples"),)), signed=False).status == 403


@pytest.mark.parametrize(
    ("thumbor", "edgeproxy"),
    [
        ("a.jpg", "/samples/a.jpg"),
        ("300x200/a.jpg", "/w:300/h:200/fit:cover/enlarge:1/samples/a.jpg"),
        ("300x0/a.jpg", "/w:300/fit:cover/enlarge:1/samples/a.jpg"),
        ("x200/a.jpg", "/h:200/fit:cover/enlarge:1/samples/a.jpg"),
        ("fit-in/300x200/a.jpg", "/w:300/h:200/samples/a.jpg"),
        ("adaptive-fit-in/300x300/a.jpg", "/w:300/h:300/samples/a.jpg"),
        ("full-fit-in/300x200/a.jpg", "/w:300/h:200/fit:outside/enlarge:1/samples/a.jpg"),
        ("10x20:110x220/300x200/a.jpg", "/w:300/h:200/fit:cover/c:10:20:100:200/enlarge:1/samples/a.jpg"),
        ("0x0:0x0/300x200/a.jpg", "/w:300/h:200/fit:cover/enlarge:1/samples/a.jpg"),
        ("-300x-200/a.jpg", "/w:300/h:200/fit:cover/flip:hv/enlarge:1/samples/a.jpg"),
        # thumbor crops, then flips; edgeproxy flips, then crops: the anchor flips with the image
        ("-300x200/left/a.jpg", "/w:300/h:200/fit:cover/g:east/flip:h/enlarge:1/samples/a.jpg"),
        ("-x/a.jpg", "/flip:h/samples/a.jpg"),
        ("300x200/left/top/a.jpg", "/w:300/h:200/fit:cover/g:northwest/enlarge:1/samples/a.jpg"),
        ("300x200/right/a.jpg", "/w:300/h:200/fit:cover/g:east/enlarge:1/samples/a.jpg"),
        ("300x200/center/bottom/a.jpg", "/w:300/h:200/fit:cover/g:south/enlarge:1/samples/a.jpg"),
        ("300x200/smart/a.jpg", "/w:300/h:200/fit:cover/g:smart/enlarge:1/samples/a.jpg"),
        ("fit-in/300x200/left/smart/a.jpg", "/w:300/h:200/samples/a.jpg"),  # fit-in crops nothing
        ("fit-in/300x200/filters:fill(red)/a.jpg", "/w:300/h:200/fit:pad/bg:ff0000/samples/a.jpg"),
        ("fit-in/300x200/filters:fill(fff):upscale()/a.jpg", "/w:300/h:200/fit:pad/bg:ffffff/enlarge:1/samples/a.jpg"),
        ("fit-in/300x200/filters:fill(transparent)/a.jpg", "/w:300/h:200/fit:pad/bg:00000000/samples/a.jpg"),
        ("300x200/filters:fill(00ff0080)/a.jpg", "/w:300/h:200/fit:cover/bg:00ff0080/enlarge:1/samples/a.jpg"),
        ("fit-in/300x0/filters:fill(red)/a.jpg", "/w:300/bg:ff0000/samples/a.jpg"),
        ("300x200/filters:background_color(blue)/a.jpg", "/w:300/h:200/fit:cover/bg:0000ff/enlarge:1/samples/a.jpg"),
        ("fit-in/300x200/filters:upscale()/a.jpg", "/w:300/h:200/enlarge:1/samples/a.jpg"),
        ("300x200/filters:upscale()/a.jpg", "/w:300/h:200/fit:cover/enlarge:1/samples/a.jpg"),
        ("300x200/filters:no_upscale()/a.jpg", "/w:300/h:200/fit:cover/samples/a.jpg"),
        ("full-fit-in/300x200/filters:no_upscale()/a.jpg", "/w:300/h:200/fit:outside/samples/a.jpg"),
        ("300x200/filters:stretch()/a.jpg", "/w:300/h:200/fit:fill/enlarge:1/samples/a.jpg"),
        (
            "300x200/filters:format(webp):quality(70)/a.jpg",
            "/w:300/h:200/fit:cover/f:webp/q:70/enlarge:1/samples/a.jpg",
        ),
        ("filters:format(jpg)/a.png", "/f:jpeg/samples/a.png"),
        ("filters:blur(5)/a.jpg", "/blur:5/samples/a.jpg"),
        ("filters:blur(8,2.5)/a.jpg", "/blur:2.5/samples/a.jpg"),
        ("filters:sharpen(1.5,0.8,true)/a.jpg", "/sharpen:0.8/samples/a.jpg"),
        ("filters:strip_exif():strip_icc()/a.jpg", "/samples/a.jpg"),
        ("filters:grayscale()/a.jpg", "/gray:1/samples/a.jpg"),
        # trim: the top-left colour; thumbor's tolerance (RGB distance) over sqrt(3) per band
        ("trim/300x200/a.jpg", "/w:300/h:200/fit:cover/trim:0/enlarge:1/samples/a.jpg"),
        ("trim:top-left:30/a.jpg", "/trim:17.32/samples/a.jpg"),
        ("trim:20/fit-in/300x200/a.jpg", "/w:300/h:200/trim:11.55/samples/a.jpg"),
        (
            "300x200/filters:max_bytes(20000):quality(90)/a.jpg",
            "/w:300/h:200/fit:cover/q:90/mb:20000/enlarge:1/samples/a.jpg",
        ),
        ("filters:rotate(180)/a.jpg", "/rot:180/samples/a.jpg"),
        ("filters:rotate(-90)/a.jpg", "/rot:90/samples/a.jpg"),
        # rotate turns the output: the box swaps sides, the crop's anchor and the flips turn with it
        ("300x200/left/filters:rotate(90)/a.jpg", "/w:200/h:300/fit:cover/g:south/rot:270/enlarge:1/samples/a.jpg"),
        (
            "-300x200/left/top/filters:rotate(270)/a.jpg",
            "/w:200/h:300/fit:cover/g:southeast/rot:90/flip:v/enlarge:1/samples/a.jpg",
        ),
        ("img.example.com/photos/a%20b.jpg", "/media/photos/a b.jpg"),  # the longest prefix, decoded
        ("img.example.com.evil/a.jpg", "/samples/img.example.com.evil/a.jpg"),
    ],
)
def test_thumbor_options_map_to_edgeproxy_options(thumbor: str, edgeproxy: str):
    assert mapped(thumbor) == edgeproxy


def test_smart_is_the_face_gravity_when_the_face_model_is_configured():
    faces = ThumborConfig(THUMBOR_KEY.encode(), origins=(("", "samples"),), faces=True)
    assert mapped("300x200/smart/a.jpg", faces) == "/w:300/h:200/fit:cover/g:face/enlarge:1/samples/a.jpg"


@pytest.mark.parametrize(
    ("thumbor", "status", "message"),
    [
        (
            "trim:bottom-right/a.jpg",
            400,
            "thumbor option trim:bottom-right: not supported (edgeproxy trims the top-left colour)",
        ),
        ("trim:443/a.jpg", 400, "thumbor option trim: tolerance 443 is over 442"),
        (
            "meta/a.jpg",
            400,
            "thumbor option meta: not supported (edgeproxy's GET /info answers with the original's facts)",
        ),
        ("debug/a.jpg", 400, "thumbor option debug: not supported"),
        ("origx100/a.jpg", 400, "thumbor size orig: not supported (give the size, or 0 to keep the ratio)"),
        ("fit-in/300x200x/a.jpg", 404, "no origin configured for this image (compat_thumbor_origins)"),
        (
            "20x20:10x30/a.jpg",
            400,
            "thumbor crop AxB:CxD: the bottom-right corner must be right of and below the top-left",
        ),
        ("30000x1/a.jpg", 400, "thumbor width 30000: over 16384"),
        ("filters:grayscale(1)/a.jpg", 400, "thumbor filter grayscale: expected 0 arguments, got 1"),
        ("filters:focal(10x10)/a.jpg", 400, "thumbor filter focal: expected LEFTxTOP:RIGHTxBOTTOM, got '10x10'"),
        (
            "filters:focal(20x20:10x30)/a.jpg",
            400,
            "thumbor filter focal: the bottom-right corner must be right of and below the top-left",
        ),
        ("filters:max_bytes(1000)/a.jpg", 400, "thumbor filter max_bytes: 1000 is outside 1024..104857600"),
        ("filters:max_bytes()/a.jpg", 400, "thumbor filter max_bytes: expected 1 arguments, got 0"),
        ("filters:brightness(10)/a.jpg", 400, "thumbor filter brightness: not supported"),
        (
            "filters:fill(auto)/a.jpg",
            400,
            "thumbor filter fill: 'auto' is not a colour edgeproxy supports (a name or hex)",
        ),
        ("filters:fill(red,true)/a.jpg", 400, "thumbor filter fill: fill_transparent is not supported"),
        ("filters:format(heif)/a.jpg", 400, "thumbor filter format: 'heif' is not one of jpeg|jpg|png|gif|webp|avif"),
        ("filters:quality(0)/a.jpg", 400, "thumbor filter quality: 0 is outside 1..100"),
        ("filters:quality(high)/a.jpg", 400, "thumbor filter quality: 'high' is not a whole number"),
        ("filters:rotate(45)/a.jpg", 400, "thumbor filter rotate: the angle must be a multiple of 90"),
        ("filters:sharpen(1)/a.jpg", 400, "thumbor filter sharpen: expected 3 arguments, got 1"),
        ("filters:quality(80):quality(70)/a.jpg", 400, "thumbor filter quality: given more than once"),
        ("filters:quality(80);blur(2)/a.jpg", 400, "thumbor filters: expected ':' between filters, got ';blur(2)'"),
        (
            "300x200/filters:stretch():no_upscale()/a.jpg",
            400,
            "thumbor filters stretch and no_upscale together: not supported",
        ),
        (
            "adaptive-fit-in/300x200/a.jpg",
            400,
            "thumbor option adaptive-fit-in: not supported with a box that is not square (it swaps the box for an "
            "original of the other orientation, unknown from the URL)",
        ),
    ],
)
def test_what_edgeproxy_cannot_map_is_refused_by_name(thumbor: str, status: int, message: str):
    config = ThumborConfig(THUMBOR_KEY.encode(), origins=(("img/", "media"), ("a.jpg", "samples")))
    error = refused(thumbor, config)
    assert (error.status, error.message) == (status, message)


@pytest.mark.parametrize(
    ("thumbor", "edgeproxy"),
    [
        # the centre of the region (340, 240) in fractions of the 400x300 original
        ("300x100/filters:focal(300x200:380x280)/a.jpg", "/w:300/h:100/fit:cover/g:fp:0.85:0.8/enlarge:1"),
        ("300x100/smart/filters:focal(300x200:380x280)/a.jpg", "/w:300/h:100/fit:cover/g:fp:0.85:0.8/enlarge:1"),
        # after the URL's crop: the centre (270, 170) is (170, 70) of the 200x200 region
        (
            "100x100:300x300/50x20/filters:focal(250x150:290x190)/a.jpg",
            "/w:50/h:20/fit:cover/g:fp:0.85:0.35/c:100:100:200:200/enlarge:1",
        ),
        # a focal point outside the crop is dropped (thumbor's adjust_focal_points): the alignment holds
        (
            "0x0:100x100/50x20/left/filters:focal(300x200:380x280)/a.jpg",
            "/w:50/h:20/fit:cover/g:west/c:0:0:100:100/enlarge:1",
        ),
        # turned with the image: rotate(90) counter-clockwise takes (0.85, 0.8) to (0.8, 0.15)
        (
            "300x100/filters:focal(300x200:380x280):rotate(90)/a.jpg",
            "/w:100/h:300/fit:cover/g:fp:0.8:0.15/rot:270/enlarge:1",
        ),
        ("fit-in/300x100/filters:focal(300x200:380x280)/a.jpg", "/w:300/h:100"),  # nothing to anchor
    ],
)
def test_a_focal_region_anchors_the_crop_once_the_originals_size_is_known(thumbor: str, edgeproxy: str):
    m = parse(sign(thumbor, THUMBOR_KEY), CONFIG)
    assert canonical(focused(m, 400, 300)) == edgeproxy
    with pytest.raises(ProxyError, match="thumbor filter focal: the crop's anchor depends on the original's size"):
        translate(sign(thumbor, THUMBOR_KEY), CONFIG)


def test_an_image_no_prefix_maps_is_404_never_fetched():
    config = ThumborConfig(THUMBOR_KEY.encode(), origins=(("img.example.com/", "media"),))
    error = refused("300x200/https://elsewhere.example/a.jpg", config)
    assert (error.status, error.message) == (404, "no origin configured for this image (compat_thumbor_origins)")
    assert refused("img.example.com/", config).status == 404  # a prefix alone names no image


def test_translate_signs_the_native_path_with_edgeproxys_key():
    native = translate(sign("fit-in/300x200/filters:format(webp)/img.example.com/a.jpg", THUMBOR_KEY), CONFIG)
    assert native == sign_path("/w:300/h:200/f:webp/media/a.jpg", KEY)


def test_settings_refuse_a_thumbor_mount_that_cannot_work():
    base = {"allow_unsigned": True, "compat_thumbor": True}
    cases = [
        ({"compat_thumbor_origins": {"": "samples"}}, "compat_thumbor needs thumbor_security_key"),
        ({"thumbor_security_key": "k"}, "compat_thumbor needs compat_thumbor_origins"),
        ({"thumbor_security_key": "k", "compat_thumbor_origins": {"": "nope"}}, "unknown origins ['nope']"),
        ({"compat_thumbor_prefix": "/info"}, "compat_thumbor_prefix"),
        ({"compat_thumbor_prefix": "/thumbor/"}, "compat_thumbor_prefix"),
    ]
    for overrides, fragment in cases:
        with pytest.raises(SettingsError, match=None) as info:
            load_settings(**base, **overrides)
        assert fragment in str(info.value), str(info.value)
    settings = load_settings(
        **base, compat_thumbor_prefix="", compat_thumbor_unsafe=True, compat_thumbor_origins={"": "samples"}
    )
    assert settings.compat_thumbor_prefix == ""


# --------------------------------------------------------------------------- the /thumbor mount


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic originals: a 400x300 JPEG, a 240x360 PNG, a 120x80 PNG and a 200x100 PNG with alpha."""
    folder = tmp_path_factory.mktemp("thumbor-images")
    (folder / "land.jpg").write_bytes(encode(photo(400, 300), "jpeg"))
    (folder / "port.png").write_bytes(encode(photo(240, 360, seed=1), "png"))
    (folder / "small.png").write_bytes(encode(photo(120, 80, seed=2), "png"))
    (folder / "alpha.png").write_bytes(encode(with_alpha(photo(200, 100, seed=3)), "png"))
    # a product shot on a white sheet: a 200x120 photo at (60, 50) of a 300x200 white canvas
    canvas = flat(300, 200, (255, 255, 255)).insert(photo(200, 120, seed=4), 60, 50)
    (folder / "framed.png").write_bytes(encode(canvas, "png"))
    return folder


@pytest.fixture(scope="module")
def client(images: Path) -> Iterator[httpx.Client]:
    with make_client(
        {"media": str(images)},
        compat_thumbor=True,
        thumbor_security_key=THUMBOR_KEY,
        compat_thumbor_origins={"img.example.com/": "media"},
    ) as c:
        yield c


def test_a_thumbor_url_and_its_native_translation_answer_the_same_bytes_and_etag(client: httpx.Client):
    config = ThumborConfig(THUMBOR_KEY.encode(), origins=(("img.example.com/", "media"),), signing_key=KEY)
    for path in (
        "300x200/smart/img.example.com/land.jpg",
        "fit-in/200x200/filters:fill(ff0000):format(png)/img.example.com/alpha.png",
        "-100x0/right/filters:rotate(90):quality(60):blur(2)/img.example.com/land.jpg",
        "200x150/filters:grayscale():max_bytes(3000):format(webp)/img.example.com/land.jpg",
        "fit-in/150x150/filters:grayscale():fill(ff0000)/img.example.com/alpha.png",
    ):
        thumbor = sign(path, THUMBOR_KEY)
        for accept in ("image/avif,image/webp,*/*", "*/*"):
            headers = {"Accept": accept}
            compat = client.get("/thumbor" + thumbor, headers=headers)
            native = client.get(translate(thumbor, config), headers=headers)
            assert compat.status_code == native.status_code == 200, compat.text
            assert compat.content == native.content
            for name in ("etag", "content-type", "cache-control", "vary", "surrogate-key"):
                assert compat.headers.get(name) == native.headers.get(name), name
            assert (
                client.get(
                    "/thumbor" + thumbor, headers={**headers, "If-None-Match": compat.headers["etag"]}
                ).status_code
                == 304
            )


def test_a_focal_url_answers_what_the_native_url_with_its_focal_point_does(client: httpx.Client):
    thumbor = client.get(
        "/thumbor" + sign("300x100/filters:focal(300x200:380x280)/img.example.com/land.jpg", THUMBOR_KEY)
    )
    native = client.get(sign_path("/w:300/h:100/fit:cover/g:fp:0.85:0.8/enlarge:1/media/land.jpg", KEY))
    assert thumbor.status_code == native.status_code == 200
    assert (thumbor.content, thumbor.headers["etag"]) == (native.content, native.headers["etag"])
    missing = client.get("/thumbor" + sign("300x100/filters:focal(1x1:2x2)/img.example.com/missing.jpg", THUMBOR_KEY))
    assert missing.status_code == 404 and missing.headers["surrogate-key"]


def test_the_mount_negotiates_the_format_unless_a_format_filter_names_one(client: httpx.Client):
    auto = sign("100x100/img.example.com/land.jpg", THUMBOR_KEY)
    assert (
        client.get("/thumbor" + auto, headers={"Accept": "image/avif,image/webp,*/*"}).headers["content-type"]
        == "image/avif"
    )
    assert client.get("/thumbor" + auto, headers={"Accept": "image/webp,*/*"}).headers["content-type"] == "image/webp"
    png = sign("100x100/filters:format(png)/img.example.com/land.jpg", THUMBOR_KEY)
    response = client.get("/thumbor" + png, headers={"Accept": "image/avif,*/*"})
    image = decode(response.content)
    assert (response.headers["content-type"], image.width, image.height) == ("image/png", 100, 100)


def test_the_mount_answers_errors_through_the_edge(client: httpx.Client):
    cases = [
        ("/thumbor/" + "A" * 27 + "=/300x200/img.example.com/land.jpg", 403, "invalid signature"),
        ("/thumbor" + sign("300x200/img.example.com/missing.jpg", THUMBOR_KEY), 404, "original not found"),
        ("/thumbor" + sign("300x200/elsewhere.example/land.jpg", THUMBOR_KEY), 404, "no origin configured"),
        ("/thumbor" + sign("filters:brightness(10)/img.example.com/land.jpg", THUMBOR_KEY), 400, "brightness"),
        ("/thumbor/unsafe/300x200/img.example.com/land.jpg", 403, "compat_thumbor_unsafe"),
        # a key that would leave the origin's folder: the origin's 404, as for edgeproxy's own URLs
        ("/thumbor" + sign("300x200/img.example.com/..%2F..%2Fetc%2Fpasswd", THUMBOR_KEY), 404, "original not found"),
    ]
    for url, status, fragment in cases:
        response = client.get(url)
        assert response.status_code == status, (url, response.text)
        assert fragment in response.text
        assert "immutable" not in response.headers["cache-control"]
        assert response.headers["x-request-id"]
    query = client.get("/thumbor" + sign("300x200/img.example.com/land.jpg", THUMBOR_KEY) + "?v=1")
    assert query.status_code == 400


def test_without_compat_thumbor_there_is_no_mount(images: Path):
    with make_client({"media": str(images)}) as plain:
        response = plain.get("/thumbor" + sign("300x200/img.example.com/land.jpg", THUMBOR_KEY))
    assert response.status_code == 403  # a native URL whose "signature" is the word thumbor


def test_an_empty_prefix_serves_thumbor_urls_at_the_root_and_the_probes_stay(images: Path):
    with make_client(
        {"media": str(images)},
        compat_thumbor=True,
        compat_thumbor_prefix="",
        thumbor_security_key=THUMBOR_KEY,
        compat_thumbor_origins={"": "media"},
    ) as root:
        answer = root.get(sign("fit-in/100x100/land.jpg", THUMBOR_KEY))
        assert answer.status_code == 200 and size(decode(answer.content)) == (100, 75)
        assert root.get("/healthz").status_code == 200
        assert root.get(sign_path("/w:100/media/land.jpg", KEY)).status_code == 403  # native URLs: another host


def test_translate_command_prints_the_native_url(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("EDGEPROXY_SIGNING_KEY", KEY)
    monkeypatch.setenv("EDGEPROXY_THUMBOR_SECURITY_KEY", THUMBOR_KEY)
    monkeypatch.setenv("EDGEPROXY_COMPAT_THUMBOR_ORIGINS", '{"img.example.com/": "samples"}')
    url = "https://cdn.example/thumbor" + sign("fit-in/300x200/filters:format(webp)/img.example.com/a.jpg", THUMBOR_KEY)
    assert cli.main(["translate", url]) == 0
    assert capsys.readouterr().out == "https://cdn.example" + sign_path("/w:300/h:200/f:webp/samples/a.jpg", KEY) + "\n"
    grey = sign("filters:grayscale():max_bytes(20000)/img.example.com/a.jpg", THUMBOR_KEY)
    assert cli.main(["translate", "/thumbor" + grey]) == 0
    assert capsys.readouterr().out == sign_path("/mb:20000/gray:1/samples/a.jpg", KEY) + "\n"
    assert cli.main(["translate", "/thumbor" + sign("filters:brightness(10)/img.example.com/a.jpg", THUMBOR_KEY)]) == 1
    assert capsys.readouterr().err == "edgeproxy translate: 400 thumbor filter brightness: not supported\n"
    assert cli.main(["translate", "/elsewhere/x/a.jpg"]) == 2


# --------------------------------------------------------------------------- held to thumbor itself

#: Where the reference thumbor lives: ``.ci/run`` installs thumbor 7.8 there (``bench.servers.install_thumbor``).
THUMBOR_VENV = Path(os.environ.get("EDGEPROXY_THUMBOR_VENV", Path(tempfile.gettempdir()) / "edgeproxy-thumbor-venv"))

#: (image, thumbor path): output sizes must be equal (thumbor 7.8, Pillow engine, no detectors).
SAME_SIZE = [
    ("land.jpg", "300x200"),
    ("land.jpg", "200x300"),
    ("land.jpg", "300x0"),
    ("land.jpg", "0x100"),
    ("small.png", "600x400"),
    ("small.png", "600x300/filters:no_upscale()"),
    ("port.png", "300x200/filters:no_upscale()"),
    ("land.jpg", "fit-in/300x300"),
    ("port.png", "fit-in/200x100"),
    ("small.png", "fit-in/600x600"),
    ("small.png", "fit-in/600x600/filters:upscale()"),
    ("land.jpg", "full-fit-in/300x300"),
    ("small.png", "full-fit-in/600x100"),
    ("land.jpg", "fit-in/300x300/filters:fill(red)"),
    ("small.png", "fit-in/600x500/filters:fill(00ff00)"),
    ("land.jpg", "10x10:210x110/100x100"),
    ("land.jpg", "10x10:210x110"),
    ("land.jpg", "50x50:250x200/fit-in/100x100"),
    ("land.jpg", "300x200/left/top"),
    ("port.png", "300x200/right/bottom"),
    ("land.jpg", "-300x-200"),
    ("land.jpg", "300x200/smart"),
    ("land.jpg", "300x200/filters:rotate(90)"),
    ("port.png", "fit-in/300x200/filters:rotate(270)"),
    ("land.jpg", "300x100/filters:stretch()"),
    ("land.jpg", "adaptive-fit-in/200x200"),
    ("land.jpg", "300x200/right/top/filters:rotate(90)"),
    ("land.jpg", "-300x200/left/filters:rotate(270)"),
    ("land.jpg", "300x200/left/bottom/filters:rotate(180)"),
    ("port.png", "-200x-100/top"),
    ("land.jpg", "10x10:210x110/-100x100/left"),
    ("land.jpg", "300x100/filters:focal(300x200:380x280)"),
    ("land.jpg", "100x300/filters:focal(20x20:60x60)"),
    ("land.jpg", "10x10:310x210/100x100/filters:focal(250x150:290x190)"),
    ("land.jpg", "300x100/filters:focal(300x200:380x280):rotate(90)"),
    ("land.jpg", "-300x100/filters:focal(300x200:380x280)"),
    ("land.jpg", "300x200/filters:grayscale()"),
    ("port.png", "fit-in/200x100/filters:grayscale():max_bytes(4000)"),
    ("framed.png", "trim"),
    ("framed.png", "trim/100x0"),
    ("framed.png", "trim:top-left:20/fit-in/150x150"),
]
#: Cases whose pixels differ by design: thumbor without detectors (its default) crops ``smart`` at the
#: centre, edgeproxy where libvips' attention measure points.
UNLIKE = {"300x200/smart"}
#: (image, thumbor path, (thumbor's size), (edgeproxy's size)): differences by design, documented in
#: docs/migration/thumbor.md ("What differs").
DIFFERENT = [
    # no_upscale caps the box at the whole original in thumbor, at the cropped region in edgeproxy
    ("land.jpg", "0x0:200x150/300x0/filters:no_upscale()", (300, 225), (200, 150)),
    # fit-in with upscale(): thumbor truncates the side that follows the ratio (166.67 -> 166), edgeproxy rounds it
    ("small.png", "fit-in/250x250/filters:upscale()", (250, 166), (250, 167)),
]


@pytest.fixture(scope="module")
def thumbor(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """thumbor 7.8 serving ``images`` with ``THUMBOR_KEY``, on 127.0.0.1; its base URL."""
    from bench.servers import start_thumbor

    if not (THUMBOR_VENV / "bin" / "thumbor").exists():
        how = f"python3 -m venv {THUMBOR_VENV} && {THUMBOR_VENV}/bin/pip install thumbor==7.8.0, as .ci/run does"
        if IN_CI:
            pytest.fail(f"CI=true but thumbor is missing at {THUMBOR_VENV} ({how})")
        pytest.skip(f"thumbor 7.8 not installed at {THUMBOR_VENV} ({how}; EDGEPROXY_THUMBOR_VENV elsewhere)")
    overrides = {"SECURITY_KEY": THUMBOR_KEY, "ALLOW_UNSAFE_URL": False}
    server = start_thumbor(THUMBOR_VENV, images, free_port(), 1, tmp_path_factory.mktemp("thumbor"), overrides)
    try:
        yield server.base
    finally:
        server.stop()


def outputs(thumbor: str, client: httpx.Client, image: str, options: str) -> tuple[pyvips.Image, pyvips.Image]:
    """(thumbor's output, edgeproxy's) for the thumbor URL ``options/image``, signed, decoded."""
    theirs = httpx.get(thumbor + sign(f"{options}/{image}", THUMBOR_KEY), timeout=30)
    ours = client.get("/thumbor" + sign(f"{options}/img.example.com/{image}", THUMBOR_KEY))
    assert theirs.status_code == 200, (options, theirs.status_code)
    assert ours.status_code == 200, (options, ours.text)
    return decode(theirs.content), decode(ours.content)


def size(image: pyvips.Image) -> tuple[int, int]:
    return image.width, image.height


def unlikeness(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean absolute difference (0..255) of the two images shrunk to 8x8: a few units for the same
    picture through two resamplers and encoders, tens for a crop anchored elsewhere or a flip."""
    a, b = (im.flatten(background=[255, 255, 255]) if im.hasalpha() else im for im in (a, b))
    return float((a.resize(8 / a.width, vscale=8 / a.height) - b.resize(8 / b.width, vscale=8 / b.height)).abs().avg())


@pytest.mark.slow
def test_outputs_equal_thumbors_in_size_and_picture_for_every_mapped_case(thumbor: str, client: httpx.Client):
    found = {options: outputs(thumbor, client, image, options) for image, options in SAME_SIZE}
    unequal = {options: (size(a), size(b)) for options, (a, b) in found.items() if size(a) != size(b)}
    assert not unequal, unequal
    # The same picture: the crop anchored, flipped and turned as thumbor does (measured: at most 1.1).
    unlike = {options: unlikeness(a, b) for options, (a, b) in found.items() if options not in UNLIKE}
    assert max(unlike.values()) < 4, unlike
    for image, options, theirs, ours in DIFFERENT:
        a, b = outputs(thumbor, client, image, options)
        assert (size(a), size(b)) == (theirs, ours), options
    for options in ("300x200/filters:grayscale()", "fit-in/200x100/filters:grayscale():max_bytes(4000)"):
        theirs, ours = found[options]
        rgb = theirs[: min(3, theirs.bands)].numpy().astype(int)  # thumbor's JPEG is RGB, its PNG grey
        spread = 0 if rgb.ndim == 2 else int(abs(rgb - rgb[..., :1]).max())
        assert ours.bands == 1 and spread <= 2, options  # ours: a one-channel grey
