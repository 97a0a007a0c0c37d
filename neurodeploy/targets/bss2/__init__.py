"""The BrainScaleS-2 target: lower → design rules → quantise → place → route."""
