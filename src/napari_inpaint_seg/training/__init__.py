"""Training data and Algorithm 1 of the paper (adversarial inpainting of square holes)."""
