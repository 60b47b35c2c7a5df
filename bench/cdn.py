"""``python -m bench.cdn``: replay a browser-like workload through the shipped Varnish VCL.

One seeded sequence of requests (``--requests``, default 1,000) is drawn once and replayed, by
``--clients`` concurrent clients, through Varnish in front of a fresh ``edgeproxy serve`` in each
scenario:

- ``buckets``: ``config/varnish/default.vcl`` as shipped (Accept rewritten into three buckets
  before the ``Vary: Accept`` lookup), cold cache;
- ``raw-vary``: the same file with that rewrite removed, so Varnish varies on the raw Accept
  string as a stock Varnish would; nothing else differs;
- ``buckets+prewarm``: the shipped file after ``edgeproxy prewarm`` (``edgeproxy.prewarm``) asked
  Varnish for every original at every width of the workload, once per Accept bucket;
- ``raw-vary+prewarm`` (not run by default): the same prewarm in front of raw ``Vary``;
- ``buckets+optimised``: the shipped file, the sequence replayed three times: cold (the fast tier, for
  ``optimise_max_age`` ``OPTIMISED_MAX_AGE`` s), then once the optimisation queue has drained and
  the fast tier has expired, and once more right after (the steady state: the second's stale
  answers queued the last optimisations): bytes served over time, as the optimised tier replaces the
  fast one.

The workload: originals are the corpus's photos (MANIFEST.json entries tagged ``photo`` that
decode), drawn by Zipf rank (exponent ``ZIPF_S``; the ranks are a seeded shuffle of the photos);
widths (the URL's ``w:``, CSS pixels, ``f:auto``) by Zipf rank over ``WIDTHS`` in that order;
``Accept`` strings are the real-world rows of ``config/accept-buckets.json`` weighted by
``CLIENT_SHARES`` (rough browser shares: Chrome family about two thirds, Safari a quarter,
Firefox, then old browsers, tools and crawlers).

Measured per scenario: Varnish's hit ratio (``X-Varnish`` with two ids), the proxy's renders and
origin reads (its own ``/metrics``, read directly), Varnish's backend requests, stored objects and
LRU evictions (varnishstat), client latency p50/p99 (ms), errors (non-200), format violations
(a ``Content-Type`` the request's ``Accept`` does not allow: must be 0) and body bytes served. Prints a Markdown table
and, with ``--write``, puts it into ``bench/results.md`` (default: print only). Every server listens on
127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import report as reporting
from bench.servers import Server, start_edgeproxy
from edgeproxy import __version__, prewarm
from edgeproxy.http.negotiate import accepted_image_types
from edgeproxy.url.grammar import parse_options
from edgeproxy.url.signing import FULL_SIZE, sign_path
from edgeproxy.url.spec import build_path
from testkit.net import free_port
from testkit.varnish import Varnish, counter, find_varnish, is_hit, start_varnish

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_VCL = ROOT / "config" / "varnish" / "default.vcl"
ACCEPT_TABLE = ROOT / "config" / "accept-buckets.json"
KEY = "bench-key"
ORIGIN = "bench"  # the origin name bench.servers.start_edgeproxy gives the image folder
TIMEOUT = 60.0  # seconds per request
#: ``optimise_max_age`` (s) of the ``optimised`` scenario: the fast tier expires in Varnish between the replays.
OPTIMISED_MAX_AGE = 2
#: Seconds the ``optimised`` scenario waits at most for the optimisation queue to drain.
DRAIN = 600.0
ZIPF_S = 1.1  # Zipf exponent for originals and widths: weight of rank k is 1 / k**ZIPF_S
#: Widths (the URL's ``w:``, CSS pixels), most requested first.
WIDTHS = (320, 480, 640, 960, 1280)
#: Relative request shares (percent, roughly 2024-25 global browser shares) of the real-world rows
#: of config/accept-buckets.json, by their ``client`` name. Chrome family (Chrome, Edge, Samsung
#: Internet, Opera) 66 %, Safari 24 %, Firefox 6 %, IE, command-line tools and crawlers 4 %.
#: Chrome 121+ and Samsung Internet 14+ send the same string, as do Chrome 66-84 and Samsung 9-13.
CLIENT_SHARES: dict[str, float] = {
    "Chrome 121+ / Chromium, <img>": 49.0,
    "Chrome 85-120, <img>": 7.0,
    "Chrome 66-84 / Opera, <img>": 1.0,
    "Chrome 120, navigation (image opened in a tab)": 0.5,
    "Edge (Chromium), <img>": 4.5,
    "Samsung Internet 14+, <img>": 3.5,
    "Samsung Internet 9-13, <img>": 0.5,
    "Safari 17, <img>": 15.0,
    "Safari 16, <img>": 6.0,
    "Safari 14-15, <img>": 2.5,
    "Safari 13 and older, <img>": 0.5,
    "Firefox 128+, <img>": 4.0,
    "Firefox 93-127, <img>": 1.5,
    "Firefox 65-92, <img>": 0.5,
    "Internet Explorer 11, <img>": 0.5,
    "curl, wget, python-requests": 1.0,
    "crawler or link preview bot without Accept": 1.5,
    "image crawler listing WebP": 0.5,
}
#: The block of vcl_recv that rewrites Accept into a bucket (from its first line to its last).
ACCEPT_REWRITE = re.compile(
    r"^[ \t]*set req\.http\.X-Accept-Entries = .*?^[ \t]*unset req\.http\.X-Accept-Entries;[ \t]*\n",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Client:
    """A browser (or tool) from the Accept table: its ``Accept`` (None: no header), CDN bucket and share."""

    name: str
    accept: str | None
    bucket: str
    share: float


@dataclass(frozen=True)
class Request:
    """One request of the replay: signed path, the original and width it asks for, and its client."""

    path: str
    original: str
    width: int
    client: Client


@dataclass(frozen=True)
class Scenario:
    name: str
    raw_vary: bool  # Varnish varies on the raw Accept string (the bucketing block removed)
    prewarm: bool  # edgeproxy prewarm through Varnish before the replay
    # the sequence replayed twice, the second time once the optimised tier is stored and the fast
    # tier has expired in Varnish (optimise_max_age OPTIMISED_MAX_AGE s): bytes over time
    optimised: bool = False


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("buckets", raw_vary=False, prewarm=False),
        Scenario("raw-vary", raw_vary=True, prewarm=False),
        Scenario("buckets+prewarm", raw_vary=False, prewarm=True),
        Scenario("raw-vary+prewarm", raw_vary=True, prewarm=True),
        Scenario("buckets+optimised", raw_vary=False, prewarm=False, optimised=True),
    )
}


@dataclass
class Outcome:
    """One replayed request as the client saw it; ``latency_ms`` is None after a transport error."""

    status: int
    hit: bool
    latency_ms: float | None
    content_type: str
    allowed: bool  # the Content-Type is a format the request's Accept allows
    size: int = 0  # body bytes


@dataclass
class Counts:
    """Counters of one scenario at one moment: the proxy's (renders, origin reads) and Varnish's."""

    renders: float = 0.0  # variant renders (cache="variant", outcome="miss")
    origin_gets: float = 0.0  # original fetches (outcome miss + refreshed + revalidated)
    backend_req: int = 0  # requests Varnish sent to the proxy
    n_object: int = 0  # objects Varnish holds
    lru_nuked: int = 0  # objects Varnish evicted for space

    def __sub__(self, other: Counts) -> Counts:
        """The counters' increase since ``other``; ``n_object`` stays this moment's count."""
        return Counts(
            self.renders - other.renders,
            self.origin_gets - other.origin_gets,
            self.backend_req - other.backend_req,
            self.n_object,
            self.lru_nuked - other.lru_nuked,
        )


@dataclass
class Result:
    """What one scenario measured: the replay's outcomes, and counter deltas of prewarm and replay."""

    scenario: Scenario
    outcomes: list[Outcome]
    replay: Counts
    prewarm: Counts = field(default_factory=Counts)
    prewarm_failures: int = 0
    again: list[Outcome] | None = None  # the second replay of an ``optimised`` scenario
    steady: list[Outcome] | None = None  # its third, right after the second: the steady state


# --- the workload --------------------------------------------------------------------------------


def corpus_photos(corpus: Path) -> list[str]:
    """File names of the corpus's photos that decode (MANIFEST.json: tag ``photo``, ``decode_ok``)."""
    manifest = json.loads((corpus / "MANIFEST.json").read_text())
    return [
        e["file"] for e in manifest if "photo" in e["tags"] and e.get("decode_ok") and (corpus / e["file"]).exists()
    ]


def browser_clients(table: Path = ACCEPT_TABLE) -> list[Client]:
    """The rows of the Accept table named in ``CLIENT_SHARES``, with their shares.

    Raises:
        LookupError: a name in ``CLIENT_SHARES`` that the table no longer has.
    """
    rows = {case["client"]: case for case in json.loads(table.read_text())["cases"]}
    missing = sorted(set(CLIENT_SHARES) - set(rows))
    if missing:
        raise LookupError(f"{table.name} has no rows {missing}: update bench.cdn.CLIENT_SHARES")
    return [Client(name, rows[name]["accept"], rows[name]["bucket"], share) for name, share in CLIENT_SHARES.items()]


def zipf_weights(n: int, s: float = ZIPF_S) -> list[float]:
    """Unnormalised Zipf weights of ranks 1..n: ``1 / k**s``."""
    return [1 / k**s for k in range(1, n + 1)]


def variant_path(original: str, width: int) -> str:
    """The signed path of ``w:{width}/f:auto`` of ``original``, built as ``edgeproxy prewarm`` builds it
    (canonical options), so that prewarmed objects and replayed requests share their URL."""
    return sign_path(build_path(parse_options([f"w:{width}", "f:auto"]), ORIGIN, original), KEY, FULL_SIZE)


def draw(photos: Sequence[str], widths: Sequence[int], clients: Sequence[Client], n: int, seed: int) -> list[Request]:
    """``n`` requests from a ``random.Random(seed)``: original and width by Zipf rank (the photos'
    ranks are a seeded shuffle), client by share. The same arguments give the same sequence."""
    rng = random.Random(seed)
    ranked = list(photos)
    rng.shuffle(ranked)
    originals = rng.choices(ranked, weights=zipf_weights(len(ranked)), k=n)
    sizes = rng.choices(list(widths), weights=zipf_weights(len(widths)), k=n)
    who = rng.choices(list(clients), weights=[c.share for c in clients], k=n)
    paths = {(o, w): variant_path(o, w) for o, w in set(zip(originals, sizes, strict=True))}
    return [Request(paths[o, w], o, w, c) for o, w, c in zip(originals, sizes, who, strict=True)]


def distinct(requests: Sequence[Request]) -> dict[str, int]:
    """Distinct URLs, (URL, bucket) and (URL, raw Accept) pairs: the fewest renders a cold cache
    can make without normalisation, with buckets, and with raw ``Vary: Accept``."""
    return {
        "urls": len({r.path for r in requests}),
        "url_bucket": len({(r.path, r.client.bucket) for r in requests}),
        "url_accept": len({(r.path, r.client.accept) for r in requests}),
    }


# --- the stack -----------------------------------------------------------------------------------


def raw_vary_vcl(vcl: str) -> str:
    """``vcl`` without the vcl_recv block that rewrites Accept into a bucket: Varnish then varies
    on the raw Accept string. Everything else is unchanged.

    Raises:
        ValueError: the block is not found exactly once (the shipped VCL changed shape).
    """
    replaced, count = ACCEPT_REWRITE.subn("    # (bench.cdn raw-vary: Accept left as the client sent it)\n", vcl)
    if count != 1:
        raise ValueError(
            f"expected one Accept rewrite block in the VCL, found {count}: update bench.cdn.ACCEPT_REWRITE"
        )
    return replaced


def proxy_counts(proxy: Server) -> tuple[float, float]:
    """(renders, origin reads) from the proxy's own ``/metrics``, read directly (not through Varnish)."""
    text = httpx.get(proxy.base + "/metrics", timeout=TIMEOUT).text
    lookups: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "edgeproxy_cache_lookups":
            for sample in family.samples:
                if sample.name == "edgeproxy_cache_lookups_total":
                    lookups[sample.labels["cache"], sample.labels["outcome"]] = sample.value
    origin_gets = sum(lookups.get(("original", outcome), 0.0) for outcome in ("miss", "refreshed", "revalidated"))
    return lookups.get(("variant", "miss"), 0.0), origin_gets


def snapshot(proxy: Server, varnish: Varnish) -> Counts:
    """The proxy's and Varnish's counters now."""
    renders, origin_gets = proxy_counts(proxy)
    return Counts(
        renders,
        origin_gets,
        counter(varnish, "MAIN.backend_req"),
        counter(varnish, "MAIN.n_object"),
        counter(varnish, "MAIN.n_lru_nuked"),
    )


def allowed(accept: str | None, content_type: str) -> bool:
    """Whether an answer of ``content_type`` suits a client sending ``accept``: AVIF and WebP only
    where Accept lists them with q > 0; JPEG, PNG and GIF always (the proxy never answers 406)."""
    media = content_type.split(";")[0].strip().lower()
    if media in ("image/avif", "image/webp"):
        return media.removeprefix("image/") in accepted_image_types(accept or "")
    return media in ("image/jpeg", "image/png", "image/gif")


# --- the replay ----------------------------------------------------------------------------------


async def replay(base_url: str, requests: Sequence[Request], clients: int) -> list[Outcome]:
    """Send ``requests`` in order from ``clients`` concurrent connections (each takes the next one
    when its previous answer is in); one :class:`Outcome` per request, in sequence order."""
    outcomes: list[Outcome | None] = [None] * len(requests)
    queue = iter(enumerate(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=limits) as client:
        del client.headers["accept"]  # only the drawn client's Accept, or none at all

        async def worker() -> None:
            for i, request in queue:
                headers = {} if request.client.accept is None else {"Accept": request.client.accept}
                start = time.perf_counter()
                try:
                    response = await client.get(request.path, headers=headers)
                except httpx.HTTPError:
                    outcomes[i] = Outcome(0, False, None, "", True)
                    continue
                latency_ms = (time.perf_counter() - start) * 1000
                content_type = response.headers.get("content-type", "")
                outcomes[i] = Outcome(
                    response.status_code,
                    is_hit(response),
                    latency_ms,
                    content_type,
                    response.status_code != 200 or allowed(request.client.accept, content_type),
                    len(response.content),
                )

        await asyncio.gather(*(worker() for _ in range(clients)))
    return [o for o in outcomes if o is not None]


def run_scenario(
    scenario: Scenario, corpus: Path, photos: Sequence[str], requests: Sequence[Request], clients: int
) -> Result:
    """Start a fresh proxy (metrics from zero) and Varnish in front of it, prewarm if asked, replay
    ``requests``, read the counters, stop both."""
    vcl = SHIPPED_VCL.read_text()
    if scenario.raw_vary:
        vcl = raw_vary_vcl(vcl)
    env = {"EDGEPROXY_OPTIMISE_MAX_AGE": str(OPTIMISED_MAX_AGE)} if scenario.optimised else {}
    proxy = start_edgeproxy(corpus, free_port(), KEY, env)
    again = steady = None
    try:
        with start_varnish("127.0.0.1", proxy.port, vcl=vcl) as varnish:
            start = snapshot(proxy, varnish)
            failures = 0
            if scenario.prewarm:
                jobs = prewarm.plan([(ORIGIN, p) for p in photos], [f"w:{w}/f:auto" for w in WIDTHS], KEY, FULL_SIZE)
                summary = asyncio.run(
                    prewarm.run(varnish.url, jobs, concurrency=clients, timeout=TIMEOUT, progress=False)
                )
                failures = len(summary.failures)
            warmed = snapshot(proxy, varnish)
            outcomes = asyncio.run(replay(varnish.url, requests, clients))
            end = snapshot(proxy, varnish)
            if scenario.optimised:
                drain(proxy)
                time.sleep(OPTIMISED_MAX_AGE + 1)
                again = asyncio.run(replay(varnish.url, requests, clients))
                drain(proxy)  # what the second replay's stale answers queued
                steady = asyncio.run(replay(varnish.url, requests, clients))
    finally:
        proxy.stop()
    return Result(scenario, outcomes, end - warmed, warmed - start, failures, again, steady)


def drain(proxy: Server) -> None:
    """Wait (at most ``DRAIN`` seconds) until the proxy's optimisation queue is empty: every queued
    optimisation done or failed (``edgeproxy_optimise_total``)."""
    deadline = time.monotonic() + DRAIN
    while time.monotonic() < deadline:
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(httpx.get(proxy.base + "/metrics", timeout=TIMEOUT).text):
            for sample in family.samples:
                if sample.name == "edgeproxy_optimise_total":
                    counts[sample.labels["outcome"]] = sample.value
        if counts.get("done", 0) + counts.get("failed", 0) >= counts.get("queued", 0):
            return
        time.sleep(1)


# --- the report ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (1-99) of ``values`` (linear interpolation); 0 for none."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _with_prewarm(replay_value: float, prewarm_value: float, prewarmed: bool) -> str:
    return f"{replay_value:.0f} (+{prewarm_value:.0f})" if prewarmed else f"{replay_value:.0f}"


def table(results: Sequence[Result]) -> str:
    """The Markdown table: one row per scenario. Renders, origin GETs and backend requests are the
    replay's, with the prewarm's in parentheses."""
    lines = [
        "| scenario | requests | hit ratio | renders (+prewarm) | origin GETs (+prewarm) | Varnish backend requests "
        "(+prewarm) | objects stored | LRU evictions | p50 ms | p99 ms | errors | format violations | MB served |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        latencies = [o.latency_ms for o in r.outcomes if o.latency_ms is not None]
        hits = sum(o.hit for o in r.outcomes)
        errors = sum(o.status != 200 for o in r.outcomes) + r.prewarm_failures
        warm = r.scenario.prewarm
        lines.append(
            f"| {r.scenario.name} | {len(r.outcomes)} | {hits / max(len(r.outcomes), 1):.1%} | "
            f"{_with_prewarm(r.replay.renders, r.prewarm.renders, warm)} | "
            f"{_with_prewarm(r.replay.origin_gets, r.prewarm.origin_gets, warm)} | "
            f"{_with_prewarm(r.replay.backend_req, r.prewarm.backend_req, warm)} | {r.replay.n_object} | "
            f"{r.replay.lru_nuked + r.prewarm.lru_nuked} | {percentile(latencies, 50):.1f} | "
            f"{percentile(latencies, 99):.1f} | {errors} | {sum(not o.allowed for o in r.outcomes)} | "
            f"{megabytes(r.outcomes)} |"
        )
    return "\n".join(lines)


def megabytes(outcomes: Sequence[Outcome]) -> str:
    """Body bytes served, in MB (10^6 bytes), two decimals."""
    return f"{sum(o.size for o in outcomes) / 1e6:.2f}"


def bytes_over_time(results: Sequence[Result]) -> list[str]:
    """For each ``optimised`` scenario, a line: bytes of the first replay (fast tier) against the
    second (the optimised tier once stored; a first request per object may still get the stale fast
    one from Varnish's grace) and the third (right after: the steady state)."""
    lines = []
    for r in results:
        if r.again is None:
            continue
        first, second = sum(o.size for o in r.outcomes), sum(o.size for o in r.again)
        lines.append(
            f"Bytes over time ({r.scenario.name}): the first replay served {megabytes(r.outcomes)} MB (the fast "
            f"tier, cold); the same sequence again, once the optimisation queue had drained and the fast tier "
            f"had expired in Varnish (`optimise_max_age` {OPTIMISED_MAX_AGE} s), {megabytes(r.again)} MB: "
            f"{second / first:.2f}× (errors {sum(o.status != 200 for o in r.again)})"
            + (
                f"; a third time, right after, {megabytes(r.steady)} MB: "
                f"{sum(o.size for o in r.steady) / first:.2f}× (errors {sum(o.status != 200 for o in r.steady)})."
                if r.steady is not None
                else "."
            )
        )
    return lines


def formats_line(results: Sequence[Result]) -> str:
    """Formats served per scenario, e.g. ``buckets: avif 850, webp 90, jpeg 60``."""
    parts = []
    for r in results:
        mix = Counter(o.content_type.split(";")[0].removeprefix("image/") for o in r.outcomes if o.status == 200)
        parts.append(f"{r.scenario.name}: " + ", ".join(f"{k} {v}" for k, v in mix.most_common()))
    return "; ".join(parts)


def varnish_version() -> str:
    """``varnishd -V``'s first line, e.g. ``varnish-7.1.1``, or "varnish" when it cannot be read."""
    found = find_varnish()
    if found is None:
        return "varnish"
    out = subprocess.run([found[0], "-V"], capture_output=True, text=True, timeout=10)
    match = re.search(r"varnish-[0-9.]+", out.stdout + out.stderr)
    return match.group(0) if match else "varnish"


def report(
    results: Sequence[Result], requests: Sequence[Request], photos: Sequence[str], command: str, seed: int, clients: int
) -> str:
    """The ``## CDN replay`` section of bench/results.md: how it was run, the workload, the table."""
    counts = distinct(requests)
    shares = Counter(r.client.bucket for r in requests)
    accepts = len({r.client.accept for r in requests})
    return "\n".join(
        [
            "## CDN replay (python -m bench.cdn)",
            "",
            f"{reporting.run_line(command)}, seed {seed}, {clients} concurrent clients; "
            f"edgeproxy {__version__} behind {varnish_version()} running "
            "`config/varnish/default.vcl` (`raw-vary`: the same file without its Accept rewrite), "
            "`-s malloc,32m` (testkit.varnish), load generator on the same machine.",
            f"Workload (`bench/cdn.py`): {len(requests)} requests `w:W/f:auto`, {len(photos)} corpus photos by Zipf "
            f"rank (s = {ZIPF_S}), widths {', '.join(map(str, WIDTHS))} by Zipf rank in that order, "
            f"{accepts} distinct real-world Accept strings from `config/accept-buckets.json` by browser share "
            f"(buckets: " + ", ".join(f"{b} {n / len(requests):.0%}" for b, n in shares.most_common()) + "); "
            f"{counts['urls']} distinct URLs, {counts['url_bucket']} distinct (URL, bucket) and "
            f"{counts['url_accept']} distinct (URL, Accept) pairs. The same sequence in every scenario, each with "
            "a fresh proxy and a cold Varnish.",
            "Hit ratio: `X-Varnish` with two ids. Renders and origin GETs: the proxy's `/metrics` (variant misses; "
            "original miss + refreshed + revalidated). Prewarm: `edgeproxy.prewarm` through Varnish, every photo "
            "at every width, once per Accept bucket; its own counts in parentheses. Latency: client side, ms. "
            "Format violations: a Content-Type the request's Accept does not allow.",
            "",
            table(results),
            "",
            f"Formats served: {formats_line(results)}.",
            "",
            *[line + "\n" for line in bytes_over_time(results)],
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = reporting.parser("bench.cdn", __doc__, corpus=True)
    parser.add_argument("--requests", type=int, default=1000, help="requests in the replay (default %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument("--seed", type=int, default=20240611, help="workload RNG seed (default %(default)s)")
    parser.add_argument(
        "--scenarios",
        default="buckets,raw-vary,buckets+prewarm,buckets+optimised",
        help=f"comma-separated, of {', '.join(SCENARIOS)} (default %(default)s)",
    )
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios.split(",") if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    if not (args.corpus / "MANIFEST.json").exists():
        print(f"bench.cdn: no corpus at {args.corpus} (MANIFEST.json): skipped", file=sys.stderr)
        return 0
    if find_varnish() is None:
        print("bench.cdn: varnishd not found (apt-get install varnish varnish-modules): skipped", file=sys.stderr)
        return 0
    photos = corpus_photos(args.corpus)
    requests = draw(photos, WIDTHS, browser_clients(), args.requests, args.seed)
    print(f"{len(requests)} requests over {len(photos)} photos; distinct: {distinct(requests)}", flush=True)
    results = []
    for name in args.scenarios.split(","):
        started = time.monotonic()
        result = run_scenario(SCENARIOS[name], args.corpus, photos, requests, args.clients)
        results.append(result)
        print(f"{name}: done in {time.monotonic() - started:.0f} s", flush=True)
    command = reporting.command("bench.cdn", argv)
    reporting.publish(report(results, requests, photos, command, args.seed, args.clients), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
