// Signed edgeproxy URLs, srcset strings and <picture> elements, for Node back ends.
//
// The same bytes as the Python builder (edgeproxy/url/builders.py): options in one fixed order with their
// short names, the key percent-encoded as Python's quote(key, safe="/"), HMAC-SHA256 over the path
// truncated to signatureSize bytes, base64url without padding; /info URLs signed over
// "/info/{origin}/{key}" (their own signature domain). Both are held to ../url-fixtures.json.
// Never ship the signing key to a browser: sign on the server.

import { createHmac } from "node:crypto";

/** Option name (long or short) -> the short name written in the path. */
export const OPTION_NAMES = Object.freeze({
  preset: "pr", pr: "pr",
  width: "w", w: "w",
  height: "h", h: "h",
  aspect_ratio: "ar", ar: "ar",
  fit: "fit",
  gravity: "g", g: "g",
  dpr: "dpr",
  format: "f", f: "f",
  quality: "q", q: "q",
  max_bytes: "mb", mb: "mb",
  trim: "trim",
  crop: "c", c: "c",
  rotate: "rot", rot: "rot",
  flip: "flip",
  blur: "blur",
  sharpen: "sharpen",
  grayscale: "gray", gray: "gray",
  background: "bg", bg: "bg",
  redact: "redact",
  enlarge: "enlarge",
  strip: "strip",
  expires: "exp", exp: "exp",
  version: "v", v: "v",
});

/** The order options are written in, whatever order they were given in. */
export const OPTION_ORDER = Object.freeze([
  "pr", "w", "h", "ar", "fit", "g", "dpr", "f", "q", "mb", "trim", "c", "rot", "flip", "blur", "sharpen", "gray",
  "bg", "redact", "enlarge", "strip", "exp", "v",
]);

/** <source type> of each format picture() can offer. */
export const MIME_TYPES = Object.freeze({
  avif: "image/avif",
  webp: "image/webp",
  jxl: "image/jxl",
  jpeg: "image/jpeg",
  png: "image/png",
});

/** The byte budgets mb (max_bytes) takes (edgeproxy/url/spec.py: MIN_MAX_BYTES, MAX_MAX_BYTES). */
export const MIN_MAX_BYTES = 1024;
export const MAX_MAX_BYTES = 100 * 1024 * 1024;

/** The route prefix of GET /info, also part of what its signatures cover. */
export const INFO_PREFIX = "/info";

/** The widest candidate picture() picks for <img src>, CSS pixels. */
export const SRC_MAX_WIDTH = 1024;

const ORIGIN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const PRESET = /^[A-Za-z0-9_-]{1,64}$/;
const SEGMENT = /^[A-Za-z0-9._~:-]+$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNRESERVED = /^[A-Za-z0-9_.~\/-]$/;

// ------------------------------------------------------------------------ value formatting

/** "1.5e-7" -> "0.00000015", "1e+21" -> "1000000000000000000000" (as Python's Decimal 'f'). */
function expandExponent(text) {
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!m) throw new Error(`cannot expand ${text}`);
  const [, sign, lead, frac = "", exp] = m;
  const digits = lead + frac;
  const point = 1 + Number(exp); // decimal point after this many digits
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

function formatNumber(n) {
  if (!Number.isFinite(n)) throw new RangeError(`${n} is no option value`);
  if (n === 0) return "0"; // -0 too
  const text = String(n); // the shortest decimal that reads back as n
  return /e/.test(text) ? expandExponent(text) : text;
}

/**
 * One option value as the path writes it: boolean -> "1"/"0"; number -> the shortest decimal that
 * reads back as the same number, never in exponent notation ("2", "0.25", "0.0000001"); string as
 * given; an array -> its items formatted so and joined with ":".
 * @throws {RangeError} NaN, an infinity, or an empty or nested array.
 * @throws {TypeError} any other type.
 */
export function formatValue(value) {
  if (Array.isArray(value)) {
    if (value.length === 0) throw new RangeError("an empty array is no option value");
    if (value.some(Array.isArray)) throw new RangeError("nested arrays are no option value");
    return value.map(formatValue).join(":");
  }
  switch (typeof value) {
    case "boolean":
      return value ? "1" : "0";
    case "number":
      return formatNumber(value);
    case "bigint":
      return value.toString();
    case "string":
      return value;
    default:
      throw new TypeError(`option values are boolean, number, string or an array of them, not ${typeof value}`);
  }
}

// ------------------------------------------------------------------------ validation (the proxy's grammar)

const INT = /^[0-9]{1,13}$/;
const DECIMAL = /^[0-9]{1,9}(\.[0-9]{1,20})?$/;
const HEX = /^[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$/;
const TOKEN = /^[A-Za-z0-9._~-]{1,64}$/;
const FITS = new Set(["inside", "contain", "cover", "fill", "outside", "pad"]);
const FORMATS = new Set(["auto", "avif", "webp", "jpeg", "jpg", "png", "gif", "jxl"]);
const REDACTIONS = new Set(["blur", "pixelate"]);
const FLIPS = new Set(["h", "v", "hv", "vh"]);
const GRAVITIES = new Set([
  "center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest", "smart", "face",
  "c", "ce", "centre", "n", "no", "s", "so", "e", "ea", "w", "we", "ne", "nw", "se", "sw",
]);
const MAX_DIMENSION = 16384;
const MAX_ASPECT_RATIO = 100;

function bad(message) {
  return new RangeError(message);
}

function one(name, args) {
  if (args.length !== 1) throw bad(`option ${name}: expected one value, got ${args.length}`);
  return args[0];
}

function int(name, arg, lo, hi) {
  if (!INT.test(arg)) throw bad(`option ${name}: '${arg}' is not a whole number`);
  const value = Number(arg);
  if (value < lo || value > hi) throw bad(`option ${name}: ${value} is outside ${lo}..${hi}`);
  return value;
}

function num(name, arg, lo, hi, openLo = false) {
  if (!DECIMAL.test(arg)) throw bad(`option ${name}: '${arg}' is not a decimal number`);
  const value = Number(arg);
  if (!(openLo ? lo < value : lo <= value) || value > hi) throw bad(`option ${name}: ${arg} is outside ${lo}..${hi}`);
  return value;
}

function oneOf(name, arg, allowed) {
  if (!allowed.has(arg.toLowerCase())) throw bad(`option ${name}: '${arg}' is not one of ${[...allowed].join("|")}`);
}

/** Check one option (short name, its ":"-separated arguments) as the proxy's parser does. */
function checkOption(name, args) {
  switch (name) {
    case "pr": {
      const badNames = args.filter((a) => !PRESET.test(a));
      if (badNames.length) throw bad(`option pr: preset names are 1-64 of A-Z a-z 0-9 _ -, got ${badNames}`);
      return;
    }
    case "w":
      if (args[0].toLowerCase() === "auto") {
        if (args.length > 2) throw bad("option w: expected w:auto or w:auto:FALLBACK");
        if (args.length === 2) int(name, args[1], 1, MAX_DIMENSION);
        return;
      }
      int(name, one(name, args), 1, MAX_DIMENSION);
      return;
    case "h":
      int(name, one(name, args), 1, MAX_DIMENSION);
      return;
    case "ar": {
      // ar:W:H or ar:RATIO (RATIO:1), each a decimal > 0, the ratio within 1:100..100:1
      if (args.length < 1 || args.length > 2) throw bad(`option ar: expected ar:W:H (such as ar:16:9) or ar:RATIO`);
      const [w, h] = (args.length === 2 ? args : [args[0], "1"]).map((a) => num(name, a, 0, 1e6, true));
      if (!(1 / MAX_ASPECT_RATIO <= w / h && w / h <= MAX_ASPECT_RATIO)) {
        throw bad(`option ar: ${args.join(":")} is beyond ${MAX_ASPECT_RATIO}:1 or 1:${MAX_ASPECT_RATIO}`);
      }
      return;
    }
    case "fit":
      oneOf(name, one(name, args), FITS);
      return;
    case "g": {
      const kind = args[0].toLowerCase();
      if (kind === "fp") {
        if (args.length !== 3) throw bad("option g: fp needs fp:X:Y");
        num(name, args[1], 0, 1);
        num(name, args[2], 0, 1);
        return;
      }
      if (args.length !== 1) throw bad("option g: expected one value");
      if (!GRAVITIES.has(kind)) throw bad(`option g: unknown gravity '${args[0]}'`);
      return;
    }
    case "dpr":
      if (args.length === 1 && args[0].toLowerCase() === "auto") return;
      num(name, one(name, args), 1, 4);
      return;
    case "f":
      oneOf(name, one(name, args), FORMATS);
      return;
    case "q":
      if (args[0].toLowerCase() === "auto") {
        if (args.length > 2) throw bad("option q: expected q:auto or q:auto:TARGET");
        if (args.length === 2) int(name, args[1], 1, 100);
        return;
      }
      int(name, one(name, args), 1, 100);
      return;
    case "trim":
      // trim:THRESHOLD (0..255) or trim:THRESHOLD:RRGGBB
      if (args.length < 1 || args.length > 2) throw bad("option trim: expected trim:THRESHOLD or trim:THRESHOLD:RRGGBB");
      num(name, args[0], 0, 255);
      if (args.length === 2 && !/^[0-9a-fA-F]{6}$/.test(args[1])) {
        throw bad(`option trim: expected an RRGGBB hex colour, got '${args[1]}'`);
      }
      return;
    case "mb":
      int(name, one(name, args), MIN_MAX_BYTES, MAX_MAX_BYTES);
      return;
    case "c": {
      if (args.length !== 4) throw bad("option c: expected c:X:Y:W:H");
      if (args.some((a) => a.includes("."))) {
        const [, , w, h] = args.map((a) => num(name, a, 0, 1));
        if (w === 0 || h === 0) throw bad("option c: width and height must be above 0");
      } else {
        args.forEach((a, i) => int(name, a, i < 2 ? 0 : 1, 1e9));
      }
      return;
    }
    case "rot":
      if (int(name, one(name, args), 0, 270) % 90) throw bad("option rot: must be 0, 90, 180 or 270");
      return;
    case "flip":
      oneOf(name, one(name, args), FLIPS);
      return;
    case "blur":
      num(name, one(name, args), 0, 100, true);
      return;
    case "sharpen":
      num(name, one(name, args), 0, 10, true);
      return;
    case "bg":
      if (!HEX.test(one(name, args))) throw bad(`option bg: expected RRGGBB or RRGGBBAA hex, got '${args[0]}'`);
      return;
    case "redact":
      if (args[0].toLowerCase() !== "faces" || args.length > 2) {
        throw bad("option redact: expected redact:faces, redact:faces:blur or redact:faces:pixelate");
      }
      if (args.length === 2) oneOf(name, args[1], REDACTIONS);
      return;
    case "enlarge":
    case "strip":
    case "gray":
      if (!["0", "1"].includes(one(name, args))) throw bad(`option ${name}: expected 0 or 1, got '${args[0]}'`);
      return;
    case "exp":
      int(name, one(name, args), 0, 2 ** 40);
      return;
    case "v":
      if (!TOKEN.test(one(name, args))) throw bad("option v: expected 1-64 of A-Z a-z 0-9 . _ ~ -");
      return;
    default:
      throw bad(`unknown option '${name}'`);
  }
}

// ------------------------------------------------------------------------ helpers

/** options keyed by short name, null/undefined dropped. @throws {RangeError} unknown or twice given. */
function shortNames(options) {
  const out = {};
  for (const [name, value] of Object.entries(options ?? {})) {
    const short = Object.hasOwn(OPTION_NAMES, name) ? OPTION_NAMES[name] : undefined;
    if (short === undefined) throw bad(`unknown option '${name}'`);
    if (value === null || value === undefined) continue;
    if (Object.hasOwn(out, short)) throw bad(`option ${short} (${name}): given more than once`);
    out[short] = value;
  }
  return out;
}

/** The option segments ("w:400", ...) in OPTION_ORDER, validated. */
function segments(options) {
  const values = shortNames(options);
  const out = [];
  for (const short of OPTION_ORDER) {
    if (!Object.hasOwn(values, short)) continue;
    const text = formatValue(values[short]);
    const segment = `${short}:${text}`;
    if (!SEGMENT.test(segment)) throw bad(`option ${short}: '${text}' has characters outside A-Z a-z 0-9 . _ ~ - :`);
    checkOption(short, text.split(":"));
    out.push(segment);
  }
  if (Object.hasOwn(values, "h") && /^auto(:|$)/i.test(formatValue(values.w ?? ""))) {
    throw bad("option w:auto: sets the width only and cannot be combined with h");
  }
  if (Object.hasOwn(values, "ar") && Object.hasOwn(values, "w") && Object.hasOwn(values, "h")) {
    throw bad("option ar: cannot be combined with both w and h (the ratio sets the side not given)");
  }
  return out;
}

/** origin when it is a valid origin name. @throws {RangeError} otherwise. */
function checkOrigin(origin) {
  if (typeof origin !== "string" || !ORIGIN.test(origin)) {
    throw bad(`origin name '${origin}': use 1-32 of a-z 0-9 _ - (starting alphanumeric)`);
  }
  return origin;
}

/** key percent-encoded as Python's urllib.parse.quote(key, safe="/"). */
function quoteKey(key) {
  if (typeof key !== "string") throw new TypeError(`key must be a string, not ${typeof key}`);
  if (key === "") throw bad("the object key is empty");
  if (key.includes("\\") || key.includes("\0") || key.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw bad(`object key '${key}' has an empty, '.' or '..' segment, a backslash or NUL`);
  }
  if (LONE_SURROGATE.test(key)) throw bad(`object key '${key}' is not valid Unicode (a lone surrogate)`);
  let out = "";
  for (const byte of new TextEncoder().encode(key)) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const isPositive = (v) => typeof v === "number" && Number.isFinite(v) && v > 0;
const halfUp = (v) => Math.floor(v + 0.5);

/** Height (pixels) for width at aspect ([w, h] or a number w/h), rounded half up. */
function ratioHeight(width, aspect) {
  if (Array.isArray(aspect)) {
    if (aspect.length !== 2 || !aspect.every(isPositive)) {
      throw bad(`aspect must be [width, height], two positive numbers, got ${JSON.stringify(aspect)}`);
    }
    return halfUp((width * aspect[1]) / aspect[0]);
  }
  if (!isPositive(aspect)) throw bad(`aspect must be [width, height] or a positive number, got ${aspect}`);
  return halfUp(width / aspect);
}

/** HTML-escape as Python's html.escape(text, quote=True). */
export function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#x27;");
}

function popOption(options, short) {
  let value;
  for (const name of Object.keys(options)) {
    if (OPTION_NAMES[name] !== short) continue;
    const found = options[name];
    delete options[name];
    if (found === null || found === undefined) continue;
    if (value !== undefined) throw bad(`option ${short} (${name}): given more than once`);
    value = found;
  }
  return value;
}

// ------------------------------------------------------------------------ manifests

/** Hex digits of an entry's sha256 written as v: (as edgeproxy.manifest.VERSION_DIGITS). */
export const VERSION_DIGITS = 16;
const MANIFEST_FIELDS = new Set(["origin", "key", "sha256", "alt", "width", "height", "focal", "placeholder"]);
const SHA256 = /^[0-9a-f]{64}$/;
const MANIFEST_PLACEHOLDER = /^(#[0-9A-Fa-f]{6}|data:image\/png;base64,[A-Za-z0-9+/]{1,65536}={0,2})$/;
const MAX_ALT = 1000;
const MAX_SIDE = 1000000;

const isSafeKey = (key) =>
  typeof key === "string" && !key.includes("\\") && !key.includes("\0") &&
  !key.split("/").some((p) => p === "" || p === "." || p === "..");

/**
 * A manifest's entries (id -> entry), checked as the proxy's edgeproxy.manifest checks them (origin
 * names aside: the builder does not know the proxy's). @throws {RangeError} a bad id or entry.
 */
function checkManifest(name, manifest) {
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) {
    throw bad(`manifest ${name}: a manifest is a JSON object {"ID": {"origin": NAME, "key": KEY, ...}, ...}`);
  }
  const entries = new Map();
  for (const [id, item] of Object.entries(manifest)) {
    const problem = (text) => bad(`manifest ${name}: id '${id.slice(0, 64)}': ${text}`);
    if (!isSafeKey(id)) throw problem("an id has no empty, '.' or '..' segment, backslash or NUL");
    if (item === null || typeof item !== "object" || Array.isArray(item)) throw problem("an entry is an object");
    const unknown = Object.keys(item).filter((k) => !MANIFEST_FIELDS.has(k)).sort();
    if (unknown.length) throw problem(`unknown fields ${JSON.stringify(unknown)}`);
    const { origin, key, sha256, alt, width, height, focal, placeholder } = item;
    if (typeof origin !== "string" || origin === "") throw problem("origin must be a configured origin's name");
    if (!isSafeKey(key) || key === "") throw problem("key must be a key without empty, '.' or '..' segments");
    if (given(sha256) && !(typeof sha256 === "string" && SHA256.test(sha256))) {
      throw problem("sha256 must be 64 lower-case hex digits");
    }
    if (given(alt) && !(typeof alt === "string" && alt.length <= MAX_ALT)) throw problem("alt must be short text");
    if (given(placeholder) && !(typeof placeholder === "string" && MANIFEST_PLACEHOLDER.test(placeholder))) {
      throw problem("placeholder must be #rrggbb or a data:image/png;base64 URI");
    }
    for (const [field, side] of [["width", width], ["height", height]]) {
      if (given(side) && !(isWhole(side) && side <= MAX_SIDE)) throw problem(`${field} must be whole pixels`);
    }
    const fraction = (v) => typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1;
    if (given(focal) && !(Array.isArray(focal) && focal.length === 2 && focal.every(fraction))) {
      throw problem("focal must be [x, y], fractions 0..1");
    }
    entries.set(id, Object.freeze({ ...item }));
  }
  return entries;
}

/** What picture() reads from /info (width, height, dominant_color or thumbhash_png), from an entry. */
function entryInfo(entry) {
  const info = {};
  if (given(entry.width) && given(entry.height)) Object.assign(info, { width: entry.width, height: entry.height });
  if (given(entry.placeholder)) {
    info[entry.placeholder.startsWith("#") ? "dominant_color" : "thumbhash_png"] = entry.placeholder;
  }
  return Object.keys(info).length ? info : undefined;
}

// ------------------------------------------------------------------------ the builder

export class UrlBuilder {
  #key;
  #size;
  #manifests;

  /**
   * @param {{baseUrl?: string, signingKey: string | Uint8Array, signatureSize?: number,
   *   manifests?: Record<string, object>}} config
   *   baseUrl: e.g. "https://img.example.com" ("" for paths only; a trailing "/" is dropped);
   *   signingKey: the proxy's signing_key (a string is UTF-8 encoded); signatureSize: 8..32 bytes;
   *   manifests: the proxy's manifest origins the page uses, name -> the manifest's parsed JSON
   *   (docs/manifests.md): a URL of an id in one gets v: from its sha256 unless given, and picture()
   *   its alt, width/height and placeholder unless given (as the Python builder).
   * @throws {RangeError} an empty key, a bad signatureSize, a baseUrl with whitespace , ? or #, or a
   *   bad manifest.
   */
  constructor({ baseUrl = "", signingKey, signatureSize = 32, manifests = {} } = {}) {
    if (typeof baseUrl !== "string" || /[\s,?#]/.test(baseUrl)) {
      throw bad(`baseUrl ${JSON.stringify(baseUrl)} has whitespace, ',', '?' or '#'`);
    }
    if (signingKey === undefined || signingKey === null || signingKey.length === 0) {
      throw bad("a signing key is required");
    }
    if (!Number.isInteger(signatureSize) || signatureSize < 8 || signatureSize > 32) {
      throw bad("signature size must be 8..32 bytes");
    }
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.signatureSize = signatureSize;
    this.#key = typeof signingKey === "string" ? signingKey : Buffer.from(signingKey);
    this.#size = signatureSize;
    this.#manifests = new Map(
      Object.entries(manifests ?? {}).map(([name, manifest]) => [checkOrigin(name), checkManifest(name, manifest)]),
    );
  }

  /** The entry of id key in the manifest origin given to the builder, or null. */
  entry(origin, key) {
    return this.#manifests.get(origin)?.get(key) ?? null;
  }

  /** The signed path "/{signature}/{options...}/{origin}/{key}". */
  path(origin, key, options = {}) {
    const entry = this.entry(origin, key);
    if (entry !== null && given(entry.sha256)) {
      const hasVersion = Object.entries(options ?? {}).some(([name, value]) => OPTION_NAMES[name] === "v" && given(value));
      if (!hasVersion) options = { ...options, v: entry.sha256.slice(0, VERSION_DIGITS) };
    }
    const unsigned = segments(options).map((s) => `/${s}`).join("") + `/${checkOrigin(origin)}/${quoteKey(key)}`;
    return `/${this.#sign(unsigned)}${unsigned}`;
  }

  /** baseUrl + path(origin, key, options). */
  url(origin, key, options = {}) {
    return this.baseUrl + this.path(origin, key, options);
  }

  /**
   * The signed GET /info path "/info/{signature}/{origin}/{key}", the signature over
   * "/info/{origin}/{key}": /info's own signature domain, so it renders no image.
   */
  infoPath(origin, key) {
    const unsigned = `/${checkOrigin(origin)}/${quoteKey(key)}`;
    return `${INFO_PREFIX}/${this.#sign(INFO_PREFIX + unsigned)}${unsigned}`;
  }

  /** baseUrl + infoPath(origin, key). */
  infoUrl(origin, key) {
    return this.baseUrl + this.infoPath(origin, key);
  }

  #sign(unsigned) {
    const digest = createHmac("sha256", this.#key).update(unsigned, "utf8").digest();
    return digest.subarray(0, this.#size).toString("base64url");
  }

  /**
   * A srcset value: "URL 320w, URL 640w" (widths), or "URL 1x, URL 2x" (options.densities).
   * Exactly one of widths and options.densities; options.aspect ([w, h] or w/h) sets each
   * candidate's height and fit "cover" (unless fit is given). widths may be left out:
   * srcset(origin, key, { densities: [1, 2], width: 300 }).
   */
  srcset(origin, key, widths, options = {}) {
    if (widths !== null && widths !== undefined && !Array.isArray(widths) && typeof widths === "object") {
      options = widths;
      widths = undefined;
    }
    const { densities, aspect, ...rest } = options ?? {};
    return this.#candidates(widths, densities, aspect, rest)
      .map(([descriptor, opts]) => `${this.url(origin, key, opts)} ${descriptor}`)
      .join(", ");
  }

  #candidates(widths, densities, aspect, options) {
    options = shortNames(options);
    const hasWidths = widths !== null && widths !== undefined;
    const hasDensities = densities !== null && densities !== undefined;
    if (hasWidths === hasDensities) throw bad("give exactly one of widths and densities");
    const hasAspect = aspect !== null && aspect !== undefined;
    if (hasAspect) {
      if (Object.hasOwn(options, "h")) throw bad("aspect sets the height of every candidate: do not give height too");
      if (!Object.hasOwn(options, "fit")) options.fit = "cover";
    }
    if (hasWidths) {
      if (!Array.isArray(widths)) throw new TypeError("widths is an array of integers");
      const sorted = [...new Set(widths)].sort((a, b) => a - b);
      if (sorted.length === 0) throw bad("widths is empty");
      if (Object.hasOwn(options, "w")) throw bad("srcset sets width per candidate (widths): do not give width too");
      return sorted.map((w) => {
        if (!Number.isInteger(w)) throw bad(`widths are whole CSS pixels, got ${w}`);
        const extra = hasAspect ? { w, h: ratioHeight(w, aspect) } : { w };
        return [`${w}w`, { ...options, ...extra }];
      });
    }
    if (!Array.isArray(densities)) throw new TypeError("densities is an array of numbers");
    const sorted = [...new Set(densities)].sort((a, b) => a - b);
    if (sorted.length === 0) throw bad("densities is empty");
    if (Object.hasOwn(options, "dpr")) throw bad("srcset sets dpr per candidate (densities): do not give dpr too");
    if (hasAspect) {
      if (!Number.isInteger(options.w)) throw bad("aspect with densities needs a numeric width");
      options.h = ratioHeight(options.w, aspect);
    }
    return sorted.map((d) => {
      if (!isPositive(d)) throw bad(`densities are positive numbers, got ${d}`);
      return [`${formatNumber(d)}x`, { ...options, dpr: d }];
    });
  }

  /**
   * A <picture>: art-directed <source media ...>s (per rule: one per format, then one untyped in the
   * img's format), one <source type srcset sizes> per format, then <img src srcset sizes alt
   * [width height] [loading] [fetchpriority] [decoding] ...attrs [style]>. The same bytes as the
   * Python builder's picture(); see its docstring (edgeproxy/url/builders.py) and the README for
   * every argument: widths | densities, formats, sizes, alt, original, aspect, loading, priority,
   * attrs, art, animated, placeholder, info, ...options.
   * @throws {RangeError} a bad argument; {TypeError} attrs or info not an object, a bad attribute value.
   */
  picture(origin, key, args = {}) {
    const layout = this.#layout(origin, key, args);
    const sources = layout.sources.map((s) => `<source${attributeText(sourceAttributes(s))}>`).join("");
    return `<picture>${sources}<img${attributeText(layout.img)}></picture>`;
  }

  /**
   * <link rel="preload" as="image" imagesrcset imagesizes type fetchpriority="high"> for the image
   * picture(origin, key, args) writes: its first default <source> (the first format), else the img's
   * candidates; with art, the default rule's. No href, so a browser without imagesrcset fetches nothing.
   */
  preloadLink(origin, key, args = {}) {
    const layout = this.#layout(origin, key, args);
    const first = layout.sources.find((s) => s.media === null);
    const link = new Map([
      ["rel", "preload"],
      ["as", "image"],
      ["imagesrcset", first ? first.srcset : layout.img.get("srcset")],
      ["imagesizes", first ? first.sizes : layout.img.get("sizes")],
      ["type", first ? first.mime : null],
      ["fetchpriority", "high"],
    ]);
    return `<link${attributeText(link)}>`;
  }

  #layout(origin, key, args) {
    const {
      widths, formats = ["avif", "webp"], sizes = "100vw", alt: givenAlt, original, aspect, loading, priority = false,
      attrs, art, densities, animated, placeholder, info: givenInfo, ...options
    } = args ?? {};
    const entry = this.entry(origin, key);
    const alt = given(givenAlt) ? givenAlt : (entry?.alt ?? "");
    const info = given(givenInfo) ? givenInfo : entry !== null ? entryInfo(entry) : givenInfo;
    checkInfo(info);
    const orig = checkOriginal(original ?? infoOriginal(info));
    const fmts = checkFormats(formats, isAnimated(animated, key, info));
    const ownFormat = popOption(options, "f");
    const rule = defaultRule(sizes, widths, densities, aspect, options);
    const sources = [];
    for (const r of checkArt(art).map((r) => artRule(r, rule))) {
      sources.push(...this.#sources(origin, key, r, [...fmts, null], ownFormat, orig));
    }
    sources.push(...this.#sources(origin, key, rule, fmts, ownFormat, orig));
    const img = this.#img(origin, key, rule, ownFormat, orig, alt);
    for (const [name, value] of loadingAttributes(loading, priority)) img.set(name, value);
    let style = null;
    if (placeholder !== undefined && placeholder !== null) {
      const blurUrl = placeholder === "blur" ? this.url(origin, key, blurOptions(rule, ownFormat)) : null;
      style = placeholderStyle(placeholder, info, blurUrl);
    }
    const extra = checkedAttrs(attrs);
    style = mergeStyle(style, extra.get("style"));
    extra.delete("style");
    for (const [name, value] of extra) img.set(name, value);
    if (style) img.set("style", style);
    return { sources, img };
  }

  #ruleCandidates(rule, fmt, original) {
    const [widths, densities] = capped(rule, original);
    return this.#candidates(widths ?? undefined, densities ?? undefined, rule.aspect, { ...rule.options, f: fmt });
  }

  #srcsetText(origin, key, candidates) {
    return candidates.map(([d, opts]) => `${this.url(origin, key, opts)} ${d}`).join(", ");
  }

  #sources(origin, key, rule, formats, ownFormat, original) {
    const box = rule.media !== null ? ruleBox(rule, original) : null;
    return formats.map((fmt) => {
      const candidates = this.#ruleCandidates(rule, fmt !== null ? fmt : ownFormat, original);
      const srcset = this.#srcsetText(origin, key, candidates);
      return { media: rule.media, mime: fmt !== null ? MIME_TYPES[fmt] : null, srcset, sizes: sizesAttr(rule), box };
    });
  }

  #img(origin, key, rule, ownFormat, original, alt) {
    const candidates = this.#ruleCandidates(rule, ownFormat, original);
    let srcOptions;
    if (rule.densities !== null) {
      const ones = candidates.filter(([d]) => d === "1x");
      srcOptions = ones.length ? ones[0][1] : candidates[0][1];
    } else {
      const widths = candidates.map(([, opts]) => opts.w);
      const fitting = widths.filter((w) => w <= SRC_MAX_WIDTH);
      srcOptions = candidates[widths.indexOf(fitting.length ? fitting[fitting.length - 1] : widths[0])][1];
    }
    const img = new Map([
      ["src", this.url(origin, key, srcOptions)],
      ["srcset", this.#srcsetText(origin, key, candidates)],
      ["sizes", sizesAttr(rule)],
      ["alt", alt],
    ]);
    const box = ruleBox(rule, original);
    if (box) img.set("width", String(box[0])).set("height", String(box[1]));
    return img;
  }
}

// ------------------------------------------------------------------------ picture's parts

/** The blur placeholder's derivative: width (pixels), blur sigma (pixels), quality. */
export const PLACEHOLDER_WIDTH = 24;
export const PLACEHOLDER_BLUR = 2;
export const PLACEHOLDER_QUALITY = 30;

const isWhole = (v) => Number.isInteger(v) && v > 0;
const given = (v) => v !== undefined && v !== null;

function sizesAttr(rule) {
  return rule.densities !== null ? null : rule.sizes;
}

function sourceAttributes(s) {
  const out = new Map([["media", s.media], ["type", s.mime], ["srcset", s.srcset], ["sizes", s.sizes]]);
  if (s.box) out.set("width", String(s.box[0])).set("height", String(s.box[1]));
  return out;
}

/** The candidates' aspect ratio when known: rule.aspect, else the ar option ("16:9", [16, 9], a number). */
function shape(rule) {
  if (given(rule.aspect)) return rule.aspect;
  let value = rule.options.ar;
  if (typeof value === "string") value = value.split(":");
  if (Array.isArray(value) && (value.length === 1 || value.length === 2)) {
    const numbers = value.map((v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v));
    const pair = [numbers[0], numbers.length === 2 ? numbers[1] : 1];
    return pair.every(isPositive) ? pair : null;
  }
  return isPositive(value) ? value : null;
}

function listed(values) {
  if (!given(values)) return null;
  if (!Array.isArray(values)) throw bad(`widths and densities are arrays of numbers, got ${JSON.stringify(values)}`);
  return [...values];
}

function checkedWidths(widths) {
  const sorted = [...new Set(widths)].sort((a, b) => a - b);
  if (sorted.length === 0) throw bad("widths is empty");
  for (const w of sorted) if (!Number.isInteger(w)) throw bad(`widths are whole CSS pixels, got ${w}`);
  return sorted;
}

function aspectPair(aspect) {
  ratioHeight(1, aspect); // checks it
  return Array.isArray(aspect) ? [aspect[0], aspect[1]] : [aspect, 1];
}

/** The widest candidate the proxy renders from original without enlarging. */
function widest(original, aspect) {
  if (!given(aspect)) return original[0];
  const [aw, ah] = aspectPair(aspect);
  return Math.max(1, Math.min(original[0], Math.floor((original[1] * aw) / ah)));
}

/** [widths, densities] of rule without those original cannot fill (a capped width list gains the cap). */
function capped(rule, original) {
  if (original === null || (rule.widths === null) === (rule.densities === null)) return [rule.widths, rule.densities];
  const cap = widest(original, shape(rule));
  if (rule.widths !== null) {
    const widths = checkedWidths(rule.widths);
    const kept = widths.filter((w) => w <= cap);
    return [kept.length === widths.length ? kept : [...kept, cap], null];
  }
  const width = rule.options.w;
  const densities = [...new Set(rule.densities)].sort((a, b) => a - b);
  if (densities.length === 0) throw bad("densities is empty");
  if (!Number.isInteger(width) || !densities.every(isPositive)) return [null, densities];
  return [null, [densities[0], ...densities.slice(1).filter((d) => width * d <= cap)]];
}

function ruleBox(rule, original) {
  if (rule.densities !== null) {
    const { w, h } = rule.options;
    if (!Number.isInteger(w)) return null;
    if (Number.isInteger(h)) return [w, h];
    if (given(shape(rule))) return [w, ratioHeight(w, shape(rule))];
    return original ? [w, halfUp((w * original[1]) / original[0])] : null;
  }
  const [widths] = capped(rule, original);
  return widths && widths.length ? imgBox(widths[widths.length - 1], original, shape(rule)) : null;
}

function defaultRule(sizes, widths, densities, aspect, options) {
  const rule = { media: null, sizes, widths: listed(widths), densities: listed(densities), aspect, options: shortNames(options) };
  if (rule.densities !== null && !(isWhole(rule.options.w) || isWhole(rule.options.h))) {
    throw bad("picture with densities needs a numeric width or height (a fixed-size image)");
  }
  if (typeof sizes !== "string") throw bad(`sizes is a string, got ${JSON.stringify(sizes)}`);
  return rule;
}

function checkInfo(info) {
  if (given(info) && (typeof info !== "object" || Array.isArray(info))) {
    throw new TypeError(`info is the /info JSON, an object, not ${typeof info}`);
  }
}

function infoOriginal(info) {
  if (!given(info)) return null;
  return isWhole(info.width) && isWhole(info.height) ? [info.width, info.height] : null;
}

function checkOriginal(original) {
  if (!given(original)) return null;
  if (!(Array.isArray(original) && original.length === 2 && original.every(isWhole))) {
    throw bad(`original must be [width, height], two positive integers (pixels), got ${JSON.stringify(original)}`);
  }
  return [original[0], original[1]];
}

function isAnimated(animated, key, info) {
  if (given(animated)) {
    if (typeof animated !== "boolean") throw bad(`animated must be true, false or null, got ${JSON.stringify(animated)}`);
    return animated;
  }
  const pages = given(info) ? info.pages : undefined;
  if (isWhole(pages)) return pages > 1;
  return typeof key === "string" && key.toLowerCase().endsWith(".gif");
}

function checkFormats(formats, animated) {
  if (typeof formats === "string" || !Array.isArray(formats)) throw bad(`formats is an array of formats, got ${JSON.stringify(formats)}`);
  const fmts = formats.map((f) => String(f).toLowerCase());
  const unknown = fmts.filter((f) => !Object.hasOwn(MIME_TYPES, f));
  if (unknown.length) throw bad(`formats ${unknown}: <source> types are known for ${Object.keys(MIME_TYPES).join("|")}`);
  if (new Set(fmts).size !== fmts.length) throw bad(`a format is given twice in ${fmts}`);
  return fmts.filter((f) => !(animated && f === "avif"));
}

function checkArt(art) {
  if (!given(art)) return [];
  if (!Array.isArray(art)) throw bad(`art is an array of rules (objects with a media query), got ${typeof art}`);
  return art;
}

function artRule(rule, base) {
  if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
    throw bad(`an art rule is an object with a media query, got ${JSON.stringify(rule)}`);
  }
  const { media, aspect, sizes = base.sizes, widths, densities, ...options } = rule;
  if (typeof media !== "string" || !media.trim()) {
    throw bad(`an art rule needs media, a media query such as "(max-width: 599px)", got ${JSON.stringify(media)}`);
  }
  let [ws, ds] = [listed(widths), listed(densities)];
  if (ws === null && ds === null) [ws, ds] = [base.widths, base.densities];
  const own = shortNames(options);
  if (Object.hasOwn(own, "f")) throw bad("an art rule takes the picture's formats: give no format in a rule");
  if (typeof sizes !== "string") throw bad(`an art rule's sizes is a string, got ${JSON.stringify(sizes)}`);
  return { media, sizes, widths: ws, densities: ds, aspect, options: { ...base.options, ...own } };
}

function loadingAttributes(loading, priority) {
  if (typeof priority !== "boolean") throw bad(`priority must be true or false, got ${JSON.stringify(priority)}`);
  if (loading === undefined) loading = priority ? "eager" : "lazy";
  if (!["lazy", "eager", null].includes(loading)) throw bad(`loading must be "lazy", "eager" or null, got ${loading}`);
  return new Map([["loading", loading], ["fetchpriority", priority ? "high" : null], ["decoding", "async"]]);
}

function blurOptions(rule, ownFormat) {
  const options = {};
  for (const [k, v] of Object.entries(rule.options)) if (!["w", "h", "dpr", "q", "blur"].includes(k)) options[k] = v;
  Object.assign(options, { w: PLACEHOLDER_WIDTH, blur: PLACEHOLDER_BLUR, q: PLACEHOLDER_QUALITY, f: ownFormat });
  const { w, h } = rule.options;
  if (given(rule.aspect)) {
    options.h = ratioHeight(PLACEHOLDER_WIDTH, rule.aspect);
    if (!Object.hasOwn(options, "fit")) options.fit = "cover";
  } else if (isWhole(w) && isWhole(h)) {
    options.h = Math.max(1, halfUp((PLACEHOLDER_WIDTH * h) / w));
  }
  return options;
}

function imgBox(widest, original, aspect) {
  const hasOriginal = original !== undefined && original !== null;
  if (hasOriginal) widest = Math.min(widest, original[0]);
  if (aspect !== undefined && aspect !== null) return [widest, ratioHeight(widest, aspect)];
  if (hasOriginal) return [widest, halfUp((widest * original[1]) / original[0])];
  return null;
}

// ------------------------------------------------------------------------ markup (edgeproxy/url/markup.py)

/** An attribute name attrs accepts (compared lower-cased). */
export const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9_.:-]*$/;
/** <img> attributes the builder writes from its own arguments: attrs may not set them. */
export const RESERVED_ATTRIBUTES = Object.freeze(["src", "srcset", "sizes", "alt", "width", "height"]);
/** The Accept-CH response header line the page's own server sends (with clientHintsMeta's delegation). */
export const ACCEPT_CH = "Accept-CH: Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width";
const COLOR = /^#[0-9A-Fa-f]{6}$/;
const PNG_DATA_URI = /^data:image\/png;base64,[A-Za-z0-9+/]+={0,2}$/;
const PROXY_ORIGIN = /^https?:\/\/(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** attrs as a Map of lower-cased, checked names to values (string, true, or null: left out). */
function checkedAttrs(attrs) {
  const out = new Map();
  if (!given(attrs)) return out;
  if (typeof attrs !== "object" || Array.isArray(attrs)) {
    throw new TypeError(`attrs is an object of attribute names to values, not ${typeof attrs}`);
  }
  for (const [name, value] of Object.entries(attrs)) {
    if (!ATTRIBUTE_NAME.test(name)) throw bad(`attribute name ${JSON.stringify(name)}: a letter, then letters, digits, - _ . :`);
    const lower = name.toLowerCase();
    if (lower.startsWith("on")) throw bad(`attribute ${name}: event handler attributes are refused (use addEventListener)`);
    if (RESERVED_ATTRIBUTES.includes(lower)) throw bad(`attribute ${name} is written by the builder from its own arguments`);
    if (out.has(lower)) throw bad(`attribute ${lower} is given twice`);
    out.set(lower, attributeValue(lower, value));
  }
  return out;
}

function attributeValue(name, value) {
  if (value === null || value === undefined || typeof value === "boolean") return value ? true : null;
  if (["string", "number", "bigint"].includes(typeof value)) return formatValue(value);
  throw new TypeError(`attribute ${name}: values are string, number, boolean or null, not ${typeof value}`);
}

/** ' name="value"' per entry of a Map, values escaped; true: the bare name; null/false/undefined: left out. */
function attributeText(attributes) {
  let out = "";
  for (const [name, value] of attributes) {
    if (value === true) out += ` ${name}`;
    else if (value !== null && value !== undefined && value !== false) out += ` ${name}="${escapeHtml(value)}"`;
  }
  return out;
}

function mergeStyle(first, second) {
  const texts = [first, second]
    .filter((t) => typeof t === "string" && t.trim())
    .map((t) => t.trim().replace(/;+$/, "").trim());
  return texts.join("; ") || null;
}

function placeholderStyle(kind, info, blurUrl) {
  if (kind === "blur") {
    if (blurUrl === null || /["'\\\s()]/.test(blurUrl)) {
      throw bad(`a blur placeholder needs a URL without quotes, backslashes, spaces or parentheses: ${blurUrl}`);
    }
    return `background: url(${blurUrl}) center/cover`;
  }
  if (kind !== "color" && kind !== "thumbhash") throw bad(`placeholder must be "color", "thumbhash" or "blur", got ${JSON.stringify(kind)}`);
  if (!given(info)) throw bad(`placeholder "${kind}" needs info, the original's /info JSON`);
  const [field, rule] = kind === "color" ? ["dominant_color", COLOR] : ["thumbhash_png", PNG_DATA_URI];
  const value = info[field];
  if (!given(value)) return null;
  if (typeof value !== "string" || !rule.test(value)) {
    throw bad(`info.${field} is not a ${kind === "color" ? "#rrggbb colour" : "base64 PNG data URI"}`);
  }
  return kind === "color" ? `background: ${value}` : `background: url(${value}) center/cover`;
}

/**
 * The <meta http-equiv="Delegate-CH"> that lets Chromium send Sec-CH-DPR, Sec-CH-Width and
 * Sec-CH-Viewport-Width to the proxy's origin (w:auto, dpr:auto); the page's server also sends ACCEPT_CH.
 * @param {string} proxyOrigin scheme://host[:port], e.g. "https://img.example.com" (a trailing "/" is dropped).
 * @throws {RangeError} not an http(s) origin.
 */
export function clientHintsMeta(proxyOrigin) {
  const origin = typeof proxyOrigin === "string" ? proxyOrigin.replace(/\/+$/, "") : "";
  if (!PROXY_ORIGIN.test(origin)) {
    throw bad(`proxyOrigin must be an origin such as https://img.example.com, got ${JSON.stringify(proxyOrigin)}`);
  }
  const content = ["sec-ch-dpr", "sec-ch-width", "sec-ch-viewport-width"].map((h) => `${h} ${origin}`).join("; ");
  return `<meta http-equiv="Delegate-CH" content="${escapeHtml(content)}">`;
}
