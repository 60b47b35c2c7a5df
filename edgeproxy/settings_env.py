"""The few settings read straight from the environment (``EDGEPROXY_*``) by the commands that need
no other setting (``sign``, ``purge``, ``prewarm``, ``check``, ``check-config``, ``models fetch``),
without loading the whole schema (``edgeproxy.settings``)."""

from __future__ import annotations

import os
from pathlib import Path


def env_signing_key() -> str | None:
    """``EDGEPROXY_SIGNING_KEY`` for ``edgeproxy sign`` (which needs no other setting)."""
    return os.environ.get("EDGEPROXY_SIGNING_KEY") or None


def env_admin_token() -> str | None:
    """``EDGEPROXY_ADMIN_TOKEN`` for ``edgeproxy purge`` (which needs no other setting)."""
    return os.environ.get("EDGEPROXY_ADMIN_TOKEN") or None


def env_allow_unsigned() -> bool:
    """``EDGEPROXY_ALLOW_UNSIGNED`` is on (``1``, ``true``, ``yes``, ``on``), for ``check-config``."""
    return os.environ.get("EDGEPROXY_ALLOW_UNSIGNED", "").strip().lower() in ("1", "true", "yes", "on")


def env_models_dir() -> Path:
    """The vision models' folder for ``edgeproxy models fetch`` and the benchmarks:
    ``$EDGEPROXY_MODELS_DIR`` when set, else ``$XDG_CACHE_HOME/edgeproxy/models``
    (``~/.cache/edgeproxy/models`` when ``XDG_CACHE_HOME`` is unset or empty)."""
    if os.environ.get("EDGEPROXY_MODELS_DIR"):
        return Path(os.environ["EDGEPROXY_MODELS_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeproxy" / "models"


def env_signature_size() -> int | None:
    """``EDGEPROXY_SIGNATURE_SIZE`` for ``edgeproxy sign``, or None when unset or not a number."""
    value = os.environ.get("EDGEPROXY_SIGNATURE_SIZE", "")
    return int(value) if value.isdigit() else None
