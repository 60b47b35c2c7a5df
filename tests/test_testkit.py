"""The test harness itself: the HTTP origin of ``testkit.origin`` answers as its docstring promises, and
``testkit.images`` makes the same pixels every time. Many tests lean on both; a harness that silently
served the wrong thing would make them pass for the wrong reason."""

from __future__ import annotations

import ast
import http.client
import socket
import time
from pathlib import Path

import httpx
import pytest
import pyvips

from testkit import images
from testkit.env import ROOT
from testkit.origin import Fault, Reply, etag, redirect, serve_origin


def test_origin_serves_files_and_objects_with_etags_and_304s(tmp_path: Path):
    (tmp_path / "a.png").write_bytes(b"file bytes")
    (tmp_path.parent / "outside.txt").write_bytes(b"secret")
    with serve_origin(tmp_path, prefix="/img", file_headers={"X-From": "folder"}) as origin:
        origin["b.jpg"] = b"object bytes"
        origin["made.jpg"] = lambda request: Reply(201, request.path.encode())
        with httpx.Client(base_url=f"http://127.0.0.1:{origin.port}") as client:
            file = client.get("/img/a.png")
            assert (file.status_code, file.content, file.headers["x-from"]) == (200, b"file bytes", "folder")
            assert file.headers["etag"] == etag(b"file bytes") and file.headers["content-type"] == "image/png"
            again = client.get("/img/a.png", headers={"If-None-Match": f'"x", W/{file.headers["etag"]}'})
            assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", file.headers["etag"])
            assert client.get("/img/b.jpg").content == b"object bytes"
            assert (client.get("/img/made.jpg").status_code, client.get("/img/made.jpg").text) == (201, "/img/made.jpg")
            assert client.get("/img/%2E%2E/outside.txt").status_code == 404
            assert client.get("/other/a.png").status_code == 404  # outside the prefix
            assert client.post("/img/a.png").status_code == 405
            assert client.head("/img/b.jpg").headers["content-length"] == "12"
        assert origin.gets()[:2] == ["/img/a.png", "/img/a.png"]
        assert [r.method for r in origin.requests][-2:] == ["POST", "HEAD"]


def test_origin_redirects_delays_and_holds(tmp_path: Path):
    with serve_origin(prefix="/") as origin:
        origin["old"] = redirect("/new")
        origin["new"] = b"moved here"
        origin["slow"] = Reply(200, b"late", delay=0.3)
        with httpx.Client(base_url=origin.url, follow_redirects=True) as client:
            assert client.get("/old").content == b"moved here"
            started = time.monotonic()
            assert client.get("/slow").content == b"late"
            assert time.monotonic() - started >= 0.3
            origin.hold.clear()
            with pytest.raises(httpx.ReadTimeout):
                client.get("/new", timeout=0.3)
            origin.hold.set()
            assert client.get("/new").status_code == 200


def _raw(port: int, path: str) -> tuple[bytes, BaseException | None]:
    """Everything read from a GET of ``path`` until the connection ends, and how it ended."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError as exc:
            return received, exc
    return received, None


@pytest.mark.parametrize(
    ("fault", "ends_with"),
    [
        (Fault.RESET_BEFORE_RESPONSE, ConnectionResetError),
        (Fault.RESET_AFTER_BODY, ConnectionResetError),
        (Fault.CLOSE_AFTER_BODY, None),
        (Fault.UNDECLARED_LENGTH, None),
        (Fault.HANG, TimeoutError),
    ],
)
def test_origin_faults(fault: Fault, ends_with: type[BaseException] | None):
    with serve_origin() as origin:
        origin["x"] = Reply(200, b"partial", headers={"Content-Length": "1000"}, fault=fault)
        received, ended = _raw(origin.port, "/x")
    assert type(ended) is ends_with if ends_with else ended is None
    head, _, body = received.partition(b"\r\n\r\n")
    if fault in (Fault.RESET_BEFORE_RESPONSE, Fault.HANG):
        assert received == b""
    elif fault is Fault.UNDECLARED_LENGTH:
        assert b"content-length" not in head.lower() and b"Connection: close" in head and body == b"partial"
    else:
        assert b"Content-Length: 1000" in head and body == b"partial"  # a short body: 7 of 1000 bytes


def test_origin_over_tls_records_connections_and_sni(tmp_path: Path):
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with serve_origin(prefix="/img", tls=context) as origin:
        origin["a"] = b"over tls"
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        conn = http.client.HTTPSConnection("localhost", origin.port, context=client_context, timeout=5)
        conn.request("GET", "/img/a")
        assert conn.getresponse().read() == b"over tls"
        conn.close()
        assert origin.url_for("localhost") == f"https://localhost:{origin.port}/img"
    assert (len(origin.accepted), origin.sni) == (1, ["localhost"])


def test_synthetic_images_are_deterministic_and_photo_like():
    first, again = images.photo(320, 200, seed=4), images.photo(320, 200, seed=4)
    assert (first.width, first.height, first.bands, first.format, first.interpretation) == (
        320,
        200,
        3,
        "uchar",
        "srgb",
    )
    assert (first.cast("float") - again).abs().max() == 0
    assert (first.cast("float") - images.photo(320, 200, seed=5)).abs().max() > 0  # the seed matters
    assert first.deviate() > 20  # not flat
    subject = images.mean_rgb(first, 224 - 4, 70 - 4, 8, 8)  # the subject, at FOCUS (0.7, 0.35)
    assert subject[0] > subject[2] + 60  # warm, as skin is
    strip = images.animation(40, 30, 3)
    assert (strip.height, strip.get("page-height"), strip.get("n-pages")) == (90, 30, 3)
    assert [strip(0, 30 * i)[0] for i in range(3)] == [images.frame_marker(i) for i in range(3)]
    alpha = images.with_alpha(first)
    assert (alpha.bands, alpha(0, 0)[3], alpha(160, 100)[3]) == (4, 0, 255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_oriented_jpegs_come_upright_after_autorotation(orientation: int):
    upright = images.photo(60, 40, seed=1)
    stored = pyvips.Image.new_from_buffer(images.oriented_jpeg(upright, orientation), "")
    assert stored.get("orientation") == orientation
    turned = stored.autorot()
    assert (turned.width, turned.height) == (60, 40)
    assert (turned.cast("float") - upright).abs().avg() < 6  # JPEG's loss only


#: What makes a test's answer depend on the optional extras: testkit.env's table of them, test_formats'
#: skip marks, Pillow's check for an extra's plugin, or importing an extra's package.
EXTRA_NAMES = {"EXTRAS", "needs_heif", "needs_jxl", "missing_extra"}
EXTRA_PACKAGES = {"pillow_heif", "pillow_jxl"}


def _depends_on_extras(node: ast.AST, tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in EXTRA_NAMES | tainted:
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in EXTRA_NAMES:
            return True
        if isinstance(sub, ast.Constant) and sub.value in EXTRA_PACKAGES:
            return True
    return False


def _marked_extras(node: ast.AST) -> bool:
    return any(isinstance(sub, ast.Attribute) and sub.attr == "extras" for sub in ast.walk(node))


def test_every_test_whose_answer_depends_on_an_extra_is_marked_extras():
    """.ci/run's second pass (the extras installed) runs only ``-m extras``: a test that branches on
    an extra, directly or through its module's helpers and fixtures, unmarked would never be run
    with them. Its parametrized cases may carry the mark one by one."""
    unmarked, marked = [], 0
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        if any(_marked_extras(n) for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign)):
            continue  # a module-level pytestmark
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        tainted: set[str] = set()
        while True:  # helpers and fixtures that reach an extra, to a fixed point
            more = {f.name for f in functions if f.name not in tainted and _depends_on_extras(f, tainted)}
            if not more:
                break
            tainted |= more
        for test in (f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")):
            uses = {a.arg for a in test.args.args} & tainted
            if test.name in tainted or uses:
                if any(_marked_extras(d) for d in test.decorator_list):
                    marked += 1
                else:
                    unmarked.append(f"{path.name}::{test.name}")
    assert unmarked == [], "mark them @pytest.mark.extras: .ci/run's second pass runs only those"
    assert marked >= 12  # the check sees them (test_formats, test_corpus_sweep, test_metrics, ...)
