"""thumbor URLs mapped to edgeproxy's ``TransformSpec``: signature, grammar, options and origins.

A thumbor URL path (thumbor 7.8, libthumbor 2.0: ``libthumbor/url.py``) is::

    /HASH/[trim/][AxB:CxD/][fit-in/|adaptive-fit-in/|full-fit-in/][-]Wx[-]H/[halign/][valign/]
        [smart/][filters:NAME(ARGS):.../]IMAGE

``HASH`` is ``base64url(HMAC-SHA1(SECURITY_KEY, rest))`` with padding (28 characters; RFC 2104,
RFC 4648 §5), over the rest of the path exactly as sent, without its leading ``/``
(libthumbor's ``url_signers/base64_hmac_sha1.py``, thumbor's ``handlers/imaging.py``); ``unsafe`` in
its place only with ``compat_thumbor_unsafe``. The signature is checked before anything else is read.

The mapping, option by option, and every difference from thumbor are in docs/migration/thumbor.md;
``parse`` is the one function that applies it (the geometry and the filters: ``thumbor_options``).
Pure functions, no I/O: the HTTP route
(``edgeproxy.compat.thumbor_route``) hands the result to the native transform path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote

from edgeproxy.compat.thumbor_filters import split_filters
from edgeproxy.compat.thumbor_options import apply_filters, geometry, oriented, point, refuse_unmapped
from edgeproxy.errors import bad_request, forbidden, not_found
from edgeproxy.url.signing import sign_path
from edgeproxy.url.spec import Fit, Format, TransformSpec, build_path

if TYPE_CHECKING:
    from edgeproxy.settings import Settings

#: thumbor's literal for an unsigned URL (``ALLOW_UNSAFE_URL``).
UNSAFE = "unsafe"
#: Prefixes a mount may not take: edgeproxy's own routes.
RESERVED_PREFIXES = frozenset({"/info", "/purge", "/healthz", "/readyz", "/metrics"})
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")
#: A thumbor signature: 20 bytes of HMAC-SHA1 in base64url with its padding.
_HASH = re.compile(r"[A-Za-z0-9_-]{27}=")

#: The grammar after the signature, segment by segment (thumbor 7.8's, from libthumbor's ``Url``).
_URL = re.compile(
    r"(?:(?P<debug>debug)/)?"
    r"(?:(?P<meta>meta)/)?"
    r"(?:(?P<trim>trim(?::(?:top-left|bottom-right))?(?::\d+)?)/)?"
    r"(?:(?P<left>\d{1,9})x(?P<top>\d{1,9}):(?P<right>\d{1,9})x(?P<bottom>\d{1,9})/)?"
    r"(?:(?P<adaptive>adaptive-)?(?P<full>full-)?(?P<fit_in>fit-in)/)?"
    r"(?:(?P<hflip>-)?(?P<width>\d{1,9}|orig)?x(?P<vflip>-)?(?P<height>\d{1,9}|orig)?/)?"
    r"(?:(?P<halign>left|right|center)/)?"
    r"(?:(?P<valign>top|bottom|middle)/)?"
    r"(?:(?P<smart>smart)/)?"
    r"(?:filters:(?P<filters>.+?\))/)?"
    r"(?P<image>.+)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class ThumborConfig:
    """What the thumbor mount needs, from the settings, once at start-up (``from_settings``).

    - ``security_key``: thumbor's ``SECURITY_KEY`` (bytes), or None (then only ``unsafe`` URLs, if allowed).
    - ``allow_unsafe``: accept ``/unsafe/...`` (thumbor's ``ALLOW_UNSAFE_URL``).
    - ``origins``: (IMAGE prefix, origin name) pairs, longest prefix first; ``""`` matches any IMAGE.
    - ``faces``: the face model is configured, so ``smart`` maps to ``g:face`` (else ``g:smart``).
    - ``signing_key``, ``signature_size``: edgeproxy's own key and signature size (``translate``).
    """

    security_key: bytes | None
    allow_unsafe: bool = False
    origins: tuple[tuple[str, str], ...] = ()
    faces: bool = False
    signing_key: str | None = None
    signature_size: int = 32

    @classmethod
    def from_settings(cls, settings: Settings) -> ThumborConfig:
        """The config of ``settings`` (``thumbor_security_key``, ``compat_thumbor_unsafe``,
        ``compat_thumbor_origins``, ``face_model``, ``signing_key``, ``signature_size``)."""
        key = settings.thumbor_security_key
        origins = sorted(settings.compat_thumbor_origins.items(), key=lambda item: -len(item[0]))
        return cls(
            security_key=key.get_secret_value().encode() if key is not None else None,
            allow_unsafe=settings.compat_thumbor_unsafe,
            origins=tuple(origins),
            faces=settings.face_model is not None,
            signing_key=settings.signing_key.get_secret_value() if settings.signing_key else None,
            signature_size=settings.signature_size,
        )


@dataclass(frozen=True, slots=True)
class Mapped:
    """A thumbor URL as edgeproxy serves it: the ``spec``, the ``origin`` name and object ``key``;
    ``auto_format``: no ``format()`` filter, so the format is negotiated (thumbor's ``AUTO_WEBP``,
    with AVIF too); ``filters``: the thumbor filters it carried, by name, as mapped."""

    spec: TransformSpec
    origin: str
    key: str
    auto_format: bool = True
    filters: tuple[str, ...] = field(default=())
    #: ``focal(AxB:CxD)``: the region (left, top, right, bottom), pixels of the upright original. The
    #: crop's anchor then depends on the original's size: ``focused`` makes the spec once it is known.
    focal: tuple[int, int, int, int] | None = None
    #: The spec before thumbor's order of flips and rotation is turned into edgeproxy's, and the
    #: ``rotate()`` angle (counter-clockwise degrees): what ``focused`` starts from.
    unoriented: TransformSpec | None = None
    ccw: int = 0


def focused(mapped: Mapped, width: int, height: int) -> TransformSpec:
    """The spec of ``mapped`` for an upright original of ``width`` × ``height`` pixels: with a
    ``focal`` region, a crop anchored on its centre (``g:fp``, fractions of the original after the
    URL's crop), as thumbor's focal point (the centre of the region; one dropped when it falls
    outside the URL's crop); else ``mapped.spec``. ``smart`` gives way to the focal point."""
    if mapped.focal is None or mapped.unoriented is None:
        return mapped.spec
    spec = mapped.unoriented
    left, top, right, bottom = mapped.focal
    x, y = (left + right) / 2, (top + bottom) / 2
    if spec.crop is not None:
        c = spec.crop
        cw, ch = min(c.width, width - c.x), min(c.height, height - c.y)
        x, y, width, height = x - c.x, y - c.y, int(cw), int(ch)
    if spec.fit is Fit.COVER and width > 0 and height > 0 and 0 <= x <= width and 0 <= y <= height:
        spec = replace(spec, gravity=point(x / width, y / height))
    return oriented(spec, mapped.ccw)


def signature(path: str, key: str | bytes) -> str:
    """thumbor's signature of ``path`` (the URL path after the signature, without its leading ``/``,
    percent-encoded as sent): base64url(HMAC-SHA1(key, path)) with padding, 28 characters.

    >>> signature("300x200/my.server.com/some/path/to/image.jpg", "my-security-key")
    '8ammJH8D-7tXy6kU3lTvoXlhu4o='
    """
    secret = key.encode() if isinstance(key, str) else key
    return base64.urlsafe_b64encode(hmac.new(secret, path.encode(), hashlib.sha1).digest()).decode("ascii")


def sign(path: str, key: str | bytes) -> str:
    """The signed thumbor URL path ``/HASH/path`` for ``path`` (without a leading ``/``), as
    libthumbor's ``CryptoURL.generate`` writes it."""
    return f"/{signature(path, key)}/{path}"


def verify(path: str, config: ThumborConfig) -> str:
    """Check the signature of ``path`` (``/HASH/rest``, raw) and return ``rest``.

    ``HASH`` may be percent-encoded (``%3D`` for ``=``), as thumbor accepts it.

    Raises:
        ProxyError(403): no signature segment, ``unsafe`` without ``allow_unsafe``, a malformed
            signature or one that does not match ``security_key``.
    """
    given, sep, rest = path.removeprefix("/").partition("/")
    if not sep or not rest:
        raise forbidden("thumbor URL without a signature")
    if given == UNSAFE:
        if not config.allow_unsafe:
            raise forbidden("unsafe thumbor URLs are not allowed on this server (compat_thumbor_unsafe)")
        return rest
    given = unquote(given)
    if config.security_key is None or not _HASH.fullmatch(given):
        raise forbidden()
    if not hmac.compare_digest(signature(rest, config.security_key).encode(), given.encode()):
        raise forbidden()
    return rest


def parse(path: str, config: ThumborConfig) -> Mapped:
    """The ``Mapped`` of a thumbor URL path (``/HASH/...``, raw, after the mount's prefix).

    The signature first (``verify``), then the grammar, the filters and the origin.

    Raises:
        ProxyError(403): a bad signature (whatever the rest of the URL).
        ProxyError(400): a malformed URL, an option or filter edgeproxy does not map (named), or
            bad filter arguments.
        ProxyError(404): an IMAGE no ``compat_thumbor_origins`` prefix maps to an origin.
    """
    rest = verify(path, config)
    match = _URL.fullmatch(rest)
    if match is None:  # pragma: no cover - IMAGE takes any non-empty rest
        raise bad_request("not a thumbor URL")
    parts = match.groupdict()
    refuse_unmapped(parts)
    try:
        image = unquote(parts["image"], errors="strict")
        raw_filters = unquote(parts["filters"], errors="strict") if parts["filters"] else ""
    except UnicodeDecodeError:
        raise bad_request("thumbor URL is not valid percent-encoded UTF-8") from None
    filters = split_filters(raw_filters) if raw_filters else []
    spec = geometry(parts, faces=config.faces)
    spec, ccw, focal = apply_filters(spec, filters, fit_in=parts["fit_in"] is not None and not parts["full"])
    origin, key = map_image(image, config)
    names = tuple(f.name for f in filters)
    return Mapped(oriented(spec, ccw), origin, key, spec.format is Format.AUTO, names, focal, spec, ccw)


def translate(path: str, config: ThumborConfig) -> str:
    """The native edgeproxy URL path (signed with ``config.signing_key``) that serves what the
    thumbor URL ``path`` (``/HASH/...``) does: ``/{signature}/{options}/{origin}/{key}``.

    Raises:
        ProxyError: as ``parse``.
        ValueError: no edgeproxy ``signing_key`` configured.
    """
    mapped = parse(path, config)
    if mapped.focal is not None:
        raise bad_request(
            "thumbor filter focal: the crop's anchor depends on the original's size; write g:fp:X:Y "
            "with X and Y the focal point's fractions of the width and height"
        )
    if not config.signing_key:
        raise ValueError("no edgeproxy signing_key configured to sign the translated URL")
    return sign_path(build_path(mapped.spec, mapped.origin, mapped.key), config.signing_key, config.signature_size)


def map_image(image: str, config: ThumborConfig) -> tuple[str, str]:
    """(origin name, key) of a thumbor IMAGE (percent-decoded): the longest configured prefix it
    starts with, removed. Never an open proxy: an IMAGE no prefix matches is a 404.

    Raises:
        ProxyError(404): no prefix matches, or nothing is left after it.
    """
    for prefix, origin in config.origins:
        if image.startswith(prefix) and len(image) > len(prefix):
            return origin, image[len(prefix) :]
    raise not_found("no origin configured for this image (compat_thumbor_origins)")


def check_prefix(prefix: str) -> str:
    """A mount prefix: ``""`` (the root of a host dedicated to the mount) or ``/segment[/...]``
    (no trailing ``/``), not one of edgeproxy's own routes.

    Raises:
        ValueError: anything else.
    """
    if prefix and (not _PREFIX.fullmatch(prefix) or "/" + prefix.split("/")[1] in RESERVED_PREFIXES):
        raise ValueError(
            f'{prefix!r}: expected "" or /name (no trailing /), not one of {", ".join(sorted(RESERVED_PREFIXES))}'
        )
    return prefix


def check_settings(settings: Settings) -> None:
    """The thumbor settings together: with ``compat_thumbor``, a ``thumbor_security_key`` (or
    ``compat_thumbor_unsafe``), at least one ``compat_thumbor_origins`` entry, each naming a
    configured origin.

    Raises:
        ValueError: the first problem.
    """
    unknown = sorted(set(settings.compat_thumbor_origins.values()) - set(settings.origins))
    if unknown:
        raise ValueError(f"compat_thumbor_origins: unknown origins {unknown}")
    if not settings.compat_thumbor:
        return
    if settings.thumbor_security_key is None and not settings.compat_thumbor_unsafe:
        raise ValueError("compat_thumbor needs thumbor_security_key (thumbor's SECURITY_KEY)")
    if not settings.compat_thumbor_origins:
        raise ValueError('compat_thumbor needs compat_thumbor_origins (IMAGE prefix -> origin; "" for any IMAGE)')
