"""Drive a server with wrk (Debian's package): bounded in time, 127.0.0.1 only, paths in rotation."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

LUA = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Accept"] = "%(accept)s"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run(base: str, paths: list[str], connections: int, seconds: float, accept: str = "*/*") -> dict:
    """Requests/s, p50/p99 latency (ms) and error count (non-2xx, timeouts, socket errors)."""
    assert base.startswith("http://127.0.0.1:"), "benchmarks only target this machine"
    lua = LUA % {"paths": ", ".join(json.dumps(p) for p in paths), "accept": accept}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "1",
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                script.name,
                base,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    seconds_run = data["duration_us"] / 1e6
    return {
        "rps": data["requests"] / seconds_run,
        "requests": data["requests"],
        "errors": data["errors"],
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
    }
