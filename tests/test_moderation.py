"""The moderation policy (``edgeproxy.vision.moderation.decide``) and sidecar parsing, as tables, and a
hostile sidecar served through the real app.

End-to-end behaviour (451, blurred derivatives, caching headers, Varnish) is in
tests/test_vision_http.py and tests/test_vision_varnish.py.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from edgeproxy.settings import SettingsError, load_settings
from edgeproxy.url.signing import PathSigner
from edgeproxy.vision.moderation import Action, Metadata, Policy, Source, Verdict, decide, parse_sidecar
from testkit.app import KEY, make_client, signed

POLICY = Policy(block_threshold=0.85, blur_threshold=0.6, pending=Action.BLOCK)


def human(verdict: str, source: Source = Source.SIDECAR) -> Metadata:
    return Metadata({"moderation": verdict}, source)


@pytest.mark.parametrize(
    ("metadata", "score", "failed", "expected"),
    [
        # a human verdict overrides any score
        (human("approved"), 0.99, False, ("allow", "sidecar", Action.SERVE)),
        (human("rejected"), 0.01, False, ("block", "sidecar", Action.BLOCK)),
        (human(" Approved ", Source.METADATA), None, False, ("allow", "metadata", Action.SERVE)),
        (human("pending"), 0.01, False, ("pending", "sidecar", Action.BLOCK)),
        (human("aproved"), 0.01, False, ("pending", "sidecar", Action.BLOCK)),  # a typo never publishes
        # the classifier, at and around the thresholds
        (Metadata(), 0.85, False, ("block", "classifier", Action.BLOCK)),
        (Metadata(), 0.8499, False, ("blur", "classifier", Action.BLUR)),
        (Metadata(), 0.6, False, ("blur", "classifier", Action.BLUR)),
        (Metadata(), 0.5999, False, ("allow", "classifier", Action.SERVE)),
        (Metadata(), 0.0, False, ("allow", "classifier", Action.SERVE)),
        # nothing known
        (Metadata(), None, False, ("pending", "none", Action.BLOCK)),
        (Metadata(), None, True, ("pending", "error", Action.BLOCK)),
        (Metadata(source=Source.SIDECAR, error="sidecar is not JSON"), 0.01, False, ("pending", "error", Action.BLOCK)),
        # provenance members do not count as a verdict
        (Metadata({"model": "sdxl"}, Source.SIDECAR), 0.01, False, ("allow", "classifier", Action.SERVE)),
    ],
)
def test_decide(metadata, score, failed, expected):
    decision = decide(metadata, score, POLICY, classifier_failed=failed)
    assert (decision.verdict, decision.source, decision.action) == expected
    assert type(decision.verdict) is Verdict and type(decision.source) is Source  # typed, not strings
    assert decision.short_lived == (decision.verdict != "allow")


@pytest.mark.parametrize("pending", list(Action))
def test_pending_follows_the_policy(pending):
    decision = decide(human("pending"), None, Policy(0.85, 0.6, pending))
    assert (decision.verdict, decision.action) == ("pending", pending)


def test_sidecar_members_split_into_verdict_and_provenance():
    data = json.dumps(
        {
            "moderation": "approved",
            "model": "sdxl-1.0",
            "created_at": "2026-11-02T10:00:00Z",
            "license": "CC-BY-4.0",
            "seed": 42,
        }
    ).encode()
    metadata = parse_sidecar(data, 65536)
    assert (metadata.verdict, metadata.source, metadata.error) == ("approved", "sidecar", None)
    assert metadata.provenance == {
        "model": "sdxl-1.0",
        "created_at": "2026-11-02T10:00:00Z",
        "license": "CC-BY-4.0",
        "seed": 42,
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"{not json", "sidecar is not JSON"),
        (b"\xff\xfe", "sidecar is not JSON"),
        (b'["approved"]', "sidecar is not a JSON object"),
        (b'{"moderation": "approved", "pad": "' + b"x" * 100 + b'"}', "sidecar is 137 bytes; the limit is 100"),
        # nesting deeper than the limit (here 4) is refused before the JSON parser sees it
        (b"[" * 45 + b"]" * 45, "sidecar is nested deeper than 4 levels"),
        (b'{"moderation": "approved", "x": [[[{"y": 1}]]]}', "sidecar is nested deeper than 4 levels"),
        (b'{"moderation": "approved", "x": [[[[' + b"]]]]}", "sidecar is nested deeper than 4 levels"),
        (b'{"moderation": "approved", "x": ' + b"[" * 40, "sidecar is nested deeper than 4 levels"),
        (b'{"moderation": "approved", "x": [[]]]]]]]]}', "sidecar is not JSON"),  # closes more than it opens
    ],
)
def test_a_sidecar_that_cannot_be_used_is_an_error_not_an_approval(data, error):
    metadata = parse_sidecar(data, 100, max_depth=4)
    assert metadata.error is not None and metadata.error.startswith(error)
    assert metadata.verdict is None
    assert decide(metadata, 0.0, POLICY).action is Action.BLOCK


def test_brackets_inside_strings_do_not_count_towards_the_depth():
    data = json.dumps({"moderation": "approved", "note": '[[[[{{{{ \\" [[[[', "tags": [["a", "]]]"]]}).encode()
    metadata = parse_sidecar(data, 65536, max_depth=3)  # the object, the list, the list in it
    assert (metadata.error, metadata.verdict, metadata.provenance["tags"]) == (None, "approved", [["a", "]]]"]])
    assert parse_sidecar(data, 65536, max_depth=2).error == "sidecar is nested deeper than 2 levels"
    assert parse_sidecar(b'{"a": [1]}', 65536, max_depth=1).error == "sidecar is nested deeper than 1 level"


def test_the_depth_limit_is_a_setting_with_bounds():
    assert load_settings(signing_key=KEY).sidecar_max_depth == 32
    assert load_settings(signing_key=KEY, sidecar_max_depth=4).sidecar_max_depth == 4
    for bad in (0, 513):
        with pytest.raises(SettingsError, match="sidecar_max_depth"):
            load_settings(signing_key=KEY, sidecar_max_depth=bad)


def test_a_deeply_nested_sidecar_is_a_pending_verdict_on_every_route_not_a_500(corpus: Path, tmp_path: Path, caplog):
    """A 60 KB sidecar of nested arrays (under sidecar_max_bytes): the JSON parser's recursion once
    made render, /info and purge answer 500."""
    shutil.copyfile(corpus / "giunchedi-portrait.jpg", tmp_path / "a.jpg")
    nested = b"[" * 30_000 + b"]" * 30_000
    (tmp_path / "a.jpg.json").write_bytes(nested)
    caplog.set_level(logging.WARNING, logger="edgeproxy")
    token = "admin-token-for-moderation-tests"
    with make_client({"t": str(tmp_path)}, moderation=True, admin_token=token) as c:
        render = c.get(signed("/w:100/f:png/t/a.jpg"))
        assert (render.status_code, render.headers["cache-control"]) == (451, "public, max-age=60")
        info_url = f"/info/{PathSigner([KEY]).sign('/info/t/a.jpg')}/t/a.jpg"
        info = c.get(info_url, headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200, info.text[:300]
        assert info.json()["moderation"] == {"verdict": "pending", "score": None, "source": "error"}
        purge = c.post("/purge", json={"origin": "t", "key": "a.jpg"}, headers={"Authorization": f"Bearer {token}"})
        assert purge.status_code == 200, purge.text[:300]
        again = c.get(signed("/w:100/f:png/t/a.jpg"))  # fetched and parsed again after the purge
        assert again.status_code == 451
        metrics = c.get("/metrics").text
    assert 'edgeproxy_errors_total{category="internal"} 0.0' in metrics
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.getMessage() == "unusable sidecar"]
    assert warnings, [r.getMessage() for r in caplog.records]
    # the sidecar's name and what is wrong with it; never its content
    assert warnings[0].fields == {"sidecar": "t/a.jpg.json", "error": "sidecar is nested deeper than 32 levels"}
