"""A real headless Chromium against edgeproxy: what the browser asked for, received and decoded.

The page is served from one 127.0.0.1 port (a small Starlette app) and its images point at
edgeproxy on another (``client_hints = true``, the synthetic library as origin ``demo``), so the proxy is a
third party as it is behind a CDN host. All markup (``<picture>``, ``srcset``, URLs) comes from
``edgeproxy.url.builders.UrlBuilder``. Playwright for Python drives Debian's ``/usr/bin/chromium`` (never a
downloaded browser: ``executable_path`` is given, ``playwright install`` is never run); every image
request's headers, the response's headers and body (through CDP) and each ``<img>``'s state are
recorded, the bodies decoded with libvips and compared with what the browser decoded.

Proved here, each against a control that would tell the difference:

- ``f:auto`` and ``<picture>``'s AVIF source are served as AVIF to Chromium (whose ``Accept`` lists
  ``image/avif``) and render;
- device scale factor 2 makes Chromium fetch the 2x ``w`` candidate of ``srcset`` (DSF 1 the 1x one);
- client hints reach the proxy only when the page opts in (``Accept-CH``) and delegates them to the
  proxy's origin (``<meta http-equiv="Delegate-CH">`` or a ``Permissions-Policy`` header);
  ``w:auto`` then serves the hinted width rounded up to a bucket, else its fallback;
- ``width``/``height`` attributes keep a DPR-2 derivative at its CSS size;
- the pixels the browser decoded (``createImageBitmap``) are the pixels the proxy sent.

Artifacts (screenshots, ``requests.json``, ``requests.md``) go to ``$EDGEPROXY_TEST_ARTIFACTS``
(default ``.artifacts/browser/``); ``pytest -s`` prints the request table. Without Chromium or
Playwright the module skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from edgeproxy.url.builders import UrlBuilder
from testkit.app import KEY, make_served, serve_app
from testkit.env import IN_CI, ROOT
from testkit.images import decode, loader_format

pytestmark = pytest.mark.slow  # a real Chromium: not in the quick loop (pytest -m 'not slow')

try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

CHROMIUM = os.environ.get("EDGEPROXY_CHROMIUM", "/usr/bin/chromium")
# Root in a container: no sandbox; no GPU or /dev/shm to speak of.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("EDGEPROXY_TEST_ARTIFACTS") or ROOT / ".artifacts" / "browser")

PHOTO = "large.jpg"  # the synthetic library's 2725 x 2225 JPEG: large enough that every width below is a real downscale
PHOTO_W, PHOTO_H = 2725, 2225

#: What the page learns about each image once everything has loaded: state, the density-corrected
#: natural size, the size of the bitmap the browser decoded (``createImageBitmap``: device pixels)
#: and the layout box.
IMAGES_JS = """async () => Promise.all([...document.images].map(async (img) => {
  let bitmap = null;
  if (img.complete && img.naturalWidth > 0) bitmap = await createImageBitmap(img);
  const rect = img.getBoundingClientRect();
  const info = {
    id: img.id || (img.closest("[id]") || {}).id || "", complete: img.complete,
    currentSrc: img.currentSrc, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
    pixelWidth: bitmap && bitmap.width, pixelHeight: bitmap && bitmap.height,
    rectWidth: rect.width, rectHeight: rect.height,
  };
  if (bitmap) bitmap.close();
  return info;
}))"""
ALL_LOADED_JS = "[...document.images].every((img) => img.complete)"


def browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    if sync_playwright is None:
        return "playwright is not installed (pip install '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; EDGEPROXY_CHROMIUM names another)"
    return None


@dataclass
class Observed:
    """One image request the browser made to the proxy, its answer, and the elements showing it."""

    scenario: str
    url: str
    accept: str | None
    sec_ch_width: str | None
    sec_ch_dpr: str | None
    status: int | None
    content_type: str | None
    content_length: str | None
    vary: str | None
    bytes: int
    decoded_format: str | None
    decoded_width: int | None
    decoded_height: int | None
    elements: list[dict] = field(default_factory=list)
    body: bytes = field(default=b"", repr=False)

    @property
    def path(self) -> str:
        """The URL path without its host, the signature shortened (for the table)."""
        path = "/" + self.url.split("/", 3)[3]
        _, signature, rest = path.split("/", 2)
        return f"/{signature[:6]}…/{rest}"

    def element(self, name: str) -> dict:
        found = [e for e in self.elements if e["id"] == name]
        assert len(found) == 1, f"{name} is not shown by {self.url}: {self.elements}"
        return found[0]

    def vary_names(self) -> list[str]:
        return [v.strip().lower() for v in (self.vary or "").split(",") if v.strip()]


@dataclass
class Visit:
    """A page as one browser context saw it."""

    scenario: str
    page_headers: dict[str, str]
    images: list[dict]
    requests: list[Observed]
    meta_delegate_ch: str | None

    def image(self, name: str) -> dict:
        found = [i for i in self.images if i["id"] == name]
        assert len(found) == 1, f"no single <img> {name} on the page: {self.images}"
        return found[0]

    def request_for(self, url: str) -> Observed:
        found = [r for r in self.requests if r.url == url]
        assert len(found) == 1, f"{url} was requested {len(found)} times; requests: {[r.url for r in self.requests]}"
        return found[0]


class Harness:
    """The proxy, the page server, one Chromium, and the record of every image request."""

    def __init__(self, browser: Browser, proxy: str, site: str, pages: dict[str, tuple[str, dict[str, str]]]):
        self.browser = browser
        self.proxy = proxy
        self.site = site
        self.pages = pages
        self.urls = UrlBuilder(proxy, KEY)
        self.observed: list[Observed] = []

    def page(self, name: str, body: str, *, head: str = "", headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` as page ``/name`` with extra ``head`` markup and response ``headers``."""
        self.pages[name] = (
            "<!doctype html><html><head><meta charset=utf-8>"
            + head
            + f"<title>{html.escape(name)}</title>"
            + "<style>body{margin:8px;font:14px sans-serif} img{display:block;margin:4px 0}</style>"
            + f"</head><body>{body}</body></html>",
            headers or {},
        )
        return name

    def visit(
        self,
        scenario: str,
        page: str,
        *,
        dsf: float,
        width: int,
        height: int = 800,
        after_load: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Visit:
        """Load ``page`` in a fresh context (own cache, own client-hint state) at device scale factor
        ``dsf`` and a viewport ``width`` CSS pixels wide; ``after_load``: a JS function to await once
        the page has loaded (it may add images); ``extra_headers``: sent with every request (they
        replace the browser's own). Screenshot to ``ARTIFACTS/{scenario}.png``."""
        context = self.browser.new_context(
            device_scale_factor=dsf, viewport={"width": width, "height": height}, extra_http_headers=extra_headers
        )
        context.set_default_timeout(20_000)
        try:
            tab = context.new_page()
            requests = []
            tab.on("request", lambda request: requests.append(request))
            navigation = tab.goto(f"{self.site}/{page}", wait_until="load")
            assert navigation is not None and navigation.status == 200
            tab.wait_for_function(ALL_LOADED_JS)
            if after_load:
                tab.evaluate(after_load)
                tab.wait_for_function(ALL_LOADED_JS)
            images = tab.evaluate(IMAGES_JS)
            meta = tab.evaluate(
                "(document.querySelector('meta[http-equiv=\"Delegate-CH\" i]') || {content: null}).content"
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / f"{scenario}.png"), full_page=True)
            observed = [self._observe(scenario, r, images) for r in requests if r.url.startswith(self.proxy + "/")]
            page_headers = navigation.all_headers()
        finally:
            context.close()
        self.observed.extend(observed)
        return Visit(scenario, page_headers, images, observed, meta)

    def _observe(self, scenario: str, request, images: list[dict]) -> Observed:
        sent = request.all_headers()  # what went on the wire, Sec-CH-* included
        response = request.response()
        headers = response.all_headers() if response else {}
        body = response.body() if response and response.status == 200 else b""
        fmt = width = height = None
        if body:
            image = decode(body)
            fmt = loader_format(image)
            if fmt == "heif":
                fmt = "avif" if image.get("heif-compression") == "av1" else "heic"
            width, height = image.width, image.height
        return Observed(
            scenario=scenario,
            url=request.url,
            accept=sent.get("accept"),
            sec_ch_width=sent.get("sec-ch-width"),
            sec_ch_dpr=sent.get("sec-ch-dpr"),
            status=response.status if response else None,
            content_type=headers.get("content-type"),
            content_length=headers.get("content-length"),
            vary=headers.get("vary"),
            bytes=len(body),
            decoded_format=fmt,
            decoded_width=width,
            decoded_height=height,
            elements=[i for i in images if i["currentSrc"] == request.url],
            body=body,
        )

    def write_artifacts(self) -> str:
        """``requests.json`` and ``requests.md`` in ``ARTIFACTS``; returns the markdown table."""
        rows = [
            "| scenario | URL path | Accept | Sec-CH-Width | Sec-CH-DPR | status | Content-Type | Vary | bytes "
            "| decoded | naturalWidth (element) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for o in self.observed:
            shown = ", ".join(f"{e['naturalWidth']} (#{e['id']})" for e in o.elements) or "–"
            decoded = f"{o.decoded_format} {o.decoded_width}×{o.decoded_height}" if o.decoded_format else "–"
            rows.append(
                f"| {o.scenario} | `{o.path}` | `{o.accept}` | {o.sec_ch_width or '–'} | {o.sec_ch_dpr or '–'} "
                f"| {o.status} | {o.content_type} | {o.vary or '–'} | {o.bytes} | {decoded} | {shown} |"
            )
        table = "\n".join(rows) + "\n"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "requests.md").write_text(table)
        records = [{k: v for k, v in asdict(o).items() if k != "body"} | {"path": o.path} for o in self.observed]
        (ARTIFACTS / "requests.json").write_text(json.dumps(records, indent=2) + "\n")
        return table


def _site() -> tuple[Starlette, dict[str, tuple[str, dict[str, str]]]]:
    pages: dict[str, tuple[str, dict[str, str]]] = {}

    async def page(request: Request) -> Response:
        found = pages.get(request.path_params["name"])
        if found is None:
            return Response(status_code=404)  # /favicon.ico
        body, headers = found
        return HTMLResponse(body, headers={"Cache-Control": "no-store", **headers})

    return Starlette(routes=[Route("/{name}", page)]), pages


@pytest.fixture(scope="module")
def harness(photos: Path) -> Iterator[Harness]:
    missing = browser_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true but the browser test cannot run: {missing}")
        pytest.skip(missing)
    app, pages = _site()
    with (
        make_served({"demo": str(photos)}, client_hints=True) as (client, _proxy_app),
        serve_app(app) as site,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        h = Harness(browser, str(client.base_url).rstrip("/"), site, pages)
        try:
            yield h
        finally:
            version = browser.version
            browser.close()
            if h.observed:
                table = h.write_artifacts()
                print(f"\nImage requests seen by Chromium {version} (artifacts in {ARTIFACTS}):\n{table}")


def accept_lists(accept: str | None, media: str) -> bool:
    """``Accept`` names ``media`` itself (not through a wildcard) with q > 0."""
    for item in (accept or "").split(","):
        name, *params = (p.strip() for p in item.split(";"))
        if name.lower() != media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                q = float(value)
        return q > 0
    return False


def check_served(o: Observed, fmt: str, width: int) -> None:
    """The proxy answered ``fmt`` ``width`` pixels wide, and the browser decoded exactly those pixels."""
    assert o.status == 200, o
    assert o.content_type == f"image/{fmt}", o
    assert o.content_length == str(o.bytes), "the browser received a different body than announced"
    assert (o.decoded_format, o.decoded_width) == (fmt, width), o
    assert o.decoded_height == round(width * PHOTO_H / PHOTO_W), o
    assert o.elements, f"no element shows {o.url}"
    for element in o.elements:
        assert element["complete"] and element["naturalWidth"] > 0, element
        assert (element["pixelWidth"], element["pixelHeight"]) == (o.decoded_width, o.decoded_height), element


# ---------------------------------------------------------------------------------------- formats


def test_avif_from_picture_and_negotiated_srcset(harness: Harness):
    """``<picture>``'s AVIF source and an ``f:auto`` ``srcset`` both arrive as AVIF and render."""
    u = harness.urls
    picture = u.picture(
        "demo",
        PHOTO,
        [320, 480, 640, 960],
        formats=("avif", "webp"),
        sizes="480px",
        alt="picture",
        original=(PHOTO_W, PHOTO_H),
        loading="eager",
    )
    srcset = u.srcset("demo", PHOTO, [320, 640, 960], format="auto")
    # picture()'s width/height attributes give the aspect ratio (960 × 784); CSS sets the size.
    page = harness.page(
        "formats",
        "<style>#picture img{width:480px;height:auto}</style>"
        f'<div id="picture">{picture}</div>'
        f'<img id="negotiated" srcset="{html.escape(srcset)}" '
        f'sizes="(max-width: 600px) 100vw, 320px" width="320" height="261" alt="negotiated">',
    )
    visit = harness.visit("formats", page, dsf=1, width=1000)

    from_picture = u.url("demo", PHOTO, width=480, format="avif")  # the AVIF <source>'s 480w candidate
    negotiated = u.url("demo", PHOTO, width=320, format="auto")
    avif_source = re.search(r'<source type="image/avif" srcset="([^"]*)"', picture)
    assert avif_source and f"{from_picture} 480w" in html.unescape(avif_source.group(1)).split(", ")
    assert sorted(r.url for r in visit.requests) == sorted([from_picture, negotiated]), (
        "Chromium should fetch the AVIF source's 1x candidate and the f:auto 1x candidate, nothing else"
    )

    for url, element, width in ((from_picture, "picture", 480), (negotiated, "negotiated", 320)):
        o = visit.request_for(url)
        assert accept_lists(o.accept, "image/avif"), o.accept
        check_served(o, "avif", width)
        shown = o.element(element)
        assert shown["currentSrc"] == url
        assert shown["naturalWidth"] == width  # a w candidate exactly the slot width: density 1
    # f:auto varies on Accept; the <source>'s explicit f:avif is the URL's contract and does not.
    assert "accept" in visit.request_for(negotiated).vary_names()
    assert "accept" not in visit.request_for(from_picture).vary_names()

    # Control: the same page with an Accept that lists WebP only. f:auto follows it; the <source>
    # Chromium picks by its own support (type="image/avif") still gets its explicit AVIF.
    webp_only = harness.visit(
        "formats-accept-webp", page, dsf=1, width=1000, extra_headers={"Accept": "image/webp,*/*;q=0.8"}
    )
    assert sorted(r.url for r in webp_only.requests) == sorted([from_picture, negotiated])
    o = webp_only.request_for(negotiated)
    assert not accept_lists(o.accept, "image/avif") and accept_lists(o.accept, "image/webp"), o.accept
    check_served(o, "webp", 320)
    check_served(webp_only.request_for(from_picture), "avif", 480)


# --------------------------------------------------------------------------- device scale factor


def test_device_scale_factor_picks_the_matching_candidate(harness: Harness):
    """The same ``srcset``/``sizes`` at DSF 1 and 2 (and a narrow viewport) fetches different candidates."""
    u = harness.urls
    widths = [400, 800, 1200]
    srcset = u.srcset("demo", PHOTO, widths, format="auto")
    sizes = "(max-width: 600px) 100vw, 400px"
    page = harness.page("density", f'<img id="hero" srcset="{html.escape(srcset)}" sizes="{sizes}" alt="hero">')
    candidate = {w: u.url("demo", PHOTO, width=w, format="auto") for w in widths}
    for w in widths:
        assert f"{candidate[w]} {w}w" in srcset

    # (dsf, viewport width) -> slot in CSS px and the candidate Chromium must choose:
    # 400 px slot: DSF 1 needs 400 device px (400w), DSF 2 needs 800 (800w);
    # 560 px viewport: the slot is 100vw = 560, DSF 2 needs 1120 (1200w).
    cases = {(1, 1000): (400, 400), (2, 1000): (400, 800), (2, 560): (560, 1200)}
    for (dsf, viewport), (slot, chosen) in cases.items():
        visit = harness.visit(f"density-dsf{dsf}-vw{viewport}", page, dsf=dsf, width=viewport)
        assert [r.url for r in visit.requests] == [candidate[chosen]], (dsf, viewport, visit.requests)
        o = visit.request_for(candidate[chosen])
        check_served(o, "avif", chosen)
        hero = o.element("hero")
        assert hero["currentSrc"] == candidate[chosen]
        # naturalWidth is density-corrected (HTML: the w descriptor / slot gives the density): the
        # chosen image's pixels / (chosen / slot) = the slot, in CSS pixels; the bitmap holds all of them.
        assert hero["naturalWidth"] == slot
        assert hero["pixelWidth"] == chosen
        assert round(hero["rectWidth"]) == slot


# --------------------------------------------------------------------------------- client hints


def _hint_markup(u: UrlBuilder) -> tuple[str, dict[str, str]]:
    urls = {
        "auto": u.url("demo", PHOTO, width="auto", format="auto"),  # hint 600 -> 640; fallback 640
        "wide": u.url("demo", PHOTO, width=("auto", 200), format="auto"),  # hint 800 -> 828; fallback 200 -> 240
        "dpr": u.url("demo", PHOTO, width=300, dpr="auto", format="auto"),  # hint 2 -> 600; fallback 300
        # CSS width only: Chromium sends Sec-CH-DPR but no Sec-CH-Width, so the fallback 200 CSS px
        # × the hinted DPR 2 -> 400 -> 424; no hint at all: 200 -> 240.
        "css": u.url("demo", PHOTO, width=("auto", 200), dpr="auto", format="auto"),
    }
    body = (
        f'<img id="auto" sizes="300px" src="{urls["auto"]}" alt="w:auto">'
        f'<img id="wide" sizes="400px" src="{urls["wide"]}" alt="w:auto:200">'
        f'<img id="dpr" src="{urls["dpr"]}" width="300" height="245" alt="dpr:auto">'
        f'<img id="css" style="width:200px" src="{urls["css"]}" alt="w:auto:200/dpr:auto">'
    )
    return body, urls


@pytest.mark.parametrize("delegation", ["meta", "permissions-policy"])
def test_client_hints_delegated_to_the_proxy(harness: Harness, delegation: str):
    """With ``Accept-CH`` and the hints delegated to the proxy's origin, Chromium at DSF 2 sends
    Sec-CH-DPR for every image and Sec-CH-Width (the slot × DPR) for an ``<img>`` whose ``sizes``
    or ``width`` attribute gives its slot, never from CSS layout; ``w:auto`` and ``dpr:auto`` turn
    them into bucketed sizes and say so in ``Vary``."""
    u = harness.urls
    proxy = harness.proxy
    headers = {"Accept-CH": "Sec-CH-DPR, Sec-CH-Width"}
    head = ""
    if delegation == "meta":
        head = f'<meta http-equiv="Delegate-CH" content="sec-ch-dpr {proxy}; sec-ch-width {proxy}">'
    else:
        headers["Permissions-Policy"] = f'ch-dpr=(self "{proxy}"), ch-width=(self "{proxy}")'
    body, urls = _hint_markup(u)
    page = harness.page(f"hints-{delegation}", body, head=head, headers=headers)
    visit = harness.visit(f"hints-{delegation}", page, dsf=2, width=1000)

    assert visit.page_headers.get("accept-ch") == "Sec-CH-DPR, Sec-CH-Width"
    if delegation == "meta":
        assert visit.meta_delegate_ch == f"sec-ch-dpr {proxy}; sec-ch-width {proxy}"
    assert sorted(r.url for r in visit.requests) == sorted(urls.values())

    auto = visit.request_for(urls["auto"])
    assert (auto.sec_ch_width, auto.sec_ch_dpr) == ("600", "2")  # sizes 300px × DPR 2
    assert "sec-ch-width" in auto.vary_names()
    check_served(auto, "avif", 640)  # 600 rounded up to the 640 bucket
    assert auto.element("auto")["naturalWidth"] == 640  # a src (density 1): natural = pixels

    wide = visit.request_for(urls["wide"])
    assert (wide.sec_ch_width, wide.sec_ch_dpr) == ("800", "2")
    check_served(wide, "avif", 828)  # the hint wins over the URL's fallback

    dpr = visit.request_for(urls["dpr"])
    # Chromium 156 also takes the slot from a width attribute (300 × 2); the proxy ignores it here.
    assert (dpr.sec_ch_width, dpr.sec_ch_dpr) == ("600", "2")
    assert "sec-ch-dpr" in dpr.vary_names() and "sec-ch-width" not in dpr.vary_names()
    check_served(dpr, "avif", 600)  # w:300 × DPR 2
    assert round(dpr.element("dpr")["rectWidth"]) == 300  # laid out by its width attribute

    css = visit.request_for(urls["css"])
    assert (css.sec_ch_width, css.sec_ch_dpr) == (None, "2"), "a CSS width is no slot for Sec-CH-Width"
    assert {"sec-ch-width", "sec-ch-dpr"} <= set(css.vary_names())
    check_served(css, "avif", 424)  # fallback 200 CSS px × hinted DPR 2 = 400, rounded up to 424


def test_client_hints_absent_without_delegation(harness: Harness):
    """``Accept-CH`` alone opts the page's own origin in, not the proxy's: no hint reaches it, and
    ``w:auto``/``dpr:auto`` serve their fallbacks. The ``Accept-CH`` on the proxy's own image answers
    changes nothing for images requested after them."""
    u = harness.urls
    body, urls = _hint_markup(u)
    page = harness.page("no-delegation", body, headers={"Accept-CH": "Sec-CH-DPR, Sec-CH-Width"})
    late = u.url("demo", PHOTO, width=("auto", 200), format="auto", version="late")
    add_late = f"""() => new Promise((resolve, reject) => {{
        const img = document.createElement("img");
        img.id = "late"; img.sizes = "300px"; img.onload = resolve; img.onerror = reject;
        document.body.append(img); img.src = {json.dumps(late)};
    }})"""
    visit = harness.visit("no-delegation", page, dsf=2, width=1000, after_load=add_late)

    assert visit.page_headers.get("accept-ch") == "Sec-CH-DPR, Sec-CH-Width"
    assert visit.meta_delegate_ch is None
    assert sorted(r.url for r in visit.requests) == sorted([*urls.values(), late])
    for o in visit.requests:
        assert (o.sec_ch_width, o.sec_ch_dpr) == (None, None), f"a hint reached the proxy undelegated: {o}"

    auto = visit.request_for(urls["auto"])
    assert "sec-ch-width" in auto.vary_names()  # the proxy read the (absent) hint
    check_served(auto, "avif", 640)  # auto_width_fallback 640 CSS px × dpr 1
    check_served(visit.request_for(urls["wide"]), "avif", 240)  # w:auto:200 -> 200 rounded up to 240
    check_served(visit.request_for(urls["dpr"]), "avif", 300)  # dpr:auto without a hint: 1
    check_served(visit.request_for(urls["css"]), "avif", 240)  # 200 CSS px × dpr 1, rounded up to 240
    check_served(visit.request_for(late), "avif", 240)


def test_width_and_height_attributes_keep_the_css_size(harness: Harness):
    """A DPR-2 derivative (600 pixels for a 300 CSS px slot) shown by ``src`` alone is laid out at
    its pixel width; ``width``/``height`` attributes keep it at 300 × 245 CSS px."""
    u = harness.urls
    url = u.url("demo", PHOTO, width=300, dpr=2, format="auto")
    page = harness.page(
        "width-height",
        f'<img id="sized" src="{url}" width="300" height="245" alt="sized">'
        f'<img id="unsized" src="{url}" alt="unsized">',
    )
    visit = harness.visit("width-height", page, dsf=2, width=1000)
    o = visit.request_for(url)  # one request for both elements
    check_served(o, "avif", 600)
    sized, unsized = o.element("sized"), o.element("unsized")
    assert sized["naturalWidth"] == unsized["naturalWidth"] == 600  # src: density 1, whatever the DSF
    assert (round(sized["rectWidth"]), round(sized["rectHeight"])) == (300, 245)
    assert (round(unsized["rectWidth"]), round(unsized["rectHeight"])) == (600, 490)


# ------------------------------------------------------------------ issue 22: pages that score


def test_art_direction_fetches_the_rule_for_the_viewport(harness: Harness):
    """``picture(..., art=[...])``: at a 400-px viewport Chromium fetches the 4:5 rule's AVIF source
    and lays the image out at 4:5 (the ``<source width height>``); at 1200 px the default 16:9 one."""
    u = harness.urls
    rule = {"media": "(max-width: 599px)", "aspect": (4, 5), "widths": [320, 400, 640]}
    picture = u.picture(
        "demo", PHOTO, [640, 1200, 1600], aspect=(16, 9), art=[rule], original=(PHOTO_W, PHOTO_H), alt="art"
    )
    page = harness.page("art", f"<style>img{{width:100%;height:auto}}</style>{picture}")
    portrait = u.url("demo", PHOTO, width=400, height=500, fit="cover", format="avif")
    landscape = u.url("demo", PHOTO, width=1200, height=675, fit="cover", format="avif")
    for viewport, url, (width, height) in ((400, portrait, (400, 500)), (1200, landscape, (1200, 675))):
        visit = harness.visit(f"art-vw{viewport}", page, dsf=1, width=viewport)
        assert [r.url for r in visit.requests] == [url], (viewport, [r.path for r in visit.requests])
        o = visit.request_for(url)
        assert (o.status, o.decoded_format, o.decoded_width, o.decoded_height) == (200, "avif", width, height)
        shown = visit.image("")
        assert shown["currentSrc"] == url
        assert abs(shown["rectHeight"] / shown["rectWidth"] - height / width) < 0.01, shown


def test_priority_image_is_requested_first(harness: Harness):
    """The hero last in the document, after four eager thumbnails: with ``preload_link`` in the
    ``<head>`` and ``priority=True`` it is the first image requested, once (the preload is reused);
    without them (the control) it comes after the thumbnails."""
    u = harness.urls
    args = {"sizes": "960px", "original": (PHOTO_W, PHOTO_H), "alt": "hero"}
    thumbs = "".join(
        f'<img src="{u.url("demo", PHOTO, width=100 + i, format="auto")}" width="100" height="82" alt="t{i}">'
        for i in range(4)
    )
    hero_url = u.url("demo", PHOTO, width=960, format="avif")
    for preload in (True, False):
        name = f"priority-{'preload' if preload else 'control'}"
        head = u.preload_link("demo", PHOTO, [480, 960, 1920], **args) if preload else ""
        hero = u.picture("demo", PHOTO, [480, 960, 1920], priority=preload, loading="eager", **args)
        page = harness.page(name, f"{thumbs}{hero}", head=head)
        visit = harness.visit(name, page, dsf=1, width=1000)
        urls = [r.url for r in visit.requests]
        assert urls.count(hero_url) == 1, urls  # the preload's candidate is the <source>'s: one fetch
        assert len(urls) == 5, urls
        if preload:
            assert urls[0] == hero_url, [r.path for r in visit.requests]
            assert 'fetchpriority="high"' in hero and 'loading="eager"' in hero
        else:
            assert urls.index(hero_url) == 4, [r.path for r in visit.requests]


def test_animated_gif_picture_animates(harness: Harness):
    """``picture`` of a GIF writes no AVIF source (a one-frame still); Chromium gets the animated
    WebP and its frames change on screen."""
    u = harness.urls
    picture = u.picture("demo", "animated.gif", [100], sizes="100px", original=(100, 100), alt="anim")
    assert "image/avif" not in picture
    page = harness.page("animated", f'<div id="anim">{picture}</div>')
    context = harness.browser.new_context(viewport={"width": 400, "height": 300})
    try:
        tab = context.new_page()
        tab.goto(f"{harness.site}/{page}", wait_until="load")
        tab.wait_for_function(ALL_LOADED_JS)
        assert tab.evaluate("document.images[0].currentSrc").endswith("/w:100/f:webp/demo/animated.gif")
        shots = set()
        for _ in range(12):
            shots.add(tab.locator("#anim img").screenshot())
            tab.wait_for_timeout(120)
    finally:
        context.close()
    assert len(shots) >= 2, "the animated WebP showed one frame only"
