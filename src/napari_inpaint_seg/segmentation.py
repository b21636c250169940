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


def segment_adjacency(labels: np.ndarray) -> dict[int, set[int]]:
    """Which segments touch which (4-connectivity)."""
    pairs = np.concatenate(
        [
            np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], axis=1),
            np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], axis=1),
        ]
    )
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    neighbours: dict[int, set[int]] = {}
    for a, b in pairs:
        neighbours.setdefault(int(a), set()).add(int(b))
        neighbours.setdefault(int(b), set()).add(int(a))
    return neighbours


def grow_from(labels: np.ndarray, ranking: list[Segment], seed_rank: int, ratio: float) -> list[Segment]:
    """Heatmap-guided merging: from the candidate at ``seed_rank``, absorb touching candidates whose score is
    at least ``ratio`` times the seed's, repeatedly, so a tumour cut into several superpixels is taken whole."""
    by_label = {segment.label: segment for segment in ranking}
    seed = ranking[seed_rank]
    neighbours = segment_adjacency(labels)
    region, frontier = {seed.label}, [seed.label]
    while frontier:
        current = frontier.pop()
        for other in neighbours.get(current, ()):
            candidate = by_label.get(other)
            if other not in region and candidate is not None and candidate.score >= ratio * seed.score:
                region.add(other)
                frontier.append(other)
    return [segment for segment in ranking if segment.label in region]
