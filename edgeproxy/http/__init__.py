"""The HTTP edge: the ASGI app, responses and their headers, negotiation, /info, logs, metrics."""
