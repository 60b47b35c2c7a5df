"""bench/results.md is shared: each benchmark owns one ``## `` section and rewrites only that one."""

from __future__ import annotations

import re
from pathlib import Path


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


def publish(section: str, output: Path, write: bool) -> None:
    """Print ``section``; unless ``write`` is false (``--no-write``), put it into ``output``."""
    print(section)
    if write:
        write_section(output, section)
        print(f"written to {output}")
