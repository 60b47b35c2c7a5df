"""The gate for tests that need Varnish (the harness itself is ``testkit/varnish.py``)."""

from __future__ import annotations

import pytest

from testkit.varnish import find_varnish
from tests.conftest import IN_CI


def require_varnish() -> tuple[str, str]:
    """Paths of ``varnishd`` and ``varnishadm``; skips the test where they are missing, fails it
    under ``CI=true`` (``.ci/run`` installs Debian's varnish)."""
    found = find_varnish()
    if found is None:
        if IN_CI:
            pytest.fail("CI=true but varnishd is missing (.ci/run installs Debian's varnish)")
        pytest.skip("varnishd not installed (apt-get install varnish varnish-modules)")
    return found
