"""napari writer: a labels layer -> uint8 NIfTI with the source scan's affine and header, in file axis order.

File > Save Selected Layers goes through napari's save dialog, which already asks before replacing an existing
file, so this writer overwrites (``force=True``); the file is written to a temporary name and renamed, so an
existing file is never left half-written. Scripts calling ``viewer.layers.save(path)`` overwrite as well; the
Segment widget's *Export labels* button asks itself and refuses by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .display import scan_from_layer
from .errors import InputError
from .io import NIFTI_SUFFIXES, Scan, has_suffix, write_labels

MAX_LABEL = 255  # labels are stored as uint8


def labels_for_writing(data: Any, metadata: dict | None, scale: tuple[float, ...] | None = None) -> tuple[np.ndarray, Scan]:
    """Labels in file order and the scan geometry they belong to; refuses values that do not fit in uint8."""
    labels = np.asarray(data)
    if labels.size and (labels.min() < 0 or labels.max() > MAX_LABEL):
        raise InputError(f"label values must be between 0 and {MAX_LABEL} to be saved as NIfTI uint8, got {labels.min()} to {labels.max()}")
    like = scan_from_layer(labels, metadata, scale)
    return like.data, like


def write_labels_layer(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 single-layer writer; returns the written path."""
    if not has_suffix(path, NIFTI_SUFFIXES):
        raise InputError(f"{path}: labels are saved as NIfTI; use a .nii.gz or .nii file name")
    labels, like = labels_for_writing(data, attributes.get("metadata"), attributes.get("scale"))
    written = write_labels(Path(path), labels, like, force=True)
    return [str(written)]
