"""Brain extraction: windows, losses and segment scores must live inside the brain, or the skull dominates."""

from __future__ import annotations

import functools
import warnings

import nibabel as nib
import numpy as np
from scipy import ndimage

from .errors import InputError

# deepbet resamples the brain's bounding box to 256^3; it needs a little depth to find a bounding box.
MIN_SLICES_FOR_DEEPBET = 8


@functools.lru_cache(maxsize=2)
def _deepbet_model(device: str):
    from deepbet.bet import BrainExtraction

    return BrainExtraction(no_gpu=device == "cpu")


def extract_brain_volume(volume: np.ndarray, affine: np.ndarray, *, device: str = "cpu", threshold: float = 0.5) -> np.ndarray:
    """Boolean brain mask of a 3D head scan with deepbet (weights ship in its wheel, nothing is downloaded).

    deepbet expects RAS orientation, so the volume is reoriented to the closest canonical orientation,
    masked there and the mask is transformed back to the file's axis order.
    """
    if volume.ndim != 3:
        raise InputError(f"brain extraction needs a 3D volume, got shape {volume.shape}")
    if volume.shape[2] < MIN_SLICES_FOR_DEEPBET and min(volume.shape) < MIN_SLICES_FOR_DEEPBET:
        raise InputError(f"volume {volume.shape} has too few slices for brain extraction (need {MIN_SLICES_FOR_DEEPBET})")
    if not np.any(volume > 0):
        return np.zeros(volume.shape, dtype=bool)
    to_ras = nib.orientations.ornt_transform(nib.io_orientation(affine), [[0, 1], [1, 1], [2, 1]])
    back = nib.orientations.ornt_transform([[0, 1], [1, 1], [2, 1]], nib.io_orientation(affine))
    ras = np.ascontiguousarray(nib.orientations.apply_orientation(volume.astype(np.float32), to_ras))
    bet = _deepbet_model("cpu" if device == "cpu" else "gpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            probability = bet.run_model(ras.copy())
        except AssertionError as exc:  # deepbet asserts when it finds no head at all
            raise InputError(f"brain extraction found no head in this volume ({exc})") from exc
        mask = bet.postprocess(probability > threshold)
    return nib.orientations.apply_orientation(mask, back).astype(bool)


def foreground_mask_2d(image: np.ndarray) -> np.ndarray:
    """Mask of a 2D slice that is already skull-stripped (background exactly 0), holes filled.

    deepbet needs a volume; single images (e.g. the OASIS slices) are expected to be skull-stripped already.
    """
    mask = ndimage.binary_fill_holes(image > 0)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == sizes.argmax()
    return mask
