"""Thin ``torch.nn.Module`` wrappers built from a graph."""
