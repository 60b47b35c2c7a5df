"""The documentation stays true: every command in README and docs/ that a test can run is run here
(in a sandbox per page, checking the output the docs show), every link resolves, every file path and
``edgeproxy.`` name the docs mention exists, README's quick start is what CI runs, and the docs'
summaries (option table, module map, navigation) cover what the code has.

The conventions are in docs/development.md, "Documentation", and ``testkit/docs.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image

from edgeproxy.url.spec import OPTION_NAMES
from testkit import docs
from testkit.docs import DOCS, README, ROOT, Block, Sandbox

IN_CI = os.environ.get("CI") == "true"
FILES = docs.doc_files()
BLOCKS = [block for path in FILES for block in docs.blocks(path)]
RUNNABLE = [block for block in BLOCKS if block.lang in docs.RUN and block.not_tested is None]
#: README's two quick-start commands, exactly as the brief of the docs has them.
SERVE_COMMAND = "pip install . && edgeproxy serve --signing-key change-me"
TEST_COMMAND = "pip install '.[test]' && edgeproxy models fetch && pytest"
#: Paths in backquotes that are checked to exist: those under these top-level folders.
REPO_FOLDERS = ("edgeproxy", "tests", "testkit", "config", "bench", "scripts", "clients", "docs")


def _skip_or_fail(message: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Sandbox]]:
    """One sandbox per documentation file, made when its first block runs; servers stopped at the end."""
    made: dict[str, Sandbox] = {}

    class Sandboxes(dict):
        def __missing__(self, path: str) -> Sandbox:
            box = Sandbox(tmp_path_factory.mktemp(re.sub(r"\W", "-", path)))
            made[path] = self[path] = box
            return box

    try:
        yield Sandboxes()
    finally:
        for box in made.values():
            box.close()


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_doc_block_runs_as_documented(block: Block, sandboxes: dict[str, Sandbox]):
    """Each runnable block does what its page says, in its page's sandbox, after the page's earlier
    blocks (so a proxy a page started serves its later blocks)."""
    models = set(docs.MODEL_PATH.findall(block.text))
    if "edgeproxy models fetch" in block.text:  # downloads them where they are missing: not the test's job
        models |= {f"~/.cache/edgeproxy/models/{name}" for name in docs.MODEL_FILES}
    for model in sorted(models):
        if not Path(model).expanduser().is_file():
            _skip_or_fail(f"{model} is missing (edgeproxy models fetch): {block.id} is untested")
    if block.lang == "js" and shutil.which("node") is None:
        _skip_or_fail(f"node is not installed (apt-get install nodejs): {block.id} is untested")
    box = sandboxes[block.path]
    uses_proxy = re.search(r"(127\.0\.0\.1|localhost):8080\b", block.text)
    if uses_proxy and "edgeproxy serve" not in block.text and not box.proxy_running():
        started = box.bash("edgeproxy serve --signing-key change-me")  # the quick start's proxy
        assert started.returncode == 0, f"the quick start's proxy did not start:\n{started.stdout}"
    outcome = box.run(block)
    assert outcome.ok, f"{block.id} does not do what the docs say:\n{block.text}\n--- what it did:\n{outcome.report}"


def test_readme_page_serves_what_it_says(tmp_path: Path):
    """README's "From zero to a page": the page it writes lists, for each format, candidates that the
    proxy answers in that format and at the width each candidate declares (what a browser picks from)."""
    box = Sandbox(tmp_path)
    try:
        readme = [block for block in docs.blocks(README) if block.lang == "sh"]
        page = next(block for block in readme if "index.html" in block.text)
        for block in (readme[0], page):  # the proxy of the quick start, then the page
            outcome = box.run(block)
            assert outcome.ok, outcome.report
        html = (tmp_path / "index.html").read_text(encoding="utf-8")
        base = f"http://127.0.0.1:{box.ports[8080]}/"
        sources = re.findall(r'<source type="(image/\w+)" srcset="([^"]+)"', html)
        img = re.search(r'<img src="([^"]+)" srcset="([^"]+)"', html)
        assert [t for t, _ in sources] == ["image/avif", "image/webp"] and img is not None
        # the hero is the page's LCP image: eager, high priority, and preloaded from <head>
        assert 'loading="eager" fetchpriority="high"' in html and 'loading="lazy"' not in html
        preload = re.search(r'<link rel="preload" as="image" imagesrcset="([^"]+)"', html)
        assert preload is not None and preload.group(1) == sources[0][1]
        candidates = [(t, srcset) for t, srcset in sources] + [("image/jpeg", img.group(2))]
        with httpx.Client(timeout=30) as client:
            for mime, srcset in candidates:
                for candidate in srcset.split(", "):
                    url, width = candidate.rsplit(" ", 1)
                    assert url.startswith(base)
                    answer = client.get(url, headers={"Accept": "image/png,image/*;q=0.8"})
                    assert answer.status_code == 200 and answer.headers["content-type"] == mime, url
                    assert Image.open(io.BytesIO(answer.content)).width == int(width.removesuffix("w")), url
    finally:
        box.close()


def test_blocks_not_run_say_why():
    """A block that is not run carries its reason, and every marker stands right before a block."""
    for path in FILES:
        assert docs.orphan_markers(path) == [], f"{docs.rel(path)}: not-tested markers not right before a block"
    unexplained = [block.id for block in BLOCKS if block.not_tested is not None and len(block.not_tested) < 10]
    assert unexplained == [], "not-tested blocks without a reason"
    assert RUNNABLE, "no runnable block found: the extraction is broken"


def test_readme_quick_start_is_what_ci_runs():
    """README's two commands: the proxy on the embedded default, and the tests exactly as .ci/run
    runs them (after building these docs strictly)."""
    readme = [block.text.strip() for block in docs.blocks(README) if block.lang == "sh"]
    assert readme[:2] == [SERVE_COMMAND, TEST_COMMAND]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert TEST_COMMAND in ci, ".ci/run must run the README's test command as it is written"
    build = next(
        i for i, line in enumerate(ci) if line.strip().startswith("NO_MKDOCS_2_WARNING=1 mkdocs build --strict")
    )
    assert build < ci.index(TEST_COMMAND), ".ci/run builds the docs before the tests"


def test_readme_fits_the_first_hour():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; the reference belongs in docs/"


def test_links_and_anchors_resolve():
    """Every relative link of README and the pages names a file that exists (for a page, one under
    docs/) and, with ``#anchor``, one of its headings; an included text has no relative link, since
    it would resolve differently in its own file and in the page that includes it."""
    broken = []
    pages = {path: docs.expanded(path) for path in [README, *sorted(DOCS.rglob("*.md"))]}
    for path, text in pages.items():
        for line, target in docs.links(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            where = f"{docs.rel(path)}:{line}: {target}"
            if not resolved.exists():
                broken.append(f"{where}: no such file")
            elif path.is_relative_to(DOCS) and not resolved.is_relative_to(DOCS):
                broken.append(f"{where}: outside docs/ (MkDocs cannot serve it)")
            elif anchor and resolved.suffix == ".md" and anchor not in docs.anchors(docs.expanded(resolved)):
                broken.append(f"{where}: no heading with that anchor")
    for page in DOCS.rglob("*.md"):
        for source, name in docs.included(page):
            for line, target in docs.links(docs.section(source, name)):
                if not re.match(r"[a-z][a-z0-9+.-]*:", target):
                    broken.append(f"{docs.rel(source)} (included by {docs.rel(page)}), link {line}: {target}")
    assert broken == []


def test_paths_in_the_docs_exist():
    """A file or folder of the repository named in backquotes (``config/cdn.md``,
    ``tests/test_browser.py``) exists, so a move or a rename updates the docs."""
    missing = []
    for path in FILES:
        for line, span in docs.code_spans(path.read_text(encoding="utf-8")):
            if re.fullmatch(rf"({'|'.join(REPO_FOLDERS)})/[\w./-]*", span) and not (ROOT / span).exists():
                missing.append(f"{docs.rel(path)}:{line}: {span}")
    assert missing == []


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_edgeproxy_names_in_the_docs_exist():
    """Every ``edgeproxy.module.name`` the docs mention in backquotes imports, or is a logger name
    the code uses (``edgeproxy.access``)."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "edgeproxy").rglob("*.py"))
    unknown = []
    for path in FILES:
        for line, span in docs.code_spans(path.read_text(encoding="utf-8")):
            m = re.fullmatch(r"(edgeproxy(?:\.\w+)+)(\(.*\))?", span)
            if m and not _resolves(m.group(1)) and f'"{m.group(1)}"' not in sources:
                unknown.append(f"{docs.rel(path)}:{line}: {span}")
    assert unknown == []


def _option_column(path: Path, header: str) -> set[str]:
    """The backquoted names in the first column of the table whose header row starts with ``header``."""
    rows = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, row in enumerate(rows) if row.startswith(header))
    names: set[str] = set()
    for row in rows[start + 2 :]:
        if not row.startswith("|"):
            break
        names.update(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return names


@pytest.mark.parametrize("page", [README, DOCS / "url-grammar.md"], ids=["README", "url-grammar"])
def test_option_tables_list_every_option(page: Path):
    """README's table at a glance and the grammar page's table name every option and alias the
    parser knows, and nothing else."""
    assert _option_column(page, "| option (alias) |") == set(OPTION_NAMES)


def test_module_map_names_every_module():
    """docs/architecture.md's module map is the one list of modules: it names each module under
    edgeproxy/ once, and nothing that does not exist."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    mapped = re.findall(r"^\| `(edgeproxy/[\w/]+\.py)` \|", text, re.M)
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "edgeproxy").rglob("*.py"))
    assert sorted(set(mapped)) == sorted(mapped), "a module is listed twice"
    assert {"missing from the map": sorted(set(modules) - set(mapped))} == {"missing from the map": []}
    assert {"no such module": sorted(set(mapped) - set(modules))} == {"no such module": []}


def _nav_pages(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _nav_pages(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _nav_pages(value)


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = list(_nav_pages(config["nav"]))
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    assert len(nav) == len(set(nav)), "a page is in the navigation twice"


def test_mkdocs_build_strict(tmp_path: Path):
    """The site builds with ``--strict`` (a broken link, anchor, include or page fails), as .ci/run
    builds it; where the docs extra is not installed, a skip (a failure under CI=true)."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        _skip_or_fail("mkdocs or mkdocs-material is not installed (pip install '.[docs]')")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
