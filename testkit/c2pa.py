"""Throwaway C2PA signing credentials for tests and benchmarks (``cryptography``): a P-256 CA and an
end-entity certificate with the profile c2pa requires when signing; and originals signed the way
cameras and editors sign them (:func:`sign_original`: claim thumbnail, EXIF assertion, ingredients)."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Credentials:
    chain: bytes  # PEM: end-entity certificate, then the CA's
    key: bytes  # PEM PKCS#8 of the end-entity key
    ca: bytes  # PEM of the CA alone (a trust anchor)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgeproxy tests"),
        ]
    )


def _key_usage(**enabled: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    return x509.KeyUsage(**{**flags, **enabled})


def make_credentials(
    *,
    eku: tuple | None = (ExtendedKeyUsageOID.EMAIL_PROTECTION,),
    ocsp_url: str | None = None,
    valid_from_minutes: int = -5,
    valid_minutes: int = 24 * 60,
    curve: ec.EllipticCurve | None = None,
) -> Credentials:
    """A P-256 CA and an end-entity certificate it signs, with the profile c2pa checks when signing
    (X.509 v3, not a CA, key usage digitalSignature, an accepted EKU, an authority key identifier)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("edgeproxy test CA"))
        .issuer_name(_name("edgeproxy test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(curve or ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("edgeproxy test signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(minutes=valid_from_minutes))
        .not_valid_after(now + datetime.timedelta(minutes=valid_from_minutes + valid_minutes))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]
            ),
            critical=False,
        )
    certificate = builder.sign(ca_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    return Credentials(
        chain=certificate.public_bytes(pem) + ca.public_bytes(pem),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ca=ca.public_bytes(pem),
    )


#: c2pa settings of :func:`sign_original`: no network, and thumbnails ON (what cameras and editors do).
ORIGINAL_SETTINGS = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    "core": {"allowed_network_hosts": []},
    "builder": {"thumbnail": {"enabled": True}},
}

DIGITAL_CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def sign_original(
    data: bytes,
    mime: str,
    credentials: Credentials,
    *,
    title: str,
    generator: str = "test-camera",
    assertions: list[dict] = (),
    parent: bytes | None = None,
    parent_mime: str = "image/jpeg",
    parent_title: str = "parent.jpg",
) -> bytes:
    """``data`` signed the way a camera or an editor signs an original (c2pa-python, claim v2):
    a claim thumbnail of ``data`` made by c2pa (thumbnails enabled for this signature only: up to
    1024 px, a clear copy of the picture), the extra ``assertions`` (e.g. ``{"label": "stds.exif",
    "data": {...}}``) and a ``c2pa.actions.v2`` assertion: ``c2pa.created`` (digital capture), or, with
    ``parent``, ``c2pa.opened`` of ``parent`` as ``parentOf`` ingredient, whose own manifest store
    c2pa embeds whole, with an ingredient thumbnail taken from it. Returns the signed file."""
    import c2pa  # the [vision] extra: only tests that sign originals need it

    actions = [] if parent is not None else [{"action": "c2pa.created", "digitalSourceType": DIGITAL_CAPTURE}]
    definition = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": title,
        "format": mime,
        "assertions": [*assertions, {"label": "c2pa.actions.v2", "data": {"actions": actions}}],
    }
    output = io.BytesIO()
    with (
        c2pa.Context.from_dict(ORIGINAL_SETTINGS) as context,
        c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", credentials.chain, credentials.key, None)) as signer,
        c2pa.Builder(definition, context=context) as builder,
    ):
        if parent is not None:
            builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            builder.add_ingredient({"title": parent_title, "relationship": "parentOf"}, parent_mime, io.BytesIO(parent))
        builder.sign(signer, mime, io.BytesIO(data), output)
    return output.getvalue()
