"""Helpers shared by the tests (``tests/``) and the benchmarks (``bench/``). Not part of the installed
package; imported from the repository root.

- ``app``: the test signing key, signed paths, edgeproxy served by uvicorn on 127.0.0.1;
- ``env``: the repository and corpus paths, CI or not, extras and models, the skip-or-fail gate;
- ``images``: deterministic synthetic images (photos, alpha, animations, EXIF orientations, ICC)
  and the readers of answers (``decode``, ``loader_format``);
- ``origin``: one threaded HTTP origin on 127.0.0.1 (a folder and in-memory objects, ETags and 304s,
  statuses, delays, resets and short bodies, TLS with SNI, a request log);
- ``metrics``: values out of a ``/metrics`` exposition;
- ``net``: free ports, serving a socketserver in a thread, a silent (hung) server;
- ``bombs``: hostile headers that declare enormous canvases;
- ``c2pa``, ``coordinates``, ``moto``, ``varnish``: the C2PA credentials, face coordinates, the S3
  server and the Varnish harness of the tests that need them.
"""
