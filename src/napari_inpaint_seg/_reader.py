"""napari reader: NIfTI volumes (axial slices on the slider, spacing as scale) and 2D greyscale images.

A file this reader accepts by name but cannot read (corrupt, 4D, too large) gives one napari notification that
says why, and no layer; napari's own message for a failing reader names the plugin but not the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from .display import image_layer_data
from .errors import InputError
from .io import IMAGE_SUFFIXES, NIFTI_SUFFIXES, has_suffix, read_scan

PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]

# napari's "reader accepted the file but made no layer" value: no layer and no second, vaguer error.
NO_LAYER = [(None,)]


def napari_get_reader(path: PathOrPaths) -> Callable | None:
    """The reader function when every path is a NIfTI or 2D image file name, else None (napari tries others)."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(has_suffix(p, NIFTI_SUFFIXES + IMAGE_SUFFIXES) for p in paths):
        return None
    return read_layers


def read_layers(path: PathOrPaths) -> list[tuple]:
    """One image layer data tuple per readable path; unreadable ones are reported as notifications."""
    from napari.utils.notifications import show_error

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers = []
    for one in paths:
        try:
            layers.append(image_layer_data(read_scan(one)))
        except InputError as exc:
            show_error(f"napari-inpaint-seg: {exc}")
    return layers or NO_LAYER
