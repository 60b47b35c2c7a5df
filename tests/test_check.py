"""``edgeproxy check``: the synthetic probe, against a running proxy (good URLs pass, exit 0) and
against a tiny HTTP server on 127.0.0.1 that lies (wrong ``Content-Type``, wrong dimensions, no
``immutable``, no ``Vary``, undecodable bytes: exit 1 naming the check)."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeproxy import check
from edgeproxy.cli import main
from edgeproxy.http.negotiate import accepted_image_types
from edgeproxy.url.spec import Format
from testkit.app import KEY, make_client, signed
from testkit.images import encode, photo, with_alpha
from testkit.net import free_port

CHROME = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"
OLD = "*/*"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("check")
    (root / "photo.jpg").write_bytes(encode(photo(400, 300), "jpeg"))
    (root / "cutout.png").write_bytes(encode(with_alpha(photo(200, 200, seed=1)), "png"))
    return root


@pytest.fixture(scope="module")
def proxy(folder: Path) -> Iterator[httpx.Client]:
    with make_client({"shop": str(folder)}) as client:
        yield client


def url(client: httpx.Client, path: str) -> str:
    return str(client.base_url).rstrip("/") + signed(path)


# ---------------------------------------------------------------------------- a lying server

JPEG_300 = encode(photo(300, 200), "jpeg")
PNG_100 = encode(photo(100, 67), "png")
JPEG_1080 = encode(photo(1080, 720), "jpeg")
IMMUTABLE = "public, max-age=31536000, immutable"
#: path -> (status, headers, body): each one wrong in one way (the first is right).
LIES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/sig/w:100/f:png/shop/right.png": (
        200,
        {"Content-Type": "image/png", "ETag": '"a"', "Cache-Control": IMMUTABLE},
        PNG_100,
    ),
    "/sig/w:100/f:png/shop/type.png": (
        200,
        {"Content-Type": "image/jpeg", "ETag": '"a"', "Cache-Control": IMMUTABLE},
        PNG_100,
    ),
    "/sig/w:100/f:jpeg/shop/size.jpg": (
        200,
        {"Content-Type": "image/jpeg", "ETag": '"a"', "Cache-Control": IMMUTABLE},
        JPEG_300,
    ),
    "/sig/w:100/f:png/shop/cache.png": (
        200,
        {"Content-Type": "image/png", "ETag": '"a"', "Cache-Control": "no-cache"},
        PNG_100,
    ),
    "/sig/w:100/f:png/shop/etag.png": (200, {"Content-Type": "image/png", "Cache-Control": IMMUTABLE}, PNG_100),
    "/sig/w:100/shop/vary.png": (
        200,
        {"Content-Type": "image/png", "ETag": '"a"', "Cache-Control": IMMUTABLE},
        PNG_100,
    ),
    "/sig/w:100/f:png/shop/broken.png": (
        200,
        {"Content-Type": "image/png", "ETag": '"a"', "Cache-Control": IMMUTABLE},
        PNG_100[:300],
    ),
    "/sig/w:auto/ar:3:2/f:jpeg/shop/auto.jpg": (
        200,
        {"Content-Type": "image/jpeg", "ETag": '"a"', "Cache-Control": IMMUTABLE},
        JPEG_1080,
    ),
    "/sig/w:100/f:png/shop/missing.png": (
        404,
        {"Content-Type": "text/plain", "Cache-Control": "public, max-age=60"},
        b"no",
    ),
}


class Liar(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, headers, body = LIES[self.path]
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def liar() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Liar)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------- tests


def test_good_urls_pass_with_every_accept(proxy: httpx.Client, tmp_path: Path, capsys) -> None:
    urls = [url(proxy, "/w:200/shop/photo.jpg"), url(proxy, "/w:100/h:100/fit:cover/f:png/shop/cutout.png")]
    textfile = tmp_path / "edgeproxy_check.prom"
    status = main(["check", *urls, "--accept", CHROME, "--accept", OLD, "--textfile", str(textfile)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert sum(line.startswith("ok ") for line in out.splitlines()) == 4  # 2 URLs x 2 Accept strings
    assert "FAIL" not in out and "4 of 4 passed" in out
    metrics = textfile.read_text()
    assert 'edgeproxy_check_success{accept="*/*",target="/w:200/shop/photo.jpg"} 1.0' in metrics
    assert "edgeproxy_check_ttfb_seconds{" in metrics and "edgeproxy_check_decode_seconds{" in metrics
    assert "edgeproxy_check_last_run_timestamp_seconds" in metrics
    if shutil.which("promtool"):  # Prometheus' own linter, where installed (it is in CI's image)
        linted = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout + linted.stderr


def test_json_reports_type_size_and_timings(proxy: httpx.Client, capsys) -> None:
    status = main(["check", url(proxy, "/w:200/shop/photo.jpg"), "--accept", CHROME, "--accept", OLD, "--json"])
    assert status == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["content_type"], r["width"], r["height"], r["ok"]) for r in rows] == [
        ("image/avif", 200, 150, True),
        ("image/jpeg", 200, 150, True),
    ]
    assert all(r["ttfb_ms"] > 0 and r["decode_ms"] > 0 and r["failures"] == [] for r in rows)


@pytest.mark.parametrize(
    ("path", "failed"),
    [
        ("/sig/w:100/f:png/shop/type.png", "content-type"),
        ("/sig/w:100/f:jpeg/shop/size.jpg", "dimensions"),
        ("/sig/w:100/f:png/shop/cache.png", "cache-control"),
        ("/sig/w:100/f:png/shop/etag.png", "etag"),
        ("/sig/w:100/shop/vary.png", "vary"),
        ("/sig/w:100/f:png/shop/broken.png", "decode"),
        ("/sig/w:100/f:png/shop/missing.png", "status"),
    ],
)
def test_a_wrong_answer_exits_1_naming_the_check(liar: str, path: str, failed: str, capsys) -> None:
    assert main(["check", liar + "/sig/w:100/f:png/shop/right.png"]) == 0
    capsys.readouterr()
    status = main(["check", liar + path, "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [f["check"] for f in rows[0]["failures"]] == [failed]


def test_w_auto_widths_are_the_servers_to_choose(liar: str) -> None:
    """Without a hint, w:auto's width is the server's auto_width_fallback (in its buckets), unknown
    here: 1080 px (a fallback of 1000 CSS px) is no failure, though the default fallback gives 640."""
    assert main(["check", liar + "/sig/w:auto/ar:3:2/f:jpeg/shop/auto.jpg"]) == 0


def test_jpeg_xl_is_allowed_for_f_auto_when_accept_lists_it() -> None:
    safari = "image/webp,image/avif,image/jxl,image/heic,*/*;q=0.5"
    jxl = check.Result("u", "/w:1/shop/a", safari, content_type="image/jxl", sniffed=check.sniff(b"\xff\x0a\x00"))
    check.check_type(jxl, Format.AUTO, accepted_image_types(safari, True))
    assert jxl.sniffed == "jxl" and jxl.ok
    old = check.Result("u", "/w:1/shop/a", "*/*", content_type="image/jxl", sniffed="jxl")
    check.check_type(old, Format.AUTO, accepted_image_types("*/*", True))
    assert [f.check for f in old.failures] == ["content-type"]


def test_the_table_names_the_failed_check(liar: str, capsys) -> None:
    assert main(["check", liar + "/sig/w:100/f:jpeg/shop/size.jpg"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "dimensions: 300x200 is wider than the box 100" in out


def test_slow_answers_fail_the_timing_checks(proxy: httpx.Client, capsys) -> None:
    status = main(["check", url(proxy, "/w:120/f:png/shop/photo.jpg"), "--max-ttfb", "0.000001", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 1 and [f["check"] for f in rows[0]["failures"]] == ["ttfb"]


def test_a_manifest_checks_every_id_in_every_variant(proxy: httpx.Client, tmp_path: Path, capsys) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "SKU-1": {"origin": "shop", "key": "photo.jpg", "width": 400, "height": 300},
                "SKU-2": {"origin": "shop", "key": "cutout.png"},
            }
        )
    )
    args = ["check", "--manifest", str(manifest), "--base-url", str(proxy.base_url), "--key", KEY, "--json"]
    status = main([*args, "--variant", "w:100/f:png", "--variant", "w:300/h:100/fit:pad/f:webp"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0, rows
    assert [(r["target"], r["width"], r["height"]) for r in rows] == [
        ("/w:100/f:png/shop/photo.jpg", 100, 75),
        ("/w:100/f:png/shop/cutout.png", 100, 100),
        ("/w:300/h:100/fit:pad/f:webp/shop/photo.jpg", 300, 100),
        ("/w:300/h:100/fit:pad/f:webp/shop/cutout.png", 300, 100),
    ]
    # the manifest's size makes the expectation exact: a lie about it is caught
    manifest.write_text(json.dumps({"SKU-1": {"origin": "shop", "key": "photo.jpg", "width": 400, "height": 200}}))
    assert main([*args, "--variant", "w:100/f:png"]) == 1
    assert "dimensions" in capsys.readouterr().out


def test_manifest_origin_names_ids_not_keys(tmp_path: Path) -> None:
    manifest = {"SKU-1": {"origin": "shop", "key": "photo.jpg"}}
    targets = check.manifest_targets(manifest, ["w:100"], base_url="http://x", key=KEY, origin="catalog")
    assert [t.url.split("/", 4)[-1] for t in targets] == ["w:100/catalog/SKU-1"]
    assert targets[0].url == "http://x" + signed("/w:100/catalog/SKU-1")


def test_a_manifest_origin_is_checked_by_id_end_to_end(folder: Path, tmp_path: Path, capsys) -> None:
    """The proxy serves the manifest as a manifest origin (``catalog``): ``check --manifest-origin``
    requests each id (not its key), and the manifest's sizes make the dimensions exact."""
    manifest = tmp_path / "catalog.json"
    manifest.write_text(
        json.dumps(
            {
                "SKU-1": {"origin": "shop", "key": "photo.jpg", "width": 400, "height": 300},
                "SKU-2": {"origin": "shop", "key": "cutout.png", "width": 200, "height": 200},
            }
        )
    )
    with make_client({"shop": str(folder)}, manifest_origins={"catalog": str(manifest)}) as client:
        args = ["check", "--manifest", str(manifest), "--manifest-origin", "catalog", "--base-url"]
        status = main([*args, str(client.base_url), "--key", KEY, "--json", "--variant", "w:100/f:png"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0, rows
    assert [(r["target"], r["status"], r["width"], r["height"]) for r in rows] == [
        ("/w:100/f:png/catalog/SKU-1", 200, 100, 75),
        ("/w:100/f:png/catalog/SKU-2", 200, 100, 100),
    ]


def test_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["check"]) == 2
    assert (
        main(
            [
                "check",
                "--manifest",
                str(tmp_path / "none.json"),
                "--variant",
                "w:1",
                "--key",
                "k",
                "--base-url",
                "http://x",
            ]
        )
        == 2
    )
    assert main(["check", "http://127.0.0.1:1/sig/w:abc/shop/a.jpg"]) == 2
    assert "w" in capsys.readouterr().err


def test_the_kubernetes_cronjob_check_passes_on_a_proxy_serving_its_manifest(tmp_path: Path, capsys) -> None:
    """config/k8s/check-cronjob.yaml's command, run as written against a proxy that serves the
    originals its ConfigMap's manifest names (made here at the sizes it states), exits 0: the
    example works as shipped once pointed at real originals."""
    import yaml

    from testkit.env import ROOT
    from testkit.images import animation

    docs = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "config/k8s/check-cronjob.yaml").read_text())}
    manifest = json.loads(docs["ConfigMap"]["data"]["manifest.json"])
    [container] = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    for entry in manifest.values():
        path = tmp_path / entry["origin"] / entry["key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".gif":
            path.write_bytes(encode(animation(300, 200, 2), "gif"))
        elif path.suffix == ".png":
            path.write_bytes(encode(with_alpha(photo(entry.get("width", 600), entry.get("height", 600))), "png"))
        else:
            path.write_bytes(encode(photo(entry["width"], entry["height"]), "jpeg"))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    args = list(container["args"])
    args[args.index("--manifest") + 1] = str(tmp_path / "manifest.json")
    origins = {name: str(tmp_path / name) for name in {e["origin"] for e in manifest.values()}}
    with make_client(origins) as proxy:
        args[args.index("--base-url") + 1] = str(proxy.base_url).rstrip("/")
        status = main([*args, "--key", KEY])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"{len(manifest) * 2 * 3} of {len(manifest) * 2 * 3} passed" in out
