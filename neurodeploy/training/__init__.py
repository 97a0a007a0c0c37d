"""Training as a library: recipes in, model files out (surrogate-gradient BPTT), and the loss itl shares."""
