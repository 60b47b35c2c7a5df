"""imgproxy URLs, verified with imgproxy's key and salt and mapped to a ``TransformSpec``.

An imgproxy URL (https://docs.imgproxy.net/usage/processing) is::

    /{signature}/{option}/{option}/.../plain/{source}[@{extension}]
    /{signature}/{option}/{option}/.../{base64url(source)}[.{extension}]    (may be split by "/")

``option`` is ``name:arg:arg...``; ``source`` is the original's URL (``s3://bucket/key``,
``local:///key``, ``https://img.example.com/key``), mapped to a configured origin and key by the
longest matching prefix of ``compat_imgproxy_origins`` (never fetched as it is: an unmapped source
is a 404, so this is no open proxy).

The signature (imgproxy's ``security/signature.go``) is ``base64url(HMAC-SHA256(key, salt + path))``
without padding (RFC 4648 §5, RFC 2104), truncated to ``signature_size`` bytes, over ``path``: the
URL path after the signature, from its ``/``, as sent (percent-encoded), after imgproxy's
re-denormalisation (``%3A`` in the options read as ``:``, a plain source's ``scheme:/`` as
``scheme://``). It is checked before anything else is read.

The options are ``edgeproxy.compat.imgproxy_options``' (applied in imgproxy's order, then mapped
to edgeproxy's); this module reads the URL around them: signature, source, origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from edgeproxy.compat.imgproxy_options import (
    PRESET_NAME,
    RESIZING_TYPES,
    Option,
    apply_all,
    format_name,
    split_options,
)
from edgeproxy.compat.imgproxy_spec import to_spec
from edgeproxy.errors import ProxyError, bad_request, forbidden, not_found
from edgeproxy.url.signing import UNSIGNED, sign_path
from edgeproxy.url.spec import TransformSpec, build_path

if TYPE_CHECKING:
    from edgeproxy.settings import Settings

#: A plain source's ``scheme:/x`` as some proxies "normalise" ``scheme://x`` (imgproxy's ``fixPathRe``).
_BROKEN_SCHEME = re.compile(r"^(\S+):/([^/])")


@dataclass(frozen=True, slots=True)
class ImgproxyConfig:
    """What an imgproxy URL is read with, built once at start-up (``from_settings``).

    Attributes:
        keys: (key, salt) pairs, raw bytes (``IMGPROXY_KEY``/``IMGPROXY_SALT`` are hex); empty: no
            signature is checked (only with ``insecure``).
        signature_size: bytes of the HMAC in a signature, 1..32 (``IMGPROXY_SIGNATURE_SIZE``).
        insecure: accept any signature when no key is configured (imgproxy without a key).
        origins: (source prefix, origin name), longest prefix first.
        presets: imgproxy presets (``IMGPROXY_PRESETS``): name -> options.
        only_presets: imgproxy's only-presets URLs (``IMGPROXY_ONLY_PRESETS``):
            ``/{signature}/{name}[:{name}...]/{source}``, the first segment naming presets, no other option.
        native_key: edgeproxy's signing key, for ``translate`` (None: ``unsafe``).
        native_signature_size: edgeproxy's ``signature_size``.
        prefix: the route prefix the imgproxy URLs are served under (``/imgproxy``, or ``""``).
    """

    keys: tuple[tuple[bytes, bytes], ...] = ()
    signature_size: int = 32
    insecure: bool = False
    origins: tuple[tuple[str, str], ...] = ()
    presets: Mapping[str, tuple[Option, ...]] = field(default_factory=dict)
    only_presets: bool = False
    native_key: str | None = None
    native_signature_size: int = 32
    prefix: str = "/imgproxy"

    @classmethod
    def from_settings(cls, settings: Settings) -> ImgproxyConfig:
        """The config of ``settings``' ``imgproxy_*`` and ``compat_imgproxy_*`` settings.

        Raises:
            ValueError: a key or salt that is not hex, one without the other, or a bad preset.
        """
        key = settings.imgproxy_key.get_secret_value() if settings.imgproxy_key else None
        salt = settings.imgproxy_salt.get_secret_value() if settings.imgproxy_salt else None
        keys = ((_hex("imgproxy_key", key), _hex("imgproxy_salt", salt)),) if key and salt else ()
        if bool(key) != bool(salt):
            raise ValueError("imgproxy_key and imgproxy_salt go together")
        origins = sorted(settings.compat_imgproxy_origins.items(), key=lambda item: -len(item[0]))
        native = settings.signing_key.get_secret_value() if settings.signing_key else None
        return cls(
            keys=keys,
            signature_size=settings.imgproxy_signature_size,
            insecure=settings.compat_imgproxy_insecure,
            origins=tuple(origins),
            presets=compile_presets(settings.compat_imgproxy_presets),
            only_presets=settings.compat_imgproxy_only_presets,
            native_key=native,
            native_signature_size=settings.signature_size,
            prefix=settings.compat_imgproxy_prefix,
        )


def compile_presets(presets: Mapping[str, str]) -> dict[str, tuple[Option, ...]]:
    """imgproxy presets (name -> ``"rs:fill:300:300/q:80"``, as ``IMGPROXY_PRESETS``' ``name=options``)
    as option lists; every option is checked by mapping a URL that uses the preset.

    Raises:
        ValueError: a bad name, an empty preset, or an option that does not map (its message).
    """
    compiled = {name: split_options(path.split("/")) for name, path in presets.items()}
    for name, options in compiled.items():
        if not PRESET_NAME.fullmatch(name) or not options:
            raise ValueError(f"compat_imgproxy_presets: {name!r}: a name of A-Z a-z 0-9 _ - and at least one option")
        try:
            to_spec(apply_all(options, compiled))
        except ProxyError as error:
            raise ValueError(f"compat_imgproxy_presets: {name}: {error.message}") from None
    return compiled


def _hex(name: str, value: str | None) -> bytes:
    try:
        return bytes.fromhex(value or "")
    except ValueError:
        raise ValueError(f"{name}: not hex (imgproxy's IMGPROXY_KEY and IMGPROXY_SALT are hex-encoded)") from None


# --------------------------------------------------------------------------- signature


def sign(path: str, key: bytes, salt: bytes, size: int = 32) -> str:
    """imgproxy's signature of ``path`` (the URL path after the signature; a leading ``/`` is
    added when missing, as imgproxy does): base64url without padding of the first ``size`` bytes of
    HMAC-SHA256(key, salt + path)."""
    if not path.startswith("/"):
        path = "/" + path
    digest = hmac.new(key, salt + path.encode(), hashlib.sha256).digest()[:size]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(signature: str, path: str, config: ImgproxyConfig) -> None:
    """Check ``signature`` of ``path`` against every (key, salt), in constant time.

    Raises:
        ProxyError(403): no key matches (or none is configured and ``insecure`` is off).
    """
    if not config.keys:
        if config.insecure and ":" not in signature:
            return
        raise forbidden()
    given = signature.encode("ascii", "replace")
    if not any(
        hmac.compare_digest(sign(path, key, salt, config.signature_size).encode("ascii"), given)
        for key, salt in config.keys
    ):
        raise forbidden()


def redenormalize(path: str) -> str:
    """imgproxy's ``RedenormalizePath``: ``%3A`` in the options read as ``:``, and a plain
    source's ``scheme:/x`` (as some proxies normalise ``scheme://x``) as ``scheme://x``
    (``local:///x`` for ``local``). ``path`` has no leading ``/``; the result neither."""
    if path.startswith("plain/"):
        options, plain, has_plain = "", path[6:], True
    else:
        options, sep, plain = path.partition("/plain/")
        has_plain = bool(sep)
    options = options.replace("%3A", ":")
    if not has_plain:
        return options.removeprefix("/")
    match = _BROKEN_SCHEME.match(plain)
    if match:
        fixed = f"{match[1]}://" + ("/" if match[1] == "local" else "") + match[2]
        plain = fixed + plain[match.end() :]
    return (options + "/plain/" + plain).removeprefix("/")


# --------------------------------------------------------------------------- the URL


@dataclass(frozen=True, slots=True)
class Mapped:
    """An imgproxy URL mapped to edgeproxy: the ``spec``, the ``origin`` name and the object ``key``;
    ``source`` as the URL gave it; ``format_given``: the URL named the output format (``f``, ``@ext``,
    ``.ext``), else it is negotiated from ``Accept`` (imgproxy's ``IMGPROXY_AUTO_WEBP``/``_AVIF``)."""

    spec: TransformSpec
    origin: str
    key: str
    source: str
    format_given: bool


def decode_source(parts: Sequence[str]) -> tuple[str, str]:
    """(source URL, extension or "") of the path parts after the options (imgproxy's ``DecodeURL``).

    Raises:
        ProxyError(400): no source, two extensions, or a source that does not decode.
    """
    if not parts or not "".join(parts):
        raise bad_request("source: the image URL is empty")
    if parts[0] == "plain" and len(parts) > 1:
        pieces = "/".join(parts[1:]).split("@")
        if len(pieces) > 2:
            raise bad_request("source: more than one @extension")
        try:
            source = unquote(pieces[0], errors="strict")
        except UnicodeDecodeError:
            raise bad_request("source: not valid percent-encoded UTF-8") from None
        return source, pieces[1] if len(pieces) == 2 else ""
    pieces = "".join(parts).split(".")
    if len(pieces) > 2:
        raise bad_request("source: more than one .extension")
    encoded = pieces[0].rstrip("=")
    try:
        source = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("source: not valid URL-safe base64") from None
    if not re.fullmatch(r"[A-Za-z0-9_-]*", encoded):
        raise bad_request("source: not valid URL-safe base64")
    return source, pieces[1] if len(pieces) == 2 else ""


def _origin_of(source: str, config: ImgproxyConfig) -> tuple[str, str]:
    """(origin name, key) of ``source`` by the longest configured prefix.

    Raises:
        ProxyError(404): no prefix matches, or nothing is left after it.
        ProxyError(400): an http(s) source with a query string or fragment (edgeproxy keys name objects).
    """
    for prefix, origin in config.origins:
        if source.startswith(prefix):
            key = source[len(prefix) :]  # a key that leaves its origin ("../x", "/x") is the origin's 404
            if source.startswith(("http://", "https://")) and ("?" in key or "#" in key):
                raise bad_request("source: query strings and fragments are not supported")
            if not key:
                break
            return origin, key
    raise not_found("source: not on a configured origin (compat_imgproxy_origins)")


def split(path: str) -> tuple[str, str]:
    """(signature, path after it from its ``/``, re-denormalised) of an imgproxy URL path without
    the route prefix (``/SIG/rs:fit:300:300/plain/...``).

    Raises:
        ProxyError(404): no signature and path.
    """
    signature, sep, rest = path.removeprefix("/").partition("/")
    if not signature or not sep or not rest:
        raise not_found("no such route")
    return signature, "/" + redenormalize(rest)


def parse(path: str, config: ImgproxyConfig) -> Mapped:
    """Verify and map an imgproxy URL path (after the route prefix, still percent-encoded).

    Raises:
        ProxyError: 403 (the signature, checked first), 400 (a malformed, unknown or unsupported
            option, named; a malformed source), 404 (``exp`` in the past, as imgproxy; a source on no
            configured origin).
    """
    signature, signed = split(path)
    verify(signature, signed, config)
    parts = signed[1:].split("/")
    if parts[0] in RESIZING_TYPES and not config.only_presets:
        raise bad_request("imgproxy's deprecated basic URL format (/TYPE/W/H/GRAVITY/ENLARGE/...) is not supported")
    options: tuple[Option, ...]
    if config.only_presets:  # imgproxy's parsePathPresets: the first segment names presets, nothing else
        count, options = 1, ((("pr", tuple(parts[0].split(":"))),) if parts[0] else ())
    else:
        count = next((i for i, part in enumerate(parts) if ":" not in part), len(parts))
        options = split_options(parts[:count])
    source, extension = decode_source(parts[count:])
    o = apply_all(options, config.presets)
    if extension:
        o.format = format_name("extension", extension)
    spec = to_spec(o)
    origin, key = _origin_of(source, config)
    return Mapped(spec=spec, origin=origin, key=key, source=source, format_given=o.format is not None)


def native_path(mapped: Mapped) -> str:
    """The unsigned edgeproxy path of ``mapped``: ``/{options}/{origin}/{key}``."""
    return build_path(mapped.spec, mapped.origin, mapped.key)


def translate(path: str, config: ImgproxyConfig) -> str:
    """The signed edgeproxy URL path serving what the imgproxy URL ``path`` (after the route prefix)
    asks for, signed with edgeproxy's own key (``unsafe`` when none is configured).

    Raises:
        ProxyError: as ``parse``.
    """
    unsigned = native_path(parse(path, config))
    if config.native_key is None:
        return f"/{UNSIGNED}{unsigned}"
    return sign_path(unsigned, config.native_key, config.native_signature_size)


__all__ = [
    "ImgproxyConfig",
    "Mapped",
    "compile_presets",
    "decode_source",
    "native_path",
    "parse",
    "sign",
    "split",
    "translate",
    "verify",
]
