"""All configuration, in one place; with ``edgeproxy.settings_io`` (the settings handed to worker
processes) and ``edgeproxy.settings_env`` (the few variables commands read alone), the only module
that reads the environment. This is the schema (names, types, defaults, bounds), the optional
features' groups composed from ``edgeproxy.settings_features``; the rules beyond those are
``edgeproxy.settings_checks``'s, attached to the fields here.
``edgeproxy.compose`` builds the app's objects from it.

Precedence: defaults < TOML file (``--config``) < ``EDGEPROXY_*`` environment < command line.
``config/edgeproxy.example.toml`` documents every setting with its default. Invalid settings stop
start-up with one message listing every problem (``SettingsError``). Printing settings
(``edgeproxy check-config``) and handing them to workers are ``edgeproxy.settings_io``'s.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, IPvAnyNetwork, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from edgeproxy.compat.thumbor import check_settings as check_thumbor_settings
from edgeproxy.http.negotiate import DEFAULT_WIDTH_BUCKETS
from edgeproxy.settings_checks import (
    ascending_within,
    check_bind,
    check_combinations,
    check_file,
    check_imgproxy,
    check_input_formats,
    check_manifest_origins,
    check_origins,
    check_presets,
    check_result_storage,
    check_s3_endpoint,
    check_s3_region,
)
from edgeproxy.settings_features import (
    ImgproxySettings,
    IngestSettings,
    PurgeSettings,
    ReviewSettings,
    ThumborSettings,
)
from edgeproxy.vision.moderation import SIDECAR_MAX_DEPTH

#: Folder of sample images shipped in the package: the embedded default origin ``samples``.
SAMPLES_DIR = Path(__file__).parent / "samples"


def default_result_storage() -> str:
    """The default ``result_storage``: the folder ``edgeproxy-results-UID`` (this user's id) in the
    system's temporary folder (``tempfile.gettempdir()``: ``TMPDIR``, else ``/tmp``): one user's
    results are never another's (start-up refuses a folder another user owns)."""
    return str(Path(tempfile.gettempdir()) / f"edgeproxy-results-{os.getuid()}")


#: A setting naming a file read at start-up: it must exist.
ExistingFile = Annotated[str | None, AfterValidator(check_file)]


class SettingsError(Exception):
    """Invalid configuration; ``str(error)`` lists every problem, one per line."""


class ProxySettings(BaseSettings):
    """The proxy's own settings (server, origins, signing, negotiation, output, limits, caching,
    vision, moderation, provenance), with their defaults; ``Settings`` adds the optional
    features' (``edgeproxy.settings_features``). Units are in the names' comments."""

    # Server
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=256)  # uvicorn processes
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["json", "text"] = "json"
    access_log: bool = True  # one JSON line per transform request (logger edgeproxy.access)
    # Request headers logged in the access line's "cdn" field: the request ids CDNs set, to trace a
    # CDN miss to the proxy's line (values cut to 256 characters).
    access_log_headers: list[str] = Field(
        default_factory=lambda: ["X-Varnish", "CF-Ray", "X-Amz-Cf-Id", "Fastly-Trace"]
    )
    # "127.0.0.1:9464": serve /metrics there only (404 on the main port)
    metrics_bind: Annotated[str | None, AfterValidator(check_bind)] = None
    # Set by `edgeproxy serve --workers N` (N > 1), with PROMETHEUS_MULTIPROC_DIR for prometheus-client.
    metrics_multiprocess_dir: str | None = None

    # Origins: name -> folder, http(s):// base URL or s3://bucket/prefix
    origins: Annotated[dict[str, str], AfterValidator(check_origins)] = Field(
        default_factory=lambda: {"samples": str(SAMPLES_DIR)}
    )
    # Manifest origins: name -> a JSON manifest (a file path or s3://bucket/key) mapping stable ids
    # (SKU, part number) to {"origin", "key", ...}: /SIG/w:400/NAME/SKU-123 renders the mapped original
    # (docs/manifests.md). Checked every manifest_ttl seconds, reloaded when it changed (file mtime,
    # size, inode; S3 ETag); the ids whose image changed are purged. POST /manifest/NAME updates it.
    manifest_origins: Annotated[dict[str, str], AfterValidator(check_manifest_origins)] = Field(default_factory=dict)
    manifest_ttl: float = Field(30.0, gt=0, le=86_400)  # seconds between checks of each manifest
    manifest_max_bytes: int = Field(32 * 1024 * 1024, ge=2)  # largest manifest (and update body), bytes

    # Signing
    signing_key: SecretStr | None = None  # signs and verifies
    previous_signing_keys: list[SecretStr] = Field(default_factory=list)  # verify only (rotation)
    allow_unsigned: bool = False  # accept the signature "unsafe": local development only
    signature_size: int = Field(32, ge=8, le=32)  # bytes of HMAC-SHA256 kept in signatures (truncation)

    # Negotiation
    client_hints: bool = False  # honour Sec-CH-DPR / Sec-CH-Width / Save-Data, send Accept-CH
    save_data_quality: int = Field(45, ge=1, le=100)
    # w:auto: Sec-CH-Width (device pixels) rounded up to one of these widths, so a CDN stores a
    # bounded number of variants per URL (default: 20 widths, steps of at most 17 % from 320 to
    # 2560, edgeproxy.http.negotiate.DEFAULT_WIDTH_BUCKETS); without the hint (client_hints off,
    # Firefox, Safari, an <img> without sizes) the URL's w:auto:N or auto_width_fallback CSS pixels
    # × DPR, rounded up likewise.
    auto_width_buckets: Annotated[list[int], AfterValidator(ascending_within(1, 65535))] = Field(
        default_factory=lambda: list(DEFAULT_WIDTH_BUCKETS), min_length=1
    )
    auto_width_fallback: int = Field(640, ge=1, le=16384)  # CSS pixels
    # dpr:auto: Sec-CH-DPR rounded up to one of these (1..4); 1 without the hint.
    auto_dpr_buckets: Annotated[list[float], AfterValidator(ascending_within(1.0, 4.0))] = Field(
        default_factory=lambda: [1.0, 1.5, 2.0, 3.0, 4.0], min_length=1
    )

    # Presets: name -> option path, used as pr:NAME (pr:a:b applies a then b; the URL's own options
    # override them). A preset named "default" applies to every URL. TOML: [presets] thumb = "w:200/h:200/fit:cover";
    # environment: EDGEPROXY_PRESETS='{"thumb": "w:200/h:200/fit:cover"}'.
    presets: Annotated[dict[str, str], AfterValidator(check_presets)] = Field(default_factory=dict)
    only_presets: bool = False  # URLs may carry only pr, exp and v: no transform outside the presets

    # Output defaults
    quality_jpeg: int = Field(80, ge=1, le=100)
    quality_webp: int = Field(75, ge=1, le=100)
    quality_avif: int = Field(60, ge=1, le=100)
    avif_effort: int = Field(0, ge=0, le=9)  # libvips heifsave effort: 0 fastest .. 9 smallest
    webp_effort: int = Field(2, ge=0, le=6)  # libvips webpsave effort: 0 fastest .. 6 smallest
    jpeg_progressive: bool = False
    png_compression: int = Field(6, ge=0, le=9)
    # JPEG XL output (f:jxl; needs the [jxl] extra). auto_jxl: f:auto picks JPEG XL first for clients
    # whose Accept lists image/jxl (off: see bench/results.md, "Formats", for why).
    quality_jxl: int = Field(75, ge=1, le=100)  # libjxl quality scale (90 = distance 1)
    jxl_effort: int = Field(4, ge=1, le=9)  # libjxl effort: 1 fastest .. 9 smallest
    auto_jxl: bool = False

    # Quality targets (q:auto[:N]) and the optimised tier. A target is a SSIMULACRA2 score (70 high,
    # 80 very high): the lowest encoder quality that reaches it is searched per image (JPEG, WebP,
    # AVIF). quality_policy "target": a URL without q gets quality_target; "fixed": quality_<format>.
    quality_target: int = Field(70, ge=1, le=100)
    quality_policy: Literal["target", "fixed"] = "target"
    # mb:N (a byte budget): the lowest encoder quality JPEG, WebP and AVIF go down to before the
    # smallest encode made is answered over the budget.
    max_bytes_min_quality: int = Field(10, ge=1, le=100)
    # optimise: how a derivative with a target is made. "background": the first answer is the fast
    # encode at the format's typical quality for the target, cached optimise_max_age seconds
    # (+ stale-while-revalidate), while a bounded background queue searches the quality with the slow
    # encoders (AVIF optimise_avif_effort, WebP optimise_webp_effort with smart subsampling, mozjpeg's
    # trellis) and stores it in the result storage; later answers are that one, immutable. "inline":
    # the search runs on the request (slow first answers, no second tier). "off": no search at all,
    # q:auto is the format's typical quality for the target.
    optimise: Literal["off", "background", "inline"] = "background"
    optimise_max_age: int = Field(300, ge=0)  # seconds: the fast tier's max-age
    optimise_stale_while_revalidate: int = Field(86400, ge=0)  # seconds, the fast tier's
    optimise_queue: int = Field(256, ge=1)  # derivatives waiting for the background; more are dropped (counted)
    optimise_threads: int = Field(1, ge=1, le=64)  # background threads (OS priority lowered: nice 19)
    optimise_timeout: float = Field(120.0, gt=0)  # seconds one background optimisation may take
    # Where the background runs. "process": each of the optimise_threads has a worker process of its
    # own (whole process at nice 19, libvips' threads too; killed past optimise_timeout; a crash fails
    # one job, never the server). "thread": in the server's process (its libvips threads are shared).
    optimise_isolation: Literal["process", "thread"] = "process"
    optimise_avif_effort: int = Field(4, ge=0, le=9)
    optimise_webp_effort: int = Field(6, ge=0, le=6)
    # Outputs over this many pixels (one frame) are not searched: the optimised tier encodes them at
    # the format's typical quality for the target. A search is up to 6 slow encodes (2 MP at AVIF
    # effort 4: about 1.5 s each on one core) and holds about 150 bytes per output pixel (300 MB at 2 MP).
    optimise_max_pixels: int = Field(2_000_000, ge=0)
    # Result storage: optimised derivatives kept by ETag, so that another pod, another worker or a
    # restart answers a CDN miss without optimising again. A folder on this host (bounded by
    # result_storage_max_bytes, least recently used evicted first; shared by the worker processes),
    # s3://bucket/prefix (shared by every pod; bound it with a bucket lifecycle rule), or "off" (the
    # optimised tier then lives nowhere: every request gets the fast one).
    result_storage: Annotated[str, AfterValidator(check_result_storage)] = Field(default_factory=default_result_storage)
    result_storage_max_bytes: int = Field(1 << 30, ge=1)  # bytes (a folder only)
    result_storage_timeout: float = Field(5.0, gt=0)  # seconds per S3 request
    # A lookup on the request path waits at most result_storage_lookup_timeout seconds (then a miss:
    # the fast tier is rendered); after result_storage_breaker_failures failed or late operations in
    # a row the store is skipped for result_storage_breaker_recovery seconds (results/breaker.py).
    result_storage_lookup_timeout: float = Field(0.5, gt=0)  # seconds
    result_storage_breaker_failures: int = Field(5, ge=1)
    result_storage_breaker_recovery: float = Field(30.0, gt=0)  # seconds

    # Privacy: strip:0 (keep EXIF incl. GPS, XMP, IPTC in the output) is a 400 unless allowed
    allow_keep_metadata: bool = False

    # Limits
    max_source_bytes: int = Field(32 * 1024 * 1024, ge=1)  # bytes
    max_source_pixels: int = Field(50_000_000, ge=1)  # width × height × frames
    max_frames: int = Field(256, ge=1)
    max_output_dimension: int = Field(8192, ge=1, le=65535)  # device pixels, each side
    # blur:SIGMA costs output megapixels × frames × sigma (its Gaussian mask grows with sigma): over
    # this, a 413 before any work. 1000 allows blur:100 up to 10 MP, blur:15 on any output.
    max_blur_cost: int = Field(1000, ge=1)  # megapixel-sigma
    # trim:T finds the borders on a copy of the original at most this many pixels on its long side
    # (shrink-on-load: a 24 MP JPEG costs a fraction of its full decode, and libvips' 3x3 median over
    # it, 0.5 s for 4.4 MP here): exact to the pixel up to it; above, within one copy pixel, rounded
    # outwards (a sliver of border may stay, nothing of the image is cut).
    trim_max_side: int = Field(1024, ge=64, le=16384)  # pixels
    allowed_input_formats: Annotated[list[str], AfterValidator(check_input_formats)] = Field(
        default_factory=lambda: [
            "jpeg",
            "png",
            "webp",
            "gif",
            "avif",
            "heif",
            "tiff",
            "bmp",
            "ico",
            "psd",
            "jp2",
            "jxl",
        ]
    )
    request_timeout: float = Field(20.0, gt=0)  # seconds, whole request
    origin_timeout: float = Field(10.0, gt=0)  # seconds, whole origin fetch
    origin_connect_timeout: float = Field(3.0, gt=0)  # seconds
    origin_max_redirects: int = Field(3, ge=0, le=10)  # same host only
    origin_max_connections: int = Field(64, ge=1)  # HTTP origin connection pool, all origins
    # CIDRs an HTTP origin may resolve to although not public (loopback, private, CGNAT, ...):
    # everything non-public is refused otherwise, after DNS resolution. E.g. ["10.20.0.0/16"].
    origin_allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    # PEM file of extra CA certificates trusted for HTTPS origins (e.g. a private CA), on top of the
    # public ones; certificate and host name verification stay on either way.
    origin_ca_file: ExistingFile = None
    # S3 origins (s3://bucket/prefix), all of them. Unset: the standard AWS variables (AWS_ENDPOINT_URL,
    # AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN...), then web identity,
    # ECS or EC2 instance credentials. Timeouts and max_source_bytes as for HTTP origins.
    # e.g. "http://127.0.0.1:9000" (MinIO, moto); unset: AWS
    s3_endpoint_url: Annotated[str | None, AfterValidator(check_s3_endpoint)] = None
    s3_region: Annotated[str | None, AfterValidator(check_s3_region)] = None  # unset: AWS_REGION, else us-east-1
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_session_token: SecretStr | None = None  # temporary (STS) credentials
    s3_virtual_hosted_style: bool = False  # https://BUCKET.host/key instead of https://host/BUCKET/key

    # Concurrency
    render_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=256)
    render_queue: int = Field(64, ge=0)  # requests waiting for a render thread before 503
    vips_concurrency: int = Field(1, ge=1, le=64)  # libvips threads per render
    retry_after: int = Field(1, ge=1)  # seconds, on 503

    # Fallback: an image (file path, read at start-up) rendered with the request's options in place
    # of an error about the original (404, 413, 415, 422, 502, 504). Cached for error_max_age
    # (transient_error_max_age after a 5xx), never immutable. Its status is the error's, or
    # fallback_status when set (e.g. 200 for clients that hide images answered with an error).
    fallback_image: ExistingFile = None
    fallback_status: int | None = Field(None, ge=200, le=599)

    # Caching
    cache_max_age: int = Field(31_536_000, ge=0)  # seconds, successful derivatives (immutable)
    error_max_age: int = Field(60, ge=0)  # seconds, 4xx answers
    transient_error_max_age: int = Field(1, ge=0)  # seconds, 5xx answers
    original_cache_bytes: int = Field(64 * 1024 * 1024, ge=0)  # in-process LRU of originals, bytes
    # Seconds a cached HTTP/S3 original is used before a conditional request revalidates it (a local
    # file is checked with stat on every request; a purge drops it at once).
    original_cache_ttl: float = Field(60.0, ge=0)
    origin_negative_ttl: float = Field(10.0, ge=0)  # seconds an HTTP/S3 origin's 404 is remembered
    # Seconds after an HTTP/S3 origin last vouched for a cached original during which a failed
    # revalidation (connection error, timeout, 5xx: the proxy's 502/504) serves that original stale,
    # its derivatives cached error_max_age (never immutable), with a warning and
    # edgeproxy_origin_stale_served_total. 0: an origin failure is always the 502/504.
    origin_stale_if_error: float = Field(300.0, ge=0)

    # Vision (docs/vision.md): pip install '.[vision]', then `edgeproxy models fetch`. A model path
    # left unset turns off what needs it: g:face and redact:faces are a 400 naming face_model.
    nsfw_model: ExistingFile = None  # open_nsfw as ONNX (open-nsfw.onnx): the moderation classifier
    face_model: ExistingFile = None  # CenterFace as ONNX (centerface.onnx): g:face, redact:faces
    # ONNX Runtime execution providers, tried in order; the ones this install lacks are skipped and
    # /readyz and the start-up log say which one each model got (CPU when no GPU can be used).
    vision_providers: list[str] = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"], min_length=1
    )
    vision_threads: int = Field(1, ge=1, le=64)  # ONNX Runtime threads per inference (one render thread's share)
    # Pixels: the long side of the copy the models see. Faces narrower than 1 % of it (and than
    # 10 px) are not guaranteed to be found; in the grid test 98.4 % of those at 1 % are, and all
    # from 1.25 % up (docs/faces.md, "Which faces are found").
    vision_max_side: int = Field(960, ge=64, le=4096)
    vision_cache_entries: int = Field(10_000, ge=0)  # analyses (per original) kept in memory, LRU
    # /info's placeholders (dominant colour, ThumbHash) kept in memory, LRU, per original and treatment
    placeholder_cache_entries: int = Field(10_000, ge=0)
    face_min_score: float = Field(0.5, gt=0, lt=1)  # CenterFace confidence a face needs
    # A small face-like spot scoring above this (but not face_min_score) is looked at again at twice
    # the scale, where a real face scores face_min_score; equal to face_min_score: no second look.
    face_candidate_score: float = Field(0.05, gt=0, lt=1)
    # Origins whose every image has its faces redacted, whatever the URL says: origin -> blur | pixelate.
    redact_origins: dict[str, Literal["blur", "pixelate"]] = Field(default_factory=dict)

    # Moderation (docs/moderation.md): a verdict per original from its metadata (S3 x-amz-meta-moderation,
    # or "moderation" in a sidecar KEY.json for local and HTTP origins: approved | blurred | pending | rejected),
    # else the nsfw_model's score: >= block threshold answers 451, >= blur threshold a blurred
    # derivative. Answers that are not "allow" are cached moderation_max_age, never immutable.
    moderation: bool = False
    moderation_block_threshold: float = Field(0.85, ge=0, le=1)  # nsfw score
    moderation_blur_threshold: float = Field(0.6, ge=0, le=1)  # nsfw score
    # A pending verdict, or no verdict and no score (no classifier, or it failed): serve, blur or block.
    moderation_pending: Literal["serve", "blur", "block"] = "block"
    moderation_max_age: int = Field(60, ge=0)  # seconds: blocked, blurred and pending answers
    sidecar_max_bytes: int = Field(65_536, ge=2)  # bytes of a sidecar KEY.json
    # Deepest nesting of arrays/objects in a sidecar, checked before parsing (a deeper one is pending)
    sidecar_max_depth: int = Field(SIDECAR_MAX_DEPTH, ge=1, le=512)

    # Provenance: sign the derivatives of these origins with a C2PA manifest (the original as parent
    # ingredient, the actions done), with this certificate chain and key (PEM files). Costs bytes and
    # milliseconds: bench/results.md, "Vision".
    c2pa_origins: list[str] = Field(default_factory=list)
    c2pa_certificate: ExistingFile = None  # PEM: the signing certificate, then its chain
    c2pa_private_key: ExistingFile = None  # PEM: its private key
    c2pa_algorithm: Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"] = "es256"
    c2pa_tsa_url: str | None = None  # RFC 3161 time-stamp authority; unset: no time-stamp


class Settings(ThumborSettings, ReviewSettings, IngestSettings, ImgproxySettings, PurgeSettings, ProxySettings):
    """Every setting, with its default: the proxy's (``ProxySettings``) then the optional features'
    (purge, imgproxy compatibility, ingest, review, thumbor compatibility), in that order; checked together.
    Units are in the names' comments."""

    model_config = SettingsConfigDict(env_prefix="EDGEPROXY_", extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        check_combinations(self)
        return self

    @model_validator(mode="after")
    def _check_imgproxy(self) -> Settings:
        check_imgproxy(self)
        return self

    def verify_keys(self) -> list[str]:
        """Keys, signing key first, then previous keys (verify only)."""
        keys = [self.signing_key] if self.signing_key else []
        return [k.get_secret_value() for k in keys + list(self.previous_signing_keys)]

    def default_quality(self, fmt: str) -> int:
        """Configured quality (1..100) for output format ``fmt``."""
        return {
            "jpeg": self.quality_jpeg,
            "webp": self.quality_webp,
            "avif": self.quality_avif,
            "jxl": self.quality_jxl,
        }.get(fmt, 100)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _check_thumbor(self) -> Settings:
        check_thumbor_settings(self)
        if self.compat_thumbor and self.compat_imgproxy and self.compat_thumbor_prefix == self.compat_imgproxy_prefix:
            raise ValueError("compat_thumbor_prefix and compat_imgproxy_prefix: two URL grammars cannot share a prefix")
        return self


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, ``config_file`` (TOML), the environment, then ``overrides``.

    ``overrides`` are command-line values; ``None`` values are ignored.

    Raises:
        SettingsError: any invalid value, listing every problem; also a missing config file or one
            that is not TOML.
    """
    if config_file is not None and not Path(config_file).is_file():
        raise SettingsError(f"config file {config_file}: not found")
    cls: type[Settings] = Settings
    if config_file is not None:
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": str(config_file)})
        cls = type("FileSettings", (Settings,), {"model_config": config})
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {config_file}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
