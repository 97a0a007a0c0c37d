"""Chip calibration (calix's method on the backend interface): experiments, searches, measurements, the file."""
