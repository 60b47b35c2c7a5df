"""URL grammar: parsing, canonical form, and errors that name the option."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeproxy.errors import ProxyError
from edgeproxy.url.grammar import compile_presets, parse_options, parse_path
from edgeproxy.url.spec import (
    COMPASS,
    MAX_MAX_BYTES,
    MIN_MAX_BYTES,
    OPTION_NAMES,
    Crop,
    Fit,
    Flip,
    Format,
    Gravity,
    Redact,
    TransformSpec,
    Trim,
    build_path,
    canonical,
)
from testkit.app import make_client, signed
from testkit.images import decode


def roundtrip(spec: TransformSpec) -> TransformSpec:
    text = canonical(spec)
    return parse_options(text.lstrip("/").split("/") if text else [])


def test_full_url_parses_into_typed_fields():
    spec, origin, key = parse_path(
        "/w:800/h:600/fit:cover/g:fp:0.25:0.75/dpr:2/f:webp/q:70/c:10:20:300:200/rot:90/flip:h"
        "/blur:1.5/sharpen:0.5/gray:1/mb:20000/bg:FF000080/enlarge:1/strip:0/exp:2000000000/v:abc/media/a%20b/c.jpg"
    )
    assert (origin, key) == ("media", "a b/c.jpg")
    assert spec == TransformSpec(
        width=800,
        height=600,
        fit=Fit.COVER,
        gravity=Gravity("fp", 0.25, 0.75),
        dpr=2.0,
        format=Format.WEBP,
        quality=70,
        max_bytes=20_000,
        crop=Crop(10, 20, 300, 200, False),
        rotate=90,
        flip=Flip.H,
        blur=1.5,
        sharpen=0.5,
        grayscale=True,
        background=(255, 0, 0, 128),
        enlarge=True,
        strip=False,
        expires=2_000_000_000,
        version="abc",
    )
    assert spec.box() == (1600, 1200)


def test_long_names_and_aliases_are_equal():
    short, _, _ = parse_path("/w:10/h:20/g:ne/f:jpg/q:5/mb:2048/c:0:0:1:1/rot:180/gray:1/bg:ffffff/o/k")
    long, _, _ = parse_path(
        "/width:10/height:20/gravity:northeast/format:jpeg/quality:5/max_bytes:2048/crop:0:0:1:1/rotate:180"
        "/grayscale:1/background:FFFFFF/o/k"
    )
    assert short == long
    assert canonical(short) == "/w:10/h:20/g:northeast/f:jpeg/q:5/mb:2048/c:0:0:1:1/rot:180/gray:1/bg:ffffff"


def test_default_spec_has_empty_canonical_form_and_key_may_contain_colons():
    spec, origin, key = parse_path("/demo/dir/a:b.jpg")
    assert spec == TransformSpec() and canonical(spec) == ""
    assert (origin, key) == ("demo", "dir/a:b.jpg")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/w:abc/o/k", "option w: 'abc' is not a whole number"),
        ("/w:0/o/k", "option w: 0 is outside 1..16384"),
        ("/width:99999/o/k", "option width: 99999 is outside 1..16384"),
        ("/zoom:2/o/k", "unknown option 'zoom'"),
        ("/fit:stretch/o/k", "option fit: 'stretch' is not one of inside|contain|cover|fill|outside|pad"),
        ("/dpr:5/o/k", "option dpr: 5 is outside 1.0..4.0"),
        ("/dpr:1e0/o/k", "option dpr: '1e0' is not a decimal number"),
        ("/q:0/o/k", "option q: 0 is outside 1..100"),
        ("/rot:45/o/k", "option rot: must be 0, 90, 180 or 270"),
        ("/g:middle/o/k", "option g: unknown gravity 'middle'"),
        ("/g:fp:2:0/o/k", "option g: 2 is outside 0.0..1.0"),
        ("/redact:eyes/o/k", "option redact: expected redact:faces, redact:faces:blur or redact:faces:pixelate"),
        ("/redact:faces:smudge/o/k", "option redact: 'smudge' is not one of blur|pixelate"),
        (
            "/redact:faces:blur:x/o/k",
            "option redact: expected redact:faces, redact:faces:blur or redact:faces:pixelate",
        ),
        ("/c:1:2:3/o/k", "option c: expected c:X:Y:W:H"),
        ("/c:0:0:0:5/o/k", "option c: 0 is outside 1..1000000000"),
        ("/bg:red/o/k", "option bg: expected RRGGBB or RRGGBBAA hex, got 'red'"),
        ("/blur:0/o/k", "option blur: 0 is outside 0.0..100.0"),
        ("/gray:2/o/k", "option gray: expected 0 or 1, got '2'"),
        ("/mb:1023/o/k", "option mb: 1023 is outside 1024..104857600"),
        ("/max_bytes:104857601/o/k", "option max_bytes: 104857601 is outside 1024..104857600"),
        ("/mb:20k/o/k", "option mb: '20k' is not a whole number"),
        ("/pr:thumb/o/k", "option pr: unknown preset 'thumb'"),
        ("/pr:a%20b/o/k", "option pr: 'a b' is not a preset name (1-64 of A-Z a-z 0-9 _ -)"),
        ("/w:auto/h:10/o/k", "option w:auto: sets the width only and cannot be combined with h"),
        (
            "/w:300/h:200/ar:1:1/o/k",
            "option ar: cannot be combined with both w and h (the ratio sets the side not given)",
        ),
        ("/ar:16:9/w:auto:1/h:1/o/k", "option w:auto: sets the width only and cannot be combined with h"),
        ("/ar:1000/o/k", "option ar: 1000 is beyond 100:1 or 1:100"),
        ("/ar:101:1/o/k", "option ar: 101:1 is beyond 100:1 or 1:100"),
        ("/ar:1:100.5/o/k", "option ar: 1:100.5 is beyond 100:1 or 1:100"),
        ("/ar:0:1/o/k", "option ar: 0 is outside 0.0..1000000.0"),
        ("/ar:16:x/o/k", "option ar: 'x' is not a decimal number"),
        ("/ar:-1:1/o/k", "option ar: '-1' is not a decimal number"),
        ("/ar:1:2:3/o/k", "option ar: expected ar:W:H (such as ar:16:9) or ar:RATIO"),
        ("/aspect_ratio:/o/k", "option aspect_ratio: '' is not a decimal number"),
        ("/w:auto:1:2/o/k", "option w: expected w:auto or w:auto:FALLBACK"),
        ("/dpr:auto:2/o/k", "option dpr: expected one value, got 2"),
        ("/w:1/w:2/o/k", "option w: given more than once"),
        ("/w:1/width:2/o/k", "option width: given more than once"),
        ("/v:a$b/o/k", "option v: expected 1-64 of A-Z a-z 0-9 . _ ~ -"),
        ("/w:10/o/", "missing object key"),
        ("/w:10", "missing origin name and object key"),
        ("/w:10//k", "missing origin name"),
        ("/o/%ff.jpg", "URL is not valid percent-encoded UTF-8"),
    ],
)
def test_bad_options_are_400_naming_the_option(path, message):
    with pytest.raises(ProxyError) as info:
        parse_path(path)
    assert info.value.status == 400
    assert info.value.message == message


# ---------------------------------------------------------------- property: canonical round trip

decimals = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False).map(float)
gravities = st.one_of(
    st.sampled_from([Gravity(k, *xy) for k, xy in COMPASS.items()] + [Gravity("smart"), Gravity("face")]),
    st.builds(lambda x, y: Gravity("fp", x, y), decimals, decimals),
)
crops = st.one_of(
    st.builds(Crop, st.integers(0, 5000), st.integers(0, 5000), st.integers(1, 5000), st.integers(1, 5000)),
    st.builds(
        lambda x, y, w, h: Crop(x, y, w, h, True),
        decimals,
        decimals,
        decimals.filter(bool),
        decimals.filter(bool),
    ),
)
base_specs = st.builds(
    TransformSpec,
    width=st.none() | st.integers(1, 16384),
    height=st.none() | st.integers(1, 16384),
    fit=st.sampled_from(Fit),
    gravity=gravities,
    dpr=st.decimals(min_value=1, max_value=4, places=3).map(float),
    format=st.sampled_from(Format),
    quality=st.none() | st.integers(1, 100),
    max_bytes=st.none() | st.integers(MIN_MAX_BYTES, MAX_MAX_BYTES),
    trim=st.none()
    | st.builds(
        Trim,
        st.decimals(min_value=0, max_value=255, places=2).map(float),
        st.none() | st.tuples(*[st.integers(0, 255)] * 3),
    ),
    crop=st.none() | crops,
    rotate=st.sampled_from([0, 90, 180, 270]),
    flip=st.sampled_from(Flip),
    blur=st.none() | st.decimals(min_value="0.01", max_value=100, places=2).map(float),
    sharpen=st.none() | st.decimals(min_value="0.01", max_value=10, places=2).map(float),
    grayscale=st.booleans(),
    background=st.none() | st.tuples(*[st.integers(0, 255)] * 4),
    redact=st.none() | st.sampled_from(Redact),
    enlarge=st.booleans(),
    strip=st.booleans(),
    expires=st.none() | st.integers(0, 2**40),
    version=st.none() | st.from_regex(r"[A-Za-z0-9._~-]{1,64}", fullmatch=True),
)


ratio_sides = st.decimals(min_value="0.1", max_value=100, places=2).map(float)
ratios = st.tuples(ratio_sides, ratio_sides).filter(lambda r: 0.01 <= r[0] / r[1] <= 100)


def _with_auto(
    spec: TransformSpec, width_auto: bool, dpr_auto: bool, ratio: tuple[float, float] | None
) -> TransformSpec:
    """``w:auto`` (never with ``h``), ``dpr:auto`` (dpr then holds 1) and ``ar`` (never with both
    ``w`` and ``h``) on a generated spec."""
    width_auto = width_auto and spec.height is None
    both = (spec.width is not None or width_auto) and spec.height is not None
    return replace(
        spec,
        width_auto=width_auto,
        dpr_auto=dpr_auto,
        dpr=1.0 if dpr_auto else spec.dpr,
        aspect_ratio=None if both else ratio,
    )


specs = st.builds(_with_auto, base_specs, st.booleans(), st.booleans(), st.none() | ratios)


@given(specs)
def test_canonical_form_round_trips(spec):
    assert roundtrip(spec) == spec


@given(specs, st.text(min_size=1, max_size=40).filter(lambda k: "\x00" not in k))
def test_build_path_is_the_inverse_of_parse_path(spec, key):
    key = key.strip("/") or "k"
    assert parse_path(build_path(spec, "origin", key)) == (spec, "origin", key)


# ---------------------------------------------------------------- property: hostile paths

segment_text = st.text(alphabet=st.sampled_from(list("aw:hfqcgp0123456789.%2eEfF/-_~!$&'()*+,;=@xz \\")), max_size=30)
option_like = st.builds(
    lambda name, args: name + ":" + ":".join(args),
    st.sampled_from(sorted(OPTION_NAMES) + ["zz", ""]),
    st.lists(st.text(alphabet="0123456789.abcdefx-:%", max_size=8), max_size=5),
)


@given(st.lists(st.one_of(option_like, segment_text), max_size=8))
def test_any_path_parses_or_is_a_400(segments):
    path = "/" + "/".join(segments)
    try:
        spec, origin, key = parse_path(path)
    except ProxyError as error:
        assert error.status == 400 and error.message
        return
    assert origin and ":" not in origin and key
    assert roundtrip(spec) == spec


# --------------------------------------------------------------------------- presets and auto sizes

PRESETS = compile_presets({"thumb": "w:200/h:200/fit:cover", "sharp": "/sharpen:1/q:90/", "auto": "w:auto:320"})


def test_presets_expand_in_order_and_the_url_overrides_them():
    assert parse_options(["pr:thumb"], PRESETS) == TransformSpec(width=200, height=200, fit=Fit.COVER)
    both = parse_options(["pr:thumb:sharp", "q:50", "fit:fill"], PRESETS)
    assert canonical(both) == "/w:200/h:200/fit:fill/q:50/sharpen:1"
    # A URL's w:300 replaces a preset's w:auto wholly (and the other way round).
    assert parse_options(["pr:auto", "w:300"], PRESETS) == TransformSpec(width=300)
    assert parse_options(["pr:auto"], PRESETS) == TransformSpec(width=320, width_auto=True)
    assert parse_options(["pr:small", "w:auto"], compile_presets({"small": "w:60/fit:cover"})) == TransformSpec(
        width_auto=True, fit=Fit.COVER
    )


def test_canonical_form_never_names_a_preset():
    """The ETag is over the expanded options: a preset's new definition changes it."""
    spec = parse_options(["pr:thumb"], PRESETS)
    assert canonical(spec) == "/w:200/h:200/fit:cover"
    assert canonical(parse_options(["pr:thumb"], compile_presets({"thumb": "w:100"}))) == "/w:100"


def test_the_default_preset_applies_to_every_url_first():
    presets = compile_presets({"default": "f:webp/q:70", "hq": "q:95"})
    assert parse_options([], presets) == TransformSpec(format=Format.WEBP, quality=70)
    assert parse_options(["pr:hq"], presets) == TransformSpec(format=Format.WEBP, quality=95)
    assert parse_options(["q:10"], presets) == TransformSpec(format=Format.WEBP, quality=10)


@pytest.mark.parametrize(
    ("segments", "only", "message"),
    [
        (["pr:nope"], False, "option pr: unknown preset 'nope'"),
        (["preset:thumb:nope"], False, "option preset: unknown preset 'nope'"),
        (["pr:thumb", "pr:sharp"], False, "option pr: given more than once"),
        (["pr:"], False, "option pr: '' is not a preset name (1-64 of A-Z a-z 0-9 _ -)"),
        (["pr:thumb", "w:auto"], False, "option w:auto: sets the width only and cannot be combined with h"),
        (["pr:thumb", "w:10", "f:png"], True, "only presets are allowed on this server (pr:NAME); not w, f"),
    ],
)
def test_bad_presets_are_400_naming_them(segments, only, message):
    with pytest.raises(ProxyError) as info:
        parse_options(segments, PRESETS, only_presets=only)
    assert (info.value.status, info.value.message) == (400, message)


def test_only_presets_allows_expiry_and_version():
    spec = parse_options(["pr:thumb", "exp:4102444800", "v:3"], PRESETS, only_presets=True)
    assert (spec.width, spec.expires, spec.version) == (200, 4102444800, "3")


NAME_A_PRESET = "only presets are allowed on this server: name one (pr:NAME)"


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([], NAME_A_PRESET),
        (["v:3"], NAME_A_PRESET),
        (["exp:4102444800", "v:3"], NAME_A_PRESET),
        # one spelling per derivative: the short names, each preset named once, one v
        (["pr:thumb", "version:3"], "only presets are allowed on this server: write v:, not version:"),
        (["pr:thumb", "V:3"], "only presets are allowed on this server: write v:, not V:"),
        (["preset:thumb"], "only presets are allowed on this server: write pr:, not preset:"),
        (["PR:thumb"], "only presets are allowed on this server: write pr:, not PR:"),
        (["pr:thumb", "expires:4102444800"], "only presets are allowed on this server: write exp:, not expires:"),
        (["pr:thumb:sharp:thumb"], "option pr: preset 'thumb' named twice"),
        (["pr:thumb", "v:3", "v:4"], "option v: given more than once"),
        (["pr:thumb", "v:3", "version:4"], "option version: given more than once"),
        (["pr:thumb", "v:3:4"], "option v: expected one value, got 2"),
    ],
)
def test_only_presets_needs_a_preset_and_one_spelling(segments, message):
    with pytest.raises(ProxyError) as info:
        parse_options(segments, PRESETS, only_presets=True)
    assert (info.value.status, info.value.message) == (400, message)
    # without only_presets, the URL's own options (or none: the original) are fine
    if segments and "given more than once" not in message and "value" not in message:
        parse_options(segments, PRESETS)


def test_only_presets_with_a_default_preset_serves_it_for_a_bare_url():
    presets = compile_presets({"default": "w:64/f:png", "thumb": "w:200"})
    assert parse_options([], presets, only_presets=True) == TransformSpec(width=64, format=Format.PNG)
    assert parse_options(["v:2"], presets, only_presets=True).width == 64


def test_only_presets_never_serves_the_original_over_http(photos: Path):
    """The attack: a server with only_presets still served the option-less URL (the full-size
    original) and every other spelling of a preset URL."""
    photo = "photo.jpg"  # the synthetic library's 800 x 533 JPEG
    with make_client({"demo": str(photos)}, presets={"thumb": "w:120/f:png"}, only_presets=True) as c:
        for path in (f"/demo/{photo}", f"/v:1/demo/{photo}", f"/exp:4102444800/demo/{photo}"):
            answer = c.get(signed(path))
            assert (answer.status_code, answer.text) == (400, NAME_A_PRESET + "\n"), path
        ok = c.get(signed(f"/pr:thumb/v:2/demo/{photo}"))
        assert ok.status_code == 200 and decode(ok.content).width == 120
        for options in (
            "pr:thumb/version:2",
            "pr:thumb/V:2",
            "preset:thumb/v:2",
            "pr:thumb:thumb/v:2",
            "pr:thumb/v:2/v:3",
            "pr:thumb/v:2/version:3",
        ):
            assert c.get(signed(f"/{options}/demo/{photo}")).status_code == 400, options


def test_compile_presets_lists_every_problem():
    with pytest.raises(ValueError) as info:
        compile_presets(
            {"a b": "w:1", "nested": "pr:x", "expiring": "exp:1", "empty": "/", "bad": "q:101", "ok": "w:1"}
        )
    assert str(info.value) == (
        "preset 'a b': names are 1-64 of A-Z a-z 0-9 _ -; preset nested: may not contain pr or exp; "
        "preset expiring: may not contain pr or exp; preset empty: no options; "
        "preset bad: option q: 101 is outside 1..100"
    )


@pytest.mark.parametrize(
    ("options", "ratio", "canonical_path"),
    [
        (["fit:cover", "ar:16:9", "w:300"], (16.0, 9.0), "/w:300/ar:16:9/fit:cover"),
        (["aspect_ratio:1.91:1", "h:400"], (1.91, 1.0), "/h:400/ar:1.91:1"),
        (["ar:1.5", "w:auto", "g:face"], (1.5, 1.0), "/w:auto/ar:1.5:1/g:face"),
        (["AR:4:5"], (4.0, 5.0), "/ar:4:5"),
        (["ar:100:1", "w:1"], (100.0, 1.0), "/w:1/ar:100:1"),
        (["ar:32:18", "w:1"], (32.0, 18.0), "/w:1/ar:32:18"),
    ],
)
def test_aspect_ratio_parses_and_prints_back_after_the_height(options, ratio, canonical_path):
    spec = parse_options(options)
    assert spec.aspect_ratio == ratio
    assert canonical(spec) == canonical_path


@pytest.mark.parametrize(
    ("spec", "box"),
    [
        (TransformSpec(width=300, aspect_ratio=(16, 9)), (300, 169)),
        (TransformSpec(width=300, dpr=2, aspect_ratio=(16, 9)), (600, 338)),
        (TransformSpec(height=300, aspect_ratio=(16, 9)), (533, 300)),
        (TransformSpec(width=400, aspect_ratio=(4, 5)), (400, 500)),
        (TransformSpec(width=1, aspect_ratio=(100, 1)), (1, 1)),
        (TransformSpec(aspect_ratio=(1, 1)), (None, None)),
    ],
)
def test_aspect_ratio_sets_the_side_not_given(spec, box):
    assert spec.box() == box


def test_presets_may_carry_an_aspect_ratio_and_refuse_a_conflict():
    presets = compile_presets({"square": "ar:1:1/fit:cover/g:face", "card": "w:400/h:300"})
    spec = parse_options(["pr:square", "w:auto"], presets)
    assert canonical(spec) == "/w:auto/ar:1:1/fit:cover/g:face"
    assert parse_options(["pr:square", "h:200"], presets).box() == (200, 200)
    with pytest.raises(ProxyError) as info:
        parse_options(["pr:card", "ar:1:1"], presets)
    assert (info.value.status, info.value.message) == (
        400,
        "option ar: cannot be combined with both w and h (the ratio sets the side not given)",
    )
    with pytest.raises(ValueError) as error:
        compile_presets({"bad": "w:1/h:2/ar:3:4"})
    assert str(error.value) == (
        "preset bad: option ar: cannot be combined with both w and h (the ratio sets the side not given)"
    )


def test_auto_width_and_dpr_parse_and_print_back():
    spec = parse_options(["w:auto:480", "dpr:auto"])
    assert (spec.width, spec.width_auto, spec.dpr, spec.dpr_auto) == (480, True, 1.0, True)
    assert canonical(spec) == "/w:auto:480/dpr:auto"
    assert canonical(parse_options(["width:AUTO"])) == "/w:auto"


@pytest.mark.parametrize(
    ("options", "quality", "auto", "canonical_path"),
    [
        (["q:auto"], None, True, "/q:auto"),
        (["quality:AUTO:80"], 80, True, "/q:auto:80"),
        (["q:80"], 80, False, "/q:80"),
    ],
)
def test_quality_targets_parse_and_print_back(options, quality, auto, canonical_path):
    spec = parse_options(options)
    assert (spec.quality, spec.quality_auto, canonical(spec)) == (quality, auto, canonical_path)
    assert parse_options(canonical_path.strip("/").split("/")) == spec


def test_a_urls_q_replaces_a_presets_quality_target_wholly():
    presets = compile_presets({"hero": "w:800/q:auto:70", "fixed": "w:800/q:60"})
    fixed = parse_options(["pr:hero", "q:60"], presets)
    assert (fixed.quality, fixed.quality_auto) == (60, False)
    auto = parse_options(["pr:fixed", "q:auto"], presets)
    assert (auto.quality, auto.quality_auto) == (None, True)


@pytest.mark.parametrize("option", ["q:auto:0", "q:auto:101", "q:auto:80:90", "q:auto:x", "q:auto:"])
def test_bad_quality_targets_are_400(option):
    with pytest.raises(ProxyError) as info:
        parse_options([option])
    assert info.value.status == 400
    assert info.value.message.startswith("option q:")


@pytest.mark.parametrize(
    ("path", "redact", "canonical_path"),
    [
        ("/redact:faces/o/k", Redact.BLUR, "/redact:faces:blur"),
        ("/redact:faces:pixelate/o/k", Redact.PIXELATE, "/redact:faces:pixelate"),
        ("/REDACT:Faces:Blur/o/k", Redact.BLUR, "/redact:faces:blur"),
    ],
)
def test_redact_faces_parses_to_one_canonical_form(path, redact, canonical_path):
    spec, _, _ = parse_path(path)
    assert spec.redact is redact
    assert canonical(spec) == canonical_path


def test_face_gravity_parses_and_round_trips():
    spec, _, _ = parse_path("/w:200/h:200/fit:cover/g:face/o/k")
    assert spec.gravity == Gravity("face")
    assert canonical(spec) == "/w:200/h:200/fit:cover/g:face"
