"""The human review page (``GET /review``, docs/review.md): originals whose stored analysis
(``ingest.record.AnalysisRecord``) is between the blur and block thresholds, or pending, and that no
human verdict has settled; Approve / Block / Blur write the verdict where the origin keeps it, purge
the original and append to an audit log.

Modules: ``auth`` (the admin token as a bearer header, HTTP Basic or a signed login cookie; CSRF
tokens), ``queue`` (the listing), ``verdicts`` (reading and writing human verdicts: S3 metadata or a
sidecar), ``audit`` (the JSON-lines log), ``thumbs`` (blurred thumbnails of withheld originals),
``metrics`` (backlog, age, decisions), ``service`` (the objects built at start-up), ``routes`` (HTTP).
"""
