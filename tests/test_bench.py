"""The benchmark runs end to end on a tiny workload (timing is not checked: that is bench/'s job)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import images
from testkit.env import ROOT, require_tool, require_varnish


@pytest.mark.slow
def test_bench_runs_end_to_end(corpus: Path, tmp_path: Path):
    require_tool("wrk", "apt-get install wrk; .ci/run installs it")
    output = tmp_path / "results.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--corpus",
            str(corpus),
            "--workdir",
            str(tmp_path),
            "--seconds",
            "1",
            "--concurrency",
            "2",
            "--workloads",
            "jpeg",
            "--servers",
            "edgeproxy",
            "--no-storm",
            "--write",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = [line for line in output.read_text().splitlines() if line.startswith("| jpeg | 2 |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert float(cells[2]) > 0  # edgeproxy req/s
    assert float(cells[4]) > 0  # ceiling img/s
    assert cells[10] == "0"  # errors


@pytest.mark.slow
def test_attack_bench_runs_and_reports_every_case():
    out = printed("bench.attacks", "--repeat", "3")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "median" not in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [
        "/healthz",
        "render 10-1199 px WebP (200)",
        "PNG 50000² bomb (413)",
        "GIF 50000² bomb (413)",
        "JPEG 65000² bomb (413)",
        "WebP 16383² bomb (413)",
        "truncated JPEG (422)",
        "bad signature (403)",
        "saturated (503)",
    ]


def test_format_bench_quality_search_bisects_to_the_first_quality_meeting_each_target():
    from bench.formats import smallest_qualities

    calls = []

    def score_at(q: int) -> float:  # a rising curve: 0.9 per quality step
        calls.append(q)
        return 0.9 * q

    found, scores = smallest_qualities(score_at, [70, 50, 85, 95])
    assert found == {70: 78, 50: 56, 85: 95, 95: None}  # 0.9 × 100 = 90 never reaches 95
    assert len(calls) == len(set(calls)) == len(scores)  # each quality scored once, shared by the targets
    assert len(calls) < 4 * 7


@pytest.mark.slow
@pytest.mark.extras
def test_format_bench_finds_the_smallest_quality_with_the_real_encoders_and_metric(corpus: Path):
    pytest.importorskip("pillow_jxl", reason="bench.formats needs pillow-jxl-plugin (the jxl extra)")
    pytest.importorskip("ssimulacra2", reason="bench.formats needs ssimulacra2 (the bench extra)")
    from bench import formats

    image = formats.reference(corpus / formats.select_photos(corpus, 1)[0], width=192)
    ref = formats.to_ppm(image)
    for codec in (formats.CODECS[0], formats.CODECS[4]):  # JPEG, JPEG XL at edgeproxy's effort

        def score_at(q: int, codec=codec) -> float:
            return formats.ssimulacra2(ref, formats.decode(codec, formats.encode(image, codec, q)))

        found, scores = formats.smallest_qualities(score_at, [70])
        q = found[70]
        assert q is not None and scores[q] >= 70, (codec.label, scores)
        assert q == 1 or scores[q - 1] < 70, (codec.label, scores)  # the quality below was scored and fails


def _table(section: str, heading: str) -> list[list[str]]:
    """The body rows (cells, stripped) of the Markdown table under the ``### `` heading that starts
    with ``heading`` in ``section``."""
    lines = section.split("\n### " + heading, 1)[1].split("\n### ", 1)[0].splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]  # header off


def published(tmp_path: Path, module: str, *args: str) -> str:
    """Run ``python -m module args --write --output tmp_path/results.md`` (it must exit 0) and return
    the section it wrote."""
    output = tmp_path / "results.md"
    subprocess.run(
        [sys.executable, "-m", module, *args, "--write", "--output", str(output)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return output.read_text()


def printed(module: str, *args: str) -> str:
    """What ``python -m module args`` prints (it must exit 0 within two minutes)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout


@pytest.mark.slow
def test_quality_bench_quick_reports_the_optimised_tier_and_the_first_answer(corpus: Path, tmp_path: Path):
    """``bench.quality --quick`` without thumbor: the optimised tier reaches the floor on every photo
    (its own resize), with bytes and CPU per format; the first answer renders today's default
    qualities and the fast tier's typical ones; the report goes to --output."""
    from edgeproxy.quality.search import typical_quality

    section = published(
        tmp_path, "bench.quality", "--quick", "--no-thumbor", "--corpus", str(corpus), "--workdir", str(tmp_path)
    )
    assert section.startswith(
        "## Quality: bytes at an equal SSIMULACRA2 floor against thumbor (python -m bench.quality)"
    )
    assert "thumbor: not run" in section
    rows = _table(section, "Bytes at an equal SSIMULACRA2 floor")
    assert [row[:2] for row in rows] == [["jpeg", "70"], ["webp", "70"], ["avif", "70"]]
    for fmt, _floor, *thumbor, ours, ratio, bare, total, scores, ours_q, cpu in rows:
        assert [*thumbor, ratio, bare, total] == ["n/a"] * 5, fmt
        assert int(ours.replace(",", "")) > 1000, fmt  # two 800-px photos
        theirs, ours_min = scores.split(" / ")
        assert theirs == "n/a" and float(ours_min) >= 70, fmt  # the search reached the floor against its own resize
        low, high = (int(q) for q in ours_q.split("–"))
        assert 1 <= low <= high <= 100, fmt
        assert float(cpu) > 0, fmt
    assert len(_table(section, "Per photo at floor 70")) == 2  # one row per photo
    first = _table(section, "First answer")
    assert [row[:3] for row in first] == [
        ["jpeg", "80", str(typical_quality("jpeg", 70))],
        ["webp", "75", str(typical_quality("webp", 70))],
        ["avif", "60", str(typical_quality("avif", 70))],
    ]
    for fmt, _today_q, _fast_q, today_ms, fast_ms, ratio, today_bytes, fast_bytes, *_ in first:
        assert float(today_ms) > 0 and float(fast_ms) > 0 and float(ratio.strip("*")) > 0, fmt
        assert int(today_bytes.replace(",", "")) > 1000 and int(fast_bytes.replace(",", "")) > 1000, fmt


@pytest.mark.slow
def test_storm_bench_reports_both_scenarios_and_the_queue(corpus: Path, tmp_path: Path):
    """``bench.storm`` on a small storm: every answer a 200 in both scenarios; ``off`` queues nothing,
    ``background`` queues every variant and the queue drains; the ratios line is there."""
    section = published(
        tmp_path,
        "bench.storm",
        "--urls",
        "12",
        "--clients",
        "3",
        "--drain",
        "120",
        "--rounds",
        "1",
        "--corpus",
        str(corpus),
    )
    assert section.startswith("## Cold storm: the optimised tier in the background (python -m bench.storm)")
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # the header off
    rows = {row[0]: row for row in ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)}
    assert set(rows) == {"off", "background"}
    for name, requests, errors, p50, p99, *_ in rows.values():
        assert (requests, errors) == ("12", "0"), name
        assert 0 < float(p50) <= float(p99), name
    assert rows["off"][7:12] == ["0", "0", "0", "0", "0"]  # queued, dropped, done at the end, after, failed
    queued, dropped, done_at_end, done_after, failed = (int(v) for v in rows["background"][7:12])
    assert (queued, dropped, done_at_end + done_after, failed) == (12, 0, 12, 0)
    assert "background ÷ off: p50 " in section


@pytest.mark.slow
def test_storm_isolation_bench_reports_both_isolations_and_their_ratios(tmp_path: Path):
    """``bench.storm_isolation`` on a tiny storm over synthetic photos: every answer a 200 with the
    background in threads and in a worker process, the worker's memory measured (none in thread
    mode), and the ratios line there."""
    section = published(
        tmp_path,
        "bench.storm_isolation",
        *("--queue", "2", "--urls", "6", "--clients", "2", "--settle", "0.2", "--rounds", "1"),
        *("--corpus", str(synthetic_corpus(tmp_path / "corpus", photos=2))),
    )
    assert section.startswith("## Storm over running optimisations: thread vs process isolation")
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # the header off
    rows = {row[0]: row for row in ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)}
    assert set(rows) == {"thread", "process"}
    for name, requests, errors, p50, p99, _done, _dropped, failed, _rss in rows.values():
        assert (requests, errors, failed) == ("6", "0", "0"), name
        assert 0 < float(p50) <= float(p99), name
    assert rows["thread"][8] == "0" and int(rows["process"][8]) > 20  # worker RSS, MiB
    assert re.search(r"process ÷ thread: p50 [0-9.]+, p99 [0-9.]+\.", section), section


def synthetic_corpus(folder: Path, photos: int = 4) -> Path:
    """A corpus of ``photos`` synthetic 800 x 533 JPEG photos (testkit.images) with the MANIFEST.json
    entries a benchmark reads (tag ``photo``, ``decode_ok``): a small workload whose answers and
    optimisations cost a fraction of the real corpus's megapixels."""
    folder.mkdir()
    entries = []
    for seed in range(photos):
        name = f"photo-{seed}.jpg"
        (folder / name).write_bytes(images.encode(images.photo(800, 533, seed=seed), "jpeg"))
        entries.append({"file": name, "tags": ["photo"], "decode_ok": True})
    (folder / "MANIFEST.json").write_text(json.dumps(entries))
    return folder


@pytest.mark.slow
def test_cdn_bench_counts_bytes_and_the_optimised_replay_serves_fewer(tmp_path: Path):
    """``bench.cdn``'s ``buckets+optimised`` scenario through the shipped VCL: MB served in the
    table, and the second replay (the optimised tier stored, the fast one expired) serves fewer
    bytes than the cold one, the third (right after) no more than the second, with no errors. On
    synthetic photos: the benchmark's machinery is under test here, not the corpus (bench/results.md
    has the real run)."""
    require_varnish()
    section = published(
        tmp_path,
        "bench.cdn",
        "--requests",
        "12",
        "--clients",
        "4",
        "--scenarios",
        "buckets+optimised",
        "--corpus",
        str(synthetic_corpus(tmp_path / "corpus")),
    )
    row = next(line for line in section.splitlines() if line.startswith("| buckets+optimised |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert (cells[10], cells[11]) == ("0", "0")  # errors, format violations
    match = re.search(
        r"the first replay served ([0-9.]+) MB .* ([0-9.]+) MB: ([0-9.]+)× \(errors 0\); "
        r"a third time, right after, ([0-9.]+) MB: ([0-9.]+)× \(errors 0\)",
        section,
    )
    assert match, section
    first, second, ratio, steady, steady_ratio = (float(v) for v in match.groups())
    assert float(cells[12]) == first > 0
    assert 0 < second < first and ratio < 1
    assert 0 < steady <= second and steady_ratio <= ratio  # the steady state: optimised answers only


# -- bench/report.py: the options, header and publishing every benchmark shares ------------------------------


def test_the_report_header_names_the_run_command_cores_and_machine():
    from bench import report

    shown = report.command("bench.cdn", ["--requests", "50", "--write", "--output", "x.md", "--seed=3", "--output=y"])
    assert shown == "python -m bench.cdn --requests 50 --seed=3"  # where the report went is not how it was made
    line = report.run_line(shown)
    assert re.fullmatch(
        r"Run \d{4}-\d\d-\d\d \d\d:\d\d UTC with `python -m bench\.cdn --requests 50 --seed=3` on \d+ cores "
        r"\([^,]+, libvips \d+\.\d+\.\d+, \w+ \d+\.\d+\.\d+\)",
        line,
    ), line
    args = report.parser("bench.x", "First line.\n\nMore.", corpus=True).parse_args([])
    assert (args.write, args.output, args.corpus) == (False, report.RESULTS, report.default_corpus())


def test_publish_prints_and_writes_only_with_write(tmp_path: Path, capsys):
    from bench import report

    output = tmp_path / "results.md"
    output.write_text("# Benchmark results\n\nhead\n\n## A\n\nold a\n\n## B\n\nold b\n")
    parser = report.parser("bench.x", "X.")
    report.publish("## A\n\nnew a\n", parser.parse_args(["--output", str(output)]))
    assert "new a" in capsys.readouterr().out
    assert "old a" in output.read_text()  # printed only
    report.publish("## A\n\nnew a\n", parser.parse_args(["--write", "--output", str(output)]))
    assert output.read_text() == "# Benchmark results\n\nhead\n\n## A\n\nnew a\n\n## B\n\nold b\n"
    report.publish("## C\n\nc\n", parser.parse_args(["--write", "--output", str(output)]))
    assert output.read_text().endswith("## B\n\nold b\n\n## C\n\nc\n")
    report.write_head(output, "# Benchmark results\n\nnew head\n")
    assert output.read_text().startswith("# Benchmark results\n\nnew head\n\n## A\n\nnew a\n")


def test_every_benchmark_parses_its_options_and_publishes_through_bench_report():
    """No benchmark builds its own argument parser, its own header or writes bench/results.md itself."""
    for path in sorted((ROOT / "bench").glob("*.py")):
        source = path.read_text()
        if path.name == "report.py" or "def main(" not in source:
            continue
        assert "argparse.ArgumentParser(" not in source, path.name
        assert "report.parser(" in source or "reporting.parser(" in source, path.name
        assert ".write_text(" not in source or path.name in ("workload.py",), path.name
        assert "--no-write" not in source, path.name


@pytest.mark.slow
def test_animation_bench_reports_every_corpus_animation_with_real_sizes(corpus: Path):
    out = printed("bench.animated", "--repeat", "1", "--corpus", str(corpus))
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| `")]
    assert [row[0].removeprefix("| ") for row in rows] == [
        "`animated.gif`",
        "`dancing-banana.gif`",
        "`full-colour.gif`",
        "`gif-dispose-previous.gif`",
        "`animated-loop-3.webp`",
    ]
    banana = rows[1]
    assert banana[1:3] == ["121 × 128", "8"]
    sizes = [int(re.match(r"([\d,]+) B", cell).group(1).replace(",", "")) for cell in banana[3:]]
    assert len(sizes) == 3 and all(size > 500 for size in sizes)
    assert sizes[2] < sizes[1], "effort 3 should be smaller than effort 0"
