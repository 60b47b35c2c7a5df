"""The HTTP edge: the ASGI app and its routes (``app``), the one wrapper every route goes through
(``edge``: errors, X-Request-ID, metrics, access log), the routes (``transform``, ``info``,
``purge``), the caching headers of every answer (``responses``), negotiation, the admin token
(``auth``), logs and metrics. It parses requests and writes answers; the work is
``edgeproxy.service``'s."""
