"""``edgeproxy check`` (package): a synthetic probe of derivatives from the outside (through the CDN or the
proxy itself), for a cron job or a deployment pipeline.

Each target is one signed URL requested with one ``Accept`` string; its answer is checked against
what the URL asks for, parsed with the proxy's own grammar (``edgeproxy.url.grammar``) and
negotiated as the proxy would (``edgeproxy.http.negotiate``), and against the caching contract
(docs/headers.md, ``edgeproxy.http.responses.HeaderPolicy``). The checks, by name:

- ``request``: an answer came (no connection error or timeout);
- ``status``: 200;
- ``content-type``: the header names the format the bytes are (their magic number,
  ``sniff``), and that format is the URL's ``f:`` or, for ``f:auto``, one ``Accept`` allowed (or a
  legacy one: JPEG, PNG, GIF);
- ``decode``: libvips decodes every pixel (every frame);
- ``dimensions``: one frame's width × height fits the URL's box (``expected_size``): exact where
  the original's size is known (a manifest's ``width``/``height``: ``geometry.plan``), else the
  bounds every fit keeps (never over the box, exactly the box for ``pad`` and ``fill``...); not
  checked for ``w:auto`` (its width is the server's ``auto_width_fallback``, in its buckets);
- ``cache-control``: ``public`` with a ``max-age``, and ``immutable``, or the fast tier of a
  quality target (``stale-while-revalidate``, not ``immutable``); for a URL with ``exp``, never
  ``immutable``, a ``max-age`` no longer than the seconds left, and an ``Expires``;
- ``etag``: present, quoted (strong, or weak for C2PA-signed derivatives);
- ``vary``: ``Accept`` for ``f:auto`` and not for an explicit format, never ``*``;
- ``ttfb``, ``decode-time``: under ``--max-ttfb`` / ``--max-decode`` seconds, when given.

Output: a table (``table``), JSON (``as_json``) or a Prometheus textfile for node_exporter's
textfile collector (``write_textfile``, prometheus_client's ``write_to_textfile``: written to a
temporary file and renamed, so the collector never reads half a file). Requests go one at a time,
so their timings are not each other's queueing.

The package: ``targets`` (what is probed), ``prober`` (the requests), ``contract`` (the checks),
``sniffing`` (what the bytes are), ``report`` (the output); the names below are its interface.
"""

from __future__ import annotations

from edgeproxy.check.contract import Failure as Failure
from edgeproxy.check.contract import Result as Result
from edgeproxy.check.contract import check_type as check_type
from edgeproxy.check.contract import expected_size as expected_size
from edgeproxy.check.contract import size_problem as size_problem
from edgeproxy.check.prober import probe as probe
from edgeproxy.check.prober import run as run
from edgeproxy.check.report import as_json as as_json
from edgeproxy.check.report import table as table
from edgeproxy.check.report import write_textfile as write_textfile
from edgeproxy.check.sniffing import decode as decode
from edgeproxy.check.sniffing import sniff as sniff
from edgeproxy.check.targets import DEFAULT_ACCEPT as DEFAULT_ACCEPT
from edgeproxy.check.targets import Target as Target
from edgeproxy.check.targets import manifest_targets as manifest_targets
from edgeproxy.check.targets import split_url as split_url
from edgeproxy.check.targets import url_targets as url_targets
