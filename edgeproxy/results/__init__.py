"""Result storage: derivatives kept by their ETag in a folder or an S3 bucket, shared by worker
processes and pods (``store`` for the protocol, ``local`` and ``s3`` for the two kinds)."""

from __future__ import annotations

from edgeproxy.results.store import ResultStore, ResultStoreError, Stored, StoreStats, from_location

__all__ = ["ResultStore", "ResultStoreError", "Stored", "StoreStats", "from_location"]
