"""Networks of the method (UNet inpainting generator, spectral-norm discriminator) and their checkpoints."""
