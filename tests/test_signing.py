"""Signatures: the published test vector, rotation, unsigned mode, malformed signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeproxy.errors import ProxyError
from edgeproxy.url.signing import PathSigner, sign_path

# The README's test vector.
VECTOR_KEY = "edgeproxy-test-key"
VECTOR_PATH = "/w:400/f:auto/demo/photo.jpg"
VECTOR_SIGNATURE = "rqufbFtvkzI1TYyIM7jKdQdcFfaR8jZ4ZsKp2s1zEzc"


def test_readme_vector_matches_plain_hmac_sha256():
    expected = (
        base64.urlsafe_b64encode(hmac.new(VECTOR_KEY.encode(), VECTOR_PATH.encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    assert expected == VECTOR_SIGNATURE
    assert sign_path(VECTOR_PATH, VECTOR_KEY) == f"/{VECTOR_SIGNATURE}{VECTOR_PATH}"


#: The README's /info test vector: the same key, signed over /info/demo/photo.jpg.
INFO_VECTOR = "/info/vngUzqi6wQVVf_ZzcxPn6HJITv0gP2QIdfImqPakBIk/demo/photo.jpg"


def test_info_paths_are_their_own_signature_domain():
    digest = hmac.new(VECTOR_KEY.encode(), b"/info/demo/photo.jpg", hashlib.sha256).digest()
    mac = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    short = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert sign_path("/info/demo/photo.jpg", VECTOR_KEY) == f"/info/{mac}/demo/photo.jpg" == INFO_VECTOR
    signer = PathSigner([VECTOR_KEY])
    signer.verify(mac, "/info/demo/photo.jpg")
    with pytest.raises(ProxyError):  # never the option-less transform path's signature
        signer.verify(mac, "/demo/photo.jpg")
    assert sign_path("/information/x.jpg", VECTOR_KEY).startswith("/")  # an origin named "information": a transform
    assert sign_path("/information/x.jpg", VECTOR_KEY).endswith("/information/x.jpg")
    assert sign_path("/info/demo/photo.jpg", VECTOR_KEY, size=16) == f"/info/{short}/demo/photo.jpg"


def test_sign_cli_prints_the_vector():
    out = subprocess.run(
        [sys.executable, "-m", "edgeproxy", "sign", "--signing-key", VECTOR_KEY, VECTOR_PATH],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == f"/{VECTOR_SIGNATURE}{VECTOR_PATH}\n"


def test_first_key_signs_and_every_key_verifies():
    signer = PathSigner(["new", "old"])
    assert signer.sign("/p") == PathSigner(["new"]).sign("/p")
    signer.verify(PathSigner(["old"]).sign("/p"), "/p")
    signer.verify(PathSigner(["new"]).sign("/p"), "/p")
    with pytest.raises(ProxyError) as info:
        signer.verify(PathSigner(["other"]).sign("/p"), "/p")
    assert info.value.status == 403


def test_signature_covers_the_raw_percent_encoded_path():
    signer = PathSigner(["k"])
    signature = signer.sign("/demo/a%20b.jpg")
    signer.verify(signature, "/demo/a%20b.jpg")
    with pytest.raises(ProxyError):
        signer.verify(signature, "/demo/a b.jpg")


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "unsafe",
        "abc",
        VECTOR_SIGNATURE + "=",
        VECTOR_SIGNATURE[:-1],
        VECTOR_SIGNATURE[:-1] + "+",
        VECTOR_SIGNATURE[:-1] + ("A" if VECTOR_SIGNATURE[-1] != "A" else "B"),
    ],
)
def test_malformed_or_wrong_signatures_are_403(signature):
    with pytest.raises(ProxyError) as info:
        PathSigner([VECTOR_KEY]).verify(signature, VECTOR_PATH)
    assert (info.value.status, info.value.message) == (403, "invalid signature")


def test_unsafe_only_when_allowed():
    PathSigner([], allow_unsigned=True).verify("unsafe", "/anything")
    with pytest.raises(ValueError):
        PathSigner([])


def test_truncated_signatures_when_configured():
    """``signature_size = 16``: the first 16 bytes of the HMAC, 22 base64url characters, and nothing else."""
    full = PathSigner([VECTOR_KEY]).sign(VECTOR_PATH)
    short = PathSigner([VECTOR_KEY], size=16)
    expected = (
        base64.urlsafe_b64encode(hmac.new(VECTOR_KEY.encode(), VECTOR_PATH.encode(), hashlib.sha256).digest()[:16])
        .rstrip(b"=")
        .decode()
    )
    assert short.sign(VECTOR_PATH) == expected == "rqufbFtvkzI1TYyIM7jKdQ"  # the README's vector for 16
    short.verify(expected, VECTOR_PATH)
    # 22 characters carry 132 bits: a last character that differs only in the 4 unused bits decodes
    # to the same 16 bytes but is not the signature.
    twin = (
        expected[:-1]
        + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(expected[-1]) ^ 1
        ]
    )
    for wrong in (full, twin, expected[:-1], expected + "A"):
        with pytest.raises(ProxyError) as info:
            short.verify(wrong, VECTOR_PATH)
        assert info.value.status == 403
    with pytest.raises(ProxyError):  # a full-size signer refuses truncated signatures
        PathSigner([VECTOR_KEY]).verify(expected, VECTOR_PATH)
    with pytest.raises(ValueError):
        PathSigner([VECTOR_KEY], size=4)


def test_sign_cli_truncates_when_asked():
    out = subprocess.run(
        [sys.executable, "-m", "edgeproxy", "sign", "--signing-key", VECTOR_KEY, "--signature-size", "16", VECTOR_PATH],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == f"/{PathSigner([VECTOR_KEY], size=16).sign(VECTOR_PATH)}{VECTOR_PATH}\n"


@settings(max_examples=500, deadline=None)
@given(signature=st.text(max_size=60), path=st.text(max_size=80), size=st.sampled_from([8, 16, 32]))
def test_any_signature_verifies_only_when_it_is_the_hmac(signature, path, size):
    """Arbitrary text as signature and path: verify either accepts (only the exact HMAC) or raises
    a 403, never anything else."""
    signer = PathSigner([VECTOR_KEY, "old-key"], size=size)
    try:
        signer.verify(signature, path)
    except ProxyError as error:
        assert error.status == 403
    else:
        assert signature in (signer.sign(path), PathSigner(["old-key"], size=size).sign(path))
    signer.verify(signer.sign(path), path)
