"""Workflows: one function per CLI verb (train, evaluate, map, run, inspect, doctor)."""
