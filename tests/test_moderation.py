"""The moderation policy (``edgeproxy.moderation.decide``) and sidecar parsing, as tables.

End-to-end behaviour (451, blurred derivatives, caching headers, Varnish) is in
tests/test_vision_http.py and tests/test_vision_varnish.py.
"""

from __future__ import annotations

import json

import pytest

from edgeproxy.moderation import Action, Metadata, Policy, decide, parse_sidecar

POLICY = Policy(block_threshold=0.85, blur_threshold=0.6, pending=Action.BLOCK)


def human(verdict: str, source: str = "sidecar") -> Metadata:
    return Metadata({"moderation": verdict}, source)


@pytest.mark.parametrize(
    ("metadata", "score", "failed", "expected"),
    [
        # a human verdict overrides any score
        (human("approved"), 0.99, False, ("allow", "sidecar", Action.SERVE)),
        (human("rejected"), 0.01, False, ("block", "sidecar", Action.BLOCK)),
        (human(" Approved ", "metadata"), None, False, ("allow", "metadata", Action.SERVE)),
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
        (Metadata(source="sidecar", error="sidecar is not JSON"), 0.01, False, ("pending", "error", Action.BLOCK)),
        # provenance members do not count as a verdict
        (Metadata({"model": "sdxl"}, "sidecar"), 0.01, False, ("allow", "classifier", Action.SERVE)),
    ],
)
def test_decide(metadata, score, failed, expected):
    decision = decide(metadata, score, POLICY, classifier_failed=failed)
    assert (decision.verdict, decision.source, decision.action) == expected
    assert decision.short_lived == (decision.verdict != "allow")


@pytest.mark.parametrize("pending", list(Action))
def test_pending_follows_the_policy(pending):
    decision = decide(human("pending"), None, Policy(0.85, 0.6, pending))
    assert (decision.verdict, decision.action) == ("pending", pending)


def test_sidecar_members_split_into_verdict_and_provenance():
    data = json.dumps({"moderation": "approved", "model": "sdxl-1.0", "created_at": "2026-11-02T10:00:00Z",
                       "license": "CC-BY-4.0", "seed": 42}).encode()
    metadata = parse_sidecar(data, 65536)
    assert (metadata.verdict, metadata.source, metadata.error) == ("approved", "sidecar", None)
    assert metadata.provenance == {"model": "sdxl-1.0", "created_at": "2026-11-02T10:00:00Z",
                                   "license": "CC-BY-4.0", "seed": 42}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"{not json", "sidecar is not JSON"),
        (b"\xff\xfe", "sidecar is not JSON"),
        (b'["approved"]', "sidecar is not a JSON object"),
        (b'{"moderation": "approved", "pad": "' + b"x" * 100 + b'"}', "sidecar is 137 bytes; the limit is 100"),
    ],
)
def test_a_sidecar_that_cannot_be_used_is_an_error_not_an_approval(data, error):
    metadata = parse_sidecar(data, 100)
    assert metadata.error is not None and metadata.error.startswith(error)
    assert metadata.verdict is None
    assert decide(metadata, 0.0, POLICY).action is Action.BLOCK
