"""edgeproxy: an image transformation proxy that sits behind a CDN as its origin."""

__version__ = "0.1.0"

#: Bumped whenever the pipeline's output bytes for the same spec may change; part of every ETag.
PIPELINE_VERSION = "3"  # 2: g:smart keeps animations (one attention window for every frame); 3: f:avif keeps them
