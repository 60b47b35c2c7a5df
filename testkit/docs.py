"""The documentation as tests see it: its files, their fenced code blocks, links, headings and
backquoted names, and the sandbox in which ``tests/test_docs.py`` runs the blocks.

The convention the blocks follow (docs/development.md, "Documentation"):

- ``sh``: run with bash (``set -euo pipefail``); must exit 0.
- ``console``: each ``$ `` line (``\\`` at the end of a line continues it) runs in one bash, in order;
  each must exit 0 and print what the block shows below it (stdout and stderr together), where
  ``...`` stands for any text: within a line, or as a line of its own for any number of lines.
- ``pycon``: a doctest (ELLIPSIS on).
- ``python``: run with python; must exit 0.
- ``js``: run with node as an ES module, ``edgeproxy-urls`` resolving to ``clients/js``; must exit 0.
- any other language (or none): configuration or an illustration, not run.
- ``<!-- not-tested: REASON -->`` on the line before a block: not run; the reason is required.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from edgeproxy.vision.models import PINS
from testkit.net import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

#: Languages whose blocks are run; every other block is configuration or an illustration.
RUN = frozenset({"sh", "console", "pycon", "python", "js"})
#: The marker that says why the next block is not run.
NOT_TESTED = re.compile(r"^<!--\s*not-tested:(.*?)-->\s*$")
_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)\s*$")
#: pymdownx.snippets' include line: ``--8<-- "path"`` or ``--8<-- "path:section"``.
SNIPPET = re.compile(r'^--8<--\s+"([^":]+)(?::([\w-]+))?"\s*$')
#: pymdownx.snippets' section markers, in HTML comments so that GitHub shows nothing.
_SECTION = re.compile(r"--8<--\s+\[(start|end):([\w-]+)\]")
#: A Markdown inline link or image: ``[text](target)``.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
#: The ports the docs use (the proxy's default and ``python -m http.server``'s).
DOC_PORTS = (8080, 8000)
_PORT_CONTEXT = r"(127\.0\.0\.1:|localhost:|--port |--port=|http\.server )"
#: Where a doc block may find the vision models (``edgeproxy models fetch``'s default folder).
MODEL_PATH = re.compile(r"~/\.cache/edgeproxy/models/[\w.-]+")
#: The files ``edgeproxy models fetch`` puts there.
MODEL_FILES = tuple(pin.file for pin in PINS)


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is (``path`` relative to the repository, 1-based ``line`` of
    its opening fence), its language, its text, and the reason it is not run (or None)."""

    path: str
    line: int
    lang: str
    text: str
    not_tested: str | None

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}:{self.lang}"


def included(path: Path) -> list[tuple[Path, str | None]]:
    """The files (and sections) ``path`` includes through snippet lines."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := SNIPPET.match(line.strip()):
            found.append((ROOT / m.group(1), m.group(2)))
    return found


def doc_files() -> list[Path]:
    """README, every page under docs/, and the files the pages include, each once."""
    pages = sorted(DOCS.rglob("*.md"))
    files = [README, *pages]
    for page in pages:
        for path, _section in included(page):
            if path not in files:
                files.append(path)
    return files


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def section(path: Path, name: str | None) -> str:
    """``path``'s text, or the part between its ``--8<-- [start:name]`` and ``[end:name]`` markers."""
    text = path.read_text(encoding="utf-8")
    if name is None:
        return text
    lines, inside = [], False
    for line in text.splitlines(keepends=True):
        if m := _SECTION.search(line):
            if m.group(2) == name:
                inside = m.group(1) == "start"
            continue
        if inside:
            lines.append(line)
    if not lines:
        raise ValueError(f"{rel(path)} has no section {name!r}")
    return "".join(lines)


def expanded(path: Path) -> str:
    """``path`` as MkDocs renders it: snippet lines replaced by what they include."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if m := SNIPPET.match(line.strip()):
            out.append(section(ROOT / m.group(1), m.group(2)) + "\n")
        else:
            out.append(line)
    return "".join(out)


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of every line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            yield number, line


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of ``path`` (fences at the start of a line)."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2), i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        marker = NOT_TESTED.match(lines[start - 1].strip()) if start else None
        reason = marker.group(1).strip() if marker else None
        found.append(Block(rel(path), start + 1, lang, "\n".join(body) + "\n", reason))
        i += 1
    return found


def orphan_markers(path: Path) -> list[int]:
    """Lines of ``not-tested`` markers that are not on the line right before a fence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        n + 1
        for n, line in enumerate(lines)
        if "not-tested" in line
        and line.lstrip().startswith("<!--")
        and (not NOT_TESTED.match(line.strip()) or n + 1 >= len(lines) or not _FENCE.match(lines[n + 1]))
    ]


def slugify(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's ``toc``) gives a heading: formatting and links removed,
    ASCII, lower case, runs of spaces and hyphens as one hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(text: str) -> set[str]:
    """The anchors of every heading of a page's (expanded) text."""
    return {slugify(line.lstrip("#")) for _n, line in prose_lines(text) if re.match(r"#{1,6} ", line)}


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line, target) of every inline link outside code blocks and code spans."""
    for number, line in prose_lines(text):
        for m in LINK.finditer(CODE_SPAN.sub("", line)):
            yield number, m.group(1)


def code_spans(text: str) -> Iterator[tuple[int, str]]:
    """(line, content) of every inline code span outside code blocks."""
    for number, line in prose_lines(text):
        for m in CODE_SPAN.finditer(line):
            yield number, m.group(1)


# --- the sandbox ----------------------------------------------------------------------------------

_PRELUDE = r"""
# The docs' sandbox (testkit/docs.py): what a reader's terminal has, with servers in the background.
STATE=__STATE__
_wait_http() {  # URL NAME: wait until URL answers, or the server NAME has exited
  local i
  for i in $(seq 1 600); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    if ! kill -0 "$(cat "$STATE/$2.pid")" 2>/dev/null; then
      echo "sandbox: $2 exited before $1 answered:" >&2; cat "$STATE/$2.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "sandbox: $1 did not answer within 60 s:" >&2; cat "$STATE/$2.log" >&2; return 1
}
_running() {  # PGID: whether a process of the group runs; a zombie does not (PID 1 may never reap it)
  local f line state pgrp
  for f in /proc/[0-9]*/stat; do
    read -r line < "$f" 2>/dev/null || continue
    read -r state _ pgrp _ <<< "${line##*) }"
    if [ "$pgrp" = "$1" ] && [ "$state" != Z ]; then return 0; fi
  done
  return 1
}
_stop() {  # NAME: stop the server NAME (its whole process group), as Ctrl-C would
  local pid i
  [ -f "$STATE/$1.pid" ] || return 0
  pid=$(cat "$STATE/$1.pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for i in $(seq 1 100); do _running "$pid" || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$STATE/$1.pid"
}
edgeproxy() {  # `edgeproxy serve ...` starts in the background; every other command runs as it is
  if [ "${1:-}" != serve ]; then command edgeproxy "$@"; return; fi
  shift
  local args=("$@") port="" prev="" a
  for a in "$@"; do
    if [ "$prev" = --port ]; then port=$a; fi
    case $a in --port=*) port=${a#--port=} ;; esac
    prev=$a
  done
  if [ -z "$port" ]; then port=__P8080__; args+=(--port "$port"); fi
  _stop proxy
  setsid edgeproxy serve "${args[@]}" > "$STATE/proxy.log" 2>&1 < /dev/null &
  echo $! > "$STATE/proxy.pid"
  _wait_http "http://127.0.0.1:$port/healthz" proxy || return 1
  grep -v '^{' "$STATE/proxy.log" || true   # the lines for the person at the terminal (logs are JSON)
}
python() {  # `python -m http.server PORT` starts in the background, on 127.0.0.1
  if [ "${1:-}" = -m ] && [ "${2:-}" = http.server ]; then
    local port=${3:-8000}
    _stop http
    setsid python -m http.server "$port" --bind 127.0.0.1 > "$STATE/http.log" 2>&1 < /dev/null &
    echo $! > "$STATE/http.pid"
    _wait_http "http://127.0.0.1:$port/" http
    return
  fi
  command python "$@"
}
pip() {  # the environment is the one .ci/run installed: installing is not the docs' test
  if [ "${1:-}" = install ]; then echo "sandbox: skipped: pip $*" >&2; return 0; fi
  command pip "$@"
}
"""

_STATUS = "@@@edgeproxy-docs-status"
_SPLIT = re.compile(r"\n" + _STATUS + r" (\d+)@@@\n")


@dataclass
class Outcome:
    """What a block did: ``ok``, and a report to show when it is not."""

    ok: bool
    report: str = ""


def console_commands(text: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of a ``console`` block."""
    pairs: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = [line[2:]]
            while command[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
            pairs.append(("\n".join(command), []))
        elif pairs:
            pairs[-1][1].append(line)
        else:
            raise ValueError(f"console block output before any command: {line!r}")
        i += 1
    return [(command, "\n".join(out)) for command, out in pairs]


def _normal(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows, ``...`` standing for any text: within a line,
    or, as a line of its own, for any number of lines (none included)."""
    pattern = ""
    for line in _normal(expected):
        if line.strip() == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in line.split("...")) + r"\n"
    return re.fullmatch(pattern, "\n".join(_normal(actual)) + "\n" if _normal(actual) else "", re.S) is not None


class Sandbox:
    """One page's terminal: a folder with the repository's top-level entries linked in, an
    environment with the signing key ``change-me`` and a ``TMPDIR`` of its own, the docs' ports
    mapped to free ones, and the servers its blocks started (stopped by ``close``)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.state = folder / ".sandbox"
        self.state.mkdir(parents=True)
        for entry in ROOT.iterdir():
            if not entry.name.startswith("."):
                (folder / entry.name).symlink_to(entry)
        (folder / "node_modules").mkdir()
        (folder / "node_modules" / "edgeproxy-urls").symlink_to(ROOT / "clients" / "js")
        self.ports = {port: free_port() for port in DOC_PORTS}
        bindir = str(Path(sys.executable).parent)
        # A temporary folder of its own, as on a fresh machine: what the page's proxies keep under it
        # (the default result_storage, TMPDIR/edgeproxy-results) starts empty, whatever other pages,
        # tests or processes on this host stored in theirs.
        tmp = folder / ".tmp"
        tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPROXY_")}
        env.update(
            TMPDIR=str(tmp),
            PATH=bindir + os.pathsep + env.get("PATH", ""),
            PYTHONPATH=str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            PYTHONUNBUFFERED="1",
            EDGEPROXY_SIGNING_KEY="change-me",
            NO_COLOR="1",
            TERM="dumb",
        )
        self.env = env
        self.prelude = _PRELUDE.replace("__STATE__", str(self.state)).replace("__P8080__", str(self.ports[8080])) + "\n"
        self._count = 0
        #: The page's earlier ``pycon`` blocks: a page's examples are one session, as in a terminal.
        self._pycon: list[str] = []

    def map_ports(self, text: str) -> str:
        """``text`` with the docs' ports (in ``127.0.0.1:8080``, ``--port 8080``...) made this sandbox's."""
        for port, mapped in self.ports.items():
            text = re.sub(_PORT_CONTEXT + str(port) + r"\b", r"\g<1>" + str(mapped), text)
        return text

    def proxy_running(self) -> bool:
        pid = self.state / "proxy.pid"
        if not pid.is_file():
            return False
        try:
            return group_running(int(pid.read_text()))  # its own process group (setsid)
        except ValueError:
            return False

    def _file(self, suffix: str, text: str) -> Path:
        self._count += 1
        path = self.state / f"block-{self._count}{suffix}"
        path.write_text(text, encoding="utf-8")
        return path

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )

    def bash(self, script: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run ``script`` (ports mapped) after the prelude, with ``set -euo pipefail``."""
        path = self._file(".sh", self.prelude + "set -euo pipefail\n" + self.map_ports(script))
        return self._run(["bash", str(path)], timeout)

    def run(self, block: Block, timeout: float = 180) -> Outcome:
        """Run ``block`` by its language."""
        text = self.map_ports(block.text)
        if block.lang == "sh":
            done = self.bash(block.text, timeout)
            return Outcome(done.returncode == 0, f"exit {done.returncode}\n{done.stdout}")
        if block.lang == "console":
            return self._console(text, timeout)
        if block.lang == "pycon":
            self._pycon.append(text)
            path = self._file(".txt", "\n".join(self._pycon))
            done = self._run([sys.executable, "-m", "doctest", "-o", "ELLIPSIS", str(path)], timeout)
            return Outcome(done.returncode == 0, done.stdout)
        if block.lang == "python":
            done = self._run([sys.executable, str(self._file(".py", text))], timeout)
            return Outcome(done.returncode == 0, f"exit {done.returncode}\n{done.stdout}")
        if block.lang == "js":
            node = shutil.which("node")
            assert node is not None, "node is needed for js blocks"
            done = self._run([node, str(self._file(".mjs", text))], timeout)
            return Outcome(done.returncode == 0, f"exit {done.returncode}\n{done.stdout}")
        raise ValueError(f"blocks in {block.lang!r} are not run")

    def _console(self, text: str, timeout: float) -> Outcome:
        pairs = console_commands(text)
        script = self.prelude + "exec 2>&1\n"
        for command, _expected in pairs:
            script += f"{command}\nprintf '\\n{_STATUS} %s@@@\\n' \"$?\"\n"
        done = self._run(["bash", str(self._file(".sh", script))], timeout)
        parts = _SPLIT.split(done.stdout)
        outputs, statuses = parts[0:-1:2], [int(s) for s in parts[1::2]]
        report, ok = [], len(statuses) == len(pairs)
        for (command, expected), output, status in zip(pairs, outputs, statuses, strict=False):
            good = status == 0 and matches(expected, output)
            ok = ok and good
            report.append(f"$ {command}\n{output.rstrip()}\n[exit {status}{'' if good else ', expected:'}]")
            if not good:
                report.append(expected)
        if len(statuses) != len(pairs):
            report.append(f"(bash stopped after {len(statuses)} of {len(pairs)} commands)\n{parts[-1]}")
        return Outcome(ok, "\n".join(report))

    def close(self) -> None:
        """Stop every server the page's blocks started (each a process group of its own)."""
        for pidfile in self.state.glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text())
                os.killpg(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if not group_running(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.killpg(pid, signal.SIGKILL)


def group_running(pgid: int) -> bool:
    """Whether a process of process group ``pgid`` still runs. A zombie does not: the sandbox's
    servers outlive the shell that started them, so their parent is PID 1, which in a container may
    never reap them (``os.killpg(pgid, 0)`` would then wait out the whole timeout)."""
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False
