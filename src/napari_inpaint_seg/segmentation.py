"""Felzenszwalb superpixels of the query slice, ranked by the heatmap: the top segment is the tumour.

Felzenszwalb runs on the slice in the project's intensity convention ([0, 1], see :mod:`.intensity`), so
``scale`` means the same on every scan. A segment is scored by its *mean* heatmap over its brain pixels
(a sum would favour large segments regardless of how anomalous they are); segments lying mostly outside the
brain are not candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.segmentation import felzenszwalb

DEFAULT_SCALE = 75.0
DEFAULT_SIGMA = 0.8
DEFAULT_MIN_SIZE = 20
MIN_BRAIN_FRACTION = 0.5


@dataclass(frozen=True)
class FelzenszwalbParams:
    scale: float = DEFAULT_SCALE
    sigma: float = DEFAULT_SIGMA
    min_size: int = DEFAULT_MIN_SIZE


@dataclass(frozen=True)
class Segment:
    """One candidate: its label in the superpixel map, mean heatmap score and area in pixels."""

    label: int
    score: float
    area: int


def superpixels(image: np.ndarray, params: FelzenszwalbParams = FelzenszwalbParams()) -> np.ndarray:
    """Felzenszwalb label map (int32, labels from 0) of a [0, 1] slice."""
    return felzenszwalb(np.asarray(image, dtype=np.float64), scale=params.scale, sigma=params.sigma, min_size=int(params.min_size)).astype(np.int32)


def rank_segments(labels: np.ndarray, heatmap: np.ndarray, brain: np.ndarray) -> list[Segment]:
    """Candidates sorted by descending score; only segments with at least half their pixels in the brain."""
    flat = labels.ravel()
    n = int(flat.max()) + 1
    area = np.bincount(flat, minlength=n)
    in_brain = np.bincount(flat, weights=brain.ravel().astype(np.float64), minlength=n)
    heat = np.bincount(flat, weights=np.where(brain, heatmap, 0).ravel().astype(np.float64), minlength=n)
    candidates = np.flatnonzero((in_brain >= MIN_BRAIN_FRACTION * area) & (in_brain > 0))
    scores = heat[candidates] / in_brain[candidates]
    order = np.argsort(-scores, kind="stable")
    return [Segment(int(candidates[i]), float(scores[i]), int(area[candidates[i]])) for i in order]


def segment_mask(labels: np.ndarray, segment: Segment, brain: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of one segment, restricted to the brain when a mask is given."""
    mask = labels == segment.label
    return mask & brain if brain is not None else mask
