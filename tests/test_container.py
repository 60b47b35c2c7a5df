"""The container image, built and run for real with podman: ``scripts/container-test``.

The script builds the Dockerfile on a local Debian bookworm base made with mmdebstrap (no container
registry needed), runs the image and checks it end to end (its header lists every check): /readyz, a
signed render answered 200 image/webp 200 px wide, first by the fast tier of the default quality
target, then by its optimised tier (immutable, another ETag) once the background optimisation has
stored it in the default result storage under the read-only container's /tmp tmpfs, 403 without a
valid signature, UID 10001, the
HEALTHCHECK, a graceful stop on SIGTERM, and nothing of the build left in the runtime image. It
cleans up after itself and prints one summary line (``pytest -s`` shows it).

Needs podman, mmdebstrap and runc (Debian packages) and root: skipped without them, a failure under
``CI=true``. The first run on a machine builds the base image (half a minute to a few minutes,
depending on the Debian mirror); later runs reuse it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from testkit.env import IN_CI, ROOT

pytestmark = pytest.mark.slow  # podman builds and runs the image: not in the quick loop (pytest -m 'not slow')

SCRIPT = ROOT / "scripts" / "container-test"
TOOLS = ("podman", "mmdebstrap", "runc")
TIMEOUT = 900  # seconds for the whole script: a cold base image, the build and the checks


def _missing() -> str | None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install podman mmdebstrap runc)"
    if os.geteuid() != 0:
        return "scripts/container-test needs root (rootful podman, mmdebstrap in root mode)"
    return None


@pytest.mark.timeout(TIMEOUT + 90)
def test_container_builds_runs_and_serves_signed_renders() -> None:
    problem = _missing()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)

    # Its own process group, so that on a timeout SIGTERM reaches podman as well as the script, whose
    # trap then removes the container and the image before it exits.
    with subprocess.Popen(
        [str(SCRIPT)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
            pytest.fail(f"scripts/container-test ran past {TIMEOUT} s:\n{stderr[-4000:]}")

    print()
    print(stderr, end="")
    summary = [line for line in stdout.splitlines() if line.startswith("container-test: OK ")]
    for line in summary:
        print(line)
    assert process.returncode == 0, f"scripts/container-test exited {process.returncode}:\n{stderr[-4000:]}"
    assert summary, f"no summary line in the output:\n{stdout[-2000:]}"
    fields = dict(item.split("=", 1) for item in summary[0].split()[2:])
    assert {"image_mb", "build_s", "start_s", "request_ms"} <= fields.keys(), summary[0]
