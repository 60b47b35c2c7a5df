"""What the benchmarks share: their common options, the line that says how a report was made, and
where a report goes.

Every benchmark prints its report. Writing it into the tracked ``bench/results.md`` is opt-in
(``--write``; ``--output`` names another file): a run on a laptop or a busy CI machine never rewrites
the published figures by accident. ``bench/results.md`` is shared: ``python -m bench`` owns the part
before the first ``## `` heading, every other benchmark one or more ``## `` sections, and each
rewrites only its own (``write_section``).

Each report opens with ``run_line``: ``Run 2026-11-02 10:00 UTC with `python -m bench.x --runs 3` on
2 cores (x86_64, libvips 8.18.7, CPython 3.11.2)``, then says what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edgeproxy.render import vips

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.md"


def default_corpus() -> Path:
    """``$EDGEPROXY_CORPUS``, else ``../shared/corpus`` beside the repository (as the tests read it)."""
    return Path(os.environ.get("EDGEPROXY_CORPUS", ROOT.parent / "shared" / "corpus"))


def parser(prog: str, doc: str | None, *, corpus: bool = False, output: bool = True) -> argparse.ArgumentParser:
    """The argument parser of ``python -m {prog}``, described by the first line of ``doc`` (the
    module's docstring), with the options every reporting benchmark has: ``--write`` and
    ``--output`` (unless ``output`` is False: a benchmark that only prints); with ``corpus``,
    ``--corpus`` (default ``default_corpus()``)."""
    described = argparse.ArgumentParser(prog=f"python -m {prog}", description=(doc or "").strip().splitlines()[0])
    if corpus:
        described.add_argument(
            "--corpus",
            type=Path,
            default=default_corpus(),
            help="corpus folder with MANIFEST.json (default: $EDGEPROXY_CORPUS or ../shared/corpus)",
        )
    if output:
        described.add_argument(
            "--write", action="store_true", help="also write the report into --output (default: print only)"
        )
        described.add_argument(
            "--output", type=Path, default=RESULTS, help="the file --write updates (default: bench/results.md)"
        )
    return described


def command(prog: str, argv: Sequence[str] | None = None) -> str:
    """The command line that ran this benchmark, as a report shows it: ``python -m {prog}`` and its
    arguments (``sys.argv``'s when ``argv`` is None), without ``--write`` and ``--output``, which
    say where the report went, not how it was measured."""
    args = list(sys.argv[1:] if argv is None else argv)
    shown: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--write" or arg.startswith("--output="):
            continue
        if arg == "--output":
            skip = True
            continue
        shown.append(arg)
    return " ".join([f"python -m {prog}", *shown])


def machine() -> str:
    """``x86_64, libvips 8.18.7, CPython 3.11.2``: the processor, the libvips and the Python that ran."""
    return (
        f"{platform.processor() or platform.machine()}, libvips {vips.version()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def run_line(command_line: str) -> str:
    """The sentence every report opens with: when (UTC, to the minute), the command, the number of
    cores and ``machine()``; no full stop, so that a report can go on with what it measured."""
    now = datetime.datetime.now(datetime.UTC)
    return f"Run {now:%Y-%m-%d %H:%M} UTC with `{command_line}` on {os.cpu_count() or 0} cores ({machine()})"


def publish(section: str, args: argparse.Namespace) -> None:
    """Print ``section`` (Markdown whose first line is its ``## `` heading); with ``--write``, also put
    it into ``--output`` (``write_section``)."""
    print(section)
    if args.write:
        write_section(args.output, section)
        print(f"written to {args.output}")


def write_section(output: Path, section: str) -> None:
    """Append ``section`` (Markdown whose first line is its ``## `` heading) to ``output``, or
    replace the previous section with that heading there (up to the next heading of level 1 or 2);
    the rest of the file is kept."""
    text = output.read_text() if output.exists() else ""
    heading = section.splitlines()[0]
    start = text.find(heading)
    if start < 0:
        output.write_text(text.rstrip("\n") + "\n\n" + section if text else section)
        return
    following = re.search(r"^#{1,2} ", text[start + len(heading) :], re.MULTILINE)
    end = start + len(heading) + following.start() if following else len(text)
    rest = text[end:]
    output.write_text(text[:start] + section + ("\n" + rest if rest else ""))


def write_head(output: Path, head: str) -> None:
    """Replace the part of ``output`` before its first ``## `` heading (``python -m bench``'s report)
    with ``head``; the sections after it are kept."""
    old = output.read_text() if output.exists() else ""
    other = re.search(r"^## ", old, re.MULTILINE)
    kept = old[other.start() :] if other else ""
    output.write_text(head.rstrip("\n") + "\n\n" + kept if kept else head)


def best_ms(function: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` calls of ``function`` after one warm-up, in milliseconds."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times) * 1000
