"""The c2pa settings edgeproxy reads and signs under, and the contexts built from them.

Settings in c2pa-python 0.38 are per ``c2pa.Context`` (the package docstring says why each one is
set). :class:`C2paContexts` is built once by the app at start-up and passed to every reader and to
the signer: no module holds c2pa state.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import c2pa

#: c2pa settings for every read and every signature (JSON, the c2pa settings schema; see the module
#: docstring). ``decode_identity_assertions`` off: CAWG identity assertions of untrusted originals are
#: not decoded (nothing here reports them, and their decoding may resolve ``did:web`` documents).
SETTINGS: dict[str, Any] = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    "core": {"allowed_network_hosts": [], "decode_identity_assertions": False},
    "builder": {"thumbnail": {"enabled": False}},
}
#: What :func:`.redact.redactions` changes in :data:`SETTINGS` to list a store's assertions: no validation
#: (the signature that follows validates the store anyway), which halves its time (``bench/c2pa.py``).
LISTING_SETTINGS: dict[str, Any] = {"verify": {"verify_after_reading": False}}


def setting_paths(settings: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Leaf settings as (dotted path, value)."""
    out = []
    for key, value in settings.items():
        path = f"{prefix}{key}"
        out.extend(setting_paths(value, path + ".") if isinstance(value, dict) else [(path, value)])
    return out


def check_settings_known(settings: dict[str, Any]) -> None:
    """Raise RuntimeError unless this c2pa knows every setting of ``settings``.

    c2pa accepts any unknown key silently but type-checks the known ones: each path is set to a JSON
    string, which c2pa must refuse for these boolean and list settings (it would accept it for an
    unknown key)."""
    probe = c2pa.Settings()
    try:
        for path, value in setting_paths(settings):
            if isinstance(value, str):
                raise RuntimeError(f"{path}: the probe works for boolean and list settings only")
            try:
                probe.set(path, '"wrong-type"')
            except c2pa.C2paError:
                continue
            raise RuntimeError(f"c2pa {c2pa.sdk_version()} does not know the setting {path}")
    finally:
        probe.close()


@dataclass(frozen=True, slots=True)
class _Built:
    """The contexts of one process (``pid``): a context belongs to the process that made it."""

    pid: int
    reading: c2pa.Context
    listing: c2pa.Context


class C2paContexts:
    """The c2pa contexts of this process: ``reading`` (every :func:`~.read.read_manifest`) under
    ``settings``, ``listing`` (:func:`~.redact.redactions`) under ``settings`` changed by
    ``listing``, and the JSON every signature builds its own context from (``settings_json``).

    Built once by the app at start-up, after checking that this c2pa knows every setting named.
    Thread-safe: contexts are shared by every render thread (c2pa-python's readers take them as
    read-only configuration). Fork-safe: a process forked from the one that built them rebuilds its
    own on first use (a context belongs to the process that made it); threads racing to do so each
    build a complete pair, and one of them is kept: no lock, so none is left held across a fork.

    Raises (on construction):
        RuntimeError: this c2pa does not know one of the settings (a c2pa upgrade renamed it).
        c2pa.C2paError: c2pa refused the settings.
    """

    def __init__(self, settings: dict[str, Any] = SETTINGS, listing: dict[str, Any] = LISTING_SETTINGS) -> None:
        check_settings_known(settings)
        check_settings_known(listing)
        self.settings_json = json.dumps(settings)
        self._listing_json = json.dumps(
            {**settings, **{key: {**settings.get(key, {}), **value} for key, value in listing.items()}}
        )
        self._mime_types = frozenset(m for m in c2pa.Builder.get_supported_mime_types() if "/" in m)
        self._built = self._build()

    def _build(self) -> _Built:
        listing = c2pa.Context.from_json(self._listing_json)
        return _Built(os.getpid(), c2pa.Context.from_json(self.settings_json), listing)

    def _current(self) -> _Built:
        built = self._built
        if built.pid != os.getpid():  # forked: this process needs its own
            built = self._built = self._build()
        return built

    @property
    def reading(self) -> c2pa.Context:
        """The context every read of an original's manifest uses (validation on, no network)."""
        return self._current().reading

    @property
    def listing(self) -> c2pa.Context:
        """The context that lists a store's assertions (as ``reading``, without validation)."""
        return self._current().listing

    def supports(self, mime: str) -> bool:
        """Whether c2pa can embed a manifest in a file of this media type (parameters ignored).

        c2pa 0.38's list (``c2pa.Builder.get_supported_mime_types``) includes every format edgeproxy
        writes: image/jpeg, image/png, image/webp, image/gif, image/avif, image/jxl, image/tiff,
        image/heic, image/svg+xml; not image/bmp or image/x-icon.
        """
        return mime.split(";")[0].strip().lower() in self._mime_types
