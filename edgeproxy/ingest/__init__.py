"""Moderation before release: analysis of originals at upload (a queue of object-created events,
workers), the analysis objects they leave beside each original (``record``), read by the proxy."""
