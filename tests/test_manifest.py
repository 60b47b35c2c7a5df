"""Manifest origins (docs/manifests.md): ids mapped to originals, rendered, tagged, reloaded when the
manifest changes (a file, an S3 object in moto), kept when a new version is bad, updated by
``POST /manifest/NAME``, and the changed ids purged (a local hook recorder here; a real Varnish in
the slow test at the end).

Every image is a tiny flat colour (``testkit.images.flat``), so what was rendered is told by one pixel.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from edgeproxy import manifest
from edgeproxy.manifest import Entry, ManifestError
from edgeproxy.service.validators import surrogate_key
from testkit.app import make_client, signed
from testkit.env import ROOT, require_varnish
from testkit.images import decode, encode, flat
from testkit.metrics import value
from testkit.moto import moto_s3
from testkit.net import free_port
from testkit.origin import Reply, Request, serve_origin

TOKEN = "admin-token-for-manifest-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)
TTL = 0.1  # manifest_ttl of the proxies here: seconds
SHA = "ab" * 32


def write_images(folder: Path) -> Path:
    """red.png, blue.png (40 x 20) and halves.png (left half red, right half blue, 80 x 40)."""
    folder.mkdir(exist_ok=True)
    (folder / "red.png").write_bytes(encode(flat(40, 20, RED), "png"))
    (folder / "blue.png").write_bytes(encode(flat(40, 20, BLUE), "png"))
    halves = flat(40, 40, RED).join(flat(40, 40, BLUE), "horizontal")
    (folder / "halves.png").write_bytes(encode(halves, "png"))
    return folder


def colour(body: bytes, x: int = 1, y: int = 1) -> tuple[int, ...]:
    return tuple(round(v) for v in decode(body)(x, y)[:3])


def close(rgb: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 6 for a, b in zip(rgb, expected, strict=True))


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> float:
    """Seconds until ``check()`` is true (polled every 10 ms); fails after ``seconds``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "not within the deadline"
        time.sleep(0.01)
    return time.monotonic() - start


def write_manifest(path: Path, entries: dict) -> None:
    """Write ``entries`` as the manifest at ``path`` atomically (as a deployment would: rename over)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(entries))
    temporary.replace(path)


class Hooks:
    """A webhook purge hook's recorder: the ``(surrogate_key, origin, key)`` of every purge."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def answer(self, request: Request) -> Reply:
        body = json.loads(request.body)
        self.seen.append((body["surrogate_key"], body["origin"], body["key"]))
        return Reply(200, b"{}")


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()
    with serve_origin(fallback=hooks.answer) as origin:
        yield hooks, origin.url.rstrip("/") + "/hook"


# --------------------------------------------------------------------------- the format


def test_a_manifest_parses_to_entries_and_names_every_problem():
    data = json.dumps(
        {
            "SKU-1": {"origin": "shots", "key": "a/red.png", "sha256": SHA, "alt": "Red", "width": 40, "height": 20},
            "parts/77": {"origin": "shots", "key": "b.png", "focal": [0.25, 1], "placeholder": "#c0392b"},
        }
    ).encode()
    parsed = manifest.parse(data, max_bytes=10_000, origins={"shots"})
    assert parsed["SKU-1"] == Entry("shots", "a/red.png", SHA, "Red", 40, 20)
    assert parsed["SKU-1"].version == "ab" * 8
    assert parsed["parts/77"].focal == (0.25, 1.0)
    assert manifest.parse(manifest.dump(parsed), max_bytes=10_000) == parsed
    for bad, message in [
        (b"[]", "a manifest is a JSON object"),
        (b"{", "manifest is not UTF-8 JSON"),
        (b'{"a": {"origin": "x", "key": "k"}}', "id 'a': unknown origin 'x'"),
        (b'{"../a": {"origin": "shots", "key": "k"}}', "id '../a': an id has no empty"),
        (b'{"a": {"origin": "shots", "key": "/k"}}', "id 'a': key must be a key without empty"),
        (b'{"a": {"origin": "shots", "key": "k", "focal": [2, 0]}}', "id 'a': focal must be [x, y]"),
        (b'{"a": {"origin": "shots", "key": "k", "sha256": "x"}}', "id 'a': sha256 must be 64"),
        (b'{"a": {"origin": "shots", "key": "k", "colour": 1}}', "id 'a': unknown fields ['colour']"),
        (b'{"a": {"origin": "shots", "key": "k", "width": 0}}', "id 'a': width must be a whole number"),
        (b'{"a": [[[[1]]]]}', "manifest too large or too deep"),
        (b" " * 10_001, "manifest too large or too deep: 10001 bytes"),
    ]:
        with pytest.raises(ManifestError) as info:
            manifest.parse(bad, max_bytes=10_000, origins={"shots"})
        assert message in str(info.value), (bad, str(info.value))


def test_changed_names_the_ids_whose_image_may_differ():
    old = {"a": Entry("o", "a.png"), "b": Entry("o", "b.png", alt="B"), "c": Entry("o", "c.png")}
    new = {
        "a": Entry("o", "a.png", sha256=SHA),  # replaced bytes
        "b": Entry("o", "b.png", alt="Another text", width=4, height=3),  # no pixel changes
        "d": Entry("o", "d.png"),  # added (its fallback may be cached)
    }
    assert manifest.changed(old, new) == ["a", "c", "d"]


def test_settings_check_manifest_origins(tmp_path: Path):
    from edgeproxy.settings import SettingsError, load_settings

    path = tmp_path / "m.json"
    path.write_text("{}")
    good = load_settings(allow_unsigned=True, origins={"shots": str(tmp_path)}, manifest_origins={"cat": str(path)})
    assert good.manifest_origins == {"cat": str(path)} and good.manifest_ttl == 30.0
    for manifests, message in [
        ({"cat": str(tmp_path / "missing.json")}, "is not a file or s3://bucket/key"),
        ({"cat": "s3://bucket-name"}, "names no object: s3://bucket/key"),
        ({"info": str(path)}, "manifest name 'info' is reserved"),
        ({"shots": str(path)}, "manifest_origins: ['shots'] are origins too"),
    ]:
        with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_settings(allow_unsigned=True, origins={"shots": str(tmp_path)}, manifest_origins=manifests)


# --------------------------------------------------------------------------- a manifest in a local file


@pytest.fixture(scope="module")
def file_stack(tmp_path_factory: pytest.TempPathFactory, recorder) -> Iterator[tuple[httpx.Client, Path]]:
    """A proxy with origin ``shots`` and manifest origin ``catalog`` (a file), the fallback image
    configured, purges going to the recorder."""
    hooks, hook_url = recorder
    folder = write_images(tmp_path_factory.mktemp("shots"))
    path = tmp_path_factory.mktemp("manifests") / "catalog.json"
    fallback = folder / "green.png"
    fallback.write_bytes(encode(flat(32, 32, GREEN), "png"))
    write_manifest(
        path,
        {
            "SKU-1": {"origin": "shots", "key": "red.png", "alt": "A red square", "width": 40, "height": 20},
            "SKU-2": {"origin": "shots", "key": "halves.png", "focal": [0.0, 0.5]},
            "SKU-3": {"origin": "shots", "key": "halves.png"},
            "SKU-9": {"origin": "shots", "key": "missing.png"},
        },
    )
    with make_client(
        {"shots": str(folder)},
        manifest_origins={"catalog": str(path)},
        manifest_ttl=TTL,
        admin_token=TOKEN,
        purge_hooks=[f"webhook:{hook_url}"],
        fallback_image=str(fallback),
        manifest_max_bytes=8192,
    ) as client:
        yield client, path


def test_an_id_renders_its_original_tagged_with_both_keys(file_stack):
    client, _path = file_stack
    r = client.get(signed("/w:20/f:png/catalog/SKU-1"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    image = decode(r.content)
    assert (image.width, image.height) == (20, 10)
    assert close(colour(r.content), RED)
    original, ident = surrogate_key("shots", "red.png"), surrogate_key("catalog", "SKU-1")
    assert r.headers["surrogate-key"] == f"{original} {ident}"
    assert r.headers["cache-tag"] == f"{original},{ident}"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    direct = client.get(signed("/w:20/f:png/shots/red.png"))  # the ETag is the mapped original's derivative's
    assert r.headers["etag"] == direct.headers["etag"]
    assert direct.headers["surrogate-key"] == original
    assert (
        client.get(signed("/w:20/f:png/catalog/SKU-1"), headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    )


def test_focal_is_the_gravity_of_urls_that_name_none(file_stack):
    client, _path = file_stack
    square = "/w:20/h:20/fit:cover/f:png/catalog/"
    left = client.get(signed(square + "SKU-2"))  # focal (0, 0.5): the left half, red
    assert close(colour(left.content, 18, 10), RED), colour(left.content, 18, 10)
    centred = client.get(signed(square + "SKU-3"))  # no focal: the centre, half and half
    assert close(colour(centred.content, 1, 10), RED) and close(colour(centred.content, 18, 10), BLUE)
    east = client.get(signed("/w:20/h:20/fit:cover/g:east/f:png/catalog/SKU-2"))  # the URL's own gravity wins
    assert close(colour(east.content, 1, 10), BLUE)
    assert left.headers["etag"] != centred.headers["etag"]


def test_an_unknown_id_answers_the_fallback_tagged_with_the_id(file_stack):
    client, _path = file_stack
    r = client.get(signed("/w:16/f:png/catalog/SKU-404"))
    assert r.status_code == 404
    assert close(colour(r.content), GREEN)
    assert decode(r.content).width == 16
    assert r.headers["surrogate-key"] == surrogate_key("catalog", "SKU-404")
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.headers["x-fallback-reason"] == "404 no id 'SKU-404' in manifest 'catalog'"
    # An id whose original is missing: the fallback too, tagged with the original's key and the id's.
    gone = client.get(signed("/w:16/f:png/catalog/SKU-9"))
    assert gone.status_code == 404 and close(colour(gone.content), GREEN)
    assert (
        gone.headers["surrogate-key"] == f"{surrogate_key('shots', 'missing.png')} {surrogate_key('catalog', 'SKU-9')}"
    )


def test_info_describes_the_mapped_original_and_the_entry(file_stack):
    client, _path = file_stack
    r = client.get(signed("/info/catalog/SKU-1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["format"], body["width"], body["height"]) == ("png", 40, 20)
    assert body["manifest"] == {
        "name": "catalog",
        "id": "SKU-1",
        "origin": "shots",
        "key": "red.png",
        "alt": "A red square",
        "width": 40,
        "height": 20,
    }
    assert r.headers["surrogate-key"] == f"{surrogate_key('shots', 'red.png')} {surrogate_key('catalog', 'SKU-1')}"
    missing = client.get(signed("/info/catalog/SKU-404"))
    assert missing.status_code == 404
    assert missing.headers["surrogate-key"] == surrogate_key("catalog", "SKU-404")


def test_a_changed_file_is_reloaded_and_its_changed_ids_purged(file_stack, recorder):
    client, path = file_stack
    hooks, _url = recorder
    url = signed("/w:8/f:png/catalog/SKU-1")
    assert close(colour(client.get(url).content), RED)
    entries = json.loads(path.read_text())
    entries["SKU-1"] = {"origin": "shots", "key": "blue.png", "alt": "Now blue"}
    entries["SKU-3"]["alt"] = "Only the text changed"
    del hooks.seen[:]
    write_manifest(path, entries)
    eventually(lambda: close(colour(client.get(url).content), BLUE))
    eventually(lambda: len(hooks.seen) >= 1)
    assert hooks.seen == [(surrogate_key("catalog", "SKU-1"), "catalog", "SKU-1")]  # not SKU-3: its pixels are the same
    metrics = client.get("/metrics").text
    assert value(metrics, "edgeproxy_manifest_ids", manifest="catalog") == 4


def test_a_bad_manifest_keeps_the_previous_one(file_stack, caplog):
    client, path = file_stack
    url = signed("/w:8/f:png/catalog/SKU-3")
    assert client.get(url).status_code == 200
    good = path.read_text()

    def failures() -> float:
        return value(
            client.get("/metrics").text, "edgeproxy_manifest_loads_total", manifest="catalog", outcome="failed"
        )

    before = failures()
    with caplog.at_level(logging.WARNING, logger="edgeproxy.manifest"):
        path.write_text('{"SKU-3": {"origin": "nowhere", "key": "x.png"}}')
        eventually(lambda: failures() > before)
    assert any(
        "manifest 'catalog' not (re)loaded, still serving the previous version (4 ids)" in r.getMessage()
        and "unknown origin 'nowhere'" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    r = client.get(url)
    assert r.status_code == 200 and r.headers["surrogate-key"].endswith(surrogate_key("catalog", "SKU-3"))
    assert client.get("/readyz").json()["manifests"] == {"catalog": True}
    # An update cannot be applied to a stored manifest that is bad: 502, nothing changed, no path said.
    update = client.post("/manifest/catalog", json={"SKU-3": {"origin": "shots", "key": "red.png"}}, headers=AUTH)
    assert (update.status_code, update.json()) == (
        502,
        {"error": "the stored manifest could not be read, parsed or written (the log says why)"},
    )
    assert "nowhere" in path.read_text()
    assert client.get(url).headers["etag"] == r.headers["etag"]
    write_manifest(path, json.loads(good))


def test_post_manifest_needs_the_token_and_a_good_body(file_stack):
    client, _path = file_stack
    body = {"SKU-5": {"origin": "shots", "key": "red.png"}}
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}):
        r = client.post("/manifest/catalog", json=body, headers=headers)
        assert (r.status_code, r.json()) == (401, {"error": "missing or wrong admin token"})
        assert r.headers["cache-control"] == "no-store"
    assert client.post("/manifest/nope", json=body, headers=AUTH).status_code == 404
    assert client.get("/manifest/catalog", headers=AUTH).status_code == 405
    for bad, message in [
        (b"nope", 'body must be JSON: {"ID": {"origin": NAME, "key": KEY, ...} or null, ...}'),
        (b"{}", 'an update is a JSON object {"ID": {"origin": NAME, "key": KEY, ...} or null, ...}'),
        (b'{"SKU-5": {"origin": "elsewhere", "key": "a.png"}}', "id 'SKU-5': unknown origin 'elsewhere'"),
        (b'{"../x": null}', "id '../x': an id has no empty, '.' or '..' segment, backslash or NUL"),
    ]:
        r = client.post("/manifest/catalog", content=bad, headers=AUTH)
        assert (r.status_code, r.json()) == (400, {"error": message}), bad
    too_big = client.post("/manifest/catalog", content=b" " * 9000, headers=AUTH)
    assert (too_big.status_code, too_big.json()) == (413, {"error": "body over manifest_max_bytes (8192 bytes)"})


def test_post_manifest_is_not_there_without_an_admin_token(tmp_path: Path):
    path = tmp_path / "catalog.json"
    write_manifest(path, {"SKU-1": {"origin": "shots", "key": "red.png"}})
    with make_client({"shots": str(write_images(tmp_path / "shots"))}, manifest_origins={"catalog": str(path)}) as c:
        for method in ("POST", "GET"):
            r = c.request(method, "/manifest/catalog", json={"SKU-1": None}, headers=AUTH)
            assert (r.status_code, r.text) == (404, "no such route\n")
        assert c.get(signed("/w:8/f:png/catalog/SKU-1")).status_code == 200


def test_post_manifest_updates_writes_back_and_purges(file_stack, recorder):
    client, path = file_stack
    hooks, _url = recorder
    url = signed("/w:8/f:png/catalog/SKU-7")
    assert client.get(url).status_code == 404  # not there yet: the fallback
    del hooks.seen[:]
    r = client.post(
        "/manifest/catalog",
        json={"SKU-7": {"origin": "shots", "key": "blue.png", "sha256": SHA}, "SKU-9": None},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["manifest"], answer["changed"]) == ("catalog", ["SKU-7", "SKU-9"])
    assert [(p["id"], p["surrogate_key"], [h["ok"] for h in p["hooks"]]) for p in answer["purged"]] == [
        ("SKU-7", surrogate_key("catalog", "SKU-7"), [True]),
        ("SKU-9", surrogate_key("catalog", "SKU-9"), [True]),
    ]
    assert sorted(hooks.seen) == sorted(
        [
            (surrogate_key("catalog", "SKU-7"), "catalog", "SKU-7"),
            (surrogate_key("catalog", "SKU-9"), "catalog", "SKU-9"),
        ]
    )
    stored = manifest.parse(path.read_bytes(), max_bytes=10**6)  # written back
    assert stored["SKU-7"] == Entry("shots", "blue.png", SHA) and "SKU-9" not in stored
    served = client.get(url)  # at once, not after a reload
    assert served.status_code == 200 and close(colour(served.content), BLUE)


def test_the_builder_reads_the_manifest_and_the_proxy_answers_its_urls(file_stack):
    """``UrlBuilder(manifests={"catalog": path})``: the picture of an id takes its alt, size and
    ``v:`` from the manifest, and every URL in it is one the proxy renders; another sha256 is
    another URL (a replaced image needs no purge)."""
    import re

    from edgeproxy.url.builders import UrlBuilder

    client, path = file_stack
    entries = json.loads(path.read_text())
    entries["SKU-1"] = {"origin": "shots", "key": "red.png", "alt": "Red", "width": 40, "height": 20, "sha256": SHA}
    images = UrlBuilder("", "test-signing-key", manifests={"catalog": entries})
    html = images.picture("catalog", "SKU-1", widths=[10, 20, 80], formats=["webp"])
    assert 'alt="Red" width="40" height="20"' in html
    urls = sorted(set(re.findall(r"(/[^ \"]+/catalog/SKU-1)", html)))
    assert urls and all(f"/v:{SHA[:16]}/catalog/SKU-1" in url for url in urls)
    assert not any("/w:80/" in url for url in urls)  # capped by the original's width from the manifest
    for url in urls:
        assert client.get(url).status_code == 200, url
    replaced = UrlBuilder(
        "", "test-signing-key", manifests={"catalog": {**entries, "SKU-1": {**entries["SKU-1"], "sha256": "cd" * 32}}}
    )
    assert replaced.url("catalog", "SKU-1", width=20) != images.url("catalog", "SKU-1", width=20)
    file_images = UrlBuilder("", "test-signing-key", manifests={"catalog": str(path)})  # a path works too
    assert file_images.entry("catalog", "SKU-2") == Entry("shots", "halves.png", focal=(0.0, 0.5))


# --------------------------------------------------------------------------- a manifest in S3 (moto)


def test_a_manifest_in_s3_is_served_reloaded_on_its_etag_and_updated(tmp_path: Path):
    with moto_s3() as s3:
        s3.put("originals/red.png", encode(flat(40, 20, RED), "png"))
        s3.put("originals/blue.png", encode(flat(40, 20, BLUE), "png"))
        s3.put("manifests/catalog.json", json.dumps({"SKU-1": {"origin": "bucket", "key": "red.png"}}).encode())
        settings = s3.settings(
            manifest_origins={"catalog": f"s3://{s3.bucket}/manifests/catalog.json"},
            manifest_ttl=TTL,
            admin_token=TOKEN,
        )
        with make_client({"bucket": f"s3://{s3.bucket}/originals"}, **settings) as client:
            url = signed("/w:8/f:png/catalog/SKU-1")
            r = client.get(url)
            assert r.status_code == 200 and close(colour(r.content), RED)
            missing = client.get(signed("/w:8/f:png/catalog/SKU-2"))  # no fallback: a 404 tagged with the id
            assert (missing.status_code, missing.text) == (404, "no id 'SKU-2' in manifest 'catalog'\n")
            assert missing.headers["surrogate-key"] == surrogate_key("catalog", "SKU-2")
            assert missing.headers["cache-control"] == "public, max-age=60"
            s3.put("manifests/catalog.json", json.dumps({"SKU-1": {"origin": "bucket", "key": "blue.png"}}).encode())
            eventually(lambda: close(colour(client.get(url).content), BLUE))
            r = client.post("/manifest/catalog", json={"SKU-2": {"origin": "bucket", "key": "red.png"}}, headers=AUTH)
            assert r.status_code == 200, r.text
            with contextlib.closing(s3.client()) as boto:
                stored = boto.get_object(Bucket=s3.bucket, Key="manifests/catalog.json")["Body"].read()
            assert set(manifest.parse(stored, max_bytes=10**6)) == {"SKU-1", "SKU-2"}
            two = client.get(signed("/w:8/f:png/catalog/SKU-2"))
            assert two.status_code == 200 and close(colour(two.content), RED)
            # An object replaced in place (same key) with the manifest's sha256 updated: the proxy drops the
            # original it holds in memory (original_cache_ttl is 60 s) and serves the new bytes at once.
            assert close(colour(client.get(signed("/w:8/f:png/catalog/SKU-2")).content), RED)
            s3.put("originals/red.png", encode(flat(40, 20, GREEN), "png"))
            r = client.post(
                "/manifest/catalog", json={"SKU-2": {"origin": "bucket", "key": "red.png", "sha256": SHA}}, headers=AUTH
            )
            assert r.json()["changed"] == ["SKU-2"]
            assert close(colour(client.get(signed("/w:8/f:png/catalog/SKU-2")).content), GREEN)


# --------------------------------------------------------------------------- through Varnish


@pytest.mark.slow
def test_a_changed_id_is_purged_from_varnish(tmp_path: Path):
    """An id's derivative cached by Varnish (the shipped VCL) is purged when ``POST /manifest``
    points the id at another original: the next request through Varnish renders the new one, and
    another id stays a hit."""
    require_varnish()
    from testkit.varnish import is_hit, start_varnish

    shipped_vcl = (ROOT / "config" / "varnish" / "default.vcl").read_text()
    folder = write_images(tmp_path / "shots")
    path = tmp_path / "catalog.json"
    write_manifest(
        path, {"SKU-1": {"origin": "shots", "key": "red.png"}, "SKU-2": {"origin": "shots", "key": "red.png"}}
    )
    varnish_port = free_port()
    settings = dict(
        manifest_origins={"catalog": str(path)},
        admin_token=TOKEN,
        purge_hooks=[f"varnish:http://127.0.0.1:{varnish_port}"],
    )
    url, other = signed("/w:8/f:png/catalog/SKU-1"), signed("/w:8/f:png/catalog/SKU-2")
    with (
        make_client({"shots": str(folder)}, **settings) as proxy,
        start_varnish(proxy.base_url.host, proxy.base_url.port, vcl=shipped_vcl, port=varnish_port) as varnish,
        httpx.Client(base_url=varnish.url, timeout=30) as cdn,
    ):
        assert all(cdn.get(u).status_code == 200 for u in (url, other))
        assert is_hit(cdn.get(url)) and is_hit(cdn.get(other))
        r = proxy.post("/manifest/catalog", json={"SKU-1": {"origin": "shots", "key": "blue.png"}}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert [h["status"] for h in r.json()["purged"][0]["hooks"]] == [200]
        after = cdn.get(url)
        assert not is_hit(after) and close(colour(after.content), BLUE)
        assert is_hit(cdn.get(other)), "another id was purged"
