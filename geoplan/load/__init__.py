"""Loaders: the only code that reads input files (tables, boundaries, catalogue, rasters)."""
