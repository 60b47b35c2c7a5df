"""The URL builders: edgeproxy/url/builders.py and clients/js, held to one fixture, and accepted by the proxy.

``clients/url-fixtures.json`` is generated from the Python builder by ``scripts/url-fixtures``; here
every case is rebuilt (and every error case refused), the file is checked to be current, the
JavaScript package runs the same cases under ``node --test``, and builder-made URLs (srcset
candidates, picture sources, presets, awkward keys) are requested from a running edgeproxy.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeproxy.errors import ProxyError
from edgeproxy.url.builders import ACCEPT_CH, OPTION_ORDER, UrlBuilder, client_hints_meta, format_value
from edgeproxy.url.grammar import parse_path
from edgeproxy.url.signing import PathSigner
from testkit.app import KEY, make_client, raw_get
from testkit.env import ROOT, run_node_tests
from testkit.images import decode, loader_format

FIXTURE = ROOT / "clients" / "url-fixtures.json"
SCRIPT = ROOT / "scripts" / "url-fixtures"
JS = ROOT / "clients" / "js"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))
GOOD = [c for c in CASES if not c.get("error")]
BAD = [c for c in CASES if c.get("error")]
PHOTO = "photo.jpg"  # the synthetic library's 800 × 533 JPEG
#: Awkward keys, served from a temporary origin: percent-encoding must round-trip through the proxy.
ODD_KEYS = ["фото/ä ö.jpg", "a+b&c#d?e%f.jpg", "!'()*~.jpg", "emoji/😀.jpg", "x:y;z=@,$.jpg"]


def run_case(case: dict) -> str:
    if case["call"] == "client_hints_meta":  # the module's function
        return client_hints_meta(**case["args"])
    builder = UrlBuilder(
        case["base_url"], case["signing_key"], signature_size=case["signature_size"], manifests=case.get("manifests")
    )
    return getattr(builder, case["call"])(case["origin"], case["key"], **case["args"])


# --------------------------------------------------------------------------- the shared fixture


def test_fixture_covers_the_brief():
    names = " ".join(c["name"] for c in CASES)
    for word in (
        "readme test vector",
        "16-byte",
        "scrambled",
        "dpr 1.5",
        "dpr 2.0",
        "bools",
        "crop",
        "focal-point",
        "presets list",
        "w:auto with a fallback",
        "dpr:auto",
        "spaces",
        "unicode key",
        "plus",
        "percent",
        "question mark",
        "hash",
        "ampersand",
        "aspect 16:9",
        "manifest id",
        "manifest picture",
        "densities",
        "picture",
        "priority",
        "attrs",
        "art direction",
        "capped by the original",
        "animated",
        "placeholder color",
        "placeholder thumbhash",
        "placeholder blur",
        "preload",
        "client hints meta",
        "event handler",
    ):
        assert word in names, word
    calls = {c["call"] for c in GOOD}
    assert calls == {"url", "srcset", "picture", "info_url", "preload_link", "client_hints_meta"}
    assert len(BAD) >= 20
    vector = next(c for c in GOOD if c["name"] == "readme test vector (path only)")
    assert vector["expected"] == "/rqufbFtvkzI1TYyIM7jKdQdcFfaR8jZ4ZsKp2s1zEzc/w:400/f:auto/demo/photo.jpg"
    short = next(c for c in GOOD if c["name"] == "readme test vector, 16-byte signature")
    assert short["expected"] == "/rqufbFtvkzI1TYyIM7jKdQ/w:400/f:auto/demo/photo.jpg"


@pytest.mark.parametrize("case", GOOD, ids=[c["name"] for c in GOOD])
def test_fixture_case(case):
    assert run_case(case) == case["expected"]


@pytest.mark.parametrize("case", BAD, ids=[c["name"] for c in BAD])
def test_fixture_error_case(case):
    with pytest.raises(ValueError):
        run_case(case)


def test_fixture_is_current():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout


def test_fixture_check_fails_on_a_stale_file_and_regenerates_it(tmp_path):
    stale = tmp_path / "url-fixtures.json"
    stale.write_text(FIXTURE.read_text(encoding="utf-8").replace("rqufbFtvkzI1", "rqufbFtvkzI2", 1), encoding="utf-8")
    check = [sys.executable, str(SCRIPT), "--check", "--file", str(stale)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "out of date" in result.stderr
    subprocess.run([sys.executable, str(SCRIPT), "--file", str(stale)], check=True, capture_output=True, timeout=60)
    assert stale.read_text(encoding="utf-8") == FIXTURE.read_text(encoding="utf-8")


def test_url_cases_parse_back_and_verify():
    """Every URL case without a preset (the parser needs the proxy's presets) is a path the proxy's
    parser reads back to the same origin and key, signed with the case's key."""
    checked = 0
    for case in GOOD:
        if case["call"] != "url" or "pr:" in case["expected"]:
            continue
        path = case["expected"].removeprefix(case["base_url"].rstrip("/"))
        signature, _, unsigned = path[1:].partition("/")
        _spec, origin, key = parse_path("/" + unsigned)
        assert (origin, key) == (case["origin"], case["key"]), case["name"]
        PathSigner([case["signing_key"]], size=case["signature_size"]).verify(signature, "/" + unsigned)
        checked += 1
    assert checked >= 30


def test_info_cases_are_signed_over_the_info_path():
    """/info URLs: ``/info/{signature}/{origin}/{key}``, the signature over ``/info/{origin}/{key}``
    and never valid for the transform path ``/{origin}/{key}``."""
    infos = [case for case in GOOD if case["call"] == "info_url"]
    assert len(infos) >= 5
    for case in infos:
        path = case["expected"].removeprefix(case["base_url"].rstrip("/"))
        assert path.startswith("/info/"), case["name"]
        signature, _, unsigned = path.removeprefix("/info/").partition("/")
        _spec, origin, key = parse_path("/" + unsigned)
        assert (origin, key) == (case["origin"], case["key"]), case["name"]
        signer = PathSigner([case["signing_key"]], size=case["signature_size"])
        signer.verify(signature, "/info/" + unsigned)
        with pytest.raises(ProxyError):
            signer.verify(signature, "/" + unsigned)


# --------------------------------------------------------------------------- the JavaScript package


def test_js_package_node_tests():
    """``node --test`` in clients/js: every fixture case and the package's own API tests."""
    result = run_node_tests(JS / "test", "the JavaScript URL builder")
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= len(CASES), result.stdout[-2000:]


def test_js_package_metadata():
    package = json.loads((JS / "package.json").read_text(encoding="utf-8"))
    assert package["name"] == "edgeproxy-urls" and package["type"] == "module"
    assert package["license"] == "Apache-2.0" and package["scripts"]["test"] == "node --test"
    assert not package.get("dependencies"), "the JavaScript builder has no runtime dependencies"
    for name in package["files"]:
        assert (JS / name).is_file(), name


# --------------------------------------------------------------------------- the Python API


def test_format_value():
    assert format_value(True) == "1" and format_value(False) == "0"
    assert format_value(2.0) == "2" and format_value(0.25) == "0.25" and format_value(-0.0) == "0"
    assert format_value(1e-7) == "0.0000001" and format_value(1e21) == "1000000000000000000000"
    assert format_value(0.1 + 0.2) == "0.30000000000000004"
    assert format_value(("fp", 0.3, 0.4)) == "fp:0.3:0.4" and format_value(["auto", 640]) == "auto:640"
    for bad in (float("nan"), float("inf"), (), [1, [2]]):
        with pytest.raises(ValueError):
            format_value(bad)
    with pytest.raises(TypeError):
        format_value({"a": 1})


OPTIONS = {
    "version": "v1",
    "q": 70,
    "width": 300,
    "fit": "cover",
    "gravity": ("fp", 0.25, 0.75),
    "dpr": 1.5,
    "f": "webp",
    "h": 200,
    "sharpen": 0.5,
    "exp": 1900000000,
    "enlarge": True,
    "preset": "thumb",
}


@given(st.permutations(list(OPTIONS.items())))
def test_option_order_is_fixed(items):
    builder = UrlBuilder("", KEY)
    path = builder.path("demo", "a.jpg", **dict(items))
    assert path == builder.path("demo", "a.jpg", **OPTIONS)
    names = [segment.partition(":")[0] for segment in path.split("/")[2:-2]]
    assert names == ["pr", "w", "h", "fit", "g", "dpr", "f", "q", "sharpen", "enlarge", "exp", "v"]
    assert names == sorted(names, key=OPTION_ORDER.index)


def test_long_and_short_names_are_the_same_option():
    builder = UrlBuilder("", KEY)
    long = builder.path(
        "demo",
        "a.jpg",
        width=100,
        height=50,
        gravity="smart",
        format="png",
        quality=9,
        crop=(0, 0, 10, 10),
        rotate=90,
        background="ffffff",
        expires=2000000000,
        version="x",
    )
    short = builder.path(
        "demo",
        "a.jpg",
        w=100,
        h=50,
        g="smart",
        f="png",
        q=9,
        c=(0, 0, 10, 10),
        rot=90,
        bg="ffffff",
        exp=2000000000,
        v="x",
    )
    assert long == short
    with pytest.raises(ValueError, match="more than once"):
        builder.path("demo", "a.jpg", width=100, w=100)
    assert builder.path("demo", "a.jpg", width=None, w=100) == builder.path("demo", "a.jpg", w=100)


def test_builder_errors_and_repr():
    with pytest.raises(ValueError, match="1..100"):
        UrlBuilder("", KEY).url("demo", "a.jpg", quality=0)  # the parser's own message
    with pytest.raises(ValueError, match="w:auto"):
        UrlBuilder("", KEY).url("demo", "a.jpg", width="auto", height=100)
    with pytest.raises(ValueError):
        UrlBuilder("https://x.example/a b", KEY)
    with pytest.raises(ValueError):
        UrlBuilder("", KEY, signature_size=40)
    builder = UrlBuilder("https://img.example.com//", "s3cret")
    assert builder.base_url == "https://img.example.com" and "s3cret" not in repr(builder)
    assert builder.url("demo", "a.jpg").startswith("https://img.example.com/")


def test_import_needs_no_jinja2():
    code = (
        "import sys, edgeproxy.url.builders; assert not {'jinja2', 'markupsafe'} & set(sys.modules), sys.modules.keys()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- picture's HTML


class Tags(HTMLParser):
    """Start tags in order, attributes unescaped."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def candidates(srcset: str) -> list[tuple[str, str]]:
    """(url, descriptor) of each srcset candidate."""
    return [tuple(candidate.rsplit(" ", 1)) for candidate in srcset.split(", ")]


ALT = 'Tom\'s "cat" <b> & co'


def test_picture_html():
    builder = UrlBuilder("https://img.example.com", KEY)
    sizes = "(min-width: 800px) 50vw, 100vw"
    html = builder.picture(
        "demo",
        "cats/tom & jerry.jpg",
        [1280, 320, 640, 2048, 640],
        formats=("avif", "webp"),
        sizes=sizes,
        alt=ALT,
        original=(1600, 1067),
        quality=70,
    )
    tags = Tags(html).tags
    assert [t for t, _ in tags] == ["picture", "source", "source", "img"]
    assert html.endswith("</picture>") and "\n" not in html
    for (_, attrs), (mime, fmt) in zip(tags[1:3], [("image/avif", "avif"), ("image/webp", "webp")], strict=True):
        assert attrs["type"] == mime and attrs["sizes"] == sizes
        got = candidates(attrs["srcset"])
        # 2048 is above the 1600-px original: dropped, and 1600w (its true width) added
        assert [d for _, d in got] == ["320w", "640w", "1280w", "1600w"]
        for url, descriptor in got:
            assert url == builder.url("demo", "cats/tom & jerry.jpg", width=int(descriptor[:-1]), f=fmt, q=70)
    img = tags[3][1]
    assert img["alt"] == ALT and img["sizes"] == sizes
    assert (img["width"], img["height"]) == ("1600", "1067")  # 2048 capped at the original's 1600
    assert img["loading"] == "lazy" and img["decoding"] == "async" and "fetchpriority" not in img
    assert [d for _, d in candidates(img["srcset"])] == ["320w", "640w", "1280w", "1600w"]
    assert "/f:" not in img["srcset"]  # the img negotiates (f:auto)
    assert img["src"] == builder.url("demo", "cats/tom & jerry.jpg", width=640, q=70)  # largest <= 1024
    assert 'alt="Tom&#x27;s &quot;cat&quot; &lt;b&gt; &amp; co"' in html


def test_picture_box_and_src_choices():
    builder = UrlBuilder("", KEY)
    img = Tags(builder.picture("demo", "a.jpg", [400, 800], aspect=(16, 9), format="jpeg", loading=None)).tags[-1][1]
    assert (img["width"], img["height"]) == ("800", "450") and "loading" not in img
    assert img["src"] == builder.url("demo", "a.jpg", w=800, h=450, fit="cover", f="jpeg")
    img = Tags(builder.picture("demo", "a.jpg", [480, 960])).tags[-1][1]
    assert "width" not in img and "height" not in img  # neither aspect nor original: unknown
    img = Tags(builder.picture("demo", "a.jpg", [2048, 1536], original=(4000, 3000))).tags[-1][1]
    assert img["src"] == builder.url("demo", "a.jpg", w=1536)  # every width over 1024: the smallest
    assert (img["width"], img["height"]) == ("2048", "1536")
    img = Tags(builder.picture("demo", "a.jpg", [8], aspect=(16, 9))).tags[-1][1]
    assert img["height"] == "5"  # 4.5 rounds half up, as JavaScript's Math.round


def test_srcset_densities_and_aspect():
    builder = UrlBuilder("", KEY)
    got = candidates(builder.srcset("demo", "a.jpg", densities=[2, 1, 1.5], width=300, aspect=(4, 3)))
    assert [d for _, d in got] == ["1x", "1.5x", "2x"]
    assert got[1][0] == builder.path("demo", "a.jpg", w=300, h=225, fit="cover", dpr=1.5)
    got = candidates(builder.srcset("demo", "a.jpg", [300], aspect=2.0, fit="fill"))
    assert got == [(builder.path("demo", "a.jpg", w=300, h=150, fit="fill"), "300w")]


def test_picture_priority_and_its_preload_link():
    builder = UrlBuilder("https://img.example.com", KEY)
    args = {"sizes": "100vw", "original": (1920, 1280), "alt": "Hero"}
    tags = Tags(builder.picture("demo", "hero.jpg", [480, 960, 1920], priority=True, **args)).tags
    img = tags[-1][1]
    assert (img["loading"], img["fetchpriority"], img["decoding"]) == ("eager", "high", "async")
    lazy = Tags(builder.picture("demo", "hero.jpg", [480, 960, 1920], **args)).tags[-1][1]
    assert lazy["loading"] == "lazy" and "fetchpriority" not in lazy
    # the preload names exactly the candidates of the first <source> (AVIF), typed, no href
    ((tag, link),) = Tags(builder.preload_link("demo", "hero.jpg", [480, 960, 1920], priority=True, **args)).tags
    assert tag == "link" and "href" not in link
    assert link == {
        "rel": "preload",
        "as": "image",
        "imagesrcset": tags[1][1]["srcset"],
        "imagesizes": "100vw",
        "type": "image/avif",
        "fetchpriority": "high",
    }


HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_picture_attrs_stay_inside_their_attribute():
    builder = UrlBuilder("", KEY)
    html = builder.picture(
        "demo",
        "a.jpg",
        [320],
        alt=HOSTILE,
        attrs={"title": HOSTILE, "data-x": "a & b", "style": "font-family: 'x'", "class": "hero", "decoding": "sync"},
    )
    tags = Tags(html).tags
    assert [t for t, _ in tags] == ["picture", "source", "source", "img"]  # nothing broke out
    img = tags[-1][1]
    assert img["title"] == img["alt"] == HOSTILE and img["data-x"] == "a & b"
    assert img["style"] == "font-family: 'x'" and img["decoding"] == "sync" and img["class"] == "hero"
    assert "<script>" not in html


@pytest.mark.parametrize(
    "attrs",
    [{"onerror": "x()"}, {"oNlOaD": "x()"}, {"a b": "1"}, {"a=b": "1"}, {"a/": "1"}, {"srcset": "x 1x"}, {"HEIGHT": 1}],
)
def test_picture_attrs_refused(attrs):
    with pytest.raises(ValueError):
        UrlBuilder("", KEY).picture("demo", "a.jpg", [320], attrs=attrs)


def test_picture_bad_types_and_unknown_options():
    builder = UrlBuilder("", KEY)
    with pytest.raises(TypeError):
        builder.picture("demo", "a.jpg", [320], attrs={"title": {"a": 1}})
    with pytest.raises(TypeError):
        builder.picture("demo", "a.jpg", [320], attrs=[("class", "x")])
    with pytest.raises(TypeError):
        builder.picture("demo", "a.jpg", [320], info="800x600")
    with pytest.raises(ValueError, match="unknown option 'zoom'"):
        builder.picture("demo", "a.jpg", [320], zoom=2)
    with pytest.raises(ValueError, match="unknown option 'zoom'"):
        builder.picture("demo", "a.jpg", [320], art=[{"media": "(max-width: 599px)", "zoom": 2}])


def test_picture_art_direction_sources():
    builder = UrlBuilder("", KEY)
    rule = {"media": "(max-width: 599px)", "aspect": (4, 5), "widths": [320, 640], "gravity": "face"}
    tags = Tags(builder.picture("demo", "a.jpg", [640, 1280], aspect=(16, 9), art=[rule], q=60)).tags
    sources = [attrs for tag, attrs in tags if tag == "source"]
    assert [(s.get("media"), s.get("type")) for s in sources] == [
        ("(max-width: 599px)", "image/avif"),
        ("(max-width: 599px)", "image/webp"),
        ("(max-width: 599px)", None),  # the img's format, for browsers without AVIF or WebP
        (None, "image/avif"),
        (None, "image/webp"),
    ]
    for source, fmt in zip(sources[:3], ["avif", "webp", None], strict=True):
        assert (source["width"], source["height"]) == ("640", "800")
        for url, descriptor in candidates(source["srcset"]):
            w = int(descriptor[:-1])
            assert url == builder.path("demo", "a.jpg", w=w, h=w * 5 // 4, fit="cover", g="face", f=fmt, q=60)
    assert "width" not in sources[3]
    assert [u for u, _ in candidates(sources[3]["srcset"])][0] == builder.path(
        "demo", "a.jpg", w=640, h=360, fit="cover", f="avif", q=60
    )


def test_picture_animated_and_placeholders():
    builder = UrlBuilder("", KEY)
    types = [a.get("type") for t, a in Tags(builder.picture("demo", "loop.gif", [320])).tags if t == "source"]
    assert types == ["image/webp"]
    types = [a.get("type") for t, a in Tags(builder.picture("demo", "a.webp", [320], info={"pages": 3})).tags]
    assert "image/avif" not in types
    info = {"width": 800, "height": 600, "dominant_color": "#102030"}
    img = Tags(builder.picture("demo", "a.jpg", [320, 1024], info=info, placeholder="color")).tags[-1][1]
    assert img["style"] == "background: #102030" and (img["width"], img["height"]) == ("800", "600")
    img = Tags(builder.picture("demo", "a.jpg", [320], placeholder="blur", attrs={"style": "width:100%"})).tags[-1][1]
    blur = builder.path("demo", "a.jpg", w=24, blur=2, q=30)
    assert img["style"] == f"background: url({blur}) center/cover; width:100%"


@pytest.mark.skipif("ar" not in OPTION_ORDER, reason="the grammar has no ar option yet (issue 22's ar branch)")
def test_picture_with_ar_sizes_and_caps_by_the_ratio():
    """The same case as the JavaScript test "picture with ar": ``ar`` in the options gives the box its
    ratio and caps the widths as ``aspect`` does."""
    builder = UrlBuilder("", KEY)
    html = builder.picture("demo", "a.jpg", [320, 640, 1280], ar="1:1", fit="cover", original=(1000, 600))
    img = Tags(html).tags[-1][1]
    assert [d for _, d in candidates(img["srcset"])] == ["320w", "600w"]
    assert (img["width"], img["height"]) == ("600", "600")
    assert "/w:600/ar:1:1/fit:cover/f:avif/demo/a.jpg 600w" in html
    icon = Tags(builder.picture("demo", "a.jpg", densities=[1, 2], width=48, ar=(4, 3))).tags[-1][1]
    assert (icon["width"], icon["height"]) == ("48", "36")


def test_client_hints_meta():
    assert client_hints_meta("https://img.example.com/") == (
        '<meta http-equiv="Delegate-CH" content="sec-ch-dpr https://img.example.com; '
        'sec-ch-width https://img.example.com; sec-ch-viewport-width https://img.example.com">'
    )
    assert ACCEPT_CH == "Accept-CH: Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width"
    for bad in ("img.example.com", "https://img.example.com/x", "ftp://img.example.com", 'https://a"b'):
        with pytest.raises(ValueError):
            client_hints_meta(bad)


# --------------------------------------------------------------------------- Jinja2


def test_jinja2_filters_with_autoescape():
    import jinja2
    import markupsafe

    builder = UrlBuilder("https://img.example.com", KEY)
    env = jinja2.Environment(autoescape=True)
    builder.install_jinja2(env)
    template = env.from_string(
        '<img src="{{ key | edgeproxy_url("demo", width=400) }}"'
        ' srcset="{{ key | edgeproxy_srcset("demo", [640, 320], aspect=(16, 9)) }}">'
        '<img srcset="{{ key | edgeproxy_srcset("demo", densities=[1, 2], width=100) }}">'
        '{{ key | edgeproxy_picture("demo", [320, 640], alt=alt, original=(800, 533)) }}'
    )
    key = "a b/c&d.jpg"
    out = template.render(key=key, alt=ALT)
    assert builder.url("demo", key, width=400) in out
    assert builder.srcset("demo", key, [320, 640], aspect=(16, 9)) in out
    assert builder.srcset("demo", key, densities=[1, 2], width=100) in out
    picture = builder.picture("demo", key, [320, 640], alt=ALT, original=(800, 533))
    assert out.endswith(picture)  # not escaped a second time
    assert "&amp;quot;" not in out and "&lt;picture" not in out
    filters = builder.jinja2_filters()
    assert set(filters) == {"edgeproxy_url", "edgeproxy_srcset", "edgeproxy_picture", "edgeproxy_preload"}
    preload = env.from_string('{{ key | edgeproxy_preload("demo", [320, 640], priority=True) }}').render(key=key)
    assert preload == builder.preload_link("demo", key, [320, 640]) and preload.startswith('<link rel="preload"')
    assert isinstance(filters["edgeproxy_picture"](key, "demo", [320]), markupsafe.Markup)
    assert not isinstance(filters["edgeproxy_url"](key, "demo"), markupsafe.Markup)


# --------------------------------------------------------------------------- a running proxy


@pytest.fixture(scope="module")
def served(photos: Path, tmp_path_factory) -> Iterator[httpx.Client]:
    """edgeproxy serving the synthetic library as ``demo``, the ODD_KEYS (copies of PHOTO) as ``odd``, and a
    preset ``thumb``."""
    odd = tmp_path_factory.mktemp("odd")
    for key in ODD_KEYS:
        (odd / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photos / PHOTO, odd / key)
    with make_client({"demo": str(photos), "odd": str(odd)}, presets={"thumb": "w:200/h:200/fit:cover"}) as c:
        yield c


def fetch(client: httpx.Client, path: str):
    status, body = raw_get(client, path)
    assert status == 200, (path, status, body[:200])
    return decode(body)


def test_proxy_serves_srcset_candidates(served):
    builder = UrlBuilder("", KEY)
    for url, descriptor in candidates(builder.srcset("demo", PHOTO, [320, 640])):
        image = fetch(served, url)
        assert image.width == int(descriptor[:-1]) and loader_format(image) == "jpeg"
    for url, descriptor in candidates(builder.srcset("demo", PHOTO, [320, 480], aspect=(16, 9))):
        image = fetch(served, url)
        width = int(descriptor[:-1])
        assert (image.width, image.height) == (width, round(width * 9 / 16))
    for url, descriptor in candidates(builder.srcset("demo", PHOTO, densities=[1, 2], width=100)):
        assert fetch(served, url).width == 100 * int(descriptor[:-1])


def test_proxy_serves_picture_sources(served):
    builder = UrlBuilder("", KEY)
    tags = Tags(builder.picture("demo", PHOTO, [320, 640], formats=("avif", "webp"), alt="x")).tags
    expected = {"image/avif": "heif", "image/webp": "webp"}  # AVIF decodes through heifload
    for _, attrs in tags[1:3]:
        for url, descriptor in candidates(attrs["srcset"]):
            image = fetch(served, url)
            assert loader_format(image) == expected[attrs["type"]] and image.width == int(descriptor[:-1])
    assert fetch(served, tags[3][1]["src"]).width == 640


def test_proxy_serves_builder_options(served):
    builder = UrlBuilder("", KEY)
    assert fetch(served, builder.path("demo", PHOTO, width=("auto", 640))).width == 640  # no hint: the fallback
    image = fetch(served, builder.path("demo", PHOTO, preset="thumb", f="png"))
    assert (image.width, image.height, loader_format(image)) == (200, 200, "png")
    image = fetch(
        served,
        builder.path(
            "demo",
            PHOTO,
            crop=(0.0, 0.0, 0.5, 0.5),
            dpr=1.5,
            width=100,
            strip=True,
            gravity=("fp", 0.3, 0.4),
            quality=50,
        ),
    )
    assert image.width == 150
    for key in ODD_KEYS:
        assert fetch(served, builder.path("odd", key, w=64)).width == 64, key


def test_proxy_answers_builder_info_urls_whose_signatures_render_nothing(served):
    builder = UrlBuilder("", KEY)
    for origin, key in [("demo", PHOTO), *(("odd", key) for key in ODD_KEYS)]:
        path = builder.info_path(origin, key)
        status, body = raw_get(served, path)
        assert status == 200, (key, body[:200])
        assert (json.loads(body)["width"], json.loads(body)["height"]) == (800, 533), key
        signature = path.split("/")[2]
        transform = builder.path(origin, key)  # the full-size original, option-less
        assert raw_get(served, transform)[0] == 200
        assert raw_get(served, "/" + signature + "/" + transform.split("/", 2)[2])[0] == 403, key
        assert raw_get(served, "/info/" + transform.split("/", 2)[1] + path.split(signature, 1)[1])[0] == 403, key


def test_proxy_serves_capped_art_directed_and_placeholder_candidates(served):
    """What picture() writes with original= (from /info), art and a blur placeholder is what the proxy
    renders: every candidate exactly its descriptor's width (the capped one too), art crops at their
    ratio, the placeholder 24 pixels wide."""
    builder = UrlBuilder("", KEY)
    info = json.loads(raw_get(served, builder.info_path("demo", PHOTO))[1])
    rule = {"media": "(max-width: 599px)", "aspect": (4, 5), "widths": [200, 400, 1200], "gravity": "smart"}
    html = builder.picture("demo", PHOTO, [320, 640, 1280], info=info, art=[rule], placeholder="blur")
    tags = Tags(html).tags
    img = tags[-1][1]
    assert [d for _, d in candidates(img["srcset"])] == ["320w", "640w", "800w"]  # 1280 > the 800-px original
    assert (img["width"], img["height"]) == ("800", "533")
    for _, attrs in tags[1:]:
        for url, descriptor in candidates(attrs["srcset"]):
            image = fetch(served, url)
            assert image.width == int(descriptor[:-1]), url
            if attrs.get("media"):
                assert abs(image.height - image.width * 5 / 4) <= 0.5, url
    art = [d for _, d in candidates(tags[1][1]["srcset"])]
    assert art == ["200w", "400w", "426w"]  # 533 × 4/5 = 426: the widest 4:5 crop of the original
    blur = re.fullmatch(r"background: url\((\S+)\) center/cover", img["style"])
    assert blur and fetch(served, blur.group(1)).width == 24


def test_proxy_info_feeds_the_placeholders(served):
    """The proxy's own ``/info`` JSON, given as ``info=``, makes the colour and thumbhash placeholders
    (and the box); the thumbhash is a PNG that decodes."""
    builder = UrlBuilder("", KEY)
    info = json.loads(raw_get(served, builder.info_path("demo", PHOTO))[1])
    if "dominant_color" not in info:
        pytest.skip("this /info has no placeholders yet (issue 22's info branch)")
    img = Tags(builder.picture("demo", PHOTO, [320, 640], info=info, placeholder="color")).tags[-1][1]
    assert img["style"] == f"background: {info['dominant_color']}" and (img["width"], img["height"]) == ("640", "426")
    img = Tags(builder.picture("demo", PHOTO, [320], info=info, placeholder="thumbhash")).tags[-1][1]
    found = re.fullmatch(r"background: url\(data:image/png;base64,(\S+)\) center/cover", img["style"])
    assert found and loader_format(decode(base64.b64decode(found.group(1)))) == "png"


def test_proxy_animated_picture_has_no_still_avif(served):
    builder = UrlBuilder("", KEY)
    tags = Tags(builder.picture("demo", "animated.gif", [64], formats=("avif", "webp"))).tags
    assert [a.get("type") for t, a in tags if t == "source"] == ["image/webp"]
    ((url, _),) = candidates(tags[1][1]["srcset"])
    status, body = raw_get(served, url)
    assert status == 200 and decode(body).get_n_pages() == 3  # animated WebP, every frame


def test_proxy_refuses_a_wrong_key_or_size(served):
    status, _ = raw_get(served, UrlBuilder("", "not-the-key").path("demo", PHOTO, w=100))
    assert status == 403
    status, _ = raw_get(served, UrlBuilder("", KEY, signature_size=16).path("demo", PHOTO, w=100))
    assert status == 403


def test_proxy_with_truncated_signatures(photos):
    with make_client({"demo": str(photos)}, signature_size=16) as client:
        url = UrlBuilder("", KEY, signature_size=16).path("demo", PHOTO, w=120)
        assert len(url.split("/")[1]) == 22
        status, body = raw_get(client, url)
        assert status == 200 and decode(body).width == 120
