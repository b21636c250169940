"""napari reader: NIfTI volumes and DICOM series (axial slices on the slider, spacing as scale) and 2D greyscale images.

A file this reader accepts by name but cannot read (corrupt, 4D, too large) gives one napari notification that
says why, and no layer; napari's own message for a failing reader names the plugin but not the reason. Files it
could only refuse are left to other readers: several files to be stacked into one layer (open them one by one)
and multi-page TIFFs (napari's own reader shows them as a stack). Labels saved by the plugin open as labels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from .dicom import holds_dicom
from .display import image_layer_data, is_labels_file, labels_layer_data
from .errors import InputError
from .io import IMAGE_SUFFIXES, NIFTI_SUFFIXES, has_suffix, is_multipage_tiff, read_scan

PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]

# napari's "reader accepted the file but made no layer" value: no layer and no second, vaguer error.
NO_LAYER = [(None,)]


def napari_get_reader(path: PathOrPaths) -> Callable | None:
    """The reader function for one NIfTI or 2D image file, or a folder holding a DICOM series, else None (napari
    tries other readers).

    napari passes a list only to stack the files into one layer, which this plugin cannot do for scans."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if len(paths) != 1:
        return None
    if os.path.isdir(paths[0]):
        return read_layers if holds_dicom(paths[0]) else None
    if not has_suffix(paths[0], NIFTI_SUFFIXES + IMAGE_SUFFIXES) or is_multipage_tiff(paths[0]):
        return None
    return read_layers


def read_layers(path: PathOrPaths) -> list[tuple]:
    """One image layer data tuple per readable path; unreadable ones are reported as notifications."""
    from napari.utils.notifications import show_error

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers = []
    for one in paths:
        try:
            scan = read_scan(one)
            layers.append(labels_layer_data(scan) if is_labels_file(scan) else image_layer_data(scan))
        except InputError as exc:
            show_error(f"napari-inpaint-seg: {exc}")
    return layers or NO_LAYER
