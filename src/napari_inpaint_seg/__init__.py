"""Unsupervised brain-tumour segmentation by adversarial inpainting (ISBI 2021), as a library and napari plugin."""

__version__ = "0.1.0"
PLUGIN = "napari-inpaint-seg"  # the name in napari.yaml, for opening the plugin's readers, samples and widgets
