"""A scan's labels redrawn together, with one intensity threshold for the whole volume.

Slice by slice, each answer is drawn against its own slice only (:func:`~.segmentation.refine_by_intensity`),
and a slice whose answer misses the lesion, or that the no-tumour decision empties, loses the lesion there.
But a lesion has one intensity across the scan and continues into the slices next to it. So the labelled
voxels of the whole volume set one threshold, and the labels follow the lesion into the neighbouring slices.
Last, a low-grade glioma is one lesion, so 3D pieces far smaller than the largest are dropped
(:func:`keep_main_lesions`), and where the threshold leaves ragged, fragmented labels (T1-pre) they are smoothed
into the rounded shape of a lesion (:func:`smooth_labels`).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy import ndimage

from .segmentation import MIN_GROWN_SHARE, redraw_along_edge

# Where the threshold lies between the median of the rest of the brain (0) and that of the labels (1). Higher
# than the per-slice refinement's halfway: the labels it starts from already include the lesion's faint fringe.
# Both constants were chosen on the validation patients (docs/results.md).
THRESHOLD_WEIGHT = 0.6
# A slice's brain needs this many pixels for its median to set its level (levelled slices); the scan's thin ends keep theirs.
MIN_LEVEL_PIXELS = 100


def refine_volume(
    labels: dict[int, np.ndarray], images: dict[int, np.ndarray], brains: dict[int, np.ndarray], lesion: str, radius: int, weight: float = THRESHOLD_WEIGHT,
    grown_share: float = MIN_GROWN_SHARE, level: bool = False, end_weight: float | None = None, carry_share: float = 0.0,
    small: Collection[int] = (),
) -> dict[int, np.ndarray]:
    """The labels of a volume's slices (keyed by slice index), redrawn along the lesion's intensity edge with one
    threshold for the scan, ``weight`` of the way from the rest of the brain to the labels
    (:func:`~.segmentation.redraw_along_edge`), neighbours being slice index ± 1. So a label with no voxel on the
    lesion's side is dropped, and a label grows into the next slice (kept there when at least ``grown_share`` of the
    labelled neighbour's label, :data:`MIN_GROWN_SHARE` by default), where the threshold lies ``end_weight`` of the
    way instead (None: ``weight``), since the lesion fades at its ends. ``carry_share`` (0: off) then carries the
    labels one slice further, redrawn from what they are now, into a slice still empty where that is at least this share
    of its neighbour's label: a large lesion goes on at nearly full size where its middle's heat was too low for the
    decision, since a window inside it is inpainted from lesion (docs/results.md). ``level`` first brings the slices to one
    brightness (:func:`level_slices`). ``small``: slices (among ``labels``, empty) with too little brain to be
    localised; there both shares are scaled by the slice's brain over its neighbour's, since at the scan's ends the
    lesion's section shrinks with the brain. With nothing to sharpen the labels are returned as they are.
    """
    if radius <= 0 or not any(label.any() for label in labels.values()):
        return labels  # nothing to redraw: spare stacking the scan
    if level:
        images = level_slices(images, brains)
    label, image, brain = (stacked(arrays, labels, dtype) for arrays, dtype in ((labels, bool), (images, np.float32), (brains, bool)))
    scaled = np.isin(np.arange(min(labels), max(labels) + 1), list(small))  # over the stack's slices
    grown = grown_once(label, image, brain, lesion, radius, weight, end_weight, grown_share, scaled)
    if grown is None:
        return labels
    if carry_share > 0:
        filled_by_growth(grown, image, brain, lesion, radius, weight, end_weight, carry_share, into=~grown.any(axis=(1, 2)), scaled=scaled)
    return unstacked(grown, labels)


def grown_once(
    label: np.ndarray, image: np.ndarray, brain: np.ndarray, lesion: str, radius: int, weight: float, end_weight: float | None, share: float,
    scaled: np.ndarray | None = None,
) -> np.ndarray | None:
    """One redraw of a (Z, H, W) stack of labels (:func:`~.segmentation.redraw_along_edge`; None: nothing to
    sharpen), where a slice without a label keeps what grew into it only when that is at least ``share`` of its
    larger labelled neighbour's label, since a spill into tissue beside the lesion is small. On the slices ``scaled``
    marks (a mask over Z) the share is scaled by the slice's brain over that neighbour's, where smaller."""
    grown = redraw_along_edge(label, image, brain, lesion, radius, weight, end_weight)
    if grown is None:
        return None
    areas, brain_areas = (label & brain).sum(axis=(1, 2)), brain.sum(axis=(1, 2))
    for z in np.flatnonzero((areas == 0) & grown.any(axis=(1, 2))):
        neighbour = max((other for other in (z - 1, z + 1) if 0 <= other < len(areas)), key=lambda other: areas[other])
        needed = share * areas[neighbour]
        if scaled is not None and scaled[z]:
            needed *= min(1.0, brain_areas[z] / max(brain_areas[neighbour], 1))
        if grown[z].sum() < needed:
            grown[z] = False
    return grown


def filled_by_growth(
    label: np.ndarray, image: np.ndarray, brain: np.ndarray, lesion: str, radius: int, weight: float, end_weight: float | None, share: float, into: np.ndarray,
    scaled: np.ndarray | None = None,
) -> np.ndarray:
    """The slices ``into`` (a mask over the (Z, H, W) stack ``label``) filled, in place, with what one more redraw of
    ``label`` grows into them (:func:`grown_once` at ``share``), the other slices left as they are; returns the slices
    that took a label (``scaled``: as :func:`grown_once`). The carry and the following both go on from the labels
    already drawn this way."""
    grown = grown_once(label, image, brain, lesion, radius, weight, end_weight, share, scaled)
    if grown is None:
        return np.zeros(len(label), dtype=bool)
    reached = into & grown.any(axis=(1, 2))
    label[reached] = grown[reached]
    return reached


def followed_into_decided(
    labels: dict[int, np.ndarray], decided: dict[int, np.ndarray], images: dict[int, np.ndarray], brains: dict[int, np.ndarray], lesion: str, radius: int,
    share: float, weight: float = THRESHOLD_WEIGHT, end_weight: float | None = None, level: bool = False,
) -> dict[int, np.ndarray]:
    """The finished labels of a volume's slices (keyed by slice index) grown, slice after slice, into the slices the
    decision labelled (``decided``) that are empty now, each kept where what grows there is at least ``share`` of its
    labelled neighbour's label (0: off); redrawn as :func:`refine_volume` draws, with the same ``weight``,
    ``end_weight`` and ``level``.

    Why: on a large lesion the heat of several middle slices in a row can put the answer on other bright tissue. The
    decision is right that something stands out there, but the volume step drops a false answer (or
    :func:`keep_main_lesions` its piece), and the lesion's own label reaches only a slice or two into that gap. On 7 of
    the 56 FLAIR training patients whole stretches of a lesion were left empty so. Following the lesion only into
    slices the decision labelled stops it at the lesion's end: grown into every empty slice, it crept along bright
    tissue (docs/results.md).
    """
    if share <= 0 or radius <= 0 or not any(label.any() for label in labels.values()):
        return labels
    label = stacked(labels, labels, bool)
    waiting = stacked(decided, labels, bool).any(axis=(1, 2)) & ~label.any(axis=(1, 2))
    if not waiting.any():
        return labels  # the usual case: spare levelling and stacking the scan
    if level:
        images = level_slices(images, brains)
    image, brain = stacked(images, labels, np.float32), stacked(brains, labels, bool)
    while waiting.any():
        reached = filled_by_growth(label, image, brain, lesion, radius, weight, end_weight, share, into=waiting)
        if not reached.any():
            break
        waiting &= ~reached
    return unstacked(label, labels)


def level_slices(images: dict[int, np.ndarray], brains: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Each slice's intensities scaled so that the median of its brain is the scan's (the median of the slices').

    The volume step's one threshold assumes the lesion is equally bright on every slice, but a scan's slices drift
    in brightness along the slice axis, so the lesion's fringe fell on the wrong side of the threshold on some
    slices and the rest of the brain on the lesion's side on others. Scaling, not shifting: intensities are
    normalised to [0, 1] with the background at 0, which stays 0. Slices with fewer than :data:`MIN_LEVEL_PIXELS`
    brain pixels, or whose brain's median is 0, keep their intensities.
    """
    medians = {index: float(np.median(images[index][brain])) for index, brain in brains.items() if brain.sum() >= MIN_LEVEL_PIXELS}
    medians = {index: median for index, median in medians.items() if median > 0}
    if not medians:
        return images
    scan = float(np.median(list(medians.values())))
    return {index: image * np.float32(scan / medians[index]) if index in medians else image for index, image in images.items()}


def keep_main_lesions(labels: dict[int, np.ndarray], min_share: float) -> dict[int, np.ndarray]:
    """The labels of a volume's slices (keyed by slice index) without their 3D pieces (face-connected, neighbours
    being slice index ± 1) smaller than ``min_share`` of the largest piece; 0 keeps every piece, 1 the largest.
    Pieces are compared within each run of consecutive slices only: slices segmented apart (``--slices 3,9``) are
    not one volume, and a lesion on one must not cost another its label.

    An LGG is a single lesion; what the detector labels apart from it is much smaller: on validation FLAIR mostly bright
    pieces on the lowest slices, such as tissue that brain extraction left in the mask (docs/results.md).
    """
    if min_share <= 0:
        return labels
    kept = dict(labels)
    for run in consecutive_runs(labels):
        pieces, count = ndimage.label(np.stack([np.asarray(labels[index], bool) for index in run]))
        if count > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            kept.update(zip(run, np.isin(pieces, 1 + np.flatnonzero(sizes >= min_share * sizes.max()))))
    return kept


def smooth_labels(labels: dict[int, np.ndarray], brains: dict[int, np.ndarray], sigma: float, sigma_slices: float) -> dict[int, np.ndarray]:
    """The labels of a volume's slices (keyed by slice index) smoothed: a voxel is labelled where more than half
    of a Gaussian neighbourhood (``sigma`` pixels in-plane, ``sigma_slices`` slices across) is, inside the brain.

    On T1-pre one intensity threshold follows the lesion's faint edge poorly: the labels come out ragged, with
    holes and stray fragments on slices around the lesion, where an annotator draws one rounded outline. The vote
    fills the holes, drops the fragments and rounds the edge (docs/results.md). The largest 3D piece is never
    erased whole: a lesion narrower than the Gaussian keeps the label it had, so smoothing reshapes what was found
    but never empties the slices segmented together. Runs of consecutive slices are smoothed apart, as in
    :func:`keep_main_lesions`; 0 for both sigmas leaves the labels as they are.
    """
    if not (sigma or sigma_slices) or not any(np.any(label) for label in labels.values()):
        return labels
    smoothed = dict(labels)
    for run in consecutive_runs(labels):
        stack = np.stack([np.asarray(labels[index], bool) for index in run])
        voted = ndimage.gaussian_filter(stack.astype(np.float32), (sigma_slices, sigma, sigma)) > 0.5
        pieces, count = ndimage.label(stack)
        if count:
            largest = pieces == 1 + np.argmax(np.bincount(pieces.ravel())[1:])
            if not (voted & largest).any():
                voted |= largest
        smoothed.update({index: voted[z] & np.asarray(brains[index], bool) for z, index in enumerate(run)})
    return smoothed


def consecutive_runs(labels: dict[int, np.ndarray]) -> list[list[int]]:
    """The slice indices of ``labels`` in runs of consecutive indices, in order."""
    runs: list[list[int]] = []
    for index in sorted(labels):
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def stacked(arrays: dict[int, np.ndarray], labels: dict[int, np.ndarray], dtype) -> np.ndarray:
    """``arrays`` of the slices of ``labels`` as one (Z, H, W) volume from the first to the last slice index; a slice
    missing in between is empty (and brainless): it breaks the volume apart, nothing grows or connects across it."""
    first, shape = min(labels), next(iter(labels.values())).shape
    return np.stack([np.asarray(arrays[index], dtype) if index in labels else np.zeros(shape, dtype) for index in range(first, max(labels) + 1)])


def unstacked(volume: np.ndarray, labels: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The slices of a volume made by :func:`stacked`, keyed as ``labels``."""
    first = min(labels)
    return {index: volume[index - first] for index in labels}
