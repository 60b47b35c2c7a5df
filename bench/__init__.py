"""Side-by-side benchmark: edgeproxy against thumbor and against raw libvips (the ceiling)."""
