"""Whether a scan's slices lie as the shipped models' training slices did, and turning them that way.

The LGG training slices show anterior at the top and the patient's right on the left (axis codes P, L, S: rows
run to posterior, columns to the left, slices to superior). The models learnt that orientation only: validation
FLAIR scans turned in-plane lost 0.03-0.05 of slice Dice (docs/robustness.md). So a volume whose affine says it lies
otherwise is turned that way to be shown and segmented (:func:`as_trained`), and what is made on it goes back to the
file's own voxel order when saved (:func:`to_file_order`). An affine that says nothing (the identity, or positive
voxel sizes at the origin, as the LGG files' and many converters' placeholders) is no ground for turning anything.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from .io import Scan

TRAINING_AXES = ("P", "L", "S")


def says_orientation(affine: np.ndarray | None) -> bool:
    """Whether ``affine`` tells where anterior and right are: not missing, degenerate, or a placeholder (positive
    voxel sizes on the diagonal and the origin at 0, as the LGG files' identity)."""
    if affine is None:
        return False
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        return False
    linear = affine[:3, :3]
    placeholder = np.allclose(linear, np.diag(np.diag(linear))) and (np.diag(linear) > 0).all() and np.allclose(affine[:3, 3], 0)
    return not placeholder


def axis_codes(affine: np.ndarray) -> tuple[str, ...]:
    return tuple(nib.aff2axcodes(np.asarray(affine, dtype=np.float64)))


def lies_as_trained(affine: np.ndarray | None) -> bool:
    """True unless the affine says the slices' rows and columns lie otherwise than the training slices' (P, L);
    the order of the slices does not matter (each slice is segmented on its own, and the volume steps are symmetric)."""
    if not says_orientation(affine):
        return True
    in_plane = tuple(code for code in axis_codes(affine) if code not in ("S", "I"))  # the axial axis may be any of the three
    return in_plane == TRAINING_AXES[:2]


def as_trained(scan: Scan) -> tuple[Scan, np.ndarray | None]:
    """``scan`` with its voxel axes in the training orientation when its affine says they lie otherwise, and the
    nibabel orientation that takes arrays on that grid back to the file's voxel order (None: left as stored)."""
    if not scan.is_volume or lies_as_trained(scan.affine):
        return scan, None
    back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(TRAINING_AXES), nib.io_orientation(scan.affine))
    return reoriented(scan), back


def to_file_order(array: np.ndarray, back: np.ndarray | None) -> np.ndarray:
    """An array on the reoriented grid of :func:`as_trained` in the file's voxel order (``back`` None: as it is)."""
    return array if back is None else np.ascontiguousarray(nib.orientations.apply_orientation(array, back))


def reoriented(scan: Scan) -> Scan:
    """``scan`` with its voxel axes running as :data:`TRAINING_AXES` (the nearest by its affine), the affine and
    header updated so every voxel keeps its place in the world."""
    image = nib.Nifti1Image(scan.data, scan.affine, scan.header)
    turned = image.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(scan.affine), nib.orientations.axcodes2ornt(TRAINING_AXES)))
    return Scan(data=np.asarray(turned.dataobj), affine=np.asarray(turned.affine), header=turned.header, path=scan.path)
