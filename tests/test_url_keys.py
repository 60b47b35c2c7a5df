"""One source for the key rules and the media types (edgeproxy/url/keys.py, edgeproxy/url/media.py): the
URL builder signs exactly the keys and origin names the proxy serves, and every format has one media type."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeproxy.errors import ProxyError
from edgeproxy.origins.local import LocalOrigin
from edgeproxy.settings import SettingsError, load_settings
from edgeproxy.url.builders import MIME_TYPES, UrlBuilder
from edgeproxy.url.keys import RESERVED_ORIGIN_NAMES, is_origin_name, is_safe_key
from edgeproxy.url.media import INPUT_FORMATS, OUTPUT_MIME, input_mime
from edgeproxy.url.spec import Format

BUILDER = UrlBuilder("", "edgeproxy-test-key")


@pytest.mark.parametrize(
    ("key", "safe"),
    [
        ("a.jpg", True),
        ("folder/a.jpg", True),
        ("a..b/c.d.jpg", True),  # dots inside a segment are a name, not a dot segment
        ("...", True),
        ("/a.jpg", False),  # leading /
        ("a/", False),  # trailing /
        ("a//b.jpg", False),  # doubled /
        ("./a.jpg", False),
        ("a/../b.jpg", False),
        ("..", False),
        ("a\\b.jpg", False),
        ("a\x00.jpg", False),
        ("", False),
    ],
)
def test_is_safe_key(key: str, safe: bool):
    assert is_safe_key(key) is safe


@given(st.text(alphabet="a./\\\x00", max_size=8))
def test_the_builder_signs_exactly_the_keys_the_origins_serve(key: str):
    if is_safe_key(key):
        assert BUILDER.path("demo", key).endswith("/demo/" + key)
    else:
        with pytest.raises(ValueError, match="object key|empty"):
            BUILDER.path("demo", key)


@pytest.mark.parametrize("key", ["../secret.jpg", "a//b.jpg", "/etc/passwd", "a\\..\\b.jpg", "a\x00.jpg"])
def test_a_key_the_builder_refuses_is_a_404_at_the_origin(tmp_path: Path, key: str):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.jpg").write_bytes(b"x")
    origin = LocalOrigin("demo", tmp_path / "a", max_bytes=1024)
    with pytest.raises(ValueError):
        BUILDER.path("demo", key)
    with pytest.raises(ProxyError) as caught:
        asyncio.run(origin.fetch(key))
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("name", "valid"),
    [("a", True), ("media-1_x", True), ("0", True), ("a" * 32, True), ("a" * 33, False), ("-a", False), ("A", False)]
    + [("_a", False), ("a.b", False), ("", False)],
)
def test_origin_names_are_one_rule_for_settings_and_builder(tmp_path: Path, name: str, valid: bool):
    assert is_origin_name(name) is valid
    if valid:
        BUILDER.path(name, "k.jpg")
        load_settings(allow_unsigned=True, origins={name: str(tmp_path)})
    else:
        with pytest.raises(ValueError, match="origin name"):
            BUILDER.path(name, "k.jpg")
        with pytest.raises(SettingsError, match="origin name"):
            load_settings(allow_unsigned=True, origins={name: str(tmp_path)})


def test_reserved_origin_names_are_refused_by_the_settings(tmp_path: Path):
    for name in RESERVED_ORIGIN_NAMES:
        with pytest.raises(SettingsError, match="reserved"):
            load_settings(allow_unsigned=True, origins={name: str(tmp_path)})


def test_every_output_format_has_one_media_type_and_the_builder_uses_it():
    assert set(OUTPUT_MIME) == set(Format) - {Format.AUTO}
    assert {f: OUTPUT_MIME[Format(f)] for f in ("avif", "webp", "jxl", "jpeg", "png")} == MIME_TYPES
    assert list(MIME_TYPES) == ["avif", "webp", "jxl", "jpeg", "png"]  # the order error messages list them in


def test_every_input_format_has_a_media_type_and_the_settings_know_it():
    assert all(input_mime(fmt).startswith("image/") for fmt in INPUT_FORMATS)
    assert input_mime("pdf") == "application/octet-stream"
    load_settings(allow_unsigned=True, allowed_input_formats=sorted(INPUT_FORMATS))
    with pytest.raises(SettingsError, match="unknown input formats"):
        load_settings(allow_unsigned=True, allowed_input_formats=["pdf"])
