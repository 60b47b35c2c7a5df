"""Waiting for a derivative's optimised tier (issue 26) through a running app."""

from __future__ import annotations

import time

import httpx

#: The fast tier's Cache-Control under the default ``optimise_max_age`` and stale-while-revalidate.
FAST = "public, max-age=300, stale-while-revalidate=86400"
#: The optimised tier's (and every fixed answer's) Cache-Control.
IMMUTABLE = "public, max-age=31536000, immutable"
#: An Accept that allows AVIF and WebP.
ACCEPT_ALL = {"Accept": "image/avif,image/webp,*/*"}


def optimised(client: httpx.Client, path: str, seconds: float = 60) -> httpx.Response:
    """The first answer to ``path`` that is immutable (the optimised tier, once the background has
    stored it), polling every 0.1 s; the last answer after ``seconds`` (the caller's asserts then fail)."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(path, headers=ACCEPT_ALL)
        assert response.status_code == 200, response.text
        if response.headers["cache-control"] == IMMUTABLE or time.monotonic() > deadline:
            return response
        time.sleep(0.1)
