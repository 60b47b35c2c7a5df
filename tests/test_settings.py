"""Configuration: precedence, validation messages, and the documented example file."""

from __future__ import annotations

import tomllib

import pytest

from edgeproxy.settings import Settings, SettingsError, load_settings
from testkit.env import ROOT


def test_precedence_defaults_file_environment_command_line(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEPROXY_PORT", raising=False)
    monkeypatch.delenv("EDGEPROXY_QUALITY_WEBP", raising=False)
    config = tmp_path / "edgeproxy.toml"
    config.write_text('signing_key = "from-file"\nport = 9001\nquality_webp = 50\nquality_avif = 40\n')
    assert load_settings(config).port == 9001
    monkeypatch.setenv("EDGEPROXY_PORT", "9002")
    monkeypatch.setenv("EDGEPROXY_QUALITY_WEBP", "55")
    settings = load_settings(config, port=9003)
    assert (settings.port, settings.quality_webp, settings.quality_avif, settings.quality_jpeg) == (9003, 55, 40, 80)
    assert settings.signing_key.get_secret_value() == "from-file"


def test_every_problem_is_listed_in_one_message(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEPROXY_SIGNING_KEY", raising=False)
    with pytest.raises(SettingsError) as info:
        load_settings(
            port=0,
            quality_avif=101,
            origins={"Bad Name": str(tmp_path), "x": "/nonexistent"},
            allowed_input_formats=["jpeg", "bpm"],
            origin_allowed_networks=["10.0.0.0/33"],
            fallback_image="/nonexistent.png",
        )
    text = str(info.value)
    for fragment in (
        "port:",
        "quality_avif:",
        "origin name 'Bad Name'",
        "'/nonexistent' is not a folder",
        "unknown input formats ['bpm']",
        "origin_allowed_networks.0:",
        "fallback_image: '/nonexistent.png' is not a file",
    ):
        assert fragment in text, text


def test_missing_signing_key_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv("EDGEPROXY_SIGNING_KEY", raising=False)
    with pytest.raises(SettingsError, match="set EDGEPROXY_SIGNING_KEY"):
        load_settings()
    assert load_settings(allow_unsigned=True).allow_unsigned


def test_example_config_documents_every_setting_with_its_default():
    text = (ROOT / "config" / "edgeproxy.example.toml").read_text()
    assert tomllib.loads(text) == {}  # all commented out: the defaults are the code's
    lines = [line.removeprefix("# ") for line in text.splitlines() if line.startswith("# ")]
    documented = {line.split("=")[0].strip() for line in lines if "=" in line}
    documented |= {line.strip("[]") for line in lines if line.startswith("[")}
    assert set(Settings.model_fields) <= documented, set(Settings.model_fields) - documented


def test_presets_come_from_toml_or_from_json_in_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "edgeproxy.toml"
    config.write_text('allow_unsigned = true\n[presets]\nthumb = "w:200/h:200/fit:cover"\n')
    assert load_settings(config).presets == {"thumb": "w:200/h:200/fit:cover"}
    monkeypatch.setenv("EDGEPROXY_PRESETS", '{"hero": "w:auto:960/q:70"}')
    monkeypatch.setenv("EDGEPROXY_ONLY_PRESETS", "true")
    settings = load_settings(config)  # the environment's table is merged into the file's, name by name
    assert settings.presets == {"thumb": "w:200/h:200/fit:cover", "hero": "w:auto:960/q:70"}
    assert settings.only_presets
    monkeypatch.setenv("EDGEPROXY_PRESETS", '{"thumb": "w:auto/h:10"}')
    with pytest.raises(SettingsError) as info:
        load_settings(config)
    assert (
        str(info.value) == "invalid settings:\n  presets: preset thumb: option w:auto: sets the width only and cannot "
        "be combined with h"
    )


def test_thumbor_and_imgproxy_urls_cannot_share_a_prefix():
    """Both at the root (or under one prefix), one would shadow the other: refused at start-up."""
    with pytest.raises(SettingsError, match="cannot share a prefix"):
        load_settings(
            signing_key="k",
            origins={"media": str(ROOT / "edgeproxy" / "samples")},
            compat_thumbor=True,
            thumbor_security_key="t",
            compat_thumbor_origins={"": "media"},
            compat_thumbor_prefix="",
            compat_imgproxy=True,
            imgproxy_key="aa",
            imgproxy_salt="bb",
            compat_imgproxy_prefix="",
            compat_imgproxy_origins={"local:///": "media"},
        )
