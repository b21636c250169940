"""napari writer: a labels layer -> uint8 NIfTI with the source scan's affine and header, in file axis order.

File > Save Selected Layers goes through napari's save dialog, which already asks before replacing an existing
file, so this writer overwrites (``force=True``); the file is written to a temporary name and renamed, so an
existing file is never left half-written. Scripts calling ``viewer.layers.save(path)`` overwrite as well; the
Segment widget's *Export labels* button asks itself and refuses by default.

A labels layer made with napari's own *New labels layer* button has the scan's scale but not its geometry; it is
saved with the geometry of the open scan it was made for (the one image of the plugin's with its shape and scale),
so the file lines up with the scan instead of being written in display order with a made-up affine.

Labels saved over a file the command line made keep its sidecar, which notes the edit (:func:`.provenance.record_edit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .display import AFFINE, AXIAL_AXIS, in_file_order, on_source_grid, scan_from_layer
from .errors import InputError
from .io import Scan, write_labels
from .provenance import record_edit

MAX_LABEL = 255  # labels are stored as uint8


def labels_for_writing(data: Any, metadata: dict | None, scale: tuple[float, ...] | None = None) -> tuple[np.ndarray, Scan]:
    """Labels in file order and the scan geometry they belong to (for labels drawn on a scan resampled in-plane, the
    scan it was resampled from; for a scan shown turned, its file's voxel order); refuses values that are not whole
    numbers that fit in uint8 (they would be truncated or wrapped without a word)."""
    labels = np.asarray(data)
    if labels.dtype.kind not in "biuf":
        raise InputError(f"labels of type {labels.dtype} cannot be saved as NIfTI uint8")
    if labels.dtype.kind == "f" and labels.size and not (np.isfinite(labels).all() and np.array_equal(labels, np.round(labels))):
        raise InputError("labels must be whole numbers to be saved as NIfTI uint8; these have fractions, NaN or infinity")
    if labels.size and (labels.min() < 0 or labels.max() > MAX_LABEL):
        raise InputError(f"label values must be between 0 and {MAX_LABEL} to be saved as NIfTI uint8, got {labels.min()} to {labels.max()}")
    labels, metadata, scale = on_source_grid(labels, metadata, scale)
    like = in_file_order(scan_from_layer(labels, metadata, scale), metadata)
    return like.data, like


def open_scan_geometry(shape: tuple[int, ...], scale: tuple[float, ...] | None, images: list) -> tuple[dict, tuple] | None:
    """The metadata and scale of the plugin's image layer in ``images`` that a labels layer of ``shape`` and
    ``scale`` was made for, or None when there is none; refuses when open scans of that shape disagree on where
    it lies (the user must say which, with the Segment widget's Export labels)."""
    matches = [image for image in images if AFFINE in image.metadata and tuple(image.data.shape) == tuple(shape)
               and (scale is None or np.allclose(image.scale, scale))]
    if not matches:
        return None
    geometries = {(np.asarray(image.metadata[AFFINE]).round(6).tobytes(), image.metadata.get(AXIAL_AXIS)) for image in matches}
    if len(geometries) > 1:
        names = ", ".join(f"'{image.name}'" for image in matches)
        raise InputError(f"these labels fit several open scans that lie differently ({names}); choose the scan in the Segment widget "
                         "and save with its Export labels button")
    return matches[0].metadata, tuple(matches[0].scale)


def write_labels_layer(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 single-layer writer; returns the written path."""
    metadata, scale = attributes.get("metadata") or {}, attributes.get("scale")
    if AFFINE not in metadata and np.ndim(data) == 3:
        metadata, scale = open_scan_geometry(np.shape(data), scale, _open_images()) or (metadata, scale)
    labels, like = labels_for_writing(data, metadata, scale)
    written = write_labels(Path(path), labels, like, force=True)
    record_edit(written, labels, like.affine, "napari: File > Save")
    return [str(written)]


def _open_images() -> list:
    """The image layers of the current napari viewer (none outside napari)."""
    import napari
    from napari.layers import Image

    viewer = napari.current_viewer()
    return [] if viewer is None else [layer for layer in viewer.layers if isinstance(layer, Image)]
