"""The review queue: the originals a person should look at, from the analysis objects stored beside
them (``ingest.record``).

An original is listed when its analysis object (``KEY.analysis.json``, listed in every origin that
has a writer: ``origins.writer.writer_for``) says it is ambiguous (an nsfw score at or above
``moderation_blur_threshold`` and below ``moderation_block_threshold``) or pending (the record's
verdict is ``pending``, or it has no score), and no human verdict has settled it (``approved``,
``rejected``, ``blurred``: ``verdicts.SETTLED``). Newest upload first.

A listing lists each origin's analysis objects with a stamp of their version (S3: the ETag from the
LIST answer; local folders: the file's mtime and size), reads only those that are new or changed
since the last listing (the others' parsed records are kept), then reads the verdict of each
original that needs review (a HEAD, or its sidecar): so its cost grows with the uploads and the
backlog, not with every analysis object ever stored. It is reused for ``review_cache_seconds``
(computed once for concurrent callers), and bounded by ``review_max_items`` analysis objects per
origin (the last keys in sorted order). An analysis
object that cannot be read or parsed, or that names another key than its own (copied or moved), is
skipped with a warning (logger ``edgeproxy.review``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edgeproxy.ingest.record import ANALYSIS_SUFFIX, AnalysisRecord
from edgeproxy.origins.writer import LocalWriter, S3Writer, Writer
from edgeproxy.review.verdicts import SETTLED, VerdictStore
from edgeproxy.vision.moderation import Decision, Metadata, Policy, decide

_log = logging.getLogger("edgeproxy.review")
#: Analysis objects and verdicts read at once during a listing.
CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Item:
    """One original waiting for review: its ``record``, its human verdict as stored (``human``:
    None, ``pending`` or anything unsettled) and the ``decision`` moderation takes today."""

    origin: str
    record: AnalysisRecord
    human: str | None
    decision: Decision

    @property
    def key(self) -> str:
        return self.record.key


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing made at ``made`` (Unix seconds): ``items``, newest upload first."""

    items: tuple[Item, ...]
    made: float

    def oldest_seconds(self, now: float) -> float:
        """Seconds since the oldest listed original was uploaded (0 when none is)."""
        return max((now - item.record.uploaded_at for item in self.items), default=0.0)


def _local_stamps(root: Path, suffix: str) -> dict[str, str]:
    found = {}
    for path in root.rglob("*" + suffix):
        if path.name.startswith(".edgeproxy-"):
            continue
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile
            continue
        if path.is_file():
            found[path.relative_to(root).as_posix()] = f"{stat.st_mtime_ns}-{stat.st_size}"
    return found


async def stamps(writer: Writer, suffix: str) -> dict[str, str]:
    """Every key of ``writer`` ending in ``suffix`` with a stamp that changes when the object does
    (S3: its ETag; local: mtime in ns and size; another writer: empty, so always read again)."""
    if isinstance(writer, S3Writer):
        import obstore

        found: dict[str, str] = {}
        async for batch in obstore.list(writer.store, chunk_size=1000):
            found.update({meta["path"]: str(meta.get("e_tag")) for meta in batch if meta["path"].endswith(suffix)})
        return found
    if isinstance(writer, LocalWriter):
        return await asyncio.to_thread(_local_stamps, writer.root, suffix)
    return dict.fromkeys(await writer.keys(suffix), "")


def needs_review(record: AnalysisRecord, policy: Policy) -> bool:
    """Whether ``record`` is ambiguous (blur threshold <= score < block threshold) or pending."""
    if record.nsfw is None or record.verdict == "pending":
        return True
    return policy.blur_threshold <= record.nsfw < policy.block_threshold


class ReviewQueue:
    """The queue over ``sources`` (origin name -> (writer of its analysis objects, its verdicts)),
    judged by ``policy``; a listing is reused ``ttl`` seconds; ``clock`` gives Unix seconds."""

    def __init__(
        self,
        sources: Mapping[str, tuple[Writer, VerdictStore]],
        policy: Policy,
        *,
        ttl: float,
        max_items: int,
        record_key: bytes,
        clock: Callable[[], float] = time.time,
    ):
        self.sources = dict(sources)
        self.policy = policy
        self.ttl = ttl
        self.max_items = max_items
        self.record_key = record_key  # analysis objects not written by this deployment are unusable
        self.clock = clock
        self._listing: Listing | None = None
        #: (origin, analysis object key) -> (its stamp, its record or None when unusable): reused
        #: while the stamp stays the same.
        self._records: dict[tuple[str, str], tuple[str, AnalysisRecord | None]] = {}
        self._lock = asyncio.Lock()
        self._gate = asyncio.Semaphore(CONCURRENCY)

    @property
    def last(self) -> Listing | None:
        """The last listing made, if any (for the metrics: no I/O)."""
        return self._listing

    def forget(self) -> None:
        """Drop the reused listing (after a verdict: the next listing is made afresh)."""
        self._listing = None

    async def listing(self) -> Listing:
        """The current listing (reused while younger than ``ttl``)."""
        async with self._lock:
            current = self._listing
            if current is None or self.clock() - current.made >= self.ttl:
                current = self._listing = await self._scan()
            return current

    async def _record(self, origin: str, writer: Writer, name: str, stamp: str) -> AnalysisRecord | None:
        cached = self._records.get((origin, name))
        if cached is not None and stamp and cached[0] == stamp:
            return cached[1]
        record = None
        try:
            data = await writer.get(name)
            if data is not None:
                record = AnalysisRecord.from_json(data, self.record_key)
        except Exception as exc:  # an unreadable object must not hide the others
            _log.warning(
                "unusable analysis object", extra={"fields": {"origin": origin, "key": name, "error": str(exc)}}
            )
        self._records[(origin, name)] = (stamp, record)
        return record

    async def _item(self, origin: str, writer: Writer, verdicts: VerdictStore, name: str, stamp: str) -> Item | None:
        async with self._gate:
            record = await self._record(origin, writer, name, stamp)
            if record is None:
                return None
            if record.key != name.removesuffix(ANALYSIS_SUFFIX):  # copied or moved: not this original's
                _log.warning(
                    "analysis object of another key",
                    extra={"fields": {"origin": origin, "key": name, "record_key": record.key}},
                )
                return None
            if not needs_review(record, self.policy):
                return None
            try:
                human = await verdicts.read(record.key)
            except Exception as exc:  # listed: a verdict that cannot be read is not a settled one
                _log.warning(
                    "verdict unreadable", extra={"fields": {"origin": origin, "key": record.key, "error": str(exc)}}
                )
                human = None
            if human in SETTLED:
                return None
            values = {"moderation": human} if human is not None else {}
            decision = decide(Metadata(values), record.nsfw, self.policy)
            return Item(origin, record, human, decision)

    async def _scan(self) -> Listing:
        made = self.clock()
        jobs = []
        seen: set[tuple[str, str]] = set()
        for origin, (writer, verdicts) in self.sources.items():
            stamped = await stamps(writer, ANALYSIS_SUFFIX)
            names = sorted(stamped)[-self.max_items :]
            seen.update((origin, name) for name in names)
            jobs += [self._item(origin, writer, verdicts, name, stamped[name]) for name in names]
        found = [item for item in await asyncio.gather(*jobs) if item is not None]
        for gone in set(self._records) - seen:  # deleted, or past review_max_items
            del self._records[gone]
        found.sort(key=lambda item: (-item.record.uploaded_at, item.origin, item.key))
        return Listing(tuple(found), made)
