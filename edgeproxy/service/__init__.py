"""The request service, between the HTTP edge and the render pipeline.

- ``derive``: ``Service.derive`` (fetch -> metadata -> analysis -> decision -> ETag -> render) and
  ``Service.examine`` (the same first steps, for ``/info``);
- ``results``: the typed answers (``Derivative``, ``NotModified``, ``Fallback``, ``Failure``);
- ``originals``: originals and their metadata, cached, single-flight, stale-if-error;
- ``validators``: surrogate keys and ETags.

Nothing is imported here, so that ``edgeproxy.service.validators`` stays cheap for the CLI.
"""
