"""Rendering: the pipeline, its geometry, and the libvips and Pillow adapters."""
