"""C2PA Content Credentials: read an original's manifest, sign each derivative with its own.

Modules: :mod:`.context` (the c2pa settings, and the contexts the app builds from them once at
start-up: :class:`~.context.C2paContexts`), :mod:`.read` (``/info``'s summary of an original's
manifest), :mod:`.redact` (what of an original's store a derivative must not carry), :mod:`.sign`
(the derivative's manifest).

Standard: the C2PA Technical Specification 2.x (spec.c2pa.org), through ``c2pa-python`` 0.38 (the
``vision`` extra; its native library is c2pa-rs 0.91). Section names below are the specification's.

- :func:`.read.read_manifest` turns the manifest store of an original into a small JSON-ready summary for
  ``/info``: the validation state ("Validation states"), the active manifest's title and claim
  generator, its actions ("Actions"), its ingredients ("Ingredient") and who signed it.
- :class:`.sign.DerivativeSigner` signs a rendered derivative with a new manifest whose ingredient is the
  original with relationship ``parentOf`` ("Relationship") and whose ``c2pa.actions.v2`` assertion
  starts with ``c2pa.opened`` (linked to that ingredient, as "Mandatory presence of at least one
  actions assertion" requires of an asset with a parent) followed by what edgeproxy did
  (:func:`.sign.derivative_actions`: ``c2pa.resized``, ``c2pa.cropped``, ``c2pa.filtered``,
  ``c2pa.transcoded``). When the original carries a manifest store, c2pa embeds that store in the
  derivative's, so the chain of custody goes on, but REDACTED ("Redaction of Assertions"): in every
  manifest of it (the original's and each one before it), every assertion but those the chain needs
  (:data:`.redact.KEPT_ASSERTIONS`: actions, hard bindings, ingredients, time-stamps, certificate status) is
  removed and its URI listed in the new claim's ``redacted_assertions`` and in a ``c2pa.redacted``
  action (reason ``c2pa.PII.present``). Claim thumbnails and ingredient thumbnails (clear pictures of the
  original: a redacted or blurred derivative would otherwise carry the face it hides), EXIF (GPS,
  serial numbers), XMP, IPTC, ``*.metadata``, CreativeWork, identity, soft bindings... are gone from
  the derivative's bytes, as ``strip`` removes them from its pixels' file (:func:`.redact.redactions`). A
  store that cannot be carried that way is not carried at all (see :meth:`.sign.DerivativeSigner.sign`).

Network: originals are untrusted input, and c2pa by default fetches the remote manifest an asset
points to ("Remote manifests"). :data:`.context.SETTINGS` turns that off, keeps OCSP fetching off
(``verify.ocsp_fetch``: revocation is then only checked from what the manifest staples) and, as a
last line, gives c2pa's HTTP resolver an empty host allow-list (``core.allowed_network_hosts: []``:
every request it would make is refused). The one request left is the signer's own RFC 3161
time-stamp (``tsa_url``), which c2pa sends outside that resolver, and only when configured.

Settings in c2pa-python 0.38 are per ``c2pa.Context``, not process-wide: the deprecated global
``c2pa.load_settings`` is ignored by ``Reader`` and ``Builder``, which without a context use the
library defaults (remote fetch on). Everything here therefore reads and signs through contexts built
from :data:`.context.SETTINGS`: the app builds one :class:`~.context.C2paContexts` at start-up
(which first checks that this c2pa knows every setting named: c2pa silently ignores unknown keys,
so a renamed key would otherwise quietly leave fetching on) and passes it to every read and to the
signer. Code elsewhere must not call ``c2pa.Reader`` without one of these contexts. No module holds
c2pa state.

Thumbnails are off (``builder.thumbnail.enabled: false``): c2pa would otherwise decode the untrusted
original with its own decoders to embed a thumbnail of it (a clear copy of the picture the derivative
may hide) and of the derivative (tens of KB, and the derivative already is its own thumbnail). Measured
costs: ``bench/c2pa.py``.
"""
