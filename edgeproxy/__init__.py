"""edgeproxy: an image transformation proxy that sits behind a CDN as its origin."""

__version__ = "0.1.0"

#: Bumped whenever the pipeline's output bytes for the same spec may change; part of every ETag.
#: 2: g:smart keeps animations; 3: f:avif keeps them; 4: the optimised tier's JPEG tables, 4:4:4 AVIF.
#: 5: the optimised tier's AVIF in 10-bit from target 75.
PIPELINE_VERSION = "5"
