"""The settings of the optional features, one model per group, composed into
``edgeproxy.settings.Settings`` (which checks them with the rest): ``POST /purge`` and its hooks,
thumbor and imgproxy compatibility (``compat_*``), ``edgeproxy ingest`` (``ingest_*``) and the
review page (``review_*``). Each group's fields keep their place in ``Settings`` (``check-config``
prints them in that order)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from edgeproxy.compat.thumbor import check_prefix as check_thumbor_prefix
from edgeproxy.settings_checks import check_admin_token, check_purge_hooks, check_s3_endpoint, check_s3_region


class PurgeSettings(BaseModel):
    """``POST /purge`` and the CDNs' purge hooks (``admin_token``, ``purge_*``, the CDNs' API tokens)."""

    # Purge (POST /purge): answered only when admin_token is set (404 otherwise); never the signing key.
    # At least 16 bytes (an empty or short token stops start-up). Also opens /info of blocked originals.
    # Authorization: Bearer <admin_token>
    admin_token: Annotated[SecretStr | None, AfterValidator(check_admin_token)] = None
    # After dropping the original from the proxy's caches, purge its surrogate key in each CDN:
    # "varnish:http://HOST:PORT", "fastly:SERVICE_ID", "cloudflare:ZONE_ID", "webhook:URL".
    purge_hooks: Annotated[list[str], AfterValidator(check_purge_hooks)] = Field(default_factory=list)
    purge_timeout: float = Field(5.0, gt=0)  # seconds per hook attempt
    purge_retries: int = Field(2, ge=0, le=10)  # extra attempts after a transport error, 429 or 5xx
    fastly_api_token: SecretStr | None = None  # for fastly: hooks (EDGEPROXY_FASTLY_API_TOKEN)
    fastly_api_url: str = "https://api.fastly.com"
    cloudflare_api_token: SecretStr | None = None  # for cloudflare: hooks (EDGEPROXY_CLOUDFLARE_API_TOKEN)
    cloudflare_api_url: str = "https://api.cloudflare.com/client/v4"


class ImgproxySettings(BaseModel):
    """imgproxy compatibility (``compat_imgproxy*``, ``imgproxy_*``; docs/migration/imgproxy.md)."""

    # imgproxy URLs (/SIG/OPTIONS/plain/SOURCE[@ext], /SIG/OPTIONS/BASE64SOURCE[.ext]) served under
    # compat_imgproxy_prefix ("": at the root, in place of edgeproxy's own URLs), mapped to edgeproxy's
    # options (docs/migration/imgproxy.md). Off unless compat_imgproxy.
    compat_imgproxy: bool = False
    compat_imgproxy_prefix: str = "/imgproxy"  # "" or /NAME, without a trailing /
    imgproxy_key: SecretStr | None = None  # hex, as IMGPROXY_KEY
    imgproxy_salt: SecretStr | None = None  # hex, as IMGPROXY_SALT
    imgproxy_signature_size: int = Field(32, ge=1, le=32)  # bytes, as IMGPROXY_SIGNATURE_SIZE
    # Without imgproxy_key/salt, accept any signature (imgproxy without a key): never in production.
    compat_imgproxy_insecure: bool = False
    # Source prefix -> origin name: "s3://bucket/", "local:///", "https://img.example.com/". The longest
    # matching prefix wins; a source no prefix matches is a 404 (never fetched as it is).
    compat_imgproxy_origins: dict[str, str] = Field(default_factory=dict)
    # imgproxy presets (IMGPROXY_PRESETS' name=options): name -> "rs:fill:300:300/q:80"; "default" applies to every URL.
    compat_imgproxy_presets: dict[str, str] = Field(default_factory=dict)
    # IMGPROXY_ONLY_PRESETS: URLs are /SIG/NAME[:NAME...]/SOURCE, presets only. Required with only_presets,
    # so that imgproxy URLs cannot ask for what edgeproxy's own URLs may not.
    compat_imgproxy_only_presets: bool = False


class IngestSettings(BaseModel):
    """``edgeproxy ingest`` (``ingest_*``; docs/ingest.md)."""

    # `edgeproxy ingest` (docs/ingest.md): each original is analysed at upload and its analysis
    # object KEY.analysis.json written beside it. The SQS queue that receives the bucket's
    # s3:ObjectCreated:* notifications (give it a RedrivePolicy with maxReceiveCount 3 to a
    # dead-letter queue); unset: no queue (local folders: `edgeproxy ingest --watch`).
    ingest_queue_url: str | None = None
    # SQS endpoint and region: unset, the S3 origins' (s3_endpoint_url, s3_region), else AWS's defaults.
    # The S3 credentials (s3_access_key_id...) are used for SQS too when set.
    ingest_sqs_endpoint_url: Annotated[str | None, AfterValidator(check_s3_endpoint)] = None
    ingest_sqs_region: Annotated[str | None, AfterValidator(check_s3_region)] = None
    # Seconds a received message stays hidden from other workers; a worker extends it while it analyses
    # (every half of it), so only a dead worker's message reappears, after at most this long.
    ingest_visibility_timeout: int = Field(60, ge=1, le=43200)
    ingest_wait_time: int = Field(20, ge=0, le=20)  # seconds a receive long-polls the queue
    # After a replaced original is analysed again and purged, these variants (option paths, as
    # `edgeproxy prewarm --variant`) are requested through the CDN at ingest_prewarm_base (needs signing_key).
    ingest_prewarm_variants: list[str] = Field(default_factory=list)
    ingest_prewarm_base: str | None = None  # e.g. "https://cdn.example.com"; unset: no prewarm
    ingest_prewarm_timeout: float = Field(30.0, gt=0)  # seconds per prewarm request


class ReviewSettings(BaseModel):
    """The human review page (``review*``; docs/review.md)."""

    # The human review page (GET /review, docs/review.md): originals whose stored analysis is
    # between the blur and block thresholds, or pending, with Approve / Block / Blur buttons. Needs
    # admin_token (the reviewers' credential) and review_audit_log.
    review: bool = False
    review_audit_log: str | None = None  # path of the JSON-lines audit log (appended; served at /review/log)
    review_session_max_age: int = Field(28_800, ge=60, le=604_800)  # seconds a login cookie is valid
    review_cache_seconds: float = Field(5.0, ge=0, le=3600)  # seconds a listing of the analysis objects is reused
    review_page_size: int = Field(50, ge=1, le=500)  # originals per page
    review_max_items: int = Field(10_000, ge=1)  # analysis objects read per listing (the newest are kept)
    review_thumb_width: int = Field(240, ge=32, le=1024)  # pixels: thumbnails fit in a square this wide


class ThumborSettings(BaseModel):
    """thumbor compatibility (``compat_thumbor*``, ``thumbor_security_key``; docs/migration/thumbor.md)."""

    # thumbor URLs (/HASH/[fit-in/]WxH/[filters:...]/IMAGE) served under compat_thumbor_prefix, mapped
    # to edgeproxy's options (docs/migration/thumbor.md). "" as prefix: at the root of a host of their own.
    compat_thumbor: bool = False
    compat_thumbor_prefix: Annotated[str, AfterValidator(check_thumbor_prefix)] = "/thumbor"
    thumbor_security_key: SecretStr | None = None  # thumbor's SECURITY_KEY: HMAC-SHA1 of its URLs
    compat_thumbor_unsafe: bool = False  # accept /unsafe/... thumbor URLs (thumbor's ALLOW_UNSAFE_URL)
    # IMAGE prefix -> origin name, the longest prefix first, removed from the key; "" matches any IMAGE.
    # An IMAGE no prefix matches is a 404: never an open proxy. E.g. {"img.example.com/" = "media"}.
    compat_thumbor_origins: dict[str, str] = Field(default_factory=dict)
