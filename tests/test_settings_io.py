"""Settings in and out of text (edgeproxy/settings_io.py): the JSON a worker process is handed, and the TOML
``edgeproxy check-config`` prints, with every secret masked."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgeproxy.settings import load_settings
from edgeproxy.settings_io import MASK, SERIALIZED_ENV, describe, serialize, settings_from_serialized

SECRET = "a-signing-key-nobody-may-read"


def settings(tmp_path: Path):
    return load_settings(
        signing_key=SECRET,
        previous_signing_keys=["old-key-1", "old-key-2"],
        admin_token="an-admin-token-of-32-characters!",
        origins={"media": str(tmp_path)},
        presets={"thumb": "w:200/h:200/fit:cover"},
        purge_hooks=["webhook:https://user:hook-password@cdn.example.com/purge?token=hook-token"],
        quality_webp=61,
    )


def test_a_worker_gets_the_same_settings_secrets_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    original = settings(tmp_path)
    monkeypatch.setenv(SERIALIZED_ENV, serialize(original))
    copy = settings_from_serialized()
    assert copy == original
    assert copy.signing_key is not None and copy.signing_key.get_secret_value() == SECRET
    assert [k.get_secret_value() for k in copy.previous_signing_keys] == ["old-key-1", "old-key-2"]


def test_describe_prints_toml_with_every_secret_masked(tmp_path: Path):
    text = describe(settings(tmp_path))
    for secret in (SECRET, "old-key-1", "an-admin-token", "hook-password", "hook-token"):
        assert secret not in text
    printed = tomllib.loads(text)
    assert printed["signing_key"] == MASK
    assert printed["previous_signing_keys"] == [MASK, MASK]
    assert printed["quality_webp"] == 61
    assert printed["origins"] == {"media": str(tmp_path)}
    assert printed["presets"] == {"thumb": "w:200/h:200/fit:cover"}
    assert "fallback_image" not in printed and "# fallback_image = (unset)" in text.splitlines()


def test_describe_shows_a_setting_named_unset_as_unset(tmp_path: Path):
    lines = describe(settings(tmp_path), frozenset({"signing_key"})).splitlines()
    assert "# signing_key = (unset)" in lines
