"""Result storage shared across workers and pods (issue 26, deliver 4), against real components: a
folder shared by several worker *processes* (spawned), and a real S3-compatible server on 127.0.0.1
(moto's server mode in its own process, ``testkit.moto``).

What a user relies on: a stored derivative comes back byte for byte with its type, from any
worker or pod; a corrupt or partial object is never served (a miss, deleted, counted); a purge of
an original's surrogate key deletes exactly the results tagged with it, whichever process stored
them; the folder stays within its size bound, evicting the least recently used first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import obstore
import pytest

from edgeproxy.origins.s3 import S3Options
from edgeproxy.results import ResultStore, ResultStoreError, Stored, from_location
from edgeproxy.results import local as local_module
from edgeproxy.results.index import RACY_NS
from edgeproxy.results.local import LocalResultStore
from edgeproxy.results.s3 import S3ResultStore
from edgeproxy.results.store import hashed
from testkit.images import decode
from testkit.logs import warnings_of
from testkit.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, moto_s3
from testkit.net import free_port

BUCKET = "edgeproxy-results"
PREFIX = "derivatives"
WORKERS = 4
PER_WORKER = 24
RESULTS_LOGGER = "edgeproxy.results"


def body_of(name: str) -> bytes:
    """Deterministic bytes for ``name``, 1-12 KiB, so any process can tell a right body from a wrong one."""
    rng = random.Random(name)
    return rng.randbytes(rng.randint(1024, 12 * 1024))


def keys_of(worker: int, index: int) -> tuple[str, ...]:
    """Each result is tagged with its worker's key; every sixth also with a key shared by all workers."""
    return (f"kw{worker}", "kshared") if index % 6 == 0 else (f"kw{worker}",)


def names_of(worker: int) -> list[str]:
    return [f'W/"w{worker}-{index}"' for index in range(PER_WORKER)]


def files_of(folder: Path) -> list[Path]:
    return [path for path in (folder / "objects").rglob("*") if path.is_file()]


def stored_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in files_of(folder))


# Worker processes (spawned: each has its own LocalResultStore and LRU index over the same folder).


def write_while_reading(folder: str, worker: int, max_bytes: int) -> tuple[int, int, int]:
    """Store this worker's results while reading every worker's; (results read, wrong bodies, corrupt)."""

    async def run() -> tuple[int, int, int]:
        store = LocalResultStore(folder, max_bytes=max_bytes)
        read = wrong = 0
        others = [name for other in range(WORKERS) for name in names_of(other)]
        for index, name in enumerate(names_of(worker)):
            await store.put(name, body_of(name), mime="image/avif", surrogate_keys=keys_of(worker, index))
            for other in others[index::PER_WORKER]:
                stored = await store.get(other)
                if stored is not None:
                    read += 1
                    wrong += stored.body != body_of(other) or stored.mime != "image/avif"
        return read, wrong, store.stats.corrupt

    return asyncio.run(run())


def read_all(folder: str) -> dict[str, bool]:
    """Which of every worker's results this process finds (asserting each found body is right)."""

    async def run() -> dict[str, bool]:
        store = LocalResultStore(folder, max_bytes=1 << 30)
        found = {}
        for name in [name for worker in range(WORKERS) for name in names_of(worker)]:
            stored = await store.get(name)
            assert stored is None or stored == Stored(body_of(name), "image/avif"), name
            found[name] = stored is not None
        return found

    return asyncio.run(run())


def purge(folder: str, key: str) -> int:
    return asyncio.run(LocalResultStore(folder, max_bytes=1 << 30).purge(key))


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn")) as executor:
        yield executor


# S3.


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's AWS_* variables must not steer these tests."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with moto_s3(BUCKET) as server:
        yield server


def s3_options(url: str) -> S3Options:
    return S3Options(endpoint_url=url, region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)


def s3_keys(s3: MotoS3, prefix: str) -> list[str]:
    with contextlib.closing(s3.client()) as client:
        return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultStore]:
    """Each kind, empty: a folder, or a fresh prefix in the moto bucket."""
    if request.param == "local":
        yield from_location(str(tmp_path / "results"), max_bytes=1 << 20)
    else:
        server: MotoS3 = request.getfixturevalue("s3")
        prefix = f"{PREFIX}/{request.node.name.replace('[', '-').rstrip(']')}"
        yield from_location(f"s3://{BUCKET}/{prefix}", max_bytes=1 << 20, s3=s3_options(server.url))


# Both kinds.


def test_a_stored_derivative_comes_back_byte_for_byte(store: ResultStore, photos: Path) -> None:
    jpeg = (photos / "photo.jpg").read_bytes()

    async def run() -> None:
        assert await store.get('"a"') is None
        await store.put('"a"', jpeg, mime="image/jpeg", surrogate_keys=("k1",))
        stored = await store.get('"a"')
        assert stored == Stored(jpeg, "image/jpeg")
        image = decode(stored.body)
        assert (image.width, image.height) == (800, 533)
        await store.put('"a"', b"other bytes", mime="image/webp", surrogate_keys=("k1",))  # replaces it
        assert await store.get('"a"') == Stored(b"other bytes", "image/webp")
        assert await store.get('"b"') is None
        await store.aclose()

    asyncio.run(run())
    stats = store.stats
    assert (stats.hits, stats.misses, stats.writes, stats.corrupt, stats.errors) == (2, 2, 2, 0, 0)


def test_purge_deletes_exactly_the_results_tagged_with_the_key(store: ResultStore) -> None:
    tags = {'"a"': ("k1",), '"b"': ("k1", "k2"), '"c"': ("k2",), '"d"': (), '"e"': ("k3",)}

    async def present() -> set[str]:
        return {name for name in tags if await store.get(name) is not None}

    async def run() -> None:
        for name, keys in tags.items():
            await store.put(name, name.encode() * 100, mime="image/png", surrogate_keys=keys)
        assert await present() == set(tags)
        assert await store.purge("k1") == 2
        assert await present() == {'"c"', '"d"', '"e"'}
        assert await store.purge("k1") == 0
        assert await store.purge("unknown") == 0
        # "b" went with k1; k2 leaves "c". The local store counts files deleted (1), the S3 store
        # the markers it found ("b"'s k2 marker, whose object is gone, and "c"'s: 2).
        assert await store.purge("k2") == (1 if isinstance(store, LocalResultStore) else 2)
        assert await present() == {'"d"', '"e"'}
        assert await store.get('"e"') == Stored(b'"e"' * 100, "image/png")

    asyncio.run(run())


def test_names_keys_and_types_are_checked(store: ResultStore) -> None:
    async def run() -> None:
        for name in ("", "with space", "é", "x" * 257, "tab\there"):
            with pytest.raises(ValueError, match="printable ASCII"):
                await store.get(name)
        with pytest.raises(ValueError, match="surrogate key"):
            await store.put('"a"', b"x", mime="image/png", surrogate_keys=("bad key",))
        with pytest.raises(ValueError, match="at most 32"):
            await store.put('"a"', b"x", mime="image/png", surrogate_keys=tuple(f"k{i}" for i in range(33)))
        with pytest.raises(ValueError, match="mime"):
            await store.put('"a"', b"x", mime="image/png; charset=x", surrogate_keys=())
        with pytest.raises(ValueError, match="surrogate key"):
            await store.purge("no/spaces allowed")

    asyncio.run(run())


def test_from_location() -> None:
    s3_store = from_location("s3://my-bucket/a/b/", max_bytes=1, s3=S3Options(region=REGION))
    assert isinstance(s3_store, S3ResultStore)
    assert (s3_store.bucket, s3_store.prefix) == ("my-bucket", "a/b")
    with pytest.raises(ValueError, match="not a valid S3 bucket name"):
        from_location("s3://Bad_Bucket/x", max_bytes=1)
    with pytest.raises(ValueError, match="max_bytes"):
        from_location("/tmp/never-created-edgeproxy-results", max_bytes=0)


# The local folder.


@pytest.mark.parametrize(
    "damage",
    ["truncated body", "flipped body byte", "flipped size digit", "cut inside the header", "another name's file"],
)
def test_a_corrupt_or_partial_file_is_a_miss_and_is_deleted(tmp_path: Path, damage: str) -> None:
    store = LocalResultStore(tmp_path, max_bytes=1 << 20)
    body = body_of("corrupt")
    asyncio.run(store.put('"a"', body, mime="image/jpeg", surrogate_keys=("k1",)))
    asyncio.run(store.put('"b"', body, mime="image/jpeg", surrogate_keys=("k1",)))
    path = tmp_path / "objects" / hashed('"a"')[:2] / hashed('"a"')
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    if damage == "truncated body":
        data = data[:-1]
    elif damage == "flipped body byte":
        at = header_end + len(body) // 2
        data = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
    elif damage == "flipped size digit":
        size = str(len(body)).encode()
        data = data.replace(b'"size":' + size, b'"size":' + str(len(body) + 1).encode())
    elif damage == "cut inside the header":
        data = data[: header_end // 2]
    else:
        other = tmp_path / "objects" / hashed('"b"')[:2] / hashed('"b"')
        data = other.read_bytes()  # right size and hash, but stored for "b"
    path.write_bytes(data)
    with warnings_of(RESULTS_LOGGER) as records:
        assert asyncio.run(store.get('"a"')) is None
    assert not path.exists()
    assert store.stats.corrupt == 1
    assert "corrupt or partial" in records[0].getMessage()
    assert asyncio.run(store.get('"b"')) == Stored(body, "image/jpeg")  # its neighbour is untouched


def test_lru_eviction_keeps_the_bound_and_evicts_the_least_recently_used(tmp_path: Path) -> None:
    """Six results of 4,000 bytes of body fit in 25,000 bytes of files (headers included), not seven."""
    bound = 25_000
    first, other = LocalResultStore(tmp_path, max_bytes=bound), LocalResultStore(tmp_path, max_bytes=bound)
    names = [f'"r{i}"' for i in range(12)]

    async def put(store: LocalResultStore, name: str) -> None:
        await store.put(name, name.encode().ljust(4000, b"."), mime="image/webp", surrogate_keys=("k",))
        assert stored_bytes(tmp_path) <= bound

    async def present() -> set[str]:
        return {name for name in names if (tmp_path / "objects" / hashed(name)[:2] / hashed(name)).exists()}

    async def run() -> None:
        for name in names[:6]:
            await put(first, name)
        assert await present() == set(names[:6])
        assert await first.get(names[0]) is not None  # r0 is now the most recently used
        # A pause past RACY_NS: the shards written so far are not scanned again, so below only the
        # mtime that the other process's read sets can tell the first process that r2 was used.
        time.sleep(RACY_NS / 1e9 + 0.05)
        await put(first, names[6])
        assert await present() == set(names[:7]) - {names[1]}  # r1, the least recently used, went
        # Another process (its own index) reads r2; the first one's next write keeps r2, evicts r3.
        assert await other.get(names[2]) is not None
        await put(first, names[7])
        assert await present() == {names[0], names[2], names[4], names[5], names[6], names[7]}
        # A process started now builds its index from the files' mtimes: r4, r5 are the oldest.
        fresh = LocalResultStore(tmp_path, max_bytes=21_000)
        await put(fresh, names[8])
        assert await present() == {names[0], names[2], names[6], names[7], names[8]}
        for name in names[9:]:
            await put(fresh, name)
        assert stored_bytes(tmp_path) <= 21_000
        assert fresh.stats.evictions == 2 + 3

    asyncio.run(run())
    assert first.stats.evictions == 2
    assert asyncio.run(first.purge("k")) == 5  # the evicted results' markers went with them
    assert list((tmp_path / "keys").iterdir()) == []


def test_a_result_larger_than_the_bound_is_not_stored(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path, max_bytes=10_000)
    asyncio.run(store.put('"big"', bytes(10_000), mime="image/png", surrogate_keys=("k",)))
    assert asyncio.run(store.get('"big"')) is None
    assert (store.stats.writes, store.stats.skipped, stored_bytes(tmp_path)) == (0, 1, 0)
    assert list((tmp_path / "keys").iterdir()) == []


def test_a_purge_during_a_put_deletes_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The purge runs between the put's marker and its file (the worst moment): the put must notice
    its marker is gone and delete its file, or the purged result would be served."""
    store = LocalResultStore(tmp_path, max_bytes=1 << 20)
    real_touch = local_module._touch

    def touch_then_purge(marker: Path) -> None:
        real_touch(marker)
        assert LocalResultStore(tmp_path, max_bytes=1 << 20)._purge(hashed("k")) == 0  # no file yet

    monkeypatch.setattr(local_module, "_touch", touch_then_purge)
    asyncio.run(store.put('"a"', b"bytes", mime="image/png", surrogate_keys=("k",)))
    assert asyncio.run(store.get('"a"')) is None
    assert files_of(tmp_path) == []
    assert store.stats.skipped == 1


def test_files_left_by_a_crash_while_writing_are_cleaned(tmp_path: Path) -> None:
    LocalResultStore(tmp_path, max_bytes=1000)
    old, recent = tmp_path / "tmp" / "old", tmp_path / "tmp" / "recent"
    old.write_bytes(b"partial")
    recent.write_bytes(b"being written")
    stamp = time.time() - local_module.TMP_MAX_AGE - 60
    os.utime(old, (stamp, stamp))
    LocalResultStore(tmp_path, max_bytes=1000)
    assert (old.exists(), recent.exists()) == (False, True)


def test_a_reader_never_sees_a_result_being_written(tmp_path: Path) -> None:
    """A 16 MiB result is written 6 times while another store on the folder reads it in a loop:
    every read is a miss (before the first write) or one of the whole bodies, never a part."""
    writer, reader = LocalResultStore(tmp_path, max_bytes=1 << 30), LocalResultStore(tmp_path, max_bytes=1 << 30)
    bodies = [bytes([i]) * (16 << 20) for i in range(6)]

    async def run() -> list[Stored | None]:
        seen: list[Stored | None] = []
        writing = asyncio.ensure_future(write())
        while not writing.done():
            seen.append(await reader.get('"big"'))
        await writing
        return seen

    async def write() -> None:
        for body in bodies:
            await writer.put('"big"', body, mime="image/png", surrogate_keys=())
            await asyncio.sleep(0)

    seen = asyncio.run(run())
    assert reader.stats.corrupt == 0
    assert all(stored is None or stored.body in bodies for stored in seen)
    assert reader.stats.hits > 0


def test_worker_processes_share_the_folder_and_a_purge_from_one_removes_what_others_stored(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    folder = str(tmp_path)
    outcomes = list(pool.map(write_while_reading, [folder] * WORKERS, range(WORKERS), [1 << 30] * WORKERS))
    assert sum(read for read, _, _ in outcomes) > 0  # they did read each other's results while writing
    assert [(wrong, corrupt) for _, wrong, corrupt in outcomes] == [(0, 0)] * WORKERS  # never a partial one
    everything = {name for worker in range(WORKERS) for name in names_of(worker)}
    for found in pool.map(read_all, [folder] * WORKERS):
        assert {name for name, present in found.items() if present} == everything
    # One process purges worker 0's key; another the key every worker tagged some results with.
    assert pool.submit(purge, folder, "kw0").result() == PER_WORKER
    assert pool.submit(purge, folder, "kshared").result() == (WORKERS - 1) * (PER_WORKER // 6)
    shared = {names_of(worker)[index] for worker in range(WORKERS) for index in range(0, PER_WORKER, 6)}
    expected = everything - set(names_of(0)) - shared
    for found in pool.map(read_all, [folder] * WORKERS):
        assert {name for name, present in found.items() if present} == expected
    assert len(files_of(tmp_path)) == len(expected)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_worker_processes_writing_together_keep_the_folder_within_its_bound(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    """Each process evicts by its own index; the bound holds for the files once the writes are done."""
    bound = 120_000  # about a fifth of what the four workers write
    folder = str(tmp_path)
    outcomes = list(pool.map(write_while_reading, [folder] * WORKERS, range(WORKERS), [bound] * WORKERS))
    assert [(wrong, corrupt) for _, wrong, corrupt in outcomes] == [(0, 0)] * WORKERS
    written = sum(len(body_of(name)) for worker in range(WORKERS) for name in names_of(worker))
    assert written > 4 * bound
    assert 0.5 * bound < stored_bytes(tmp_path) <= bound
    for found in pool.map(read_all, [folder]):
        assert 0 < sum(found.values()) < WORKERS * PER_WORKER


# S3.


def s3_store(s3: MotoS3, prefix: str) -> S3ResultStore:
    return S3ResultStore(f"s3://{BUCKET}/{prefix}", s3_options(s3.url), timeout=5.0)


def test_s3_layout_metadata_and_markers(s3: MotoS3) -> None:
    store = s3_store(s3, f"{PREFIX}/layout")
    body = body_of("layout")
    asyncio.run(store.put('W/"x"', body, mime="image/avif", surrogate_keys=("k1", "k2")))
    oid = hashed('W/"x"')
    assert sorted(s3_keys(s3, f"{PREFIX}/layout/")) == sorted(
        [f"{PREFIX}/layout/objects/{oid}"] + [f"{PREFIX}/layout/keys/{hashed(k)}/{oid}" for k in ("k1", "k2")]
    )
    with contextlib.closing(s3.client()) as client:
        head = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/layout/objects/{oid}")
    assert head["ContentType"] == "image/avif"
    assert head["Metadata"] == {"size": str(len(body)), "sha256": hashlib.sha256(body).hexdigest(), "name": 'W/"x"'}


@pytest.mark.parametrize("damage", ["wrong bytes of the same size", "truncated", "metadata lost"])
def test_a_corrupt_s3_object_is_a_miss_and_is_deleted(s3: MotoS3, damage: str) -> None:
    prefix = f"{PREFIX}/corrupt-{damage.replace(' ', '-')}"
    store = s3_store(s3, prefix)
    body = body_of("s3-corrupt")
    asyncio.run(store.put('"a"', body, mime="image/webp", surrogate_keys=("k",)))
    key = prefix + "/objects/" + hashed('"a"')
    with contextlib.closing(s3.client()) as client:
        head = client.head_object(Bucket=BUCKET, Key=key)
        if damage == "wrong bytes of the same size":
            replaced = body[:100] + bytes(b ^ 0xFF for b in body[100:110]) + body[110:]
        elif damage == "truncated":
            replaced = body[: len(body) // 2]
        else:
            replaced = body
        metadata = {} if damage == "metadata lost" else head["Metadata"]
        client.put_object(Bucket=BUCKET, Key=key, Body=replaced, Metadata=metadata, ContentType="image/webp")
    with warnings_of(RESULTS_LOGGER) as records:
        assert asyncio.run(store.get('"a"')) is None
    assert "corrupt or partial" in records[0].getMessage()
    assert key not in s3_keys(s3, prefix)
    assert (store.stats.corrupt, store.stats.misses) == (1, 1)


def test_s3_failures_are_misses_skips_and_purge_errors_without_credentials(tmp_path: Path) -> None:
    """Nothing listens on the endpoint: get misses, put skips (neither raises), purge raises; each
    failure is logged with the endpoint and never the secret key, and counted."""
    store = S3ResultStore(f"s3://{BUCKET}/x", s3_options(f"http://127.0.0.1:{free_port()}"), timeout=3.0)
    with warnings_of(RESULTS_LOGGER) as records:
        assert asyncio.run(store.get('"a"')) is None
        asyncio.run(store.put('"a"', b"x", mime="image/png", surrogate_keys=("k",)))
        with pytest.raises(ResultStoreError, match="purge failed"):
            asyncio.run(store.purge("k"))
    assert (store.stats.errors, store.stats.misses, store.stats.skipped, store.stats.writes) == (3, 1, 1, 0)
    text = "\n".join(record.getMessage() for record in records)
    assert len(records) == 3 and "127.0.0.1" in text and SECRET_KEY not in text


def test_a_missing_bucket_is_an_error_not_just_a_miss(s3: MotoS3) -> None:
    store = S3ResultStore("s3://no-such-bucket/x", s3_options(s3.url), timeout=5.0)
    with warnings_of(RESULTS_LOGGER) as records:
        assert asyncio.run(store.get('"a"')) is None
    assert (store.stats.errors, store.stats.misses) == (1, 1)
    assert "NoSuchBucket" in records[0].getMessage()


def test_two_pods_share_an_s3_prefix(s3: MotoS3) -> None:
    """What one pod stores another reads; a purge from either deletes it for both."""
    one, two = s3_store(s3, f"{PREFIX}/pods"), s3_store(s3, f"{PREFIX}/pods")

    async def run() -> None:
        await one.put('"a"', b"from pod one", mime="image/jpeg", surrogate_keys=("k",))
        assert await two.get('"a"') == Stored(b"from pod one", "image/jpeg")
        assert await two.purge("k") == 1
        assert await one.get('"a"') is None

    asyncio.run(run())
    assert s3_keys(s3, f"{PREFIX}/pods/") == []


def test_a_purge_from_another_pod_during_a_put_deletes_the_result(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other pod's purge runs between the put's markers and its object (the worst moment): the
    put must notice its marker is gone and delete its object."""
    prefix = f"{PREFIX}/put-purge"
    store, other = s3_store(s3, prefix), s3_store(s3, prefix)
    real_put = obstore.put_async
    purged: list[int] = []

    async def put_after_a_purge(target: object, path: str, *args: object, **kwargs: object) -> object:
        if path.startswith("objects/"):
            purged.append(await other.purge("k"))
        return await real_put(target, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(obstore, "put_async", put_after_a_purge)
    asyncio.run(store.put('"a"', b"bytes", mime="image/png", surrogate_keys=("k",)))
    assert purged == [1]  # the marker was there, the object not yet
    assert asyncio.run(store.get('"a"')) is None
    assert s3_keys(s3, f"{prefix}/") == []
    assert (store.stats.skipped, store.stats.writes) == (1, 0)


# -- the guard in front of every store (results/breaker.py) ------------------------------------------


class _SickStore:
    """A result store whose operations take ``delay`` seconds (a stand-in for a hung endpoint, to
    drive the guard's state machine in exact steps; tests/test_optimise.py runs the guard against a
    real stalled S3 endpoint)."""

    def __init__(self) -> None:
        from edgeproxy.results.store import StoreStats

        self.stats = StoreStats()
        self.delay = 1.0
        self.calls = 0

    async def get(self, name: str) -> Stored | None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return Stored(b"body", "image/webp")

    async def put(self, name: str, body: bytes, *, mime: str, surrogate_keys: tuple[str, ...]) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay)

    async def purge(self, surrogate_key: str) -> int:
        return 0

    async def aclose(self) -> None:
        pass


def test_the_guard_opens_after_failures_then_lets_one_probe_through_and_closes_on_success() -> None:
    from edgeproxy.results.breaker import GuardedStore

    async def go() -> None:
        sick = _SickStore()
        guard = GuardedStore(sick, lookup_timeout=0.05, failures=2, recovery=1.0)
        assert [await guard.get("a"), await guard.get("b")] == [None, None]  # two late lookups: open
        assert (sick.stats.timeouts, sick.stats.tripped, sick.calls) == (2, 1, 2)
        assert await guard.get("c") is None and sick.calls == 2  # open: the store is not asked
        await guard.put("d", b"x", mime="image/webp", surrogate_keys=("k",))
        assert sick.calls == 2 and sick.stats.bypassed == 2
        await asyncio.sleep(1.1)  # half-open: one probe; the others meanwhile are skipped
        assert await asyncio.gather(*(guard.get(n) for n in "efghi")) == [None] * 5
        assert (sick.calls, sick.stats.tripped, sick.stats.bypassed) == (3, 2, 6)  # the probe failed: open
        await asyncio.sleep(1.1)
        sick.delay = 0.0  # recovered
        assert await guard.get("j") == Stored(b"body", "image/webp")  # the probe succeeds: closed
        assert await guard.get("k") == Stored(b"body", "image/webp")
        assert sick.calls == 5 and await guard.purge("k") == 0

    asyncio.run(go())
