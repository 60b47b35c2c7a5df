"""thumbor URLs mapped to edgeproxy's ``TransformSpec``: signature, grammar, options and origins.

A thumbor URL path (thumbor 7.8, libthumbor 2.0: ``libthumbor/url.py``) is::

    /HASH/[trim/][AxB:CxD/][fit-in/|adaptive-fit-in/|full-fit-in/][-]Wx[-]H/[halign/][valign/]
        [smart/][filters:NAME(ARGS):.../]IMAGE

``HASH`` is ``base64url(HMAC-SHA1(SECURITY_KEY, rest))`` with padding (28 characters; RFC 2104,
RFC 4648 §5), over the rest of the path exactly as sent, without its leading ``/``
(libthumbor's ``url_signers/base64_hmac_sha1.py``, thumbor's ``handlers/imaging.py``); ``unsafe`` in
its place only with ``compat_thumbor_unsafe``. The signature is checked before anything else is read.

The mapping, option by option, and every difference from thumbor are in docs/migration/thumbor.md;
``parse`` is the one function that applies it. Pure functions, no I/O: the HTTP route
(``edgeproxy.compat.thumbor_route``) hands the result to the native transform path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote

from edgeproxy.compat.thumbor_filters import Filter, arity, boolean, colour, number, split_filters
from edgeproxy.errors import bad_request, forbidden, not_found
from edgeproxy.url.signing import sign_path
from edgeproxy.url.spec import COMPASS, MAX_DIMENSION, Crop, Fit, Flip, Format, Gravity, TransformSpec, build_path

if TYPE_CHECKING:
    from edgeproxy.settings import Settings

#: thumbor's literal for an unsigned URL (``ALLOW_UNSAFE_URL``).
UNSAFE = "unsafe"
#: Prefixes a mount may not take: edgeproxy's own routes.
RESERVED_PREFIXES = frozenset({"/info", "/purge", "/healthz", "/readyz", "/metrics"})
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")
#: A thumbor signature: 20 bytes of HMAC-SHA1 in base64url with its padding.
_HASH = re.compile(r"[A-Za-z0-9_-]{27}=")
#: ``focal(LEFTxTOP:RIGHTxBOTTOM)``'s argument, pixels.
_FOCAL = re.compile(r"(\d{1,9})x(\d{1,9}):(\d{1,9})x(\d{1,9})")

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

#: thumbor's ``halign``/``valign`` as (x, y) fractions, as ``FocalPoint.from_alignment``.
_HALIGN = {"left": 0.0, "center": 0.5, "right": 1.0}
_VALIGN = {"top": 0.0, "middle": 0.5, "bottom": 1.0}
#: ``format(NAME)``: thumbor's names -> edgeproxy's formats (``heic``/``heif``: no such output here).
_FORMATS = {"jpeg": Format.JPEG, "jpg": Format.JPEG, "png": Format.PNG, "gif": Format.GIF}
_FORMATS |= {"webp": Format.WEBP, "avif": Format.AVIF}


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
        spec = replace(spec, gravity=_point(x / width, y / height))
    return _oriented(spec, mapped.ccw)


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
    _refuse_unmapped(parts)
    try:
        image = unquote(parts["image"], errors="strict")
        raw_filters = unquote(parts["filters"], errors="strict") if parts["filters"] else ""
    except UnicodeDecodeError:
        raise bad_request("thumbor URL is not valid percent-encoded UTF-8") from None
    filters = split_filters(raw_filters) if raw_filters else []
    spec = _geometry(parts, config)
    spec, ccw, focal = _apply_filters(spec, filters, fit_in=parts["fit_in"] is not None and not parts["full"])
    origin, key = map_image(image, config)
    names = tuple(f.name for f in filters)
    oriented = _oriented(spec, ccw)
    return Mapped(oriented, origin, key, spec.format is Format.AUTO, names, focal, spec, ccw)


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


def unsupported_trim() -> None:
    """``trim``: not in edgeproxy's grammar yet (when ``TransformSpec`` gains a trim field, map it here).

    Raises:
        ProxyError(400): always.
    """
    raise bad_request("thumbor option trim: not supported yet")


def _refuse_unmapped(parts: Mapping[str, str | None]) -> None:
    """400 for the URL parts edgeproxy has no equivalent of (each named)."""
    if parts["debug"]:
        raise bad_request("thumbor option debug: not supported")
    if parts["meta"]:
        raise bad_request(
            "thumbor option meta: not supported (edgeproxy's GET /info answers with the original's facts)"
        )
    if parts["trim"]:
        unsupported_trim()
    if "orig" in (parts["width"], parts["height"]):
        raise bad_request("thumbor size orig: not supported (give the size, or 0 to keep the ratio)")


def _side(value: str | None, name: str) -> int | None:
    """A thumbor width or height: None for absent or 0 (the ratio keeps it), else 1..MAX_DIMENSION."""
    size = int(value) if value else 0
    if size > MAX_DIMENSION:
        raise bad_request(f"thumbor {name} {size}: over {MAX_DIMENSION}")
    return size or None


def _geometry(parts: Mapping[str, str | None], config: ThumborConfig) -> TransformSpec:
    """The spec of the URL's crop, fit, size, flips, alignment and ``smart`` (before filters)."""
    width, height = _side(parts["width"], "width"), _side(parts["height"], "height")
    crop = None
    if parts["left"] is not None:
        left, top, right, bottom = (int(parts[k] or 0) for k in ("left", "top", "right", "bottom"))
        if (left, top, right, bottom) != (0, 0, 0, 0):
            if right <= left or bottom <= top:
                raise bad_request(
                    "thumbor crop AxB:CxD: the bottom-right corner must be right of and below the top-left"
                )
            crop = Crop(left, top, right - left, bottom - top)
    flip = Flip(("h" if parts["hflip"] else "") + ("v" if parts["vflip"] else ""))
    box = width is not None or height is not None
    if parts["adaptive"] and width and height and width != height:
        raise bad_request(
            "thumbor option adaptive-fit-in: not supported with a box that is not square "
            "(it swaps the box for an original of the other orientation, unknown from the URL)"
        )
    if parts["fit_in"] is None:
        # Crop to the box's ratio, then scale to the box, enlarging (thumbor's default for sizes).
        fit, enlarge = Fit.COVER, True
    elif parts["full"]:
        fit, enlarge = Fit.OUTSIDE, True  # full-fit-in: the smallest size covering the box, always
    else:
        fit, enlarge = Fit.INSIDE, False  # fit-in: inside the box, never enlarged
    gravity = Gravity()
    if parts["fit_in"] is None and box:
        if parts["smart"]:
            gravity = Gravity("face" if config.faces else "smart")
        else:
            gravity = _compass(_HALIGN[parts["halign"] or "center"], _VALIGN[parts["valign"] or "middle"])
    if not box:
        fit, enlarge = Fit.INSIDE, False  # no size: the original's, nothing to fit
    return TransformSpec(width=width, height=height, fit=fit, enlarge=enlarge, gravity=gravity, crop=crop, flip=flip)


def _compass(x: float, y: float) -> Gravity:
    """The compass gravity at fractions (x, y) (each 0, 0.5 or 1)."""
    name = next(name for name, point in COMPASS.items() if point == (x, y))
    return Gravity(name, x, y)


def _point(x: float, y: float) -> Gravity:
    """The gravity at fractions (x, y) of the image: a compass name where there is one (a crop
    anchored at 0, 0.5 or 1 is the same either way), else a focal point (``g:fp:X:Y``)."""
    x, y = round(x, 6), round(y, 6)
    if x in (0.0, 0.5, 1.0) and y in (0.0, 0.5, 1.0):
        return _compass(x, y)
    # Rounded to a millionth (a 60th of a pixel at the largest size), so the canonical form, and the
    # ETag, do not carry the float noise of 1 - x.
    return Gravity("fp", round(min(1.0, max(0.0, x)), 6), round(min(1.0, max(0.0, y)), 6))


def _apply_filters(
    spec: TransformSpec, filters: list[Filter], *, fit_in: bool
) -> tuple[TransformSpec, int, tuple[int, int, int, int] | None]:
    """(``spec`` with each thumbor filter applied, the ``rotate()`` angle counter-clockwise, the
    ``focal()`` region or None); ``fit_in``: plain or adaptive ``fit-in``, where ``fill`` pads and
    ``upscale`` enlarges. The rotation is left to ``_oriented``, the focal region to ``focused``.

    Raises:
        ProxyError(400): a filter edgeproxy does not map, or bad arguments; the message names it.
    """
    rotate = 0
    fill: tuple[int, int, int, int] | None = None
    focal: tuple[int, int, int, int] | None = None
    for f in filters:
        match f.name:
            case "format":
                arity(f, 1, 1)
                fmt = _FORMATS.get(f.args[0].lower())
                if fmt is None:
                    raise bad_request(f"thumbor filter format: {f.args[0]!r} is not one of {'|'.join(_FORMATS)}")
                spec = replace(spec, format=fmt)
            case "quality":
                arity(f, 1, 1)
                spec = replace(spec, quality=int(number(f, 0, 1, 100, integer=True)))
            case "fill":
                arity(f, 1, 2)
                if boolean(f, 1):
                    raise bad_request("thumbor filter fill: fill_transparent is not supported")
                fill = colour(f, f.args[0])
            case "background_color":
                arity(f, 1, 1)
                spec = replace(spec, background=colour(f, f.args[0]))
            case "blur":
                arity(f, 1, 2)
                radius = number(f, 0, 1, 150)
                sigma = number(f, 1, 0, 100) if len(f.args) == 2 else 0
                spec = replace(spec, blur=min(100.0, sigma or radius))
            case "sharpen":
                arity(f, 3, 3)
                number(f, 0, 0, 10)  # amount: edgeproxy's sharpen has one strength (docs/migration/thumbor.md)
                boolean(f, 2)
                spec = replace(spec, sharpen=number(f, 1, 0.1, 10))
            case "rotate":
                arity(f, 1, 1)
                angle = int(number(f, 0, -360000, 360000, integer=True))
                if angle % 90:
                    raise bad_request("thumbor filter rotate: the angle must be a multiple of 90")
                rotate = angle % 360
            case "no_upscale":
                arity(f, 0, 0)
                spec = replace(spec, enlarge=False)
            case "upscale":
                arity(f, 0, 0)
                if fit_in:
                    spec = replace(spec, enlarge=True)
            case "stretch":
                arity(f, 0, 0)
                if spec.fit is Fit.COVER:
                    spec = replace(spec, fit=Fit.FILL)
            case "strip_exif" | "strip_icc":
                arity(f, 0, 0)  # edgeproxy strips metadata and converts to sRGB by default (strip:1)
            case "focal":
                arity(f, 1, 1)
                region = _FOCAL.fullmatch(f.args[0])
                if region is None:
                    raise bad_request(f"thumbor filter focal: expected LEFTxTOP:RIGHTxBOTTOM, got {f.args[0]!r}")
                left, top, right, bottom = (int(v) for v in region.groups())
                if right <= left or bottom <= top:
                    raise bad_request(
                        "thumbor filter focal: the bottom-right corner must be right of and below the top-left"
                    )
                focal = (left, top, right, bottom)
            case "grayscale":
                raise bad_request("thumbor filter grayscale: not supported (edgeproxy has no grayscale option)")
            case _:
                raise bad_request(f"thumbor filter {f.name}: not supported")
    if spec.fit is Fit.FILL and not spec.enlarge:
        raise bad_request("thumbor filters stretch and no_upscale together: not supported")
    if fill is not None:
        if spec.background is not None and spec.background != fill:
            raise bad_request("thumbor filters fill and background_color with different colours: not supported")
        spec = replace(spec, background=fill)
        if fit_in and spec.width and spec.height:
            spec = replace(spec, fit=Fit.PAD)  # padded to the box, centred, as thumbor's fill
    return spec, rotate, focal


def _oriented(spec: TransformSpec, ccw: int) -> TransformSpec:
    """``spec`` with thumbor's order of crop, flips and ``rotate(ccw)`` (counter-clockwise degrees)
    turned into edgeproxy's. thumbor crops to the box first (anchored by halign/valign), then flips,
    then rotates (a filter, after the resize); edgeproxy rotates (clockwise) and flips first, then
    crops in the turned frame. So the crop's anchor flips and turns with the image, the box's sides
    swap for 90 and 270, and so do the flips' axes."""
    flip, gravity = spec.flip, spec.gravity
    if (gravity.kind in COMPASS or gravity.kind == "fp") and (flip is not Flip.NONE or ccw):
        x, y = gravity.anchor()
        x, y = (1 - x if "h" in flip.value else x), (1 - y if "v" in flip.value else y)
        for _ in range(ccw // 90):
            x, y = y, 1 - x  # a quarter turn counter-clockwise
        gravity = _point(x, y)
    if not ccw:
        return replace(spec, gravity=gravity)
    quarter = ccw in (90, 270)
    width, height = (spec.height, spec.width) if quarter else (spec.width, spec.height)
    if quarter and flip in (Flip.H, Flip.V):
        flip = Flip.V if flip is Flip.H else Flip.H
    return replace(spec, width=width, height=height, flip=flip, gravity=gravity, rotate=(360 - ccw) % 360)


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
