"""Backends execute a deployment and return observations; all share one interface."""
