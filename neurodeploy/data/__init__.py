"""Datasets that need no download: generated (Yin-Yang) or shipped in a package (digits)."""
