"""Brain extraction: windows, losses and segment scores must live inside the brain, or the skull dominates."""

from __future__ import annotations

import functools
import warnings

import nibabel as nib
import numpy as np

from .errors import InputError

# deepbet resamples the brain's bounding box to 256^3; it needs a little depth to find a bounding box.
MIN_SLICES_FOR_DEEPBET = 8
RAS = np.array([[0, 1], [1, 1], [2, 1]])


@functools.lru_cache(maxsize=2)
def _deepbet_model(device: str):
    from deepbet.bet import BrainExtraction

    return BrainExtraction(no_gpu=device == "cpu")


def check_extractable(shape: tuple[int, ...]) -> None:
    """Refuse shapes deepbet cannot work on (it needs a 3D volume with some extent along every axis)."""
    if len(shape) != 3:
        raise InputError(f"brain extraction needs a 3D volume, got shape {tuple(shape)}")
    if min(shape) < MIN_SLICES_FOR_DEEPBET:
        raise InputError(
            f"volume {tuple(shape)} is too thin for brain extraction (every axis needs {MIN_SLICES_FOR_DEEPBET} voxels or more); "
            "if it is already skull-stripped, say so (--skull-stripped; in the plugin, 'scan is already skull-stripped'), "
            "or give a single skull-stripped slice as a 2D image or a 2D NIfTI"
        )


def extract_brain_volume(volume: np.ndarray, affine: np.ndarray, *, device: str = "cpu", threshold: float = 0.5) -> np.ndarray:
    """Boolean brain mask of a 3D head scan with deepbet (weights ship in its wheel, nothing is downloaded).

    deepbet expects RAS orientation, so the volume is reoriented to the closest canonical orientation,
    masked there and the mask is transformed back to the file's axis order.
    """
    check_extractable(volume.shape)
    volume = np.nan_to_num(np.asarray(volume, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if np.ptp(volume) == 0:  # constant: no head to find (deepbet's own normalisation would divide by zero)
        return np.zeros(volume.shape, dtype=bool)
    orientation = _orientation(affine)
    to_ras = nib.orientations.ornt_transform(orientation, RAS)
    back = nib.orientations.ornt_transform(RAS, orientation)
    ras = np.ascontiguousarray(nib.orientations.apply_orientation(volume, to_ras))
    bet = _deepbet_model("cpu" if device == "cpu" else "gpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            probability = bet.run_model(ras.copy())
            mask = bet.postprocess(probability > threshold)
        except (AssertionError, ValueError) as exc:  # deepbet asserts, or takes an argmax of nothing, when it finds no head
            raise InputError(f"brain extraction found no head in this volume ({exc})") from exc
    return nib.orientations.apply_orientation(mask, back).astype(bool)


def _orientation(affine: np.ndarray) -> np.ndarray:
    """nibabel orientation of the voxel axes; a broken affine (zeros, NaN) is read as RAS, i.e. axes as stored."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape == (4, 4) and np.isfinite(affine).all():
        orientation = nib.io_orientation(affine)
        if np.isfinite(orientation).all():
            return orientation
    return RAS.astype(np.float64)


def foreground_mask_2d(image: np.ndarray) -> np.ndarray:
    """Mask of a 2D slice that is already skull-stripped (background exactly 0), holes filled.

    deepbet needs a volume; single images (e.g. the OASIS slices) are expected to be skull-stripped already.
    The background is 0, or the image border's level when that is negative (scans stored with an offset).
    """
    from scipy import ndimage  # imported here: the CLI's early checks use this module and should stay light

    mask = ndimage.binary_fill_holes(image > _background_level(image))
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == sizes.argmax()
    return mask


def _background_level(image: np.ndarray) -> float:
    """0 for the usual skull-stripped slice; the border's median when the background lies below 0."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return float(min(0.0, np.median(border)))
