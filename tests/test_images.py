"""Pixels: orientation, colour management, alpha, animation and fit, decoded from real responses.

Real-world files (the corpus, ``client``) where the file's quirks are the point: EXIF orientation as
cameras write it, CMYK and wide-gamut profiles, camera EXIF with GPS. Synthetic originals
(``photo_client``, ``testkit.images.library``) where any photo will do: alpha, animation, fit, gravity,
crops, effects, quality."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from testkit.app import make_client, signed
from testkit.images import decode, frame_marker, loader_format


def get_image(client, path: str, accept: str = "") -> pyvips.Image:
    r = client.get(signed(path), headers={"Accept": accept})
    assert r.status_code == 200, r.text
    return decode(r.content)


def mean_abs_diff(a: pyvips.Image, b: pyvips.Image) -> float:
    return (a.cast("float") - b.cast("float")).abs().avg()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(client, corpus: Path, orientation):
    upright = get_image(client, "/w:300/f:png/demo/landscape-orientation-1.jpg")
    image = get_image(client, f"/w:300/f:png/demo/landscape-orientation-{orientation}.jpg")
    assert (image.width, image.height) == (300, 200)
    assert mean_abs_diff(image, upright) < 3
    if orientation > 1:  # the raw pixels really are turned: the test would catch a missing autorotation
        raw = pyvips.Image.new_from_file(str(corpus / f"landscape-orientation-{orientation}.jpg"))
        raw = raw.resize(300 / raw.width)
        if (raw.width, raw.height) == (300, 200):
            assert mean_abs_diff(raw, upright) > 20


def test_cmyk_jpeg_comes_out_srgb_resembling_the_rgb_original(client, corpus: Path):
    rgb = get_image(client, "/w:400/f:png/demo/giunchedi-portrait.jpg")
    cmyk = get_image(client, "/w:400/f:png/demo/giunchedi-cmyk.jpg")
    assert (cmyk.bands, cmyk.interpretation) == (3, "srgb")
    # The file carries no profile, so libvips' fallback CMYK profile renders it (shadows come out
    # lighter than in the RGB original); reading the C, M, Y bands as R, G, B would be far off.
    raw = pyvips.Image.new_from_file(str(corpus / "giunchedi-cmyk.jpg")).resize(0.5)[0:3]
    raw = raw.copy(interpretation="srgb")
    assert mean_abs_diff(cmyk, rgb) < 35
    assert mean_abs_diff(raw, rgb) > 2 * mean_abs_diff(cmyk, rgb)


@pytest.mark.parametrize("key", ["cmyk-icc.jpg", "cmyk-fogra39.tif"])
def test_cmyk_inputs_come_out_srgb(client, key):
    for accept, loader in (("", "jpeg"), ("image/webp", "webp"), ("image/avif", "heif")):
        image = get_image(client, f"/w:100/demo/{key}", accept)
        assert loader_format(image) == loader
        assert (image.bands, image.interpretation) == (3, "srgb")


@pytest.mark.parametrize("key", ["adobe-rgb-icc.jpg", "iphone-p3-orientation-6.jpg", "tiff-16bit-adobe-rgb.tiff"])
def test_wide_gamut_icc_is_converted_to_srgb(client, corpus: Path, key):
    image = get_image(client, f"/w:200/f:png/demo/{key}")
    assert image.format == "uchar" and image.bands == 3
    source = pyvips.Image.new_from_file(str(corpus / key)).autorot()
    reference = source.icc_transform("srgb", embedded=True, depth=8)
    naive = source if source.format == "uchar" else source.colourspace("srgb")

    def colour_error(other: pyvips.Image) -> float:
        """Largest difference of mean R, G, B: compares colour, not resampling."""
        return max(abs(image[band].avg() - other[band].avg()) for band in range(3))

    assert colour_error(reference) < 1.5
    assert colour_error(naive) > 2 * colour_error(reference)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
def test_output_never_carries_gps_or_exif_by_default(client, corpus: Path, fmt):
    assert pyvips.Image.new_from_file(str(corpus / "canon-40d-exif.jpg")).get("exif-ifd3-GPSVersionID")
    image = get_image(client, f"/w:80/f:{fmt}/demo/canon-40d-exif.jpg")
    kept = [name for name in image.get_fields() if name.startswith(("exif", "xmp", "iptc"))]
    assert kept == []
    r = client.get(signed(f"/w:80/f:{fmt}/strip:0/demo/canon-40d-exif.jpg"))
    assert (r.status_code, r.text) == (
        400,
        "option strip:0 is not allowed on this server (metadata is always stripped)\n",
    )


def test_strip_0_keeps_metadata_where_config_allows_it(corpus: Path):
    with make_client({"demo": str(corpus)}, allow_keep_metadata=True) as c:
        stripped = decode(c.get(signed("/w:100/f:jpeg/demo/canon-40d-exif.jpg")).content)
        assert not stripped.get_typeof("exif-data")
        kept = decode(c.get(signed("/w:100/f:jpeg/strip:0/demo/canon-40d-exif.jpg")).content)
        assert kept.get("exif-ifd3-GPSVersionID")


@pytest.mark.parametrize(("accept", "loader"), [("image/avif", "heif"), ("image/webp", "webp"), ("", "png")])
def test_alpha_survives_to_avif_webp_and_png(photo_client, accept, loader):
    image = get_image(photo_client, "/w:101/demo/alpha.png", accept)
    assert loader_format(image) == loader
    assert image.bands == 4
    alpha = image[3]
    assert alpha.min() < 10 and alpha.max() == 255


def test_alpha_is_flattened_onto_background_for_jpeg(photo_client, photos: Path):
    source = pyvips.Image.new_from_file(str(photos / "alpha.png"))
    assert source[3](0, 0)[0] == 0  # the corner is transparent
    red = get_image(photo_client, "/w:101/f:jpeg/bg:ff0000/demo/alpha.png")
    assert red.bands == 3
    r, g, b = red(1, 1)
    assert r > 240 and g < 15 and b < 15
    white = get_image(photo_client, "/w:101/f:jpeg/demo/alpha.png")
    assert min(white(1, 1)) > 240


@pytest.mark.parametrize(("accept", "loader"), [("image/avif,image/webp", "webp"), ("", "gif")])
def test_animation_is_kept_for_gif_and_webp(photo_client, accept, loader):
    image = get_image(photo_client, "/w:60/demo/animated.gif", accept)  # 100 x 100, 3 frames
    assert loader_format(image) == loader
    assert image.get("n-pages") == 3
    assert image.get("page-height") == 60
    assert (image.width, image.height) == (60, 60 * 3)
    markers = [image(2, 60 * i + 2)[0] for i in range(3)]  # each frame's marker, in order
    assert all(abs(got - frame_marker(i)) <= 8 for i, got in enumerate(markers)), markers


def test_animated_cover_crops_every_frame(photo_client):
    image = get_image(photo_client, "/w:50/h:50/fit:cover/demo/animated.webp", "image/webp")
    assert image.get("n-pages") == 4
    assert (image.width, image.get("page-height")) == (50, 50)


def test_explicit_still_format_takes_the_first_frame(photo_client):
    image = get_image(photo_client, "/w:60/f:png/demo/animated.gif")
    assert (loader_format(image), image.width, image.height) == ("png", 60, 60)
    assert abs(image(2, 2)[0] - frame_marker(0)) <= 8
    assert not image.get_typeof("n-pages") or image.get("n-pages") == 1


def test_fit_modes_produce_the_promised_sizes(photo_client):
    key = "photo.jpg"  # 800x533
    expect = {
        "inside": (300, 200),
        "contain": (300, 200),
        "cover": (300, 300),
        "fill": (300, 300),
        "outside": (450, 300),
        "pad": (300, 300),
    }
    for fit, size in expect.items():
        image = get_image(photo_client, f"/w:300/h:300/fit:{fit}/f:png/demo/{key}")
        assert (image.width, image.height) == size, fit


def test_pad_background_fills_the_letterbox(photo_client):
    image = get_image(photo_client, "/w:300/h:300/fit:pad/bg:00ff00/f:jpeg/demo/photo.jpg")
    r, g, b = image(150, 5)  # inside the top band
    assert g > 240 and r < 20 and b < 20
    transparent = get_image(photo_client, "/w:300/h:300/fit:pad/f:png/demo/photo.jpg")
    assert transparent.bands == 4 and transparent[3](150, 5)[0] == 0 and transparent[3](150, 150)[0] == 255


def test_gravity_chooses_the_cropped_side(photo_client):
    full = get_image(photo_client, "/w:450/h:300/fit:fill/f:png/demo/photo.jpg")  # 800x533 → 450x300
    west = get_image(photo_client, "/w:300/h:300/fit:cover/g:w/f:png/demo/photo.jpg")
    east = get_image(photo_client, "/w:300/h:300/fit:cover/g:e/f:png/demo/photo.jpg")
    assert mean_abs_diff(west, full.crop(0, 0, 300, 300)) < 4
    assert mean_abs_diff(east, full.crop(150, 0, 300, 300)) < 4
    assert mean_abs_diff(west, east) > 10


def test_smart_gravity_and_focal_point_give_the_box(photo_client):
    for g in ("smart", "fp:0.2:0.8"):
        image = get_image(photo_client, f"/w:200/h:200/fit:cover/g:{g}/f:png/demo/subject-top.jpg")
        assert (image.width, image.height) == (200, 200)


def test_smart_gravity_crops_where_libvips_attention_looks(photo_client, photos: Path):
    # subject-top.jpg: 700 x 1050, its subject at 20 % of the height; 200 x 300 once fitted outside 200 x 200.
    smart = get_image(photo_client, "/w:200/h:200/fit:cover/g:smart/f:png/demo/subject-top.jpg")
    centre = get_image(photo_client, "/w:200/h:200/fit:cover/f:png/demo/subject-top.jpg")
    reference = pyvips.Image.thumbnail(str(photos / "subject-top.jpg"), 200, height=200, crop="attention")
    assert mean_abs_diff(smart, reference) < 3
    assert mean_abs_diff(smart, centre) > 10  # the window really moved off the centre


def frames(image: pyvips.Image) -> list[pyvips.Image]:
    ph = image.get("page-height")
    return [image.crop(0, top, image.width, ph) for top in range(0, image.height, ph)]


def test_smart_gravity_keeps_animations_and_crops_every_frame_to_one_window(photo_client):
    # animated.gif: 3 frames of 100 x 100; 60 x 60 once fitted outside 60 x 40, so the window can move 0..20 px down.
    image = get_image(photo_client, "/w:60/h:40/fit:cover/g:smart/f:webp/q:100/demo/animated.gif")
    assert image.get("n-pages") == 3
    assert (image.width, image.get("page-height")) == (60, 40)
    full = frames(get_image(photo_client, "/w:60/h:40/fit:outside/f:webp/q:100/demo/animated.gif"))
    cropped = frames(image)
    assert full[0].height == 60
    # Every frame is cut at the same offset: the one that best explains each of them.
    offsets = [
        min(range(0, 21), key=lambda t, got=got, whole=whole: mean_abs_diff(got, whole.crop(0, t, 60, 40)))
        for got, whole in zip(cropped, full, strict=True)
    ]
    assert len(set(offsets)) == 1, offsets
    assert max(mean_abs_diff(cropped[0], other) for other in cropped[1:]) > 5  # still an animation


def test_crop_rotate_flip_and_dpr(photo_client, photos: Path):
    source = pyvips.Image.new_from_file(str(photos / "photo.jpg"))  # 800x533
    image = get_image(photo_client, "/c:0:0:400:200/rot:90/flip:h/f:png/demo/photo.jpg")
    assert (image.width, image.height) == (200, 400)
    expected = source.crop(0, 0, 400, 200).rot("d90").fliphor()
    assert mean_abs_diff(image, expected) < 3
    dpr = get_image(photo_client, "/w:100/dpr:2.5/f:png/demo/photo.jpg")
    assert dpr.width == 250


def test_blur_and_sharpen_change_the_pixels(photo_client):
    plain = get_image(photo_client, "/w:200/f:png/demo/photo.jpg")
    blurred = get_image(photo_client, "/w:200/blur:3/f:png/demo/photo.jpg")
    sharpened = get_image(photo_client, "/w:200/sharpen:1/f:png/demo/photo.jpg")
    assert blurred.deviate() < plain.deviate()
    assert mean_abs_diff(sharpened, plain) > 0.5


def test_quality_changes_the_size(photo_client):
    low = photo_client.get(signed("/w:400/q:20/f:jpeg/demo/large.jpg"))
    high = photo_client.get(signed("/w:400/q:95/f:jpeg/demo/large.jpg"))
    assert len(low.content) < len(high.content) / 2


def test_file_with_lying_extension_is_decoded_by_content(photo_client):
    png_named_jpg = get_image(photo_client, "/w:50/f:png/demo/png-named.jpg")  # a 200x100 PNG
    assert (png_named_jpg.width, png_named_jpg.height) == (50, 25)
    no_extension = get_image(photo_client, "/w:150/f:png/demo/jpeg-no-extension")  # a 300x400 JPEG
    assert (no_extension.width, no_extension.height) == (150, 200)


@pytest.mark.parametrize(("key", "fmt"), [("grey.jpg", "png"), ("grey-alpha.png", "jpeg"), ("grey-alpha.png", "webp")])
def test_grey_sources_pad_and_flatten(photo_client, key, fmt):
    image = get_image(photo_client, f"/w:120/h:90/fit:pad/bg:ff000080/f:{fmt}/demo/{key}")
    assert (image.width, image.height) == (120, 90)


def test_srgb_profiles_are_not_transformed_but_others_are(corpus: Path):
    from edgeproxy.render.icc import is_srgb_profile

    def profile(name):
        return pyvips.Image.new_from_file(str(corpus / name)).get("icc-profile-data")

    assert is_srgb_profile(profile("giunchedi-portrait.jpg"))  # "sRGB IEC61966-2.1" (v2 desc)
    assert is_srgb_profile(profile("iptc-xmp.jpg"))
    assert not is_srgb_profile(profile("adobe-rgb-icc.jpg"))
    assert not is_srgb_profile(profile("iphone-p3-orientation-6.jpg"))  # "Display P3" (v4 mluc)
    assert not is_srgb_profile(b"\x00" * 10)
