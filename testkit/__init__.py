"""Helpers shared by the tests (``tests/``) and the benchmarks (``bench/``): free local ports and
hostile images. Not part of the installed package; imported from the repository root."""
