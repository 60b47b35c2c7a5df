"""The rules settings must follow beyond their types and bounds: each a function that returns the
value it was given or raises ``ValueError`` with the problem (pydantic reports it under the
setting's name). ``edgeproxy.settings`` attaches them to its fields (``AfterValidator``) and runs
``check_combinations`` on the whole once every field is valid.

The rules use the domain's own parsers, so a setting is refused at start-up exactly when it would
fail later: origin names (``edgeproxy.url.keys``), S3 locations (``edgeproxy.origins.s3``), presets
(``edgeproxy.url.grammar``), purge hooks (``edgeproxy.purge``) and input formats
(``edgeproxy.url.media``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import SecretStr

from edgeproxy.origins.s3 import parse_location as parse_s3_location
from edgeproxy.purge import PurgeHook
from edgeproxy.url.grammar import compile_presets
from edgeproxy.url.keys import ORIGIN_NAME_RULE, RESERVED_ORIGIN_NAMES, is_origin_name
from edgeproxy.url.media import INPUT_FORMATS

if TYPE_CHECKING:
    from edgeproxy.settings import Settings

#: Fewest bytes an ``admin_token`` may have.
MIN_ADMIN_TOKEN_BYTES = 16

N = TypeVar("N", int, float)


def check_origins(origins: dict[str, str]) -> dict[str, str]:
    """``origins`` (name -> location): every name an origin name (not a reserved one), every
    location an http(s):// URL, an ``s3://bucket[/prefix]`` within S3's naming rules, or a folder
    that exists.

    Raises:
        ValueError: every problem, joined by ``; ``.
    """
    problems = []
    for name, location in origins.items():
        if not is_origin_name(name):
            problems.append(f"origin name {name!r}: {ORIGIN_NAME_RULE}")
        if name in RESERVED_ORIGIN_NAMES:
            problems.append(f"origin name {name!r} is reserved (GET /{name}/...): choose another")
        if location.startswith(("http://", "https://")):
            continue
        if location.startswith("s3://"):
            try:
                parse_s3_location(location)
            except ValueError as exc:
                problems.append(f"origin {name}: {exc}")
        elif not Path(location).is_dir():
            problems.append(f"origin {name}: {location!r} is not a folder, an http(s):// URL or s3://bucket")
    if problems:
        raise ValueError("; ".join(problems))
    return origins


def check_manifest_origins(manifests: dict[str, str]) -> dict[str, str]:
    """``manifest_origins`` (name -> location): every name an origin name (not a reserved one), every
    location ``s3://bucket/key`` (a key, not only a bucket) or a file that exists.

    Raises:
        ValueError: every problem, joined by ``; ``.
    """
    problems = []
    for name, location in manifests.items():
        if not is_origin_name(name):
            problems.append(f"manifest name {name!r}: {ORIGIN_NAME_RULE}")
        if name in RESERVED_ORIGIN_NAMES:
            problems.append(f"manifest name {name!r} is reserved (GET /{name}/...): choose another")
        if location.startswith("s3://"):
            try:
                _bucket, key = parse_s3_location(location)
            except ValueError as exc:
                problems.append(f"manifest {name}: {exc}")
                continue
            if not key:
                problems.append(f"manifest {name}: {location!r} names no object: s3://bucket/key")
        elif not Path(location).is_file():
            problems.append(f"manifest {name}: {location!r} is not a file or s3://bucket/key")
    if problems:
        raise ValueError("; ".join(problems))
    return manifests


def check_result_storage(location: str) -> str:
    """``result_storage``: ``off``, ``s3://bucket/prefix`` (checked as an S3 origin's location), or a
    folder path (created at start-up)."""
    if not location.strip():
        raise ValueError("result_storage: give a folder, s3://bucket/prefix, or off")
    if location.startswith("s3://"):
        parse_s3_location(location)
    return location


def check_s3_endpoint(url: str | None) -> str | None:
    """``s3_endpoint_url``: ``http(s)://HOST[:PORT]`` (an optional ``/``, no path, query or user)."""
    if url is not None and not re.fullmatch(r"https?://[^/?#@\s]+/?", url):
        raise ValueError(f"expected http(s)://HOST[:PORT], got {url!r}")
    return url


def check_s3_region(region: str | None) -> str | None:
    """``s3_region``: an AWS region name (1-63 of a-z 0-9 -, starting alphanumeric)."""
    if region is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", region):
        raise ValueError(f"expected an AWS region name such as eu-west-1, got {region!r}")
    return region


def check_bind(bind: str | None) -> str | None:
    """``metrics_bind``: ``HOST:PORT`` with a port in 1..65535."""
    if bind is not None:
        host, sep, port = bind.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, got {bind!r}")
    return bind


def check_file(path: str | None) -> str | None:
    """A setting naming a file read at start-up (fallback image, CA bundle, models, C2PA PEMs): it exists."""
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{path!r} is not a file")
    return path


def check_admin_token(token: SecretStr | None) -> SecretStr | None:
    """``admin_token``: at least ``MIN_ADMIN_TOKEN_BYTES`` bytes (whitespace aside), none at its ends."""
    if token is not None and len(token.get_secret_value().strip().encode()) < MIN_ADMIN_TOKEN_BYTES:
        raise ValueError(
            f'must be at least {MIN_ADMIN_TOKEN_BYTES} bytes (a random value: python -c "import '
            'secrets; print(secrets.token_urlsafe(32))"), or unset to turn POST /purge off'
        )
    if token is not None and token.get_secret_value() != token.get_secret_value().strip():
        raise ValueError("must not start or end with whitespace (HTTP drops it from the Authorization header)")
    return token


def check_purge_hooks(hooks: list[str]) -> list[str]:
    """``purge_hooks``: each one ``KIND:TARGET`` as ``PurgeHook.parse`` reads it."""
    for hook in hooks:
        PurgeHook.parse(hook)
    return hooks


def check_presets(presets: dict[str, str]) -> dict[str, str]:
    """``presets``: each compiles (``compile_presets`` lists every problem)."""
    compile_presets(presets)
    return presets


def check_input_formats(formats: list[str]) -> list[str]:
    """``allowed_input_formats``: names the proxy knows (``INPUT_FORMATS``)."""
    unknown = sorted(set(formats) - INPUT_FORMATS)
    if unknown:
        raise ValueError(f"unknown input formats {unknown}; known: {sorted(INPUT_FORMATS)}")
    return formats


def ascending_within(lo: N, hi: N) -> Callable[[list[N]], list[N]]:
    """The check of a bucket list (``auto_width_buckets``: pixels, ``auto_dpr_buckets``): strictly
    ascending values in ``lo..hi``."""

    def check(buckets: list[N]) -> list[N]:
        if any(not lo <= b <= hi for b in buckets) or any(a >= b for a, b in itertools.pairwise(buckets)):
            raise ValueError(f"expected strictly ascending values in {lo}..{hi}, got {buckets}")
        return buckets

    return check


def check_combinations(settings: Settings) -> None:
    """The rules between settings, once each is valid on its own: a signing key (or
    ``allow_unsigned``), S3 credentials that go together, the API tokens the purge hooks need, an
    admin token that is not the signing key, ``manifest_origins`` named apart from ``origins``,
    ``redact_origins`` and ``c2pa_origins`` naming
    configured origins and having what they need, thresholds in order, ``metrics_bind`` with one worker.

    Raises:
        ValueError: the first rule broken.
    """
    if settings.signing_key is None and not settings.allow_unsigned:
        raise ValueError(
            "no signing key: set EDGEPROXY_SIGNING_KEY (or --signing-key), "
            "or allow_unsigned / --allow-unsigned for local development only"
        )
    if settings.previous_signing_keys and settings.signing_key is None:
        raise ValueError("previous_signing_keys needs signing_key")
    if (settings.s3_access_key_id is None) != (settings.s3_secret_access_key is None):
        raise ValueError("s3_access_key_id and s3_secret_access_key go together (or neither: AWS_* variables)")
    if settings.s3_session_token is not None and settings.s3_access_key_id is None:
        raise ValueError("s3_session_token needs s3_access_key_id and s3_secret_access_key")
    kinds = {PurgeHook.parse(hook).kind for hook in settings.purge_hooks}
    for kind, token in (("fastly", settings.fastly_api_token), ("cloudflare", settings.cloudflare_api_token)):
        if kind in kinds and token is None:
            raise ValueError(f"purge hook {kind}: needs {kind}_api_token (EDGEPROXY_{kind.upper()}_API_TOKEN)")
    if (
        settings.admin_token is not None
        and settings.signing_key is not None
        and (settings.admin_token.get_secret_value() == settings.signing_key.get_secret_value())
    ):
        raise ValueError("admin_token must not be the signing key")
    for name, origins in (("redact_origins", settings.redact_origins), ("c2pa_origins", settings.c2pa_origins)):
        unknown = sorted(set(origins) - set(settings.origins))
        if unknown:
            raise ValueError(f"{name}: unknown origins {unknown}")
    clash = sorted(set(settings.manifest_origins) & set(settings.origins))
    if clash:
        raise ValueError(f"manifest_origins: {clash} are origins too: a manifest needs a name of its own")
    if settings.redact_origins and settings.face_model is None:
        raise ValueError(
            "redact_origins needs face_model (CenterFace, edgeproxy models fetch): "
            "without a detector no face could be redacted"
        )
    if settings.c2pa_origins and (settings.c2pa_certificate is None or settings.c2pa_private_key is None):
        raise ValueError("c2pa_origins needs c2pa_certificate and c2pa_private_key")
    if settings.face_candidate_score > settings.face_min_score:
        raise ValueError("face_candidate_score must not be above face_min_score")
    if settings.moderation_blur_threshold > settings.moderation_block_threshold:
        raise ValueError("moderation_blur_threshold must not be above moderation_block_threshold")
    if settings.metrics_bind and settings.workers > 1:
        raise ValueError(
            "metrics_bind works with one worker; with several, scrape /metrics on the main port (it sums every worker)"
        )
    check_review(settings)


def check_review(settings: Settings) -> None:
    """The review page (``review = true``) needs ``admin_token`` (its reviewers' credential) and
    ``review_audit_log`` (where every verdict is recorded).

    Raises:
        ValueError: either is missing.
    """
    if settings.review and settings.admin_token is None:
        raise ValueError("review needs admin_token (the reviewers log in with it)")
    if settings.review and not settings.review_audit_log:
        raise ValueError("review needs review_audit_log (a file every verdict is appended to)")


def check_imgproxy(settings: Settings) -> None:
    """imgproxy compatibility: a route prefix "" or ``/NAME``, a key and salt (hex, together) or
    ``compat_imgproxy_insecure``, origins that exist, presets that map
    (``edgeproxy.compat.imgproxy.ImgproxyConfig``).

    Raises:
        ValueError: the first problem found.
    """
    from edgeproxy.compat.imgproxy import ImgproxyConfig

    ImgproxyConfig.from_settings(settings)
    prefix = settings.compat_imgproxy_prefix
    if prefix and (not prefix.startswith("/") or prefix.endswith("/") or "//" in prefix):
        raise ValueError("compat_imgproxy_prefix: a route prefix is empty or /NAME, without a trailing /")
    if settings.compat_imgproxy and not (settings.imgproxy_key or settings.compat_imgproxy_insecure):
        raise ValueError("compat_imgproxy needs imgproxy_key and imgproxy_salt (or compat_imgproxy_insecure)")
    if settings.compat_imgproxy and settings.only_presets and not settings.compat_imgproxy_only_presets:
        raise ValueError("only_presets with compat_imgproxy needs compat_imgproxy_only_presets (IMGPROXY_ONLY_PRESETS)")
    unknown = sorted(set(settings.compat_imgproxy_origins.values()) - set(settings.origins))
    if unknown:
        raise ValueError(f"compat_imgproxy_origins: unknown origins {unknown}")
