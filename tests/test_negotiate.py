"""Format negotiation from Accept, and client hints."""

from __future__ import annotations

import pytest

from edgeproxy.negotiate import accepted_image_types, negotiate
from edgeproxy.spec import Format, TransformSpec


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
    n = negotiate(TransformSpec(), {"accept": accept}, client_hints=False, save_data_quality=40,
                  max_dimension=8192)
    assert n.resolve_format(animated, alpha) is expected
    assert n.vary == ("Accept",)


def test_explicit_format_is_served_whatever_accept_says_and_does_not_vary():
    n = negotiate(TransformSpec(width=10, format=Format.WEBP), {"accept": "image/jpeg"},
                  client_hints=False, save_data_quality=40, max_dimension=8192)
    assert n.resolve_format(False, False) is Format.WEBP
    assert n.vary == ()


def test_client_hints_apply_only_when_enabled_and_only_to_open_parameters():
    headers = {"sec-ch-dpr": "2", "save-data": "on", "accept": ""}
    off = negotiate(TransformSpec(width=100), headers, client_hints=False, save_data_quality=40,
                    max_dimension=8192)
    assert off.spec == TransformSpec(width=100) and off.vary == ("Accept",)
    on = negotiate(TransformSpec(width=100), headers, client_hints=True, save_data_quality=40,
                   max_dimension=8192)
    assert (on.spec.dpr, on.spec.quality, on.spec.box()) == (2.0, 40, (200, None))
    assert on.vary == ("Accept", "Sec-CH-DPR", "Save-Data")
    explicit = negotiate(TransformSpec(width=100, dpr=3, quality=90, format=Format.PNG), headers,
                         client_hints=True, save_data_quality=40, max_dimension=8192)
    assert (explicit.spec.dpr, explicit.spec.quality, explicit.vary) == (3, 90, ())


def test_width_hint_sets_device_pixels_and_is_capped():
    n = negotiate(TransformSpec(), {"sec-ch-width": "99999", "sec-ch-dpr": "2"}, client_hints=True,
                  save_data_quality=40, max_dimension=4000)
    assert n.spec.box() == (4000, None)
    assert n.vary == ("Accept", "Sec-CH-Width", "Save-Data")
