"""Functional core: pure functions of (input, state, parameters); no modules, no globals."""
