"""Targets: turn a graph into a deployment (lower, check design rules, quantise, place, route)."""
