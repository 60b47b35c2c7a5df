// Types for edgeproxy-urls (index.js). Units: CSS pixels for width/height and srcset widths,
// pixels of the upright original for crop (or fractions 0..1), UNIX seconds for expires.

export type OptionValue = string | number | boolean | bigint;

export type Fit = "inside" | "contain" | "cover" | "fill" | "outside" | "pad";
export type Format = "auto" | "avif" | "webp" | "jpeg" | "jpg" | "png" | "gif" | "jxl";
export type SourceFormat = "avif" | "webp" | "jxl" | "jpeg" | "png";
export type Compass =
  | "center" | "north" | "south" | "east" | "west" | "northeast" | "northwest" | "southeast" | "southwest"
  | "c" | "ce" | "centre" | "n" | "no" | "s" | "so" | "e" | "ea" | "w" | "we" | "ne" | "nw" | "se" | "sw";
export type Gravity = Compass | "smart" | "face" | ["fp", number, number] | `fp:${number}:${number}`;
/** [width, height], or width / height. */
export type Aspect = [number, number] | number;

/** Transform options, by long or short name (not both); null/undefined leave an option out. */
export interface TransformOptions {
  /** Preset name(s), 1-64 of A-Z a-z 0-9 _ - each: pr:NAME[:NAME...]. */
  preset?: string | string[] | null;
  pr?: string | string[] | null;
  /** 1..16384 CSS pixels, "auto" (Sec-CH-Width) or ["auto", fallback]. */
  width?: number | "auto" | ["auto", number] | string | null;
  w?: number | "auto" | ["auto", number] | string | null;
  /** 1..16384 CSS pixels (not with w:auto). */
  height?: number | string | null;
  h?: number | string | null;
  /** W:H ("16:9", [16, 9], or a number R for R:1), each > 0, within 1:100..100:1; with w, w:auto or h, never both. */
  aspect_ratio?: string | number | [number, number] | null;
  ar?: string | number | [number, number] | null;
  fit?: Fit | null;
  gravity?: Gravity | null;
  g?: Gravity | null;
  /** Device pixel ratio 1..4, or "auto" (Sec-CH-DPR). */
  dpr?: number | "auto" | null;
  format?: Format | null;
  f?: Format | null;
  /** 1..100; "auto" (the server's SSIMULACRA2 target), or ["auto", N] / "auto:N" (target N, 1..100). */
  quality?: number | "auto" | ["auto", number] | string | null;
  q?: number | "auto" | ["auto", number] | string | null;
  /** Byte budget 1024..104857600: JPEG, WebP and AVIF re-encoded at lower qualities until they fit. */
  max_bytes?: number | null;
  mb?: number | null;
  /** [x, y, width, height]: whole pixels, or fractions 0..1 when any value is written with a ".". */
  trim?: OptionValue | [OptionValue, string] | string | null;
  crop?: [OptionValue, OptionValue, OptionValue, OptionValue] | string | null;
  c?: [OptionValue, OptionValue, OptionValue, OptionValue] | string | null;
  /** Clockwise degrees: 0, 90, 180, 270. */
  rotate?: 0 | 90 | 180 | 270 | null;
  rot?: 0 | 90 | 180 | 270 | null;
  flip?: "h" | "v" | "hv" | null;
  /** Gaussian sigma, pixels, > 0 and <= 100. */
  blur?: number | null;
  /** Sigma, pixels, > 0 and <= 10. */
  sharpen?: number | null;
  /** The output in grey (R = G = B), alpha kept. */
  grayscale?: boolean | 0 | 1 | null;
  gray?: boolean | 0 | 1 | null;
  /** "faces" (blurred), "faces:pixelate", ["faces", "blur" | "pixelate"]: every detected face hidden. */
  redact?: "faces" | "faces:blur" | "faces:pixelate" | ["faces", "blur" | "pixelate"] | null;
  /** RRGGBB or RRGGBBAA hex. */
  background?: string | null;
  bg?: string | null;
  enlarge?: boolean | 0 | 1 | null;
  strip?: boolean | 0 | 1 | null;
  /** UNIX seconds after which the URL is refused. */
  expires?: number | null;
  exp?: number | null;
  /** Cache buster, 1-64 of A-Z a-z 0-9 . _ ~ -. */
  version?: string | null;
  v?: string | null;
}

export interface SrcsetOptions extends TransformOptions {
  /** Device pixel ratios, one "Nx" candidate each (instead of widths). */
  densities?: number[];
  /** Sets each candidate's height (rounded half up) and fit "cover" unless fit is given. */
  aspect?: Aspect;
}

/** An <img> attribute value: written escaped; true: a bare boolean attribute; null/false: left out. */
export type AttributeValue = string | number | boolean | null | undefined;

/** The fields of GET /info's JSON that the builders read. */
export interface ImageInfo {
  width?: number;
  height?: number;
  /** Frames: above 1, the original is animated. */
  pages?: number;
  /** "#rrggbb" (placeholder "color"); absent for a blocked original. */
  dominant_color?: string;
  /** "data:image/png;base64,..." (placeholder "thumbhash"); absent for a blocked original. */
  thumbhash_png?: string;
  [field: string]: unknown;
}

/** An art direction rule: a media query, its own candidates, and options added to the picture's (no format). */
export interface ArtRule extends TransformOptions {
  /** e.g. "(max-width: 599px)". */
  media: string;
  aspect?: Aspect | null;
  /** Default: the picture's widths (or densities). */
  widths?: number[];
  densities?: number[];
  /** Default: the picture's sizes. */
  sizes?: string;
}

export interface PictureOptions extends TransformOptions {
  /** CSS pixel widths, one "Nw" candidate each (or densities). */
  widths?: number[];
  /** Device pixel ratios, one "Nx" candidate each, for a fixed-size image: give a numeric width (or height). */
  densities?: number[];
  /** <source> formats in order of preference; default ["avif", "webp"]. */
  formats?: SourceFormat[];
  /** The sizes attribute; default "100vw". */
  sizes?: string;
  /** The img's text alternative; default the manifest entry's alt for an id, else "". */
  alt?: string;
  /** [width, height] of the upright original, pixels: gives the img's width/height attributes. */
  original?: [number, number] | null;
  aspect?: Aspect | null;
  /** Default "lazy" ("eager" with priority); null: no attribute. */
  loading?: "lazy" | "eager" | null;
  /** The page's LCP image: loading="eager" and fetchpriority="high" (pair it with preloadLink). */
  priority?: boolean;
  /**
   * More <img> attributes (class, id, decoding, style, data-*, aria-*), escaped, overriding the defaults.
   * Refused (RangeError): on* event handlers, src, srcset, sizes, alt, width, height, names that are not
   * HTML attribute names.
   */
  attrs?: Record<string, AttributeValue> | null;
  /** Art direction rules, in order, before the default sources. */
  art?: ArtRule[] | null;
  /** No AVIF source (a one-frame still); default: info.pages > 1, else a key ending in ".gif". */
  animated?: boolean | null;
  /** A style filling the img's box until it paints: "color" and "thumbhash" need info; "blur": a 24-px derivative. */
  placeholder?: "color" | "thumbhash" | "blur" | null;
  /** The original's GET /info JSON: original size, animation, placeholders. */
  info?: ImageInfo | null;
}

export interface UrlBuilderConfig {
  /** e.g. "https://img.example.com"; "" (default) for paths only. */
  baseUrl?: string;
  /** The proxy's signing_key. Server side only: never send it to a browser. */
  signingKey: string | Uint8Array;
  /** Bytes of HMAC-SHA256 kept, 8..32; default 32. */
  signatureSize?: number;
  /**
   * The proxy's manifest origins the page uses, name -> the manifest's parsed JSON (docs/manifests.md):
   * a URL of an id gets v: from its sha256, picture() its alt, size and placeholder, unless given.
   */
  manifests?: Record<string, Record<string, ManifestEntry>>;
}

/** One id's entry in an image manifest (docs/manifests.md). */
export interface ManifestEntry {
  origin: string;
  key: string;
  /** 64 lower-case hex digits of the original's bytes; its first 16 are the URLs' v:. */
  sha256?: string;
  alt?: string;
  /** Pixels of the upright original. */
  width?: number;
  height?: number;
  /** [x, y] fractions 0..1: the g:fp the proxy uses when a URL names no gravity. */
  focal?: [number, number];
  /** "#rrggbb" or a "data:image/png;base64,..." thumbnail. */
  placeholder?: string;
}

export class UrlBuilder {
  /** @throws {RangeError} an empty key, a signatureSize outside 8..32, a baseUrl with whitespace , ? or #, a bad manifest. */
  constructor(config: UrlBuilderConfig);
  readonly baseUrl: string;
  readonly signatureSize: number;
  /** The entry of id key in the manifest origin given to the builder, or null. */
  entry(origin: string, key: string): Readonly<ManifestEntry> | null;
  /** "/{signature}/{options...}/{origin}/{key}". @throws {RangeError} bad origin, key or option. */
  path(origin: string, key: string, options?: TransformOptions): string;
  /** baseUrl + path(). */
  url(origin: string, key: string, options?: TransformOptions): string;
  /** "/info/{signature}/{origin}/{key}", signed over "/info/{origin}/{key}". @throws {RangeError} bad origin or key. */
  infoPath(origin: string, key: string): string;
  /** baseUrl + infoPath(). */
  infoUrl(origin: string, key: string): string;
  /** "URL 320w, URL 640w" or, with options.densities, "URL 1x, URL 2x". */
  srcset(origin: string, key: string, widths: number[] | null | undefined, options?: SrcsetOptions): string;
  srcset(origin: string, key: string, options: SrcsetOptions): string;
  /** A <picture> element: art-directed <source>s, one <source> per format, then the <img>. */
  picture(origin: string, key: string, options: PictureOptions): string;
  /** <link rel="preload" as="image" imagesrcset imagesizes type fetchpriority="high"> for picture()'s first source. */
  preloadLink(origin: string, key: string, options: PictureOptions): string;
}

export const OPTION_NAMES: Readonly<Record<string, string>>;
export const OPTION_ORDER: readonly string[];
export const MIME_TYPES: Readonly<Record<SourceFormat, string>>;
export const SRC_MAX_WIDTH: number;
export const MIN_MAX_BYTES: number;
export const MAX_MAX_BYTES: number;
/** "/info": the route prefix of GET /info, part of what its signatures cover. */
export const INFO_PREFIX: string;
/** One option value as the path writes it (numbers never in exponent notation). */
export function formatValue(value: OptionValue | OptionValue[]): string;
/** As Python's html.escape(text, quote=True). */
export function escapeHtml(text: unknown): string;
/**
 * <meta http-equiv="Delegate-CH" content="sec-ch-dpr ORIGIN; sec-ch-width ORIGIN; sec-ch-viewport-width ORIGIN">.
 * @throws {RangeError} not an http(s) origin (scheme://host[:port]).
 */
export function clientHintsMeta(proxyOrigin: string): string;
/** "Accept-CH: Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width": the header line the page's server sends. */
export const ACCEPT_CH: string;
/** An attribute name attrs accepts. */
export const ATTRIBUTE_NAME: RegExp;
/** <img> attributes attrs may not set. */
export const RESERVED_ATTRIBUTES: readonly string[];
export const PLACEHOLDER_WIDTH: number;
export const PLACEHOLDER_BLUR: number;
export const PLACEHOLDER_QUALITY: number;
