"""Format negotiation from Accept, and client hints."""

from __future__ import annotations

import pytest

from edgeproxy.http.negotiate import AutoSize, accepted_image_types, negotiate, round_up
from edgeproxy.url.spec import Format, TransformSpec, canonical


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/avif,image/webp,image/apng,*/*;q=0.8", {"avif", "webp"}),  # Chrome
        ("image/webp,*/*", {"webp"}),
        ("*/*", set()),
        ("image/*", set()),
        ("", set()),
        ("image/avif;q=0, image/webp;q=0.5", {"webp"}),
        ("IMAGE/AVIF; Q=0.1", {"avif"}),
        ("image/avif;q=abc", set()),
    ],
)
def test_accept_parsing(accept, expected):
    assert accepted_image_types(accept) == expected


@pytest.mark.parametrize(
    ("accept", "animated", "alpha", "expected"),
    [
        ("image/avif,image/webp", False, False, Format.AVIF),
        ("image/webp", False, True, Format.WEBP),
        ("", False, False, Format.JPEG),
        ("", False, True, Format.PNG),
        ("", True, True, Format.GIF),
        ("image/avif,image/webp", True, False, Format.WEBP),
        ("image/avif", True, False, Format.GIF),
    ],
)
def test_auto_format(accept, animated, alpha, expected):
    n = negotiate(TransformSpec(), {"accept": accept}, client_hints=False, save_data_quality=40, max_dimension=8192)
    assert n.resolve_format(animated, alpha) is expected
    assert n.vary == ("Accept",)


def test_explicit_format_is_served_whatever_accept_says_and_does_not_vary():
    n = negotiate(
        TransformSpec(width=10, format=Format.WEBP),
        {"accept": "image/jpeg"},
        client_hints=False,
        save_data_quality=40,
        max_dimension=8192,
    )
    assert n.resolve_format(False, False) is Format.WEBP
    assert n.vary == ()


def _hints(spec: TransformSpec, headers: dict[str, str], client_hints: bool = True, **kw):
    return negotiate(
        spec,
        {"accept": "", **headers},
        client_hints=client_hints,
        save_data_quality=40,
        max_dimension=kw.pop("max_dimension", 8192),
        **kw,
    )


ALL_HINTS = {"sec-ch-dpr": "2", "sec-ch-width": "600", "save-data": "on"}


def test_hints_apply_only_where_the_url_asks_and_vary_names_exactly_those():
    # A URL with a size and no w:auto / dpr:auto reads no size hint, whatever the browser sends.
    plain = _hints(TransformSpec(width=100), ALL_HINTS)
    assert (plain.spec.box(), plain.spec.quality) == ((100, None), 40)
    assert plain.vary == ("Accept", "Save-Data")
    # An explicit q: Save-Data is not read either.
    fixed = _hints(TransformSpec(width=100, quality=90, format=Format.PNG), ALL_HINTS)
    assert (fixed.spec, fixed.vary) == (TransformSpec(width=100, quality=90, format=Format.PNG), ())
    dpr = _hints(TransformSpec(width=100, dpr_auto=True, quality=90, format=Format.PNG), ALL_HINTS)
    assert (dpr.spec.box(), dpr.spec.dpr_auto, dpr.vary) == ((200, None), False, ("Sec-CH-DPR",))
    width = _hints(TransformSpec(width_auto=True, quality=90, format=Format.PNG), ALL_HINTS)
    assert (width.spec.box(), width.spec.width_auto, width.vary) == ((640, None), False, ("Sec-CH-Width",))
    both = _hints(TransformSpec(width_auto=True, dpr_auto=True), ALL_HINTS)
    assert both.vary == ("Accept", "Sec-CH-Width", "Sec-CH-DPR", "Save-Data")
    assert (both.spec.width, both.spec.dpr) == (640, 1.0)  # the width hint is in device pixels already


def test_save_data_lowers_a_quality_target_only_where_the_url_gave_none():
    # q:auto (the server's target): Save-Data on gives the fixed save_data_quality, and says it varies.
    auto = _hints(TransformSpec(width=100, quality_auto=True), ALL_HINTS)
    assert (auto.spec.quality, auto.spec.quality_auto, auto.vary) == (40, False, ("Accept", "Save-Data"))
    without = _hints(TransformSpec(width=100, quality_auto=True), {})
    assert (without.spec.quality, without.spec.quality_auto, without.vary) == (None, True, ("Accept", "Save-Data"))
    # q:auto:80: the URL chose its target; Save-Data is not read.
    chosen = _hints(TransformSpec(width=100, quality=80, quality_auto=True), ALL_HINTS)
    assert (chosen.spec.quality, chosen.spec.quality_auto, chosen.vary) == (80, True, ("Accept",))


def test_hints_are_ignored_when_client_hints_is_off():
    off = _hints(TransformSpec(width_auto=True, dpr_auto=True), ALL_HINTS, client_hints=False)
    assert (off.spec.box(), off.spec.quality, off.vary) == ((640, None), None, ("Accept",))
    assert not off.spec.width_auto and not off.spec.dpr_auto


@pytest.mark.parametrize(
    ("hint", "width"),
    [
        ("1", 160),
        ("160", 160),
        ("161", 240),
        ("600", 640),
        ("641", 750),
        ("665", 750),  # issue 22's grid slot: 960 with the halving buckets
        ("1921", 2240),
        ("2561", 3072),
        ("3840", 3840),
        ("99999", 3840),
        ("600.4", 640),
        ("abc", 640),
        ("", 640),
        ("-5", 160),
        ("inf", 640),
    ],
)
def test_width_hint_is_rounded_up_to_a_bucket(hint, width):
    n = _hints(TransformSpec(width_auto=True), {"sec-ch-width": hint})
    assert n.spec.box() == (width, None)


def test_width_fallback_is_css_pixels_times_dpr_rounded_up_and_capped():
    assert _hints(TransformSpec(width_auto=True, width=300), {}).spec.box() == (320, None)
    assert _hints(TransformSpec(width_auto=True, width=300, dpr=2), {}).spec.box() == (640, None)
    assert _hints(TransformSpec(width_auto=True, dpr_auto=True), {"sec-ch-dpr": "2"}).spec.box() == (1440, None)
    custom = AutoSize(width_buckets=(100, 1000), width_fallback=50, dpr_buckets=(1.0, 2.0))
    assert _hints(TransformSpec(width_auto=True), {}, auto=custom).spec.box() == (100, None)
    assert _hints(
        TransformSpec(width_auto=True), {"sec-ch-width": "5000"}, max_dimension=900, auto=custom
    ).spec.box() == (900, None)


@pytest.mark.parametrize(
    ("hint", "dpr"), [("1", 1.0), ("1.25", 1.5), ("2", 2.0), ("2.625", 3.0), ("9", 4.0), ("0.5", 1.0), ("x", 1.0)]
)
def test_dpr_hint_is_rounded_up_to_a_bucket(hint, dpr):
    n = _hints(TransformSpec(width=100, dpr_auto=True), {"sec-ch-dpr": hint})
    assert n.spec.dpr == dpr


def test_w_auto_with_an_aspect_ratio_gets_its_height_from_the_bucketed_width():
    square = _hints(TransformSpec(width_auto=True, aspect_ratio=(1, 1)), {"sec-ch-width": "600"})
    assert (square.spec.box(), square.vary) == ((640, 640), ("Accept", "Sec-CH-Width", "Save-Data"))
    portrait = _hints(
        TransformSpec(width_auto=True, width=300, dpr_auto=True, aspect_ratio=(4, 5)), {"sec-ch-dpr": "2"}
    )
    assert portrait.spec.box() == (640, 800)  # 300 CSS px x 2 -> 600 -> 640, x 5/4


def test_default_width_buckets_step_at_most_17_percent_from_320_to_2560():
    """Issue 22: the default buckets serve a hinted width at most 17.2 % wider than asked between
    320 and 2560 pixels (the old halving steps: 50 %), with 20 buckets in all."""
    buckets = AutoSize().width_buckets
    inner = [b for b in buckets if 320 <= b <= 2560]
    assert (len(buckets), len(inner), inner[0], inner[-1]) == (20, 16, 320, 2560)
    assert max(b / a for a, b in zip(inner[:-1], inner[1:], strict=True)) == 750 / 640
    worst = max(round_up(w, buckets) / w for w in range(321, 2561))
    assert worst == 750 / 641


def test_hints_in_one_bucket_give_one_concrete_spec():
    """What the ETag is computed from: two devices in one bucket share the derivative."""
    a = _hints(TransformSpec(width_auto=True, dpr_auto=True), {"sec-ch-width": "580", "sec-ch-dpr": "1.7"})
    b = _hints(TransformSpec(width_auto=True, dpr_auto=True), {"sec-ch-width": "640", "sec-ch-dpr": "2"})
    assert canonical(a.spec) == canonical(b.spec) == "/w:640"
