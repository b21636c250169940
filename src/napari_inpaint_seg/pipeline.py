"""From a scan to labels: brain extraction, intensity convention, per-slice localisation and segmentation.

The CLI, the evaluation and the napari widgets all go through these functions, so they agree exactly.
Long steps are generators that yield progress, so callers can draw progress bars or live heatmaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .brain import extract_brain_volume, foreground_mask_2d
from .errors import InputError
from .intensity import check_finite, normalize_in_brain
from .io import Scan
from .localizer import DEFAULT_STEP, HeatmapUpdate, fast_heatmap, final, reference_heatmap
from .models.config import ModelConfig
from .segmentation import FelzenszwalbParams, Segment, grow_from, rank_segments, superpixels


@dataclass
class PreparedScan:
    """A scan ready for the method: ``image`` in [0, 1] (0 outside the brain) and ``brain``, both (H, W, Z)."""

    scan: Scan
    image: np.ndarray
    brain: np.ndarray

    @property
    def n_slices(self) -> int:
        return self.image.shape[2]


@dataclass
class SliceResult:
    """Everything a front end needs for one slice: heatmap, superpixels, ranked candidates, chosen mask.

    With ``merge_ratio`` None a candidate is one superpixel (the paper); otherwise each candidate is grown
    from a seed superpixel over touching ones scoring at least ``merge_ratio`` times the seed
    (:func:`~.segmentation.grow_from`), seeds taken in rank order, skipping those already inside an
    earlier candidate, so Swap always offers something new.
    """

    index: int
    heatmap: np.ndarray
    superpixels: np.ndarray
    ranking: list[Segment] = field(default_factory=list)
    merge_ratio: float | None = None
    _candidates: list[list[Segment]] | None = field(default=None, repr=False)

    def candidates(self) -> list[list[Segment]]:
        if self._candidates is None:
            if self.merge_ratio is None:
                self._candidates = [[segment] for segment in self.ranking]
            else:
                self._candidates, covered = [], set()
                for rank, segment in enumerate(self.ranking):
                    if segment.label not in covered:
                        region = grow_from(self.superpixels, self.ranking, rank, self.merge_ratio)
                        covered.update(s.label for s in region)
                        self._candidates.append(region)
        return self._candidates

    def mask(self, rank: int = 0, brain: np.ndarray | None = None) -> np.ndarray:
        """The candidate at ``rank`` (0 = the top, the answer); empty if there is none."""
        candidates = self.candidates()
        if rank >= len(candidates):
            return np.zeros(self.heatmap.shape, dtype=bool)
        mask = np.isin(self.superpixels, [segment.label for segment in candidates[rank]])
        return mask & brain if brain is not None else mask


def prepare_scan(scan: Scan, *, device: str = "cpu") -> PreparedScan:
    """Brain-extract and normalise a scan; a 2D image becomes a one-slice volume (assumed skull-stripped)."""
    data = check_finite(scan.data, what=str(scan.path or "scan"))
    if not np.any(data != 0):
        raise InputError(f"{scan.path or 'scan'}: the image is empty (every voxel is 0)")
    if data.ndim == 2:
        brain = foreground_mask_2d(data)[:, :, None]
        data = data[:, :, None]
    else:
        brain = extract_brain_volume(data, scan.affine, device=device)
    if not brain.any():
        raise InputError(f"{scan.path or 'scan'}: no brain was found in this image")
    return PreparedScan(scan=scan, image=normalize_in_brain(data, brain), brain=brain)


def check_geometry(prepared: PreparedScan, config: ModelConfig) -> None:
    height, width = prepared.image.shape[:2]
    if min(height, width) < config.gamma:
        raise InputError(f"slices of {height}x{width} pixels are smaller than the window gamma={config.gamma}")


def localize_slice(
    prepared: PreparedScan, index: int, generator: torch.nn.Module, config: ModelConfig, *, step: int = DEFAULT_STEP, fast: bool = True, device: str = "cpu"
) -> Iterator[HeatmapUpdate]:
    """Live heatmap updates for slice ``index`` (the last one is complete)."""
    run = fast_heatmap if fast else reference_heatmap
    return run(generator, config, prepared.image[:, :, index], prepared.brain[:, :, index], step=step, device=device)


def segment_slice(
    prepared: PreparedScan, index: int, heatmap: np.ndarray, params: FelzenszwalbParams = FelzenszwalbParams(), merge_ratio: float | None = None
) -> SliceResult:
    """Superpixels of slice ``index`` ranked by ``heatmap``; ``merge_ratio`` as in :class:`SliceResult`."""
    image, brain = prepared.image[:, :, index], prepared.brain[:, :, index]
    labels = superpixels(image, params)
    return SliceResult(index=index, heatmap=heatmap, superpixels=labels, ranking=rank_segments(labels, heatmap, brain), merge_ratio=merge_ratio)


@dataclass
class VolumeProgress:
    """Yielded after every slice; ``labels``/``heatmap`` are filled in as slices finish."""

    slices_done: int
    slices_total: int
    labels: np.ndarray
    heatmap: np.ndarray


def segment_volume(
    prepared: PreparedScan,
    generator: torch.nn.Module,
    config: ModelConfig,
    slices: list[int] | None = None,
    *,
    step: int = DEFAULT_STEP,
    params: FelzenszwalbParams = FelzenszwalbParams(),
    fast: bool = True,
    merge_ratio: float | None = None,
    device: str = "cpu",
) -> Iterator[VolumeProgress]:
    """Segment the given axial slices (all when None): 0/1 labels and the heatmap, both of the scan's shape.

    Slices with less brain than one window get no label: there is nothing to inpaint around.
    """
    check_geometry(prepared, config)
    indices = list(range(prepared.n_slices)) if slices is None else slices
    for index in indices:
        if not 0 <= index < prepared.n_slices:
            raise InputError(f"slice {index} is outside the scan (it has {prepared.n_slices} slices, 0 to {prepared.n_slices - 1})")
    labels = np.zeros(prepared.image.shape, dtype=np.uint8)
    heatmaps = np.zeros(prepared.image.shape, dtype=np.float32)
    for done, index in enumerate(indices, start=1):
        brain = prepared.brain[:, :, index]
        if brain.sum() >= config.gamma**2:
            heatmap = final(localize_slice(prepared, index, generator, config, step=step, fast=fast, device=device))
            result = segment_slice(prepared, index, heatmap, params, merge_ratio)
            labels[:, :, index] = result.mask(0, brain)
            heatmaps[:, :, index] = heatmap
        yield VolumeProgress(done, len(indices), labels, heatmaps)


def run_to_end(progress: Iterator[VolumeProgress]) -> VolumeProgress:
    last = None
    for last in progress:
        pass
    return last
