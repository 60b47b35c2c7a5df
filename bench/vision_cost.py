"""What vision and moderation add to a request: ``python -m bench.vision_cost``.

One edgeproxy process per configuration on 127.0.0.1, requests one at a time (latency, not
throughput), over N copies of a corpus photo stored under distinct keys, so that each key is a new
original to the proxy (its own fetch, analysis and render):

- ``cold``: the first derivative of each original (``w:400/f:webp``): fetch + (analysis) + render;
- ``warm``: a second derivative of each original, another width (``w:320/f:webp``): the original
  and its analysis are cached, the render is new.

Configurations: ``plain`` (no vision), ``moderated`` (``moderation`` on with ``nsfw_model``),
``g:face`` (``face_model``, URLs with ``w:400/h:400/fit:cover/g:face``, against ``g:smart`` URLs on
the plain server), ``redact`` (``redact:faces`` against the same URL without it), ``c2pa`` is in
``python -m bench.c2pa``. Prints medians and the difference in ms; ``--write`` also puts the
section into bench/results.md.

``batch``: N cold originals requested at once from a moderated server (each needs its analysis and
its render): when do the answers come, as fractions of the whole batch's time? First come, first
served in the render pool put every analysis before every render (the first answer near the end);
earliest deadline first spreads them (the median answer near half the batch). The same batch again
with the originals analysed at upload (``stored``: an ``edgeproxy ingest`` worker watching the
folder wrote each ``KEY.analysis.json`` before the batch, as it would on upload), so the proxy runs
no model on the request path (docs/ingest.md).
"""

from __future__ import annotations

import concurrent.futures
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench import report
from bench.servers import start_edgeproxy
from edgeproxy.ingest.record import analysis_key
from edgeproxy.settings import load_settings
from edgeproxy.url.signing import PathSigner
from edgeproxy.vision.models import default_dir
from testkit.ingest import Running, wait_for
from testkit.net import free_port

CORPUS = report.default_corpus()
KEY = "bench-key"
PHOTOS = ("giunchedi-portrait.jpg", "flickr-2725x2225.jpg")


def _times(base: str, paths: list[str]) -> list[float]:
    """Milliseconds per request, one at a time; every answer must be a 200."""
    signer = PathSigner([KEY])
    out = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for path in paths:
            start = time.perf_counter()
            response = client.get(f"/{signer.sign(path)}{path}")
            out.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
    return out


def run(photo: str, copies: int, models: Path) -> list[tuple[str, str, float, float]]:
    """(configuration, phase, median ms, the plain server's median ms for the same phase)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        nsfw, faces = str(models / "open-nsfw.onnx"), str(models / "centerface.onnx")
        servers = {
            "plain": {},
            "moderated": {"EDGEPROXY_MODERATION": "true", "EDGEPROXY_NSFW_MODEL": nsfw},
            "faces": {"EDGEPROXY_FACE_MODEL": faces},
        }
        cases = {  # configuration -> (server, cold option path, warm option path)
            "plain": ("plain", "/w:400/f:webp", "/w:320/f:webp"),
            "moderated": ("moderated", "/w:400/f:webp", "/w:320/f:webp"),
            "plain g:smart": (
                "plain",
                "/w:400/h:400/fit:cover/g:smart/f:webp",
                "/w:320/h:320/fit:cover/g:smart/f:webp",
            ),
            "g:face": ("faces", "/w:400/h:400/fit:cover/g:face/f:webp", "/w:320/h:320/fit:cover/g:face/f:webp"),
            "redact:faces": ("faces", "/w:400/redact:faces/f:webp", "/w:320/redact:faces/f:webp"),
        }
        baseline = {
            "moderated": "plain",
            "g:face": "plain g:smart",
            "redact:faces": "plain",
            "plain": "plain",
            "plain g:smart": "plain g:smart",
        }
        keys = {case: [f"{n}-{i:03d}-{photo}" for i in range(copies)] for n, case in enumerate(cases)}
        for key in ["warm-up.jpg", *(k for case_keys in keys.values() for k in case_keys)]:
            shutil.copyfile(CORPUS / photo, folder / key)  # distinct keys: new originals to the proxy
        results: dict[tuple[str, str], float] = {}
        for server_name, env in servers.items():
            server = start_edgeproxy(folder, free_port(), KEY, {"EDGEPROXY_RENDER_THREADS": "1", **env})
            try:
                _times(server.base, ["/w:64/f:webp/bench/warm-up.jpg"])  # the models' first run
                for case, (name, cold, warm) in cases.items():
                    if name != server_name:
                        continue
                    mine = keys[case]
                    results[case, "cold"] = statistics.median(_times(server.base, [f"{cold}/bench/{k}" for k in mine]))
                    results[case, "warm"] = statistics.median(_times(server.base, [f"{warm}/bench/{k}" for k in mine]))
            finally:
                server.stop()
        for case in cases:
            for phase in ("cold", "warm"):
                rows.append((case, phase, results[case, phase], results[baseline[case], phase]))
    return rows


def _ingested(folder: Path, photo: str, keys: list[str], models: Path) -> float:
    """Copy ``photo`` into ``folder`` under ``keys`` while an ``edgeproxy ingest`` worker watches it
    (``testkit.ingest.Running``, the command's own code in a thread) and wait until every analysis
    object is written; the seconds that took."""
    settings = load_settings(
        origins={"bench": str(folder)},
        signing_key=KEY,
        nsfw_model=str(models / "open-nsfw.onnx"),
        face_model=str(models / "centerface.onnx"),
    )
    with Running(settings, watch=True):
        start = time.monotonic()
        for key in keys:
            shutil.copyfile(CORPUS / photo, folder / key)
        wait_for(lambda: all((folder / analysis_key(key)).exists() for key in keys), timeout=600, step=0.1)
        return time.monotonic() - start


def batch(photo: str, copies: int, models: Path, threads: int = 2, *, stored: bool = False) -> dict[str, float]:
    """``copies`` cold originals (copies of ``photo`` under distinct keys) requested at once, with
    ``g:face``, from a moderated server with both models and ``threads`` render threads: seconds of
    the first, the median and the last answer, from the moment the requests were sent. ``stored``:
    the originals were analysed at upload first (``_ingested``; its seconds under ``ingest``)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = [f"batch-{i:03d}-{photo}" for i in range(copies)]
        shutil.copyfile(CORPUS / photo, folder / "warm-up.jpg")
        ingest = _ingested(folder, photo, keys, models) if stored else 0.0
        if not stored:
            for key in keys:
                shutil.copyfile(CORPUS / photo, folder / key)
        env = {
            "EDGEPROXY_RENDER_THREADS": str(threads),
            "EDGEPROXY_RENDER_QUEUE": str(4 * copies),
            "EDGEPROXY_MODERATION": "true",
            "EDGEPROXY_MODERATION_PENDING": "serve",
            "EDGEPROXY_NSFW_MODEL": str(models / "open-nsfw.onnx"),
            "EDGEPROXY_FACE_MODEL": str(models / "centerface.onnx"),
        }
        server = start_edgeproxy(folder, free_port(), KEY, env)
        try:
            _times(server.base, ["/w:64/f:webp/bench/warm-up.jpg"])
            url = "/w:400/h:400/fit:cover/g:face/f:webp/bench/{}"
            with concurrent.futures.ThreadPoolExecutor(copies) as pool:
                done = sorted(pool.map(lambda key: _times(server.base, [url.format(key)])[0] / 1000, keys))
        finally:
            server.stop()
    return {"first": done[0], "median": statistics.median(done), "last": done[-1], "ingest": ingest}


def main(argv: list[str] | None = None) -> int:
    parser = report.parser("bench.vision_cost", __doc__)
    parser.add_argument("--copies", type=int, default=40, help="distinct originals per photo (default 40)")
    parser.add_argument("--batch", type=int, default=20, help="cold originals requested at once (default 20)")
    parser.add_argument("--models", type=Path, default=default_dir())
    parser.add_argument("--batch-only", action="store_true", help="only the batch (inline and stored analyses)")
    args = parser.parse_args(argv)
    lines = [
        "## Vision: cost per request (python -m bench.vision_cost)",
        "",
        f"{report.run_line(report.command('bench.vision_cost', argv))}, CPU only "
        "(onnxruntime-gpu falling back to CPUExecutionProvider), one render thread, requests one at a time. "
        "cold: the first derivative of an original (fetch, analysis, render); warm: a second derivative of the same "
        "original at another width (analysis cached). Baseline: the same URL on a server without vision "
        "(g:face against g:smart).",
        "",
        "| photo | URL | phase | median ms | baseline ms | added ms |",
        "|---|---|---|---|---|---|",
    ]
    for photo in () if args.batch_only else PHOTOS:
        for case, phase, ms, base in run(photo, args.copies, args.models):
            if case.startswith("plain"):
                continue
            lines.append(f"| {photo} | {case} | {phase} | {ms:.1f} | {base:.1f} | {ms - base:+.1f} |")
    lines += [
        "",
        f"Batch: {args.batch} cold originals requested at once (`w:400/h:400/fit:cover/g:face`) from a "
        "moderated server with both models (2 render threads); "
        "seconds until the first, the median and the last answer, and each as a fraction of the last:",
        "",
        "| photo | analysis | first s | median s | last s | first/last | median/last |",
        "|---|---|---|---|---|---|---|",
    ]
    for photo in PHOTOS:
        for stored in (False, True):
            found = batch(photo, args.batch, args.models, stored=stored)
            analysis = f"stored (ingest: {found['ingest']:.1f} s before)" if stored else "inline"
            lines.append(
                f"| {photo} | {analysis} | {found['first']:.2f} | {found['median']:.2f} | {found['last']:.2f} | "
                f"{found['first'] / found['last']:.2f} | {found['median'] / found['last']:.2f} |"
            )
    report.publish("\n".join(lines) + "\n", args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
