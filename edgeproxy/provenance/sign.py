"""Signing a derivative with its own C2PA manifest: the original as ``parentOf`` ingredient (its
store carried redacted, :mod:`.redact`), the actions edgeproxy did, no thumbnails (C2PA Technical
Specification 2.x: "Claim", "Ingredient", "Actions", "X.509 Certificates").
"""

from __future__ import annotations

import datetime
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from edgeproxy import __version__
from edgeproxy.provenance.context import C2paContexts
from edgeproxy.provenance.redact import REDACTION_REASON, UNREDACTABLE_STORES, redactions

#: The name edgeproxy signs as: claim generator and ``softwareAgent`` of its actions.
SOFTWARE_AGENT = "edgeproxy"

#: Signing algorithms c2pa offers (COSE names, lower case) and the key each needs.
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
_EC_CURVES = {"es256": ec.SECP256R1, "es384": ec.SECP384R1, "es512": ec.SECP521R1}


class ProvenanceError(Exception):
    """Signing cannot be done: a certificate chain or private key file that is missing, unreadable
    or not PEM, a key that does not match the certificate or the algorithm, a certificate c2pa
    refuses (profile of "X.509 Certificates"), a format c2pa cannot embed a manifest in, or c2pa
    failing to sign. The message names the file or the format and what is wrong with it."""


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

    Thread-safe: :meth:`sign` builds its own c2pa signer, context (from ``contexts.settings_json``)
    and builder on every call (about 0.4 ms of the 1.5-5 ms a signature costs, ``bench/c2pa.py``), so
    render threads sign concurrently without sharing c2pa objects. Build one with :meth:`from_files`
    (or :meth:`from_pem`).
    """

    def __init__(
        self,
        cert_chain: bytes,
        private_key: bytes,
        *,
        alg: str,
        tsa_url: str | None,
        claim_generator: str,
        contexts: C2paContexts,
    ) -> None:
        """Use :meth:`from_files` or :meth:`from_pem`, which check the credentials first."""
        self._cert_chain = cert_chain
        self._private_key = private_key
        self._alg = alg
        self._tsa_url = tsa_url
        self._claim_generator = claim_generator
        self._contexts = contexts

    @classmethod
    def from_files(
        cls,
        cert_chain_pem: str | Path,
        private_key_pem: str | Path,
        *,
        contexts: C2paContexts,
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
            contexts=contexts,
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
        contexts: C2paContexts,
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
            contexts: the app's c2pa contexts (settings checked when they were built).

        Raises:
            ProvenanceError: not PEM, no certificate, an encrypted or unreadable key, a key that does
                not match the first certificate or ``alg``, a certificate not valid now, a bad TSA
                URL, or c2pa refusing a trial signature (its message is kept).
        """
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
        signer = cls(
            cert_chain, private_key, alg=alg, tsa_url=tsa_url, claim_generator=claim_generator, contexts=contexts
        )
        try:  # c2pa's own checks (certificate profile, verify after sign), without the time-stamp's request
            cls(
                cert_chain, private_key, alg=alg, tsa_url=None, claim_generator=claim_generator, contexts=contexts
            ).sign(
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

    def supports(self, mime: str) -> bool:
        """Whether c2pa can embed a manifest in a file of this media type (``C2paContexts.supports``)."""
        return self._contexts.supports(mime)

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
        under :data:`.context.SETTINGS`: a bad one is recorded, not fatal; the ingredient then names the
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
        redacted = redactions(original, original_mime, self._contexts)
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
                c2pa.Context.from_json(self._contexts.settings_json) as context,
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
