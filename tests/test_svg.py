"""SVG input: off by default; when on, rendered without entities, scripts, or anything fetched or read."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import pyvips

from edgeproxy.render import svg
from testkit.app import make_client, signed
from testkit.images import decode, loader_format
from testkit.origin import Reply, Request, serve_origin

ALL_FORMATS = ["jpeg", "png", "webp", "gif", "avif", "heif", "tiff", "svg"]
RED_PNG = pyvips.Image.black(8, 8).new_from_image([255, 0, 0]).pngsave_buffer()


def red_png(_request: Request) -> Reply:
    return Reply(200, RED_PNG, headers={"Content-Type": "image/png"})


def write(root: Path, name: str, body: str | bytes) -> None:
    (root / name).write_bytes(body.encode() if isinstance(body, str) else body)


def test_svg_is_refused_by_default(corpus: Path, client):
    for key in ("commons-logo.svg", "logo.svgz", "imgproxy-test1.svg"):
        r = client.get(signed(f"/w:100/f:png/demo/{key}"))
        assert (r.status_code, r.text) == (415, "input format svg is not allowed\n")


def test_svg_renders_like_the_original_when_allowed(corpus: Path):
    reference = pyvips.Image.thumbnail(str(corpus / "commons-logo.svg"), 100, height=10_000)
    with make_client({"demo": str(corpus)}, allowed_input_formats=ALL_FORMATS) as c:
        for key in ("commons-logo.svg", "imgproxy-test1.svg", "logo.svgz", "svg-embedded-images.svg"):
            r = c.get(signed(f"/w:100/f:png/demo/{key}"))
            assert r.status_code == 200, (key, r.text)
            assert loader_format(decode(r.content)) == "png"
        image = decode(c.get(signed("/w:100/f:png/demo/commons-logo.svg")).content)
    assert (image.width, image.height) == (reference.width, reference.height) == (100, 134)
    assert (image - reference).abs().max() <= 2  # the same rendering, sanitised or not


def test_hostile_svgs_fetch_and_read_nothing(tmp_path: Path):
    """External images (http and file), CSS imports, XInclude, scripts and event handlers: the
    request succeeds, nothing is requested from the server, and no red from an outside image shows."""
    red_file = tmp_path / "red.png"
    red_file.write_bytes(RED_PNG)
    head = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:xi="http://www.w3.org/2001/XInclude" width="64" height="64">'
    )
    with serve_origin(fallback=red_png) as origin:  # a red PNG for any path, every request logged
        base = origin.url.rstrip("/")
        documents = {
            "http-image.svg": f'{head}<image href="{base}/a.png" width="64" height="64"/></svg>',
            "xlink-image.svg": f'{head}<image xlink:href="{base}/b.png" width="64" height="64"/></svg>',
            "file-image.svg": f'{head}<image href="file://{red_file}" width="64" height="64"/></svg>',
            "relative-image.svg": f'{head}<image href="red.png" width="64" height="64"/></svg>',
            "css-import.svg": f'{head}<style>@import url("{base}/c.css");</style><rect width="64" height="64"/></svg>',
            "css-url.svg": f'{head}<rect width="64" height="64" style="fill:url({base}/d.png)"/></svg>',
            "xinclude.svg": f'{head}<xi:include href="file://{red_file}" parse="xml"/>'
            '<rect width="64" height="64" fill="blue"/></svg>',
            "script.svg": f'{head}<script>fetch("{base}/e")</script><rect width="64" height="64" fill="blue" '
            f"onload=\"fetch('{base}/f')\"/></svg>",
            "stylesheet-pi.svg": f'<?xml-stylesheet href="{base}/g.css"?>{head}<rect width="64" height="64"/></svg>',
        }
        for name, body in documents.items():
            write(tmp_path, name, body)
        with make_client({"t": str(tmp_path)}, allowed_input_formats=ALL_FORMATS) as c:
            for name in documents:
                r = c.get(signed(f"/w:64/f:png/t/{name}"))
                assert r.status_code == 200, (name, r.text)
                image = decode(r.content)
                if image.bands == 4:
                    image = image.flatten(background=[255, 255, 255])
                red = (image[0] > 200) & (image[1] < 60) & (image[2] < 60)
                assert red.avg() == 0, name
    assert origin.requests == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><svg xmlns="http://www.w3.org/2000/svg"><text>&c;</text></svg>',
            422,
            "SVG with entity declarations or external references is not allowed",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
            422,
            "SVG with entity declarations or external references is not allowed",
        ),
        ('<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>', 422, "the SVG is not well-formed XML"),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" width="50000" height="50000"><rect width="1" height="1"/></svg>',
            413,
            "the original has 2500000000 pixels (50000x50000x1); the limit is 50000000",
        ),
        (
            gzip.compress(b'<svg xmlns="http://www.w3.org/2000/svg">' + b" " * 3_000_000 + b"</svg>"),
            413,
            "the decompressed SVG is over the limit of 2000000 bytes",
        ),
    ],
    ids=["billion-laughs", "xxe", "malformed", "huge-canvas", "svgz-bomb"],
)
def test_svg_bombs_and_entities_are_refused(tmp_path: Path, body, status, message):
    write(tmp_path, "x.svg", body)
    with make_client({"t": str(tmp_path)}, allowed_input_formats=ALL_FORMATS, max_source_bytes=2_000_000) as c:
        r = c.get(signed("/w:64/f:png/t/x.svg"))
    assert (r.status_code, r.text) == (status, message + "\n")


def test_doctype_from_editors_is_fine(tmp_path: Path):
    write(
        tmp_path,
        "inkscape.svg",
        '<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="40" height="20">'
        '<rect width="40" height="20" fill="#00ff00" inkscape:label="bg"/></svg>',
    )
    with make_client({"t": str(tmp_path)}, allowed_input_formats=ALL_FORMATS) as c:
        image = decode(c.get(signed("/w:40/f:png/t/inkscape.svg")).content)
    assert (image.width, image.height) == (40, 20)
    assert image(20, 10)[:3] == [0, 255, 0]


def test_sanitize_keeps_drawing_and_drops_active_content(corpus: Path):
    out = svg.sanitize((corpus / "imgproxy-test1.svg").read_bytes(), 1_000_000).decode()
    for gone in ("script", "onload", "onclick", "javascript:", "https://example.com", "alert"):
        assert gone not in out
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    assert '<rect width="190" height="90"' in out


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<svg/>", True),
        (b"\xef\xbb\xbf\n  <?xml version='1.0'?><svg>", True),
        (gzip.compress(b"<svg/>"), True),
        (b"<html><body>not found</body></html>", False),
        (b"\x89PNG\r\n", False),
        (b"GIF89a<svg", False),
    ],
)
def test_svg_sniffing(data, expected):
    assert svg.looks_like_svg(data) is expected
