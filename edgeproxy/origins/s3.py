"""An S3 bucket (``s3://bucket/prefix``) as an origin, through obstore (Rust ``object_store``: async,
streaming, conditional GET; see docs/origins.md, "S3 origins", for why this client)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import (
    BaseError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import S3Store

if TYPE_CHECKING:  # obstore's config TypedDicts exist for type checkers only (not importable at run time)
    from obstore.store import ClientConfig, RetryConfig, S3Config

from edgeproxy import __version__
from edgeproxy.errors import not_found, origin_error, timed_out, too_large
from edgeproxy.origins.base import Original
from edgeproxy.url.keys import is_safe_key

_log = logging.getLogger("edgeproxy.origins.s3")

#: S3 bucket naming rules: 3-63 of a-z 0-9 . -, starting and ending alphanumeric, no "..", not an IP.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")
#: What obstore returns in ``GetResult.attributes`` besides user metadata (x-amz-meta-*).
_STANDARD_ATTRIBUTES = frozenset(
    {"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Type", "Cache-Control", "Storage-Class"}
)
#: The S3 error code in an error body (obstore's messages quote the body).
_CODE = re.compile(r"<Code>([A-Za-z0-9.]{1,64})</Code>")
#: The OS or hyper reason in obstore's debug text, e.g. "Connection refused".
_REASON = re.compile(r'message: "([^"]{1,120})"')
#: Bytes gathered from the connection before each chunk reaches Python.
CHUNK_BYTES = 256 * 1024
#: Object probed by ``ready()`` under the prefix; its absence (NoSuchKey) proves the bucket answers.
READY_PROBE = ".edgeproxy-ready"


def parse_location(location: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix without leading or trailing ``/``, may be empty).

    Raises:
        ValueError: not ``s3://``, a bucket name outside S3's rules, or a prefix with an empty,
            ``.`` or ``..`` segment, a backslash or NUL.
    """
    if not location.startswith("s3://"):
        raise ValueError(f"{location!r} is not an s3:// location")
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_LIKE.fullmatch(bucket):
        raise ValueError(
            f"{location!r}: {bucket!r} is not a valid S3 bucket name "
            "(3-63 of a-z 0-9 . -, starting and ending with a letter or digit)"
        )
    prefix = prefix.rstrip("/")
    if prefix and not is_safe_key(prefix):
        raise ValueError(f"{location!r}: the prefix has an empty, '.' or '..' segment, a backslash or NUL")
    return bucket, prefix


@dataclass(frozen=True)
class S3Options:
    """How S3 origins connect: ``None`` values fall back to the standard AWS variables
    (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``...) and then to web identity, ECS or EC2 instance credentials."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    virtual_hosted_style: bool = False
    connect_timeout: float = 3.0


class S3Origin:
    """Originals from the objects under ``prefix/`` in ``bucket``.

    - A key with an empty, ``.`` or ``..`` segment, a backslash or NUL is a 404 without a request
      (``is_safe_key``); any other key is looked up as ``prefix/key``, never outside the prefix.
    - The declared size (``Content-Length``) over ``max_bytes`` is a 413 before the body is read;
      the body is streamed and cut at ``max_bytes`` whatever was declared.
    - ``timeout`` seconds bound the whole fetch (retries included): 504 past it.
    - ``NoSuchKey`` → 404. A missing bucket, refused credentials (403/401), an unreachable
      endpoint or an S3 5xx → 502, logged (logger ``edgeproxy.origins.s3``) with the origin, the
      bucket, the endpoint and the S3 error code or connection failure; never the credentials.
    - ``etag`` and ``stamp`` are the object's ETag as S3 sent it (quotes included);
      ``last_modified`` an HTTP date; ``metadata`` the ``x-amz-meta-*`` user metadata, names
      lower-case without the prefix.
    - Given ``cached``, the object is revalidated with a HEAD-style request (obstore
      ``GetOptions(head=True)``: the attributes, no body), not with ``If-None-Match``: a verdict
      changed in place (``copy_object`` onto itself with ``MetadataDirective=REPLACE``) keeps the
      bytes and so the ETag, and S3 would answer a conditional GET 304 without the new metadata.
      The same ETag, LastModified and user metadata return ``cached`` itself; the same ETag with
      another LastModified or metadata returns a copy of ``cached`` with them (the bytes are not
      fetched again); another ETag (or a HEAD 404, whose empty body cannot tell a missing key
      from a missing bucket) fetches the object with a GET.
    """

    remote = True
    sidecars = False

    def __init__(
        self, name: str, location: str, options: S3Options | None = None, *, max_bytes: int, timeout: float = 10.0
    ):
        options = options or S3Options()
        self.name = name
        self.bucket, self.prefix = parse_location(location)
        self.endpoint = options.endpoint_url or "from AWS_ENDPOINT_URL or AWS"
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._secrets = secret_values(options)
        self.store = s3_store(self.bucket, self.prefix, options, timeout=timeout)

    async def fetch(self, key: str, cached: Original | None = None) -> Original:
        if not is_safe_key(key):
            raise not_found()
        try:
            async with asyncio.timeout(self.timeout):
                if cached is not None and isinstance(cached.stamp, str):
                    current = await self._revalidate(key, cached)
                    if current is not None:
                        return current
                return await self._fetch(key)
        except TimeoutError:
            self._warn(key, f"timed out after {self.timeout:g} s", None)
            raise timed_out("origin timed out") from None
        except FileNotFoundError as exc:
            if error_code(exc) == "NoSuchBucket":
                self._warn(key, "the bucket does not exist", exc)
                raise origin_error("origin bucket not found") from None
            raise not_found() from None
        except ValueError:  # a key obstore cannot express as a path (control characters)
            raise not_found() from None
        except (PermissionDeniedError, UnauthenticatedError) as exc:
            self._warn(key, "access refused: check the credentials and the bucket policy", exc)
            raise origin_error("origin refused access") from None
        except BaseError as exc:
            if "TimedOut" in str(exc):
                self._warn(key, "timed out", exc)
                raise timed_out("origin timed out") from None
            if error_code(exc) is None:
                self._warn(key, "connection failed", exc)
                raise origin_error("origin connection failed") from None
            self._warn(key, "S3 answered an error", exc)
            raise origin_error("origin answered an error") from None

    async def _revalidate(self, key: str, cached: Original) -> Original | None:
        """``cached`` (itself, or with the current LastModified and user metadata) when the object
        still has its ETag, from a HEAD-style request; None when the body must be fetched (another
        ETag, or a 404 that only a GET can tell from a missing bucket)."""
        try:
            result = await obstore.get_async(self.store, key, options={"head": True})
        except FileNotFoundError:
            return None
        meta = result.meta
        if meta.get("e_tag") != cached.stamp:
            return None
        last_modified = _http_date(meta.get("last_modified"))
        metadata = _user_metadata(result.attributes)
        if last_modified == cached.last_modified and metadata == cached.metadata:
            return cached
        return dataclasses.replace(cached, last_modified=last_modified, metadata=MappingProxyType(metadata))

    async def _fetch(self, key: str) -> Original:
        result = await obstore.get_async(self.store, key)
        meta = result.meta
        if meta["size"] > self.max_bytes:
            raise too_large(f"the original is over the limit of {self.max_bytes} bytes")
        chunks, size = [], 0
        async for chunk in result.stream(min_chunk_size=min(CHUNK_BYTES, self.max_bytes + 1)):
            size += len(chunk)
            if size > self.max_bytes:
                raise too_large(f"the original is over the limit of {self.max_bytes} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
        stamp = meta.get("e_tag")
        etag = stamp or hashlib.blake2b(data, digest_size=16).hexdigest()
        return Original(
            data,
            etag,
            _http_date(meta.get("last_modified")),
            stamp=stamp,
            metadata=MappingProxyType(_user_metadata(result.attributes)),
        )

    def unchanged(self, key: str, cached: Original) -> None:
        return None  # only a conditional request can tell

    async def ready(self) -> bool:
        """The bucket answers with these credentials: a GET of a probe object gives the object,
        ``NoSuchKey``, or ``AccessDenied`` (allowed to read objects but not to learn that one is
        missing, without ``s3:ListBucket``). A missing bucket, refused credentials, an unreachable
        endpoint or 2 s without an answer is not ready."""
        try:
            async with asyncio.timeout(2.0):
                await obstore.get_async(self.store, READY_PROBE, options={"range": (0, 1)})
            return True
        except FileNotFoundError as exc:
            return error_code(exc) != "NoSuchBucket"
        except (PermissionDeniedError, UnauthenticatedError) as exc:
            return error_code(exc) == "AccessDenied"
        except (TimeoutError, BaseError, ValueError):
            return False

    async def aclose(self) -> None:
        return None  # obstore's connection pool goes with the store

    def _warn(self, key: str, what: str, exc: BaseException | None) -> None:
        _log.warning(
            "S3 origin %r (bucket %r, endpoint %s): %s%s",
            self.name,
            self.bucket,
            self.endpoint,
            what,
            f": {self._describe(exc)}" if exc is not None else "",
            extra={"fields": {"origin": self.name, "key": key[:256]}},
        )

    def _describe(self, exc: BaseException) -> str:
        return describe_error(exc, self._secrets)


def secret_values(options: S3Options) -> tuple[str, ...]:
    """The secret values of ``options`` (the secret key, the session token), to redact from logs."""
    return tuple(s for s in (options.secret_access_key, options.session_token) if s)


def s3_store(bucket: str, prefix: str, options: S3Options, *, timeout: float) -> S3Store:
    """An obstore ``S3Store`` of ``bucket`` under ``prefix`` (may be empty) connecting as ``options``
    say, with at most 2 retries within ``timeout`` seconds (the caller bounds each operation with its
    own deadline; the client's timeout, a second later, frees a connection that outlived it)."""
    # Unset (empty) options are left out, so obstore reads them from AWS_* variables or AWS itself.
    config: S3Config = {"virtual_hosted_style_request": options.virtual_hosted_style}
    if options.endpoint_url:
        config["endpoint"] = options.endpoint_url
    if options.region:
        config["region"] = options.region
    if options.access_key_id:
        config["access_key_id"] = options.access_key_id
    if options.secret_access_key:
        config["secret_access_key"] = options.secret_access_key
    if options.session_token:
        config["session_token"] = options.session_token
    client: ClientConfig = {
        # The deadline is the caller's (asyncio); the client's own timeout, a little later, only
        # frees a connection that outlived a cancelled operation.
        "timeout": timedelta(seconds=timeout + 1),
        "connect_timeout": timedelta(seconds=options.connect_timeout),
        "user_agent": f"edgeproxy/{__version__}",
        # Lets an http:// endpoint (a local MinIO or moto) be used, from the setting or from
        # AWS_ENDPOINT_URL: passing client options at all makes obstore skip AWS_ALLOW_HTTP.
        # AWS's own endpoints are https:// whatever this says.
        "allow_http": True,
    }
    retry: RetryConfig = {
        "max_retries": 2,
        "retry_timeout": timedelta(seconds=timeout),
        "backoff": {"init_backoff": timedelta(milliseconds=50), "max_backoff": timedelta(seconds=1), "base": 2},
    }
    return S3Store(bucket, prefix=prefix or None, config=config, client_options=client, retry_config=retry)


def describe_error(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """The S3 error code or the connection failure, from obstore's message (its first line and
    the OS reason): never credentials (``secrets`` are redacted should a message ever carry them)."""
    text = str(exc)
    detail = text.split("\n", 1)[0].split(": <?xml", 1)[0][:300]
    code, reason = error_code(exc), _REASON.search(text)
    if code:
        detail += f" [{code}]"
    elif reason:
        detail += f" ({reason.group(1)})"
    for secret in secrets:
        detail = detail.replace(secret, "***")
    return detail


def _http_date(moment: datetime | None) -> str | None:
    """An HTTP date (RFC 9110 §5.6.7) of ``moment``, or None."""
    return format_datetime(moment, usegmt=True) if moment else None


def _user_metadata(attributes: Mapping[str, Any]) -> dict[str, str]:
    """The ``x-amz-meta-*`` user metadata among obstore's attributes: names lower-case, without the prefix."""
    return {k.lower(): v for k, v in attributes.items() if k not in _STANDARD_ATTRIBUTES}


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchKey``, ``SignatureDoesNotMatch``...) quoted in obstore's message."""
    match = _CODE.search(str(exc))
    return match.group(1) if match else None
