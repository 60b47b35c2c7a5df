// node --test: every case of ../url-fixtures.json (generated from the Python builder by
// scripts/url-fixtures) reproduced byte for byte, every error case refused, and the API itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

import { ACCEPT_CH, clientHintsMeta, escapeHtml, formatValue, OPTION_ORDER, UrlBuilder } from "../index.js";

const CASES = JSON.parse(readFileSync(new URL("../../url-fixtures.json", import.meta.url), "utf8"));

function run(c) {
  const builder = new UrlBuilder({
    baseUrl: c.base_url, signingKey: c.signing_key, signatureSize: c.signature_size, manifests: c.manifests,
  });
  switch (c.call) {
    case "url":
      return builder.url(c.origin, c.key, c.args);
    case "srcset": {
      const { widths, ...options } = c.args;
      return builder.srcset(c.origin, c.key, widths, options);
    }
    case "picture":
      return builder.picture(c.origin, c.key, c.args);
    case "info_url":
      assert.deepEqual(c.args, {});
      return builder.infoUrl(c.origin, c.key);
    case "preload_link":
      return builder.preloadLink(c.origin, c.key, c.args);
    case "client_hints_meta":
      return clientHintsMeta(c.args.proxy_origin);
    default:
      throw new Error(`unknown call ${c.call}`);
  }
}

test("the fixture has cases and error cases", () => {
  assert.ok(CASES.filter((c) => !c.error).length >= 40);
  assert.ok(CASES.filter((c) => c.error).length >= 20);
});

for (const c of CASES) {
  if (c.error) {
    test(`fixture error: ${c.name}`, () => {
      assert.throws(() => run(c), (e) => e instanceof RangeError || e instanceof TypeError);
    });
  } else {
    test(`fixture: ${c.name}`, () => {
      assert.equal(run(c), c.expected);
    });
  }
}

const KEY = "edgeproxy-test-key";
const VECTOR = "/rqufbFtvkzI1TYyIM7jKdQdcFfaR8jZ4ZsKp2s1zEzc/w:400/f:auto/demo/photo.jpg";

test("README test vector, full and 16-byte signatures", () => {
  assert.equal(new UrlBuilder({ signingKey: KEY }).path("demo", "photo.jpg", { width: 400, format: "auto" }), VECTOR);
  const short = new UrlBuilder({ signingKey: KEY, signatureSize: 16 });
  assert.equal(short.path("demo", "photo.jpg", { f: "auto", w: 400 }), "/rqufbFtvkzI1TYyIM7jKdQ/w:400/f:auto/demo/photo.jpg");
  // the signature is base64url(HMAC-SHA256(key, path)) without padding
  const mac = createHmac("sha256", KEY).update("/w:400/f:auto/demo/photo.jpg").digest("base64url");
  assert.equal(VECTOR.split("/")[1], mac);
});

test("/info URLs are signed over /info/{origin}/{key}: their own signature domain", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  const info = builder.infoPath("demo", "photo.jpg");
  const mac = createHmac("sha256", KEY).update("/info/demo/photo.jpg").digest("base64url");
  assert.equal(info, `/info/${mac}/demo/photo.jpg`);
  // never the signature of the option-less transform path (the full-size original)
  assert.notEqual(info.split("/")[2], builder.path("demo", "photo.jpg").split("/")[1]);
  assert.equal(new UrlBuilder({ baseUrl: "https://img.example.com/", signingKey: KEY }).infoUrl("demo", "photo.jpg"),
    `https://img.example.com${info}`);
  assert.throws(() => builder.infoPath("Demo", "photo.jpg"), RangeError);
  assert.throws(() => builder.infoPath("demo", "a//b.jpg"), RangeError);
});

test("a Uint8Array key signs as the same bytes as its string", () => {
  const a = new UrlBuilder({ signingKey: KEY });
  const b = new UrlBuilder({ signingKey: new TextEncoder().encode(KEY) });
  assert.equal(b.path("demo", "photo.jpg", { width: 400, format: "auto" }), a.path("demo", "photo.jpg", { w: 400, f: "auto" }));
});

test("the key never shows: not enumerable, not in JSON", () => {
  const builder = new UrlBuilder({ baseUrl: "https://img.example.com/", signingKey: "s3cret" });
  assert.equal(builder.baseUrl, "https://img.example.com");
  assert.ok(!JSON.stringify(builder).includes("s3cret"));
  assert.ok(!Object.values(builder).includes("s3cret"));
});

test("options are written in the fixed order, whatever order they come in", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  const path = builder.path("demo", "a.jpg", { v: "1", q: 80, w: 10, fit: "cover", pr: "p" });
  assert.equal(path.split("/").slice(2, -2).join("/"), "pr:p/w:10/fit:cover/q:80/v:1");
  assert.equal(OPTION_ORDER.length, 23);
});

test("numbers: integers as integers, shortest round trip, never exponent notation", () => {
  assert.equal(formatValue(2), "2");
  assert.equal(formatValue(2.0), "2");
  assert.equal(formatValue(0.25), "0.25");
  assert.equal(formatValue(-0), "0");
  assert.equal(formatValue(1e-7), "0.0000001");
  assert.equal(formatValue(1.5e-7), "0.00000015");
  assert.equal(formatValue(1e21), "1000000000000000000000");
  assert.equal(formatValue(1.25e22), "12500000000000000000000");
  assert.equal(formatValue(0.1 + 0.2), "0.30000000000000004");
  assert.equal(formatValue([true, false, "fp", 0.5]), "1:0:fp:0.5");
  assert.throws(() => formatValue(NaN), RangeError);
  assert.throws(() => formatValue(Infinity), RangeError);
  assert.throws(() => formatValue({}), TypeError);
});

test("keys: Python's quote(key, safe='/'), not encodeURIComponent", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  const key = (k) => builder.path("demo", k).split("/").slice(3).join("/");
  assert.equal(key("!'()*.jpg"), "%21%27%28%29%2A.jpg");
  assert.equal(key("a b/ä.jpg"), "a%20b/%C3%A4.jpg");
  assert.equal(key("~x_y-z.jpg"), "~x_y-z.jpg");
  assert.equal(key("😀"), "%F0%9F%98%80");
  assert.throws(() => builder.path("demo", "bad\uD800.jpg"), RangeError);
});

test("srcset takes its options as the third argument when widths is left out", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  const a = builder.srcset("demo", "a.jpg", { densities: [2, 1], width: 100 });
  const b = builder.srcset("demo", "a.jpg", undefined, { densities: [1, 2], w: 100 });
  assert.equal(a, b);
  assert.deepEqual(a.split(", ").map((c) => c.split(" ")[1]), ["1x", "2x"]);
  assert.match(a, /\/w:100\/dpr:2\/demo\/a\.jpg 2x$/);
});

test("picture: sources per format, img with the own format, escaped attributes", () => {
  const builder = new UrlBuilder({ baseUrl: "https://img.example.com", signingKey: KEY });
  const html = builder.picture("demo", "a.jpg", {
    widths: [1280, 320, 640], formats: ["avif", "webp"], alt: `"<x>" & 'y'`, original: [1000, 500], quality: 60,
  });
  assert.ok(html.startsWith('<picture><source type="image/avif" srcset="'));
  assert.equal((html.match(/<source /g) ?? []).length, 2);
  assert.ok(html.includes('alt="&quot;&lt;x&gt;&quot; &amp; &#x27;y&#x27;"'));
  assert.ok(html.includes('width="1000" height="500" loading="lazy" decoding="async"></picture>'));
  const img = html.slice(html.indexOf("<img "));
  // 1280 is above the 1000-px original: capped to one 1000w candidate, the widest <= 1024 (src)
  assert.match(img, /src="https:\/\/img\.example\.com\/[A-Za-z0-9_-]{43}\/w:1000\/q:60\/demo\/a\.jpg"/);
  assert.ok(!html.includes("w:1280"));
  assert.ok(!img.includes("f:"));
  assert.equal(escapeHtml(`<&>"'`), "&lt;&amp;&gt;&quot;&#x27;");
});

test("bad input throws", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  assert.throws(() => builder.url("demo", "a.jpg", { w: 400, width: 400 }), /more than once/);
  assert.throws(() => builder.url("demo", "a.jpg", { q: 0 }), /1\.\.100/);
  assert.throws(() => builder.url("Demo", "a.jpg"), /origin name/);
  assert.throws(() => new UrlBuilder({ signingKey: "" }), /signing key/);
  assert.throws(() => new UrlBuilder({ signingKey: KEY, baseUrl: "https://x.example/?a" }), /baseUrl/);
});

test("ar (aspect_ratio): after h in the fixed order, checked as the proxy checks it", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  const segs = (o) => builder.path("demo", "a.jpg", o).split("/").slice(2, -2).join("/");
  assert.equal(segs({ fit: "cover", ar: "1:1", width: "auto" }), "w:auto/ar:1:1/fit:cover");
  assert.equal(segs({ g: "face", aspect_ratio: [16, 9], h: 400 }), "h:400/ar:16:9/g:face");
  assert.equal(segs({ w: 300, ar: 1.5 }), "w:300/ar:1.5");
  assert.equal(segs({ w: 300, ar: [1.91, 1] }), "w:300/ar:1.91:1");
  // the Python builder's bytes for the same options (the ar helper's fixture "ar: w:auto, square cover slot")
  assert.equal(new UrlBuilder({ baseUrl: "https://img.example.com", signingKey: KEY }).url("demo", "photo.jpg",
    { width: "auto", ar: "1:1", fit: "cover" }),
    "https://img.example.com/SS1NmL_BUAW5x1o5121RhSGSUBGZvrUaCoAoATj-I24/w:auto/ar:1:1/fit:cover/demo/photo.jpg");
  for (const bad of [{ w: 400, h: 300, ar: "1:1" }, { w: 400, ar: [16, 0] }, { w: 400, ar: "101:1" },
    { w: 400, ar: "wide" }, { w: 400, ar: [1, 2, 3] }, { w: 400, ar: "1:1", aspect_ratio: "1:1" },
    { width: "auto", h: 300, ar: "1:1" }]) {
    assert.throws(() => builder.url("demo", "a.jpg", bad), RangeError, JSON.stringify(bad));
  }
});

test("attrs cannot leave their attribute, and event handlers are refused", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  const html = builder.picture("demo", "a.jpg", {
    widths: [320], attrs: { title: `"><script>alert(1)</script>`, style: `x: "a" </style>` },
  });
  assert.ok(!html.includes("<script>") && !html.includes("</style>"));
  assert.ok(html.includes(`title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`));
  for (const attrs of [{ onerror: "x()" }, { ONCLICK: "x()" }, { "a b": 1 }, { 'a"': 1 }, { src: "x" }, { Alt: "x" }]) {
    assert.throws(() => builder.picture("demo", "a.jpg", { widths: [320], attrs }), RangeError, JSON.stringify(attrs));
  }
  assert.throws(() => builder.picture("demo", "a.jpg", { widths: [320], attrs: { title: {} } }), TypeError);
  assert.throws(() => builder.picture("demo", "a.jpg", { widths: [320], zoom: 2 }), RangeError);
});

test("clientHintsMeta and ACCEPT_CH", () => {
  assert.equal(clientHintsMeta("https://img.example.com/"),
    '<meta http-equiv="Delegate-CH" content="sec-ch-dpr https://img.example.com; sec-ch-width https://img.example.com; ' +
    'sec-ch-viewport-width https://img.example.com">');
  assert.equal(ACCEPT_CH, "Accept-CH: Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width");
  assert.throws(() => clientHintsMeta("img.example.com"), RangeError);
});

test("picture with ar: the box and the cap follow the ratio", () => {
  const builder = new UrlBuilder({ signingKey: KEY });
  const html = builder.picture("demo", "a.jpg", { widths: [320, 640, 1280], ar: "1:1", fit: "cover", original: [1000, 600] });
  // a 1:1 crop of a 1000 x 600 original is at most 600 wide: 640 and 1280 dropped, 600w kept
  assert.deepEqual([...html.matchAll(/ (\d+)w[",]/g)].map((m) => m[1]).slice(0, 2), ["320", "600"]);
  assert.ok(html.includes("/w:600/ar:1:1/fit:cover/f:avif/demo/a.jpg 600w"));
  assert.ok(html.includes('width="600" height="600"'));
  const icon = builder.picture("demo", "a.jpg", { densities: [1, 2], width: 48, ar: [4, 3] });
  assert.ok(icon.includes('width="48" height="36"'));
});
