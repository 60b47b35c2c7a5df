"""C2PA provenance (edgeproxy/provenance/: context, read, redact, sign): reading originals' manifests,
signing derivatives, and proof that neither makes a network request (remote manifests, OCSP).

Certificates are generated here (a CA and an ES256 end-entity certificate with the profile c2pa
requires); every server is a local one on 127.0.0.1 that counts the requests it gets.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import c2pa
import pytest
import pyvips
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from edgeproxy import __version__
from edgeproxy.provenance import context as provenance_context
from edgeproxy.provenance import read as provenance_read
from edgeproxy.provenance import redact as provenance_redact
from edgeproxy.provenance import sign as provenance_sign
from edgeproxy.provenance.context import SETTINGS, C2paContexts, setting_paths
from edgeproxy.provenance.read import read_manifest
from edgeproxy.provenance.sign import DerivativeSigner, ProvenanceError, derivative_actions
from testkit.c2pa import Credentials, make_credentials
from testkit.origin import Origin, Reply, Request, serve_origin

#: The c2pa contexts the app would build at start-up (``compose.compose``), shared by these tests.
CONTEXTS = C2paContexts()

# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def credentials() -> Credentials:
    return make_credentials()


@pytest.fixture(scope="module")
def signer(credentials: Credentials) -> DerivativeSigner:
    return DerivativeSigner.from_pem(credentials.chain, credentials.key, contexts=CONTEXTS)


C2PA_TYPE = {"Content-Type": "application/c2pa"}


@contextlib.contextmanager
def recording_server() -> Iterator[Origin]:
    """A local HTTP server that logs every request and answers a GET with the object set on it (404
    when absent) and a POST with a 500; ``calls(origin)`` lists what it got."""

    def fallback(request: Request) -> Reply:
        return Reply(500 if request.method == "POST" else 404, headers=C2PA_TYPE)

    with serve_origin(fallback=fallback) as origin:
        yield origin


def calls(origin: Origin) -> list[str]:
    """Every request ``origin`` got, as ``"GET /path"``."""
    return [f"{request.method} {request.path}" for request in origin.requests]


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, offset of the marker, length field) of each JPEG header segment, up to SOS included."""
    offset = 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        yield marker, offset, length
        if marker == 0xDA:
            return
        offset += 2 + length


def app11(data: bytes) -> tuple[int, int]:
    """(start, end) of the payload of the first APP11 segment (where C2PA's JUMBF lives in a JPEG)."""
    marker, offset, length = next(s for s in jpeg_segments(data) if s[0] == 0xEB)
    return offset + 4, offset + 2 + length


def tamper_scan_data(data: bytes) -> bytes:
    """``data`` with 64 bytes of the JPEG's entropy-coded pixel data changed (no marker created)."""
    _, sos, length = next(s for s in jpeg_segments(data) if s[0] == 0xDA)
    start = sos + 2 + length + (len(data) - sos) // 2
    out = bytearray(data)
    changed = 0
    for i in range(start, len(out) - 2):
        if out[i] < 0xF0 and out[i - 1] != 0xFF:
            out[i] ^= 0x0F
            changed += 1
            if changed == 64:
                break
    return bytes(out)


def resized(corpus: Path, name: str, width: int, suffix: str) -> bytes:
    """``name`` from the corpus, ``width`` px wide, encoded as ``suffix`` (".jpg", ".webp"...)."""
    image = pyvips.Image.thumbnail_buffer((corpus / name).read_bytes(), width).copy_memory()
    if suffix == ".avif":
        return image.heifsave_buffer(compression="av1", effort=0)
    return image.write_to_buffer(suffix)


def sign_portrait(
    signer: DerivativeSigner,
    corpus: Path,
    suffix: str = ".jpg",
    mime: str = "image/jpeg",
    original: str = "giunchedi-portrait.jpg",
) -> tuple[bytes, bytes]:
    """(derivative, signed derivative): ``original`` resized to 200 px and transcoded."""
    body = resized(corpus, original, 200, suffix)
    signed = signer.sign(
        body,
        mime,
        original=(corpus / original).read_bytes(),
        original_mime="image/jpeg",
        original_title=original,
        actions=derivative_actions(resized=True, cropped=False, transcoded=True, parameters={"width": 200}),
    )
    return body, signed


def c2pa_store(data: bytes, mime: str, settings: dict | None = None) -> dict:
    """The full manifest store c2pa reports, read with ``settings`` (default: edgeproxy's)."""
    with (
        c2pa.Context.from_dict(SETTINGS if settings is None else settings) as context,
        c2pa.Reader(mime, io.BytesIO(data), context=context) as reader,
    ):
        return json.loads(reader.json())


# ------------------------------------------------------------------------------------------ C2paContexts


def test_contexts_are_built_once_and_shared():
    contexts = C2paContexts()
    assert contexts.reading is contexts.reading and contexts.listing is contexts.listing
    assert contexts.reading is not contexts.listing
    other = C2paContexts()  # an object of its own: nothing is shared through a module
    assert other.reading is not contexts.reading


def test_no_provenance_module_holds_c2pa_state():
    """Contexts live in the object the app builds (``C2paContexts``), never in a module global."""
    for module in (provenance_context, provenance_read, provenance_redact, provenance_sign):
        for name, value in vars(module).items():
            assert not isinstance(value, c2pa.Context | C2paContexts | type(threading.Lock())), (module, name)


def test_every_setting_edgeproxy_relies_on_is_known_to_this_c2pa():
    # c2pa ignores unknown keys silently: a typo would leave remote fetching on without a word...
    with c2pa.Settings() as settings:
        settings.set("verify.remote_manifest_fetchh", '"wrong"')
    # ...but type-checks the keys it knows, which is how C2paContexts proves each one is real.
    paths = dict(setting_paths(SETTINGS))
    assert paths["verify.remote_manifest_fetch"] is False
    assert paths["verify.ocsp_fetch"] is False
    assert paths["core.allowed_network_hosts"] == []
    for path in paths:
        with c2pa.Settings() as settings, pytest.raises(c2pa.C2paError, match=f"invalid value for '{path}'"):
            settings.set(path, '"wrong"')


def test_contexts_refuse_a_setting_this_c2pa_does_not_know():
    with pytest.raises(RuntimeError, match="does not know the setting verify.remote_manifest_fetchh"):
        C2paContexts({"verify": {"remote_manifest_fetchh": False}})
    with pytest.raises(RuntimeError, match="does not know the setting verify.after_readingg"):
        C2paContexts(listing={"verify": {"after_readingg": False}})


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_forked_process_reads_with_contexts_of_its_own(corpus: Path):
    """A c2pa context belongs to the process that made it: a process forked from the app's rebuilds
    its own before its first read, and reads with it; the parent keeps its own."""
    data = (corpus / "c2pa-signed.jpg").read_bytes()
    parent = CONTEXTS.reading
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            signal.alarm(30)  # a child stuck in c2pa dies rather than hang the test
            summary = read_manifest(data, "image/jpeg", CONTEXTS)
            own = CONTEXTS.reading is not parent and CONTEXTS.reading is CONTEXTS.reading
            os.write(writable, b"1" if own and summary["validation_state"] == "Valid" else b"0")
        finally:
            os._exit(0)
    os.close(writable)
    answer = os.read(readable, 1)
    os.close(readable)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert CONTEXTS.reading is parent


def test_a_remote_manifest_is_never_fetched(credentials: Credentials):
    """An asset whose manifest is only a URL (C2PA "Remote manifests"): c2pa's defaults fetch it, edgeproxy
    does not. The control read proves this test sees a fetch when there is one."""
    image = pyvips.Image.black(64, 48).jpegsave_buffer()
    with recording_server() as origin:
        url = f"{origin.url}manifests/remote.c2pa"
        with (
            c2pa.Context.from_dict(SETTINGS) as context,
            c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", credentials.chain, credentials.key, None)) as sig,
            c2pa.Builder({"claim_generator_info": [{"name": "test"}], "title": "remote.jpg"}, context=context) as b,
        ):
            b.set_intent(c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.DIGITAL_CAPTURE)
            b.set_no_embed()
            b.set_remote_url(url)
            output = io.BytesIO()
            manifest = b.sign(sig, "image/jpeg", io.BytesIO(image), output)
            origin["manifests/remote.c2pa"] = Reply(200, manifest, headers=C2PA_TYPE)
        asset = output.getvalue()
        assert url.encode() in asset and b"jumb" not in asset  # the URL only, no embedded manifest

        # Control: c2pa's default context fetches the manifest and validates it.
        with c2pa.Context() as defaults, c2pa.Reader("image/jpeg", io.BytesIO(asset), context=defaults) as reader:
            assert json.loads(reader.json())["validation_state"] == "Valid"
            assert not reader.is_embedded()
        assert calls(origin) == ["GET /manifests/remote.c2pa"]

        origin.requests.clear()
        summary = read_manifest(asset, "image/jpeg", CONTEXTS)
        assert calls(origin) == []  # edgeproxy: no request at all
        # Signing with that asset as the original does not fetch it either: the ingredient says so.
        signed = DerivativeSigner.from_pem(credentials.chain, credentials.key, contexts=CONTEXTS).sign(
            image, "image/jpeg", original=asset, original_mime="image/jpeg", original_title="remote.jpg", actions=[]
        )
        store = c2pa_store(signed, "image/jpeg")
        (ingredient,) = store["manifests"][store["active_manifest"]]["ingredients"]
        assert ingredient["validation_results"]["activeManifest"]["failure"][0]["code"] == "manifest.inaccessible"
        assert calls(origin) == []
        # Each of the two layers alone keeps the request from being made.
        for layer in ({"verify": {"remote_manifest_fetch": False}}, {"core": {"allowed_network_hosts": []}}):
            with pytest.raises(c2pa.C2paError, match="Remote: "):
                c2pa_store(asset, "image/jpeg", layer)
        assert calls(origin) == []
    assert summary["validation_state"] == "Unverified"
    assert "remote manifest not fetched" in summary["error"]
    json.dumps(summary)


def test_ocsp_is_never_fetched_when_reading_or_signing(corpus: Path):
    """A signer certificate naming an OCSP responder: with ``verify.ocsp_fetch`` on c2pa asks it; edgeproxy
    neither when signing nor when reading, and c2pa records the check as skipped."""
    with recording_server() as origin:
        creds = make_credentials(ocsp_url=f"{origin.url}ocsp")
        signer = DerivativeSigner.from_pem(creds.chain, creds.key, contexts=CONTEXTS)
        _, signed = sign_portrait(signer, corpus)
        assert calls(origin) == []

        control = c2pa_store(signed, "image/jpeg", {"verify": {"ocsp_fetch": True}})
        assert calls(origin) and calls(origin)[0].startswith("GET /")  # the test sees an OCSP request when there is one
        assert "signingCredential.ocsp.inaccessible" in json.dumps(control)

        origin.requests.clear()
        assert read_manifest(signed, "image/jpeg", CONTEXTS)["validation_state"] == "Valid"
        store = c2pa_store(signed, "image/jpeg")
        c2pa_store(signed, "image/jpeg", {"verify": {"ocsp_fetch": True}, "core": {"allowed_network_hosts": []}})
        assert calls(origin) == []  # and the host allow-list alone would stop an OCSP request too
    informational = [s["code"] for s in store["validation_results"]["activeManifest"]["informational"]]
    assert "signingCredential.ocsp.skipped" in informational


# -------------------------------------------------------------------------------------- read_manifest()


def test_reads_the_signed_corpus_file_exactly(corpus: Path):
    summary = read_manifest((corpus / "c2pa-signed.jpg").read_bytes(), "image/jpeg", CONTEXTS)
    assert summary == {
        "validation_state": "Valid",
        "title": "C.jpg",
        "claim_generator": "make_test_images/0.26.0 c2pa-rs/0.26.0",
        "actions": [
            {
                "action": "c2pa.created",
                "softwareAgent": "Make Test Images 0.26.0",
                "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia",
            }
        ],
        "ingredients": [],
        "signature": {
            "issuer": "C2PA Test Signing Cert",
            "common_name": "C2PA Signer",
            "alg": "Ps256",
            "time": "2023-09-29T17:40:14+00:00",
        },
        "errors": ["signingCredential.untrusted"],  # C2PA's test certificates are on no trust list
    }
    assert json.loads(json.dumps(summary)) == summary


@pytest.mark.parametrize("name", ["giunchedi-portrait.jpg", "no-face.jpg", "image.webp", "giunchedi.png"])
def test_an_image_without_a_manifest_reads_none(corpus: Path, name: str):
    mime = {"jpg": "image/jpeg", "webp": "image/webp", "png": "image/png"}[name.rsplit(".", 1)[1]]
    assert read_manifest((corpus / name).read_bytes(), mime, CONTEXTS) is None


def test_garbage_and_truncated_files_never_raise(corpus: Path):
    data = (corpus / "c2pa-signed.jpg").read_bytes()
    assert read_manifest(b"\x00garbage" * 100, "image/jpeg", CONTEXTS) is None
    assert read_manifest(b"", "image/png", CONTEXTS) is None
    half = read_manifest(data[: len(data) // 2], "image/jpeg", CONTEXTS)  # the pixels are cut: the hash fails
    assert half["validation_state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in half["errors"]
    start, _ = app11(data)
    inside = read_manifest(data[: start + 1000], "image/jpeg", CONTEXTS)  # cut inside the manifest itself
    assert inside["validation_state"] == "Invalid" and inside["error"]
    json.dumps([half, inside])


def test_a_corrupted_manifest_is_invalid_and_no_flip_raises(corpus: Path):
    data = (corpus / "c2pa-signed.jpg").read_bytes()
    start, end = app11(data)

    def flipped(position: int, count: int = 16) -> bytes:
        out = bytearray(data)
        for i in range(position, min(position + count, end)):
            out[i] ^= 0xFF
        return bytes(out)

    corrupt = read_manifest(flipped(start + (end - start) * 3 // 10), "image/jpeg", CONTEXTS)
    assert corrupt["validation_state"] == "Invalid"
    assert "assertion.hashedURI.mismatch" in corrupt["errors"]
    header = read_manifest(flipped(start, 40), "image/jpeg", CONTEXTS)  # the JUMBF box headers themselves
    assert header is None or header["validation_state"] == "Invalid"

    states = set()
    for k in range(60):  # flips across the whole segment: never an exception, never "Trusted"
        summary = read_manifest(flipped(start + (end - start) * k // 60, 8), "image/jpeg", CONTEXTS)
        json.dumps(summary)
        states.add(None if summary is None else summary["validation_state"])
    assert "Invalid" in states and "Trusted" not in states


# ---------------------------------------------------------------------------------- DerivativeSigner


@pytest.mark.parametrize(
    ("suffix", "mime"),
    [
        (".jpg", "image/jpeg"),
        (".webp", "image/webp"),
        (".png", "image/png"),
        (".gif", "image/gif"),
        (".avif", "image/avif"),
    ],
)
def test_signed_derivative_names_its_parent_and_actions(signer: DerivativeSigner, corpus: Path, suffix: str, mime: str):
    body, signed = sign_portrait(signer, corpus, suffix, mime)
    print(f"{mime}: {len(body)} -> {len(signed)} bytes (+{len(signed) - len(body)})")
    assert len(signed) - len(body) < 8_000  # no thumbnails: one ES256 chain, claim and assertions

    summary = read_manifest(signed, mime, CONTEXTS)
    assert summary["validation_state"] == "Valid"
    assert summary["title"] == "giunchedi-portrait.jpg"
    assert summary["claim_generator"] == f"edgeproxy/{__version__}"
    assert summary["ingredients"] == [
        {"title": "giunchedi-portrait.jpg", "format": "image/jpeg", "relationship": "parentOf"}
    ]
    agent = f"edgeproxy/{__version__}"
    assert summary["actions"] == [
        {"action": "c2pa.opened"},
        {"action": "c2pa.resized", "softwareAgent": agent},
        {"action": "c2pa.transcoded", "softwareAgent": agent},
    ]
    assert summary["errors"] == ["signingCredential.untrusted"]

    # The full store: claim v2, c2pa.opened linked to the parentOf ingredient, parameters kept.
    store = c2pa_store(signed, mime)
    active = store["manifests"][store["active_manifest"]]
    assert active["claim_version"] == 2
    (actions,) = [a["data"]["actions"] for a in active["assertions"] if a["label"] == "c2pa.actions.v2"]
    assert actions[0]["parameters"]["ingredients"][0]["url"] == "self#jumbf=c2pa.assertions/c2pa.ingredient.v3"
    assert actions[1]["parameters"] == {"width": 200}
    assert active["ingredients"][0]["label"] == "c2pa.ingredient.v3"

    original, decoded = pyvips.Image.new_from_buffer(body, ""), pyvips.Image.new_from_buffer(signed, "")
    assert (decoded.width, decoded.height) == (original.width, original.height) == (200, 133)


def test_the_test_ca_makes_the_derivative_trusted(signer: DerivativeSigner, credentials: Credentials, corpus: Path):
    _, signed = sign_portrait(signer, corpus)
    trusting = {**SETTINGS, "trust": {"user_anchors": credentials.ca.decode()}}
    store = c2pa_store(signed, "image/jpeg", trusting)
    assert store["validation_state"] == "Trusted"


@pytest.mark.parametrize(("suffix", "mime"), [(".jpg", "image/jpeg"), (".png", "image/png")])
def test_changed_pixels_break_the_signature(signer: DerivativeSigner, corpus: Path, suffix: str, mime: str):
    _, signed = sign_portrait(signer, corpus, suffix, mime)
    if mime == "image/jpeg":
        tampered = tamper_scan_data(signed)
    else:
        idat = signed.index(b"IDAT") + 4
        tampered = (
            signed[: idat + 100] + bytes(b ^ 0x5A for b in signed[idat + 100 : idat + 164]) + signed[idat + 164 :]
        )
    assert tampered != signed and len(tampered) == len(signed)
    summary = read_manifest(tampered, mime, CONTEXTS)
    assert summary["validation_state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in summary["errors"]


def test_an_original_with_a_manifest_is_carried_into_the_derivative(signer: DerivativeSigner, corpus: Path):
    body, signed = sign_portrait(signer, corpus, original="c2pa-signed.jpg")
    print(f"original with a manifest: {len(body)} -> {len(signed)} bytes (+{len(signed) - len(body)})")
    store = c2pa_store(signed, "image/jpeg")
    assert len(store["manifests"]) == 2  # the original's manifest travels as the ingredient's
    (ingredient,) = store["manifests"][store["active_manifest"]]["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["active_manifest"] == "contentauth:urn:uuid:c85a2b90-f1a0-4aa4-b17f-f938b475804e"
    assert read_manifest(signed, "image/jpeg", CONTEXTS)["validation_state"] == "Valid"


def test_an_original_with_a_corrupt_manifest_still_signs(signer: DerivativeSigner, corpus: Path):
    data = (corpus / "c2pa-signed.jpg").read_bytes()
    start, end = app11(data)
    position = start + (end - start) * 3 // 10
    corrupt = data[:position] + bytes(b ^ 0xFF for b in data[position : position + 16]) + data[position + 16 :]
    body = pyvips.Image.thumbnail_buffer(corrupt, 100).jpegsave_buffer()
    signed = signer.sign(
        body,
        "image/jpeg",
        original=corrupt,
        original_mime="image/jpeg",
        original_title="C.jpg",
        actions=derivative_actions(resized=True, cropped=False, transcoded=True),
    )
    assert read_manifest(signed, "image/jpeg", CONTEXTS)["validation_state"] == "Valid"


@pytest.mark.parametrize(
    ("original", "mime"),
    [(b"x", "image/png"), (b"BM" + bytes(60), "image/bmp"), (b"\xff\xd8\xff\xe0 cut short", "image/jpeg")],
)
def test_an_original_c2pa_cannot_parse_is_still_the_parent(signer: DerivativeSigner, original: bytes, mime: str):
    body = pyvips.Image.black(16, 16).pngsave_buffer()
    signed = signer.sign(
        body,
        "image/png",
        original=original,
        original_mime=mime,
        original_title="odd",
        actions=derivative_actions(resized=False, cropped=False, transcoded=True),
    )
    summary = read_manifest(signed, "image/png", CONTEXTS)
    assert summary["validation_state"] == "Valid"
    assert summary["ingredients"] == [{"title": "odd", "format": mime, "relationship": "parentOf"}]


def test_signing_is_thread_safe(signer: DerivativeSigner, corpus: Path):
    original = (corpus / "giunchedi-portrait.jpg").read_bytes()
    credentialed = (corpus / "c2pa-signed.jpg").read_bytes()  # its store is listed and redacted: shared context
    bodies = [
        pyvips.Image.thumbnail_buffer(original, width).copy_memory().write_to_buffer(suffix)
        for width, suffix in ((120, ".jpg"), (140, ".webp"), (160, ".png"), (180, ".jpg"))
    ]
    mimes = ["image/jpeg", "image/webp", "image/png", "image/jpeg"]

    def job(i: int) -> str:
        body, mime = bodies[i % 4], mimes[i % 4]
        signed = signer.sign(
            body,
            mime,
            original=credentialed if i % 3 else original,
            original_mime="image/jpeg",
            original_title=f"t{i}",
            actions=derivative_actions(resized=True, cropped=i % 2 == 0, transcoded=True),
        )
        summary = read_manifest(signed, mime, CONTEXTS)
        return f"{summary['validation_state']} {summary['title']}"

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(job, range(48))) == [f"Valid t{i}" for i in range(48)]


def test_supported_formats():
    for mime in ("image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "IMAGE/JPEG; q=1"):
        assert CONTEXTS.supports(mime), mime
    for mime in ("image/bmp", "image/x-icon", "text/plain", "jpeg", ""):
        assert not CONTEXTS.supports(mime), mime


def test_an_unsupported_format_is_refused(signer: DerivativeSigner):
    with pytest.raises(ProvenanceError, match="c2pa cannot embed a manifest in image/bmp"):
        signer.sign(
            b"BM" + bytes(60), "image/bmp", original=b"x", original_mime="image/bmp", original_title="x", actions=[]
        )


# --------------------------------------------------------------------------------- from_files() errors


def write_pair(tmp_path: Path, chain: bytes, key: bytes) -> tuple[Path, Path]:
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    return tmp_path / "chain.pem", tmp_path / "key.pem"


def test_from_files_with_good_credentials_signs(tmp_path: Path, credentials: Credentials):
    chain, key = write_pair(tmp_path, credentials.chain, credentials.key)
    signer = DerivativeSigner.from_files(chain, str(key), contexts=CONTEXTS)
    body = pyvips.Image.black(16, 16).jpegsave_buffer()
    signed = signer.sign(
        body, "image/jpeg", original=body, original_mime="image/jpeg", original_title="o.jpg", actions=[]
    )
    assert read_manifest(signed, "image/jpeg", CONTEXTS)["actions"] == [{"action": "c2pa.opened"}]


def test_from_files_takes_a_traditional_ec_key(tmp_path: Path, credentials: Credentials):
    sec1 = serialization.load_pem_private_key(credentials.key, None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    chain, key = write_pair(tmp_path, credentials.chain, sec1)
    assert DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)


def test_from_files_names_a_missing_file(tmp_path: Path, credentials: Credentials):
    chain, key = write_pair(tmp_path, credentials.chain, credentials.key)
    with pytest.raises(ProvenanceError, match=r"certificate chain .*nope.pem: cannot be read \(No such file"):
        DerivativeSigner.from_files(tmp_path / "nope.pem", key, contexts=CONTEXTS)
    with pytest.raises(ProvenanceError, match=r"private key .*nope.key: cannot be read"):
        DerivativeSigner.from_files(chain, tmp_path / "nope.key", contexts=CONTEXTS)


def test_from_files_names_garbage_pem(tmp_path: Path, credentials: Credentials):
    chain, key = write_pair(
        tmp_path, b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", credentials.key
    )
    with pytest.raises(ProvenanceError, match=r"certificate chain .*chain.pem: not PEM certificates"):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)
    chain, key = write_pair(tmp_path, b"", credentials.key)
    with pytest.raises(ProvenanceError, match=r"certificate chain .*chain.pem: not PEM certificates"):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)
    chain, key = write_pair(tmp_path, credentials.chain, b"just some text\n")
    with pytest.raises(ProvenanceError, match=r"private key .*key.pem: not an unencrypted PEM private key"):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)
    encrypted = serialization.load_pem_private_key(credentials.key, None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"secret")
    )
    chain, key = write_pair(tmp_path, credentials.chain, encrypted)
    with pytest.raises(ProvenanceError, match="not an unencrypted PEM private key"):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)


def test_from_files_refuses_a_key_that_does_not_match(tmp_path: Path, credentials: Credentials):
    chain, key = write_pair(tmp_path, credentials.chain, make_credentials().key)
    with pytest.raises(
        ProvenanceError,
        match=r"private key .*key.pem does not match the first certificate of .*"
        r"chain.pem \(O=edgeproxy tests,CN=edgeproxy test signer\)",
    ):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)


def test_from_files_refuses_a_key_of_the_wrong_algorithm(tmp_path: Path, credentials: Credentials):
    chain, key = write_pair(tmp_path, credentials.chain, credentials.key)
    with pytest.raises(ProvenanceError, match="es384 needs an EC secp384r1 key"):
        DerivativeSigner.from_files(chain, key, alg="es384", contexts=CONTEXTS)
    with pytest.raises(ProvenanceError, match="ps256 needs an RSA key"):
        DerivativeSigner.from_files(chain, key, alg="ps256", contexts=CONTEXTS)
    with pytest.raises(ProvenanceError, match="unknown C2PA signing algorithm 'rs256'"):
        DerivativeSigner.from_files(chain, key, alg="rs256", contexts=CONTEXTS)
    p384 = make_credentials(curve=ec.SECP384R1())
    chain, key = write_pair(tmp_path, p384.chain, p384.key)
    assert DerivativeSigner.from_files(chain, key, alg="es384", contexts=CONTEXTS)


def test_from_files_refuses_what_c2pa_refuses(tmp_path: Path):
    no_eku = make_credentials(eku=None)  # c2pa's profile: an end-entity certificate needs an accepted EKU
    chain, key = write_pair(tmp_path, no_eku.chain, no_eku.key)
    with pytest.raises(ProvenanceError, match=r"c2pa refuses the certificate .*chain.pem .*the certificate is invalid"):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)
    server_auth = make_credentials(eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    chain, key = write_pair(tmp_path, server_auth.chain, server_auth.key)
    with pytest.raises(ProvenanceError, match="c2pa refuses the certificate"):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)


def test_from_files_refuses_a_certificate_not_valid_now(tmp_path: Path):
    expired = make_credentials(valid_from_minutes=-120, valid_minutes=60)
    chain, key = write_pair(tmp_path, expired.chain, expired.key)
    with pytest.raises(ProvenanceError, match="the signer certificate is valid from"):
        DerivativeSigner.from_files(chain, key, contexts=CONTEXTS)


def test_from_files_refuses_a_bad_tsa_url(tmp_path: Path, credentials: Credentials):
    chain, key = write_pair(tmp_path, credentials.chain, credentials.key)
    with pytest.raises(ProvenanceError, match="time-stamp authority URL 'ftp://tsa': http:// or https:// needed"):
        DerivativeSigner.from_files(chain, key, tsa_url="ftp://tsa", contexts=CONTEXTS)


# ---------------------------------------------------------------------------------- derivative_actions()


def test_derivative_actions_use_the_standard_names_in_pipeline_order():
    agent = {"name": "edgeproxy", "version": __version__}
    assert derivative_actions(resized=True, cropped=True, transcoded=True, filtered=True) == [
        {"action": "c2pa.resized", "softwareAgent": agent},
        {"action": "c2pa.cropped", "softwareAgent": agent},
        {"action": "c2pa.filtered", "softwareAgent": agent},
        {"action": "c2pa.transcoded", "softwareAgent": agent},
    ]
    assert derivative_actions(resized=False, cropped=False, transcoded=False) == []
    (action,) = derivative_actions(
        resized=False, cropped=False, transcoded=True, parameters={"format": "webp", "q": 75}
    )
    assert action["parameters"] == {"format": "webp", "q": 75}


@pytest.mark.parametrize("parameters", [{"sizes": [1, 2]}, {"ingredients": "x"}, {1: "x"}, {"nested": {"a": 1}}])
def test_derivative_actions_refuse_parameters_c2pa_would_mangle(parameters):
    with pytest.raises(ValueError, match="scalar values only"):
        derivative_actions(resized=True, cropped=False, transcoded=False, parameters=parameters)


def test_contexts_from_many_threads_at_once_are_one(corpus: Path):
    data = (corpus / "c2pa-signed.jpg").read_bytes()
    seen = set()
    barrier = threading.Barrier(8)

    def job() -> None:
        barrier.wait()
        seen.add(id(CONTEXTS.reading))
        assert read_manifest(data, "image/jpeg", CONTEXTS)["validation_state"] == "Valid"

    threads = [threading.Thread(target=job) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {id(CONTEXTS.reading)}
