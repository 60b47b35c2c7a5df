"""Human verdicts where each origin keeps them (``vision.moderation``): S3 object metadata
(``x-amz-meta-moderation``) or, for a local folder, the sidecar ``KEY.json``'s ``moderation`` member.

- S3 (``S3Verdicts``): read with HeadObject; written with CopyObject of the object onto itself,
  ``MetadataDirective=REPLACE`` with every other user metadata member and the content headers kept,
  ``CopySourceIfMatch`` the ETag just read, so a verdict never lands on an original replaced in
  between (then ``VerdictConflict``). The bytes, and so the ETag, stay the same. botocore: obstore,
  the origins' client, cannot set metadata on a copy.
- Local folders (``SidecarVerdicts``): read-modify-write of ``KEY.json`` (its other members, the
  provenance, are kept), written atomically (``origins.writer.LocalWriter``: a temporary file
  renamed over it), one write at a time per process. A sidecar that exists but cannot be parsed is
  not overwritten (``VerdictConflict``): it may hold provenance a person has to repair.

HTTP origins are read-only: they have no verdict store, and the review page does not list them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from edgeproxy.origins.base import Origin
from edgeproxy.origins.local import LocalOrigin
from edgeproxy.origins.s3 import S3Options, S3Origin
from edgeproxy.origins.writer import LocalWriter
from edgeproxy.url.keys import is_safe_key
from edgeproxy.vision.moderation import VERDICT_FIELD, parse_sidecar

#: Human verdicts the review page writes, by button: Approve, Block, Blur.
WRITTEN = {"approve": "approved", "block": "rejected", "blur": "blurred"}
#: Human verdicts that settle an original (it leaves the review queue).
SETTLED = frozenset(WRITTEN.values())
#: Largest sidecar read back before a verdict is written into it (bytes).
SIDECAR_MAX_BYTES = 65_536
#: Content headers kept when an S3 object's metadata is replaced (HeadObject name = CopyObject name).
_KEPT_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")


class VerdictConflict(Exception):
    """A verdict could not be written safely: the original changed meanwhile, or its sidecar is
    unreadable (the message says which)."""


class VerdictUnavailable(Exception):
    """The origin could not be read or written (S3 refused or failed, a disk error): the message
    says why, never a credential."""


class VerdictStore(Protocol):
    """An origin's human verdicts, by original key."""

    async def read(self, key: str) -> str | None:
        """The human verdict of ``key`` as stored (lower-cased), or None."""
        ...

    async def write(self, key: str, verdict: str) -> str | None:
        """Store ``verdict`` for ``key``; the previous verdict, or None.

        Raises:
            VerdictConflict: see the module docstring. FileNotFoundError: no such original.
            VerdictUnavailable: the origin failed.
        """
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...


def _verdict(value: object) -> str | None:
    return str(value).strip().lower() if value is not None else None


class SidecarVerdicts:
    """Verdicts in the sidecars ``KEY.json`` of the local origin at ``writer.root``."""

    def __init__(self, writer: LocalWriter):
        self.writer = writer
        self._lock = asyncio.Lock()

    def _exists(self, key: str) -> bool:
        """Whether the original ``key`` is a file inside the origin's folder (never read whole).

        Raises:
            ValueError: an unsafe key.
        """
        if not is_safe_key(key):
            raise ValueError(f"unsafe key {key!r}")
        path = (self.writer.root / key).resolve()
        return path.is_relative_to(self.writer.root) and path.is_file()

    async def _values(self, key: str) -> dict[str, Any] | None:
        data = await self.writer.get(key + ".json")
        if data is None:
            return None
        metadata = parse_sidecar(data, SIDECAR_MAX_BYTES, name=key + ".json")
        if metadata.error is not None:
            raise VerdictConflict(f"the sidecar of {key!r} is unusable: {metadata.error}")
        return dict(metadata.values)

    async def read(self, key: str) -> str | None:
        try:
            values = await self._values(key)
        except VerdictConflict:
            return "unreadable"  # not a settled verdict: the original stays listed
        return _verdict(values.get(VERDICT_FIELD)) if values else None

    async def write(self, key: str, verdict: str) -> str | None:
        async with self._lock:
            if not await asyncio.to_thread(self._exists, key):
                raise FileNotFoundError(key)
            values = await self._values(key) or {}
            previous = _verdict(values.get(VERDICT_FIELD))
            values[VERDICT_FIELD] = verdict
            body = json.dumps(values, ensure_ascii=False, indent=2).encode() + b"\n"
            try:
                await self.writer.put(key + ".json", body)
            except OSError as exc:
                raise VerdictUnavailable(f"the sidecar could not be written: {exc.strerror or exc}") from None
            return previous

    def close(self) -> None:
        pass


class S3Verdicts:
    """Verdicts in the user metadata of the objects of an S3 origin (bucket, prefix), through a
    botocore client made from ``options`` (the origins' own endpoint and credentials)."""

    def __init__(self, origin: S3Origin, options: S3Options, timeout: float):
        import botocore.config
        import botocore.session

        self.bucket, self.prefix = origin.bucket, origin.prefix
        session = botocore.session.get_session()
        self.client = session.create_client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=options.region or "us-east-1",
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            aws_session_token=options.session_token,
            config=botocore.config.Config(
                connect_timeout=options.connect_timeout,
                read_timeout=timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "virtual" if options.virtual_hosted_style else "path"},
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    async def read(self, key: str) -> str | None:
        head = await asyncio.to_thread(self._head, key)
        return _verdict((head or {}).get("Metadata", {}).get(VERDICT_FIELD))

    def _write(self, key: str, verdict: str) -> str | None:
        from botocore.exceptions import ClientError

        head = self._head(key)
        if head is None:
            raise FileNotFoundError(key)
        metadata = dict(head.get("Metadata", {}))
        previous = _verdict(metadata.get(VERDICT_FIELD))
        metadata[VERDICT_FIELD] = verdict
        kept = {name: head[name] for name in _KEPT_HEADERS if head.get(name)}
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self._key(key),
                CopySource={"Bucket": self.bucket, "Key": self._key(key)},
                CopySourceIfMatch=head["ETag"],
                MetadataDirective="REPLACE",
                Metadata=metadata,
                **kept,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise VerdictConflict(f"{key!r} was replaced while its verdict was written: review it again") from None
            raise
        return previous

    async def write(self, key: str, verdict: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(self._write, key, verdict)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise VerdictUnavailable(f"S3 refused the verdict's copy: {code}") from None
        except BotoCoreError as exc:
            raise VerdictUnavailable(f"S3 could not be reached: {type(exc).__name__}") from None

    def close(self) -> None:
        self.client.close()


def verdict_store(origin: Origin, options: S3Options, timeout: float) -> VerdictStore | None:
    """Where ``origin`` keeps its human verdicts: S3 metadata, local sidecars; None for HTTP origins."""
    if isinstance(origin, S3Origin):
        return S3Verdicts(origin, options, timeout)
    if isinstance(origin, LocalOrigin):
        return SidecarVerdicts(LocalWriter(origin.root))
    return None
