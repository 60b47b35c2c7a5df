"""Perceptual quality: the SSIMULACRA2 metric (``ssimulacra2``) and the search for the lowest encoder
quality that reaches a target score (``search``)."""
