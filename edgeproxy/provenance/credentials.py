"""C2PA Content Credentials: read an original's manifest, sign each derivative with its own.

Standard: the C2PA Technical Specification 2.x (spec.c2pa.org), through ``c2pa-python`` 0.38 (the
``vision`` extra; its native library is c2pa-rs 0.91). Section names below are the specification's.

- :func:`read_manifest` turns the manifest store of an original into a small JSON-ready summary for
  ``/info``: the validation state ("Validation states"), the active manifest's title and claim
  generator, its actions ("Actions"), its ingredients ("Ingredient") and who signed it.
- :class:`DerivativeSigner` signs a rendered derivative with a new manifest whose ingredient is the
  original with relationship ``parentOf`` ("Relationship") and whose ``c2pa.actions.v2`` assertion
  starts with ``c2pa.opened`` (linked to that ingredient, as "Mandatory presence of at least one
  actions assertion" requires of an asset with a parent) followed by what edgeproxy did
  (:func:`derivative_actions`: ``c2pa.resized``, ``c2pa.cropped``, ``c2pa.filtered``,
  ``c2pa.transcoded``). When the original carries a manifest store, c2pa embeds that store in the
  derivative's, so the chain of custody goes on, but REDACTED ("Redaction of Assertions"): in every
  manifest of it (the original's and each one before it), every assertion but those the chain needs
  (:data:`KEPT_ASSERTIONS`: actions, hard bindings, ingredients, time-stamps, certificate status) is
  removed and its URI listed in the new claim's ``redacted_assertions`` and in a ``c2pa.redacted``
  action (reason ``c2pa.PII.present``). Claim thumbnails and ingredient thumbnails (clear pictures of the
  original: a redacted or blurred derivative would otherwise carry the face it hides), EXIF (GPS,
  serial numbers), XMP, IPTC, ``*.metadata``, CreativeWork, identity, soft bindings... are gone from
  the derivative's bytes, as ``strip`` removes them from its pixels' file (:func:`redactions`). A
  store that cannot be carried that way is not carried at all (see :meth:`DerivativeSigner.sign`).

Network: originals are untrusted input, and c2pa by default fetches the remote manifest an asset
points to ("Remote manifests"). :data:`SETTINGS` turns that off, keeps OCSP fetching off
(``verify.ocsp_fetch``: revocation is then only checked from what the manifest staples) and, as a
last line, gives c2pa's HTTP resolver an empty host allow-list (``core.allowed_network_hosts: []``:
every request it would make is refused). The one request left is the signer's own RFC 3161
time-stamp (``tsa_url``), which c2pa sends outside that resolver, and only when configured.

Settings in c2pa-python 0.38 are per ``c2pa.Context``, not process-wide: the deprecated global
``c2pa.load_settings`` is ignored by ``Reader`` and ``Builder``, which without a context use the
library defaults (remote fetch on). Everything here therefore reads and signs through contexts built
from :data:`SETTINGS`; :func:`configure` builds the shared reading context once (idempotent; the
app calls it at start-up) after checking that this c2pa knows every setting named (c2pa silently
ignores unknown keys, so a renamed key would otherwise quietly leave fetching on). Code elsewhere
must not call ``c2pa.Reader`` without one of these contexts.

Thumbnails are off (``builder.thumbnail.enabled: false``): c2pa would otherwise decode the untrusted
original with its own decoders to embed a thumbnail of it (a clear copy of the picture the derivative
may hide) and of the derivative (tens of KB, and the derivative already is its own thumbnail). Measured
costs: ``bench/c2pa.py``.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from edgeproxy import __version__

#: The name edgeproxy signs as: claim generator and ``softwareAgent`` of its actions.
SOFTWARE_AGENT = "edgeproxy"

#: c2pa settings for every read and every signature (JSON, the c2pa settings schema; see the module
#: docstring). ``decode_identity_assertions`` off: CAWG identity assertions of untrusted originals are
#: not decoded (nothing here reports them, and their decoding may resolve ``did:web`` documents).
SETTINGS: dict[str, Any] = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    "core": {"allowed_network_hosts": [], "decode_identity_assertions": False},
    "builder": {"thumbnail": {"enabled": False}},
}
#: What :func:`redactions` changes in :data:`SETTINGS` to list a store's assertions: no validation
#: (the signature that follows validates the store anyway), which halves its time (``bench/c2pa.py``).
LISTING_SETTINGS: dict[str, Any] = {"verify": {"verify_after_reading": False}}

#: Signing algorithms c2pa offers (COSE names, lower case) and the key each needs.
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
_EC_CURVES = {"es256": ec.SECP256R1, "es384": ec.SECP384R1, "es512": ec.SECP521R1}

#: Limits of a summary (hostile manifests may list thousands of actions or very long strings).
MAX_ITEMS = 50  # actions, ingredients, errors
MAX_TEXT = 256  # characters of any string

#: Assertions of an original's manifest store (every manifest of it) that a derivative keeps; every
#: other one is redacted ("Redaction of Assertions"). Actions and hard bindings (``c2pa.hash.*``) may
#: not be redacted; ingredients hold the chain (redacting one drops the manifest it points to);
#: time-stamps and certificate status make the signatures checkable. None is about the picture's
#: content or the people in it (but actions keep whatever free text their signer wrote into them).
#: Labels may carry an instance suffix (``__1``), ignored here.
KEPT_ASSERTIONS = frozenset(
    {
        "c2pa.actions",
        "c2pa.actions.v2",
        "c2pa.ingredient",
        "c2pa.ingredient.v2",
        "c2pa.ingredient.v3",
        "c2pa.time-stamp",
        "c2pa.certificate-status",
    }
)
#: JUMBF labels of manifest parts that are not assertions and may hold anything: deprecated data boxes
#: and C2PA 1.x W3C verifiable credentials. A store with one is not carried (:func:`redactions`).
UNREDACTABLE_STORES = (b"c2pa.databoxes", b"c2pa.credentials")
#: The ``reason`` of each ``c2pa.redacted`` action ("Actions", reasons for redaction).
REDACTION_REASON = "c2pa.PII.present"

_lock = threading.Lock()
_read_context: c2pa.Context | None = None
_list_context: c2pa.Context | None = None
_read_context_pid: int | None = None
_mime_types: frozenset[str] | None = None


class ProvenanceError(Exception):
    """Signing cannot be done: a certificate chain or private key file that is missing, unreadable
    or not PEM, a key that does not match the certificate or the algorithm, a certificate c2pa
    refuses (profile of "X.509 Certificates"), a format c2pa cannot embed a manifest in, or c2pa
    failing to sign. The message names the file or the format and what is wrong with it."""


def _setting_paths(settings: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Leaf settings as (dotted path, value)."""
    out = []
    for key, value in settings.items():
        path = f"{prefix}{key}"
        out.extend(_setting_paths(value, path + ".") if isinstance(value, dict) else [(path, value)])
    return out


def _check_settings_known(settings: dict[str, Any]) -> None:
    """Raise RuntimeError unless this c2pa knows every setting of ``settings``.

    c2pa accepts any unknown key silently but type-checks the known ones: each path is set to a JSON
    string, which c2pa must refuse for these boolean and list settings (it would accept it for an
    unknown key)."""
    probe = c2pa.Settings()
    try:
        for path, value in _setting_paths(settings):
            if isinstance(value, str):
                raise RuntimeError(f"{path}: the probe works for boolean and list settings only")
            try:
                probe.set(path, '"wrong-type"')
            except c2pa.C2paError:
                continue
            raise RuntimeError(f"c2pa {c2pa.sdk_version()} does not know the setting {path}")
    finally:
        probe.close()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a fork while another thread held it would leave it held for ever


os.register_at_fork(after_in_child=_after_fork_in_child)


def configure() -> None:
    """Apply :data:`SETTINGS` for reading: remote manifest fetch off, OCSP fetch off, no host allowed.

    Idempotent and thread-safe; called once at start-up (``read_manifest`` calls it too, so that no
    read ever runs with c2pa's defaults). Builds the reading ``c2pa.Context`` shared by every
    :func:`read_manifest` of this process, and the listing one of :func:`redactions` (the same with
    :data:`LISTING_SETTINGS`), again after a fork: a context belongs to the process that made it.

    Raises:
        RuntimeError: this c2pa does not know one of the settings (a c2pa upgrade renamed it).
        c2pa.C2paError: c2pa refused the settings.
    """
    global _read_context, _list_context, _read_context_pid
    pid = os.getpid()
    if _read_context is not None and _read_context_pid == pid:
        return
    with _lock:
        if _read_context is not None and _read_context_pid == pid:
            return
        _check_settings_known(SETTINGS)
        _check_settings_known(LISTING_SETTINGS)
        _list_context = c2pa.Context.from_dict(
            {**SETTINGS, **{key: {**SETTINGS.get(key, {}), **value} for key, value in LISTING_SETTINGS.items()}}
        )
        _read_context = c2pa.Context.from_dict(SETTINGS)
        _read_context_pid = pid


def _text(value: Any) -> str | None:
    """A string of at most ``MAX_TEXT`` characters, or None for anything else."""
    return value[:MAX_TEXT] if isinstance(value, str) else None


def _generator(info: Any) -> str | None:
    """``name/version`` of a generator-info map (C2PA 2.x ``claim_generator_info``, actions v2
    ``softwareAgent``), or the string itself (1.x); None when neither."""
    if isinstance(info, dict):
        name, version = _text(info.get("name")), _text(info.get("version"))
        return f"{name}/{version}" if name and version else name
    return _text(info)


def _summary(store: dict[str, Any]) -> dict[str, Any]:
    """The summary of a manifest store (c2pa's ``Reader.json()``), see :func:`read_manifest`."""
    state = _text(store.get("validation_state")) or "Invalid"
    manifests = store.get("manifests")
    active = manifests.get(store.get("active_manifest")) if isinstance(manifests, dict) else None
    if not isinstance(active, dict):
        return {"validation_state": "Invalid", "error": "the manifest store has no active manifest"}
    truncated = False

    generator = _text(active.get("claim_generator"))
    if generator is None and isinstance(active.get("claim_generator_info"), list):
        generator = " ".join(filter(None, map(_generator, active["claim_generator_info"][:4]))) or None

    actions: list[dict[str, Any]] = []
    for assertion in active.get("assertions") or []:
        if not (isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions")):
            continue
        data = assertion.get("data")
        for action in (data.get("actions") or []) if isinstance(data, dict) else []:
            if not isinstance(action, dict) or not _text(action.get("action")):
                continue
            if len(actions) == MAX_ITEMS:
                truncated = True
                break
            item = {"action": _text(action["action"])}
            for key in ("softwareAgent", "when", "digitalSourceType", "description", "reason"):
                value = _generator(action.get(key)) if key == "softwareAgent" else _text(action.get(key))
                if value is not None:
                    item[key] = value
            actions.append(item)

    ingredients = []
    for ingredient in (active.get("ingredients") or [])[:MAX_ITEMS]:
        if isinstance(ingredient, dict):
            ingredients.append({key: _text(ingredient.get(key)) for key in ("title", "format", "relationship")})
    truncated |= len(active.get("ingredients") or []) > MAX_ITEMS

    summary: dict[str, Any] = {
        "validation_state": state,
        "title": _text(active.get("title")),
        "claim_generator": generator,
        "actions": actions,
        "ingredients": ingredients,
    }
    signature = active.get("signature_info")
    if isinstance(signature, dict):
        summary["signature"] = {key: _text(signature.get(key)) for key in ("issuer", "common_name", "alg", "time")}
    codes = [
        _text(status.get("code"))
        for status in store.get("validation_status") or []
        if isinstance(status, dict) and _text(status.get("code"))
    ]
    if codes:
        summary["errors"] = codes[:MAX_ITEMS]
        truncated |= len(codes) > MAX_ITEMS
    if truncated:
        summary["truncated"] = True
    return summary


def read_manifest(data: bytes, mime: str) -> dict[str, Any] | None:
    """Summary of the C2PA manifest store embedded in an image, for ``/info``.

    Args:
        data: the image file (the original, as the origin sent it).
        mime: its media type (``image/jpeg``...); c2pa also sniffs the bytes and prefers what it
            finds there. Empty: detected from the bytes only.

    Returns:
        None when there is no manifest: no C2PA data in the file, or a format c2pa cannot carry one
        in (``NotSupported``: unknown or garbage bytes as well). Otherwise a JSON-ready dict::

            {"validation_state": "Valid",    # c2pa's state: "Invalid" | "Valid" | "Trusted"
             "title": "C.jpg",               # of the active manifest, or None
             "claim_generator": "make_test_images/0.26.0 c2pa-rs/0.26.0",   # or None
             "actions": [{"action": "c2pa.created", "softwareAgent": "...", "when": "...",
                          "digitalSourceType": "http://cv.iptc.org/..."}],   # optional keys
             "ingredients": [{"title": "...", "format": "image/jpeg", "relationship": "parentOf"}],
             "signature": {"issuer": "...", "common_name": "...", "alg": "Ps256", "time": "2023-..."},
             "errors": ["signingCredential.untrusted"]}   # validation_status codes, when any

        ``validation_state``: "Trusted" needs a trust list, which edgeproxy does not configure, so a
        well-signed original reads "Valid"; ``errors`` then lists ``signingCredential.untrusted``
        ("Validation status codes"). ``actions`` come from every ``c2pa.actions`` assertion of the
        active manifest, in order; strings are cut at ``MAX_TEXT`` characters and lists at
        ``MAX_ITEMS`` (``"truncated": True`` then). A file c2pa cannot parse, or whose manifest is
        malformed, gives ``{"validation_state": "Invalid", "error": "<c2pa's message>"}``; a file
        whose manifest is only a remote reference gives ``{"validation_state": "Unverified",
        "error": ...}`` (edgeproxy never fetches it).

    Never raises on hostile input and never makes a network request (:data:`SETTINGS`). Blocking and
    CPU-bound in c2pa: about 2.5 ms for a 138 KB JPEG with a 50 KB manifest, 0.1 ms for a JPEG without
    one (``bench/c2pa.py``); call it from a worker thread.
    """
    if not data:
        return None
    configure()
    try:
        with c2pa.Reader(mime or None, io.BytesIO(data), context=_read_context) as reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported):
        return None
    except Exception as error:  # any failure on hostile input is an invalid manifest
        # c2pa-rs 0.91 says "Remote: ...", which c2pa-python 0.38 maps to the base C2paError, not
        # C2paError.RemoteManifest: accept both.
        if isinstance(error, c2pa.C2paError.RemoteManifest) or str(error).startswith("Remote:"):
            return {"validation_state": "Unverified", "error": _text(f"remote manifest not fetched: {error}")}
        message = str(error) if isinstance(error, c2pa.C2paError) else f"{type(error).__name__}: {error}"
        return {"validation_state": "Invalid", "error": _text(message)}
    try:
        return (
            _summary(store)
            if isinstance(store, dict)
            else {"validation_state": "Invalid", "error": "the manifest store is not an object"}
        )
    except Exception as error:
        return {"validation_state": "Invalid", "error": _text(f"unreadable manifest store: {error}")}


def _kept(label: str) -> bool:
    """Whether an assertion ``label`` (with its instance suffix, if any) is in :data:`KEPT_ASSERTIONS`
    or a hard binding."""
    base = label.split("__", 1)[0]
    return base in KEPT_ASSERTIONS or base.startswith("c2pa.hash.")


def redactions(original: bytes, mime: str) -> list[str] | None:
    """The JUMBF URIs of every assertion of ``original``'s manifest store a derivative must not carry.

    Every manifest of the store (the active one and every one before it, as c2pa-python reports them:
    ``Reader.detailed_json``, read under :data:`SETTINGS` without validation: :data:`LISTING_SETTINGS`),
    every assertion present in its assertion store whose label is not kept (:data:`KEPT_ASSERTIONS`,
    ``c2pa.hash.*``), as
    ``self#jumbf=/c2pa/{manifest label}/c2pa.assertions/{assertion label}`` ("URI References"), the
    form c2pa's ``ManifestDefinition.redactions`` takes. Assertions an earlier manifest already
    redacted are absent from the store and not listed again.

    Args:
        original: the original's bytes, as fetched.
        mime: its media type, as given to :meth:`DerivativeSigner.sign`.

    Returns:
        ``[]`` when the original has no manifest store (or c2pa cannot read one in this format), only
        a remote one (never fetched, so never carried), or nothing to redact; the URIs otherwise
        (sorted); None when the store must not be carried at all: c2pa cannot enumerate it (malformed
        beyond what validation reports, a format mismatch), or it holds what cannot be redacted
        (:data:`UNREDACTABLE_STORES`: data boxes, verifiable credentials).

    Never raises; blocking: c2pa parses the store, 1.5-3 ms for a store of two manifests with
    thumbnails, 0.2 ms for a JPEG without one (``bench/c2pa.py``).
    """
    if any(label in original for label in UNREDACTABLE_STORES):
        return None
    configure()
    try:
        with c2pa.Reader(mime or None, io.BytesIO(original), context=_list_context) as reader:
            store = json.loads(reader.detailed_json())
    except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported):
        return []
    except Exception as error:
        if isinstance(error, c2pa.C2paError.RemoteManifest) or str(error).startswith("Remote:"):
            return []  # only a reference to a remote store, never fetched (SETTINGS): nothing to carry
        return None  # any other failure: a store c2pa cannot enumerate is not carried
    uris = []
    manifests = store.get("manifests") if isinstance(store, dict) else None
    if not isinstance(manifests, dict):
        return None
    for label, manifest in manifests.items():
        if not isinstance(manifest, dict) or not isinstance(manifest.get("assertion_store"), dict):
            return None
        if manifest.get("credential_store"):
            return None
        uris += [
            f"self#jumbf=/c2pa/{label}/c2pa.assertions/{name}"
            for name in manifest["assertion_store"]
            if not _kept(name)
        ]
    return sorted(uris)


def derivative_actions(
    *,
    resized: bool,
    cropped: bool,
    transcoded: bool,
    filtered: bool = False,
    parameters: dict[str, str | int | float | bool] | None = None,
) -> list[dict[str, Any]]:
    """The ``c2pa.actions.v2`` entries for what edgeproxy did to an original, in its pipeline's order
    (resize, crop, filter, encode).

    Action names are the specification's ("Actions", the list of ``c2pa.`` actions):

    - ``c2pa.resized`` (resized): changes to content dimensions and/or file size;
    - ``c2pa.cropped`` (cropped): areas of the asset's editorial content were cropped out (a fit
      that cuts the image, an explicit crop);
    - ``c2pa.filtered`` (filtered): changes to appearance with applied filters (blur, face
      redaction by blurring or pixelation);
    - ``c2pa.transcoded`` (transcoded): a direct conversion of one encoding to another (a new
      format, quality or re-encode), not changing the editorial meaning.

    The ``c2pa.opened`` action that must come first (linking the ``parentOf`` ingredient) is added
    by :meth:`DerivativeSigner.sign`, not here. Each action has ``softwareAgent``
    ``{"name": "edgeproxy", "version": ...}`` (a generator-info map, as actions v2 define it).

    Args:
        parameters: optional transform parameters recorded as each action's ``parameters`` map,
            e.g. ``{"width": 200, "format": "webp"}``: string keys, scalar values only (c2pa turns
            lists of small integers into byte strings), ``ingredients`` is reserved by C2PA.

    Returns:
        A list of action dicts (empty when nothing was done), ready for :meth:`DerivativeSigner.sign`.

    Raises:
        ValueError: a parameter that is not a string key with a str/int/float/bool value.
    """
    if parameters is not None:
        for key, value in parameters.items():
            if not isinstance(key, str) or key == "ingredients" or not isinstance(value, str | int | float | bool):
                raise ValueError(f"action parameter {key!r}: string keys (not 'ingredients') and scalar values only")
    actions = []
    for name, done in (
        ("c2pa.resized", resized),
        ("c2pa.cropped", cropped),
        ("c2pa.filtered", filtered),
        ("c2pa.transcoded", transcoded),
    ):
        if done:
            action: dict[str, Any] = {"action": name, "softwareAgent": {"name": SOFTWARE_AGENT, "version": __version__}}
            if parameters:
                action["parameters"] = dict(parameters)
            actions.append(action)
    return actions


def _probe_png() -> bytes:
    """A 1×1 grey PNG, built here: the image of :meth:`DerivativeSigner.from_pem`'s trial signature."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def _check_key(alg: str, key: Any, source: str) -> None:
    """ProvenanceError unless ``key`` is what ``alg`` signs with."""
    if alg in _EC_CURVES:
        ok = isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, _EC_CURVES[alg])
        need = f"an EC {_EC_CURVES[alg].name} key"
    elif alg.startswith("ps"):
        ok = isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
        need = "an RSA key of at least 2048 bits"
    else:
        ok, need = isinstance(key, ed25519.Ed25519PrivateKey), "an Ed25519 key"
    if not ok:
        raise ProvenanceError(f"private key {source}: {alg} needs {need}")


class DerivativeSigner:
    """Signs derivatives with C2PA manifests: one certificate chain and key, immutable.

    Thread-safe: :meth:`sign` builds its own c2pa signer, context and builder on every call (about
    0.4 ms of the 1.5-5 ms a signature costs, ``bench/c2pa.py``), so render threads sign concurrently
    without sharing c2pa objects. Build one with :meth:`from_files` (or :meth:`from_pem`).
    """

    def __init__(self, cert_chain: bytes, private_key: bytes, *, alg: str, tsa_url: str | None, claim_generator: str):
        """Use :meth:`from_files` or :meth:`from_pem`, which check the credentials first."""
        self._cert_chain = cert_chain
        self._private_key = private_key
        self._alg = alg
        self._tsa_url = tsa_url
        self._claim_generator = claim_generator
        self._settings = json.dumps(SETTINGS)

    @classmethod
    def from_files(
        cls,
        cert_chain_pem: str | Path,
        private_key_pem: str | Path,
        *,
        alg: str = "es256",
        tsa_url: str | None = None,
        claim_generator: str = SOFTWARE_AGENT,
    ) -> DerivativeSigner:
        """A signer from two PEM files; see :meth:`from_pem` for the arguments and checks.

        Raises:
            ProvenanceError: a file missing or unreadable, and everything :meth:`from_pem` raises.
        """
        contents = []
        for label, path in (("certificate chain", cert_chain_pem), ("private key", private_key_pem)):
            try:
                contents.append(Path(path).read_bytes())
            except OSError as error:
                raise ProvenanceError(f"{label} {path}: cannot be read ({error.strerror or error})") from None
        return cls.from_pem(
            *contents,
            alg=alg,
            tsa_url=tsa_url,
            claim_generator=claim_generator,
            sources=(str(cert_chain_pem), str(private_key_pem)),
        )

    @classmethod
    def from_pem(
        cls,
        cert_chain: bytes,
        private_key: bytes,
        *,
        alg: str = "es256",
        tsa_url: str | None = None,
        claim_generator: str = SOFTWARE_AGENT,
        sources: tuple[str, str] = ("(PEM)", "(PEM)"),
    ) -> DerivativeSigner:
        """A signer from PEM bytes, checked now rather than at the first render.

        Args:
            cert_chain: PEM certificates, the signer's (end-entity) first, then its intermediates;
                the root may be left out. c2pa's profile ("X.509 Certificates"): X.509 v3, valid
                now, not a CA, key usage ``digitalSignature`` (without ``keyCertSign``), an
                authority key identifier, an extended key usage c2pa accepts (``emailProtection``
                1.3.6.1.5.5.7.3.4 works with c2pa's default verification settings; not
                ``anyExtendedKeyUsage``), EC keys on P-256/384/521, RSA keys of 2048 bits or more.
            private_key: the signer certificate's private key, PEM, unencrypted (PKCS#8, or traditional
                SEC1/PKCS#1, which is converted to the PKCS#8 c2pa needs).
            alg: the COSE algorithm, one of :data:`ALGORITHMS`; must fit the key (es256: P-256...).
            tsa_url: an RFC 3161 time-stamp authority (http or https); None: no time-stamp, no network.
            claim_generator: the claim generator's name (``claim_generator_info``), version edgeproxy's.
            sources: how messages name the two inputs (file paths for :meth:`from_files`).

        Raises:
            ProvenanceError: not PEM, no certificate, an encrypted or unreadable key, a key that does
                not match the first certificate or ``alg``, a certificate not valid now, a bad TSA
                URL, or c2pa refusing a trial signature (its message is kept).
        """
        configure()  # the settings check, before any c2pa context is built from SETTINGS
        cert_source, key_source = sources
        if alg not in ALGORITHMS:
            raise ProvenanceError(f"unknown C2PA signing algorithm {alg!r}: one of {', '.join(ALGORITHMS)}")
        if tsa_url is not None and not tsa_url.startswith(("http://", "https://")):
            raise ProvenanceError(f"time-stamp authority URL {tsa_url!r}: http:// or https:// needed")
        try:
            certificates = x509.load_pem_x509_certificates(cert_chain)
        except ValueError as error:
            raise ProvenanceError(f"certificate chain {cert_source}: not PEM certificates ({error})") from None
        try:
            key = serialization.load_pem_private_key(private_key, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise ProvenanceError(f"private key {key_source}: not an unencrypted PEM private key ({error})") from None
        _check_key(alg, key, key_source)
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != certificates[0].public_key().public_bytes(*spki):
            raise ProvenanceError(
                f"private key {key_source} does not match the first certificate of {cert_source} "
                f"({certificates[0].subject.rfc4514_string()})"
            )
        now = datetime.datetime.now(datetime.UTC)
        if not certificates[0].not_valid_before_utc <= now <= certificates[0].not_valid_after_utc:
            raise ProvenanceError(
                f"certificate chain {cert_source}: the signer certificate is valid from "
                f"{certificates[0].not_valid_before_utc} to {certificates[0].not_valid_after_utc}"
            )
        # c2pa reads PKCS#8 only: a traditional (SEC1, PKCS#1) key is converted.
        private_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        signer = cls(cert_chain, private_key, alg=alg, tsa_url=tsa_url, claim_generator=claim_generator)
        try:  # c2pa's own checks (certificate profile, verify after sign), without the time-stamp's request
            cls(cert_chain, private_key, alg=alg, tsa_url=None, claim_generator=claim_generator).sign(
                _probe_png(),
                "image/png",
                original=_probe_png(),
                original_mime="image/png",
                original_title="probe.png",
                actions=[],
            )
        except ProvenanceError as error:
            raise ProvenanceError(
                f"c2pa refuses the certificate {cert_source} with key {key_source}: {error.__cause__ or error}"
            ) from None
        return signer

    @staticmethod
    def supports(mime: str) -> bool:
        """Whether c2pa can embed a manifest in a file of this media type (parameters ignored).

        c2pa 0.38's list (``c2pa.Builder.get_supported_mime_types``) includes every format edgeproxy
        writes: image/jpeg, image/png, image/webp, image/gif, image/avif, image/jxl, image/tiff,
        image/heic, image/svg+xml; not image/bmp or image/x-icon.
        """
        global _mime_types
        if _mime_types is None:
            _mime_types = frozenset(m for m in c2pa.Builder.get_supported_mime_types() if "/" in m)
        return mime.split(";")[0].strip().lower() in _mime_types

    def sign(
        self,
        body: bytes,
        mime: str,
        *,
        original: bytes,
        original_mime: str,
        original_title: str,
        actions: list[dict[str, Any]],
    ) -> bytes:
        """The derivative ``body`` with a C2PA manifest embedded (a new JUMBF segment or chunk).

        The manifest ("Claim", claim version 2): ``title`` = ``original_title``;
        ``claim_generator_info`` = this signer's name and edgeproxy's version; one ingredient
        ("Ingredient", ``c2pa.ingredient.v3``): the original with ``title``, ``format`` =
        ``original_mime``, relationship ``parentOf`` and, if it has one, its manifest store (validated
        under :data:`SETTINGS`: a bad one is recorded, not fatal; the ingredient then names the
        original's active manifest and claim signature by their hashes), redacted: every assertion
        :func:`redactions` lists is removed from it (its bytes are gone; c2pa keeps the claims, which
        still reference it by hash) and listed in the claim's ``redacted_assertions``; one
        ``c2pa.actions.v2`` assertion: ``c2pa.opened`` (c2pa adds it, linked to the ingredient: the
        builder intent "edit"), one ``c2pa.redacted`` action per redacted assertion (reason
        :data:`REDACTION_REASON`, the URI as parameter ``redacted``), then ``actions``
        (:func:`derivative_actions`). No thumbnails. The signature is an ``alg`` COSE signature with
        the certificate chain, time-stamped when ``tsa_url`` was given (the only network request).

        When the store cannot be carried redacted (:func:`redactions` says None, c2pa refuses one of
        the redactions, or the signed file still holds a data box or credential store), the original
        is the ingredient as opaque bytes: title, format and relationship only, no manifest store
        (the chain then stops at the derivative, rather than carry what it may not).

        Args:
            body: the encoded derivative, as it will be served.
            mime: its media type; :meth:`supports` must be true for it.
            original: the original's bytes as fetched.
            original_mime: the original's media type (any: an original c2pa cannot parse as that type,
                or a type it does not know, is taken as opaque bytes).
            original_title: the name of the original, e.g. its key's last path segment.
            actions: the actions after ``c2pa.opened`` (and ``c2pa.redacted``), in order.

        Returns:
            The signed file: ``body`` plus about 3.5 KB with an ES256 chain of two certificates
            (plus the original's redacted manifest store, when it has one: its claims, signatures
            and kept assertions, a few KB a manifest). Decodes like ``body``.

        Raises:
            ProvenanceError: ``mime`` not supported, or c2pa failing (its message is kept, and the
                C2paError is the ``__cause__``).
        """
        if not self.supports(mime):
            raise ProvenanceError(f"c2pa cannot embed a manifest in {mime}")
        redacted = redactions(original, original_mime)
        try:
            signed = self._sign(body, mime, original, original_mime, original_title, actions, redacted)
            if redacted is not None and any(label in signed for label in UNREDACTABLE_STORES):
                raise ProvenanceError("the original's manifest store holds parts that cannot be redacted")
        except ProvenanceError:
            if redacted is None:
                raise
            # c2pa refused a redaction, or a store got through that may not: carry no store at all.
            signed = self._sign(body, mime, original, original_mime, original_title, actions, None)
        return signed

    def _sign(
        self,
        body: bytes,
        mime: str,
        original: bytes,
        original_mime: str,
        original_title: str,
        actions: list[dict[str, Any]],
        redacted: list[str] | None,
    ) -> bytes:
        """:meth:`sign` with the original's store redacted by the URIs ``redacted`` ([]: nothing to
        redact), or, with None, an opaque original (no store)."""
        redacting = [
            {
                "action": "c2pa.redacted",
                "reason": REDACTION_REASON,
                "parameters": {"redacted": uri},
                "softwareAgent": {"name": SOFTWARE_AGENT, "version": __version__},
            }
            for uri in redacted or ()
        ]
        definition = {
            "claim_generator_info": [{"name": self._claim_generator, "version": __version__}],
            "title": original_title,
            "format": mime.split(";")[0].strip().lower(),
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [*redacting, *actions]}}],
        }
        if redacted:
            definition["redactions"] = list(redacted)
        info = c2pa.C2paSignerInfo(
            self._alg.encode(), self._cert_chain, self._private_key, self._tsa_url.encode() if self._tsa_url else None
        )
        output = io.BytesIO()
        try:
            with (
                c2pa.Context.from_json(self._settings) as context,
                c2pa.Signer.from_info(info) as signer,
                c2pa.Builder(definition, context=context) as builder,
            ):
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
                ingredient = {"title": original_title, "relationship": "parentOf"}
                opaque = redacted is None
                if not opaque:
                    try:
                        builder.add_ingredient(ingredient, original_mime, io.BytesIO(original))
                    except c2pa.C2paError:
                        # c2pa cannot parse the original as original_mime (truncated, mislabelled)
                        opaque = True
                if opaque:  # the original's bytes only, still named with its media type; no store
                    builder.add_ingredient(
                        {**ingredient, "format": original_mime}, "application/octet-stream", io.BytesIO(original)
                    )
                builder.sign(signer, definition["format"], io.BytesIO(body), output)
        except c2pa.C2paError as error:
            raise ProvenanceError(f"signing {mime} failed: {error}") from error
        return output.getvalue()
