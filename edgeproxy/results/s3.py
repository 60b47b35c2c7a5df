"""A result store in an S3 bucket under a prefix (``s3://bucket/prefix``), shared by every pod and
region that points at it, through obstore with the same client options as S3 origins
(``origins.s3.s3_store``: endpoint, region, keys, virtual-hosted style; ``S3Options``).

Layout under the prefix (names are SHA-256 hex digits, ``store.hashed``)::

    objects/<sha256(name)>              a result: its body, Content-Type, and user metadata
                                        x-amz-meta-size (bytes), x-amz-meta-sha256, x-amz-meta-name
    keys/<sha256(key)>/<sha256(name)>   an empty marker per surrogate key of a result

``get`` checks the size and SHA-256 of the body against the metadata (and the name): a mismatch
is a miss, and the object is deleted and counted as corrupt. A PUT is atomic (single request, no
multipart upload); S3 has been strongly consistent for PUT, DELETE and LIST since December 2020
(MinIO is too), which the purge ordering relies on.

``put`` writes the markers, then the object, then checks its markers are still there (else
deletes the object); ``purge`` lists the key's markers, deletes them, then their objects. So a
purge that listed a marker deletes the result whatever a concurrent ``put`` does; a purge leaves
the markers of the result's *other* keys (they name a missing object: a later purge of them
deletes nothing and counts them; the lifecycle rule expires them).

Nothing here bounds the bucket's size: set a lifecycle rule that expires the prefix, e.g. after
30 days (a result used after that is rendered again and stored anew; markers expire with it)::

    aws s3api put-bucket-lifecycle-configuration --bucket BUCKET --lifecycle-configuration '{
      "Rules": [{"ID": "edgeproxy-results", "Status": "Enabled", "Filter": {"Prefix": "PREFIX/"},
                 "Expiration": {"Days": 30},
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}'

Failures (an unreachable endpoint, refused credentials, a missing bucket, ``timeout`` seconds
without an answer) are logged (logger ``edgeproxy.results``, never the credentials) and counted in
``StoreStats.errors``: ``get`` answers a miss, ``put`` skips, ``purge`` raises ``ResultStoreError``.
The credentials need s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on the prefix.
"""

from __future__ import annotations

import asyncio
import logging

import obstore
from obstore.exceptions import BaseError

from edgeproxy.origins.s3 import S3Options, describe_error, error_code, parse_location, s3_store, secret_values
from edgeproxy.results.store import ResultStoreError, Stored, StoreStats, check_name, check_put, digest, hashed, is_mime

_log = logging.getLogger("edgeproxy.results")
#: Markers listed per request, and objects deleted per DeleteObjects request (S3's maximum).
PAGE = 1000


class S3ResultStore:
    """Results as objects under ``prefix/`` in ``bucket`` (``location`` is ``s3://bucket/prefix``),
    connecting as ``options`` say (None: the AWS environment variables and instance credentials),
    each S3 request bounded by ``timeout`` seconds; see the module docstring for the layout, the
    lifecycle rule to set and the failure behaviour.

    Raises:
        ValueError: a malformed location (``origins.s3.parse_location``).
    """

    def __init__(self, location: str, options: S3Options | None = None, *, timeout: float = 5.0) -> None:
        options = options or S3Options()
        self.bucket, self.prefix = parse_location(location)
        self.endpoint = options.endpoint_url or "from AWS_ENDPOINT_URL or AWS"
        self.timeout = timeout
        self.stats = StoreStats()
        self._secrets = secret_values(options)
        self.store = s3_store(self.bucket, self.prefix, options, timeout=timeout)

    async def get(self, name: str) -> Stored | None:
        check_name(name)
        path = f"objects/{hashed(name)}"
        try:
            async with asyncio.timeout(self.timeout):
                result = await obstore.get_async(self.store, path)
                body = bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            if error_code(exc) == "NoSuchBucket":
                self._fail("get", exc)
            self.stats.misses += 1
            return None
        except (TimeoutError, BaseError, ValueError) as exc:
            self._fail("get", exc)
            self.stats.misses += 1
            return None
        metadata = {key.lower(): value for key, value in result.attributes.items()}
        valid = (
            metadata.get("name") == name
            and metadata.get("size") == str(len(body))
            and metadata.get("sha256") == await asyncio.to_thread(digest, body)
            and is_mime(metadata.get("content-type"))
        )
        if not valid:
            _log.warning("result store s3://%s/%s: %s is corrupt or partial: deleted", self.bucket, self.prefix, path)
            self.stats.corrupt += 1
            self.stats.misses += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await obstore.delete_async(self.store, path)
            except (TimeoutError, BaseError) as exc:
                self._fail("delete a corrupt result", exc)
            return None
        self.stats.hits += 1
        return Stored(body, metadata["content-type"])

    async def put(self, name: str, body: bytes, *, mime: str, surrogate_keys: tuple[str, ...]) -> None:
        check_put(name, mime, surrogate_keys)
        oid = hashed(name)
        path = f"objects/{oid}"
        markers = [f"keys/{hashed(key)}/{oid}" for key in surrogate_keys]
        sha256 = await asyncio.to_thread(digest, body)
        attributes = {"Content-Type": mime, "size": str(len(body)), "sha256": sha256, "name": name}
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(*(obstore.put_async(self.store, m, b"", use_multipart=False) for m in markers))
            async with asyncio.timeout(self.timeout):
                await obstore.put_async(self.store, path, body, attributes=attributes, use_multipart=False)
            async with asyncio.timeout(self.timeout):
                heads = await asyncio.gather(
                    *(obstore.head_async(self.store, m) for m in markers), return_exceptions=True
                )
            failed = [head for head in heads if isinstance(head, BaseException)]
            if failed:  # a marker purged while the object was written (FileNotFoundError), or unknown
                async with asyncio.timeout(self.timeout):
                    await obstore.delete_async(self.store, path)
                unknown = [head for head in failed if not isinstance(head, FileNotFoundError)]
                if unknown:  # cannot tell whether a purge ran: not kept
                    self._fail("put (checking its markers)", unknown[0])
                self.stats.skipped += 1
                return
        except (TimeoutError, BaseError, ValueError) as exc:
            self._fail("put", exc)
            self.stats.skipped += 1
            return
        self.stats.writes += 1

    async def purge(self, surrogate_key: str) -> int:
        check_name(surrogate_key, "surrogate key")
        try:
            markers = await self._list(f"keys/{hashed(surrogate_key)}/")
            for batch in (markers, [f"objects/{marker.rsplit('/', 1)[1]}" for marker in markers]):
                for start in range(0, len(batch), PAGE):
                    async with asyncio.timeout(self.timeout):
                        await obstore.delete_async(self.store, batch[start : start + PAGE])
        except (TimeoutError, BaseError) as exc:
            self._fail("purge", exc)
            raise ResultStoreError(
                f"result store s3://{self.bucket}/{self.prefix}: purge failed: {self._describe(exc)}"
            ) from None
        self.stats.purged += len(markers)
        return len(markers)

    async def aclose(self) -> None:
        return None  # obstore's connection pool goes with the store

    async def _list(self, prefix: str) -> list[str]:
        """The paths (relative to the store's prefix) of every object under ``prefix``, each page
        of ``PAGE`` bounded by ``timeout`` seconds."""
        stream = obstore.list(self.store, prefix, chunk_size=PAGE)
        paths: list[str] = []
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                return paths
            paths.extend(meta["path"] for meta in chunk)

    def _fail(self, what: str, exc: BaseException) -> None:
        self.stats.errors += 1
        _log.warning(
            "result store s3://%s/%s (endpoint %s): %s failed: %s",
            self.bucket,
            self.prefix,
            self.endpoint,
            what,
            self._describe(exc),
        )

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        return describe_error(exc, self._secrets)
