"""From a scan to labels: brain extraction, intensity convention, per-slice localisation and segmentation.

The CLI, the evaluation and the napari widgets all go through these functions, so they agree exactly.
Long steps are generators that yield progress, so callers can draw progress bars or live heatmaps.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice

import numpy as np
import torch

from .brain import extract_brain_volume, foreground_mask_2d
from .errors import InputError
from .intensity import check_finite, normalize_in_brain
from .io import Scan
from .localizer import POLARITIES, HeatmapUpdate, fast_heatmap, final, fuse_heatmaps, reference_heatmap, step_for_window
from .models.config import ModelConfig
from .segmentation import (
    DEFAULT_RUN_LENGTH, LESION_SIGN, FelzenszwalbParams, Segment, Selection, brain_baseline, grow_from, rank_segments, refine_by_intensity, scoring_heat, segment_adjacency, without_darkest,
    superpixels,
)
from .volume import THRESHOLD_WEIGHT, followed_into_decided, keep_main_lesions, refine_volume, smooth_labels


@dataclass
class PreparedScan:
    """A scan ready for the method: ``image`` in [0, 1] (0 outside the brain) and ``brain``, both (H, W, Z)."""

    scan: Scan
    image: np.ndarray
    brain: np.ndarray

    @property
    def n_slices(self) -> int:
        return self.image.shape[2]


@dataclass(frozen=True)
class SliceAnswer:
    """What deciding across slices (:func:`consistent_labels`) needs of one slice; small, so a whole volume's
    worth stays in memory."""

    top: np.ndarray
    contrast: float
    detected: bool
    grow_contrast: float | None


@dataclass
class SliceResult:
    """Everything a front end needs for one slice: heatmap, superpixels, ranked candidates, the answer.

    In paper mode a candidate is one superpixel. In merge mode each candidate is grown from a seed superpixel
    (:func:`~.segmentation.grow_from`), seeds taken in rank order, never taking a superpixel of an earlier
    candidate, so Swap always offers something new.
    """

    index: int
    image: np.ndarray
    heatmap: np.ndarray
    superpixels: np.ndarray
    brain: np.ndarray
    ranking: list[Segment] = field(default_factory=list)
    selection: Selection = field(default_factory=Selection)
    # Computed on first use and kept: the widget asks for them on every Swap and redraw.
    _candidates: list[list[Segment]] | None = field(default=None, repr=False)
    _scoring: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _baseline: float | None = field(default=None, repr=False)
    _masks: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def scoring(self) -> tuple[np.ndarray, np.ndarray]:
        """(heat, counted pixels) that segments are scored with, as the selection says."""
        if self._scoring is None:
            heat = without_darkest(self.heatmap, self.image, self.brain, self.selection.dark_share, self.selection.dark_margin)
            self._scoring = scoring_heat(heat, self.brain, self.selection.heat_sigma, self.selection.edge_margin)
        return self._scoring

    @property
    def baseline(self) -> float:
        if self._baseline is None:
            self._baseline = brain_baseline(*self.scoring)  # a median over the brain: asked for by candidates, contrast, detected
        return self._baseline

    def candidates(self) -> list[list[Segment]]:
        if self._candidates is None:
            if self.selection.mode == "paper":
                self._candidates = [[segment] for segment in self.ranking]
            else:
                self._candidates, covered, baseline = [], set(), self.baseline
                neighbours = segment_adjacency(self.superpixels)
                for rank, segment in enumerate(self.ranking):
                    if segment.label not in covered:
                        region = grow_from(self.superpixels, self.ranking, rank, self.selection.merge_ratio, baseline, exclude=covered, neighbours=neighbours)
                        covered.update(s.label for s in region)
                        self._candidates.append(region)
        return self._candidates

    @property
    def contrast(self) -> float:
        """How much the top segment stands out: its score over the brain's median heat (0 without candidates).
        With no heat in most of the brain, any heat stands out infinitely, and none not at all: a slice without
        any heat (a featureless one) is no finding."""
        if not self.ranking:
            return 0.0
        baseline, top = self.baseline, self.ranking[0].score
        if baseline > 0:
            return top / baseline
        return float("inf") if top > 0 else 0.0

    @property
    def detected(self) -> bool:
        """False when the selection calls this slice tumour-free on its own (its top score does not stand out)."""
        return bool(self.ranking) and self.contrast >= self.selection.min_contrast

    def mask(self, rank: int = 0) -> np.ndarray:
        """The candidate at ``rank`` (0 = the top), inside the brain; empty if there is none. Read-only: it is
        kept, since the refinement is not free and the answer, the summary and every redraw ask for it."""
        if rank not in self._masks:
            candidates = self.candidates()
            if rank >= len(candidates):
                mask = np.zeros(self.heatmap.shape, dtype=bool)
            else:
                region = np.isin(self.superpixels, [segment.label for segment in candidates[rank]]) & self.brain
                mask = refine_by_intensity(region, self.image, self.brain, self.selection.lesion, self.selection.refine_radius)
            mask.flags.writeable = False
            self._masks[rank] = mask
        return self._masks[rank]

    def summary(self) -> SliceAnswer:
        return SliceAnswer(self.mask(0), self.contrast, self.detected, self.selection.grow_contrast)

    def answer(self) -> np.ndarray:
        """The label of this slice: the top candidate, or nothing if the slice is called tumour-free."""
        return self.mask(0) if self.detected else np.zeros(self.heatmap.shape, dtype=bool)


def consistent_labels(slices: dict[int, SliceAnswer], run_contrast: float = 0.0, run_length: int = DEFAULT_RUN_LENGTH) -> dict[int, np.ndarray]:
    """The labels of several slices of one volume (keyed by slice index), decided together.

    Slices detected on their own, and those of a run of ``run_length`` or more slices at ``run_contrast``
    (:func:`persistent_runs`; 0: none), are labelled with their top candidate; then, repeatedly, a neighbouring slice
    (index ± 1) whose contrast is at least its ``grow_contrast`` and whose top candidate overlaps a labelled
    neighbour's label is labelled too (hysteresis across slices). Everything else is empty.
    """
    labels = {index: np.zeros_like(item.top) for index, item in slices.items()}
    frontier = [index for index, item in slices.items() if item.detected]
    frontier += [index for index in persistent_runs(slices, run_contrast, run_length) if not slices[index].detected]
    for index in frontier:
        labels[index] = slices[index].top
    while frontier:
        index = frontier.pop()
        for other in (index - 1, index + 1):
            item = slices.get(other)
            if item is None or item.grow_contrast is None or item.contrast < item.grow_contrast or labels[other].any():
                continue
            if (item.top & labels[index]).any():
                labels[other] = item.top
                frontier.append(other)
    return labels


def persistent_runs(slices: dict[int, SliceAnswer], contrast: float, length: int) -> list[int]:
    """The slices of every run of at least ``length`` consecutive slices whose contrast is at least ``contrast``
    and whose top candidate overlaps the previous slice's (none when ``contrast`` is 0). A lesion whose heat stays
    under the no-tumour contrast on every slice (6 of the 56 FLAIR training patients got no label on any tumour
    slice) still goes on, in one place, across several slices; a false answer seldom does (docs/results.md)."""
    if contrast <= 0:
        return []
    found, run = [], []
    for index in sorted(slices):
        item = slices[index]
        if item.contrast < contrast or not item.top.any():
            run = []
            continue
        if not (run and run[-1] == index - 1 and (slices[run[-1]].top & item.top).any()):
            run = []
        run.append(index)
        if len(run) == length:
            found += run
        elif len(run) > length:
            found.append(index)
    return found


def volume_labels(answers: dict[int, SliceAnswer], images: dict[int, np.ndarray], brains: dict[int, np.ndarray], selection: Selection) -> dict[int, np.ndarray]:
    """The labels of slices segmented together: decided across slices (:func:`consistent_labels`), then redrawn
    with one threshold for the volume (:func:`~.volume.refine_volume`), cleared of small 3D pieces
    (:func:`~.volume.keep_main_lesions`), followed into the slices the decision labelled that are empty then
    (:func:`~.volume.followed_into_decided`) and smoothed (:func:`~.volume.smooth_labels`) when the selection asks.
    ``images`` and ``brains`` may also hold slices without an answer, too small in brain to be localised: they
    are labelled only by growth, when the selection grows into them (:func:`finished_labels`), else left out."""
    small = [index for index in images if index not in answers]
    return finished_labels(consistent_labels(answers, selection.run_contrast, selection.run_length), images, brains, selection, small=small)


def finished_labels(
    decided: dict[int, np.ndarray], images: dict[int, np.ndarray], brains: dict[int, np.ndarray], selection: Selection, weight: float = THRESHOLD_WEIGHT,
    small: Collection[int] = (),
) -> dict[int, np.ndarray]:
    """The steps of :func:`volume_labels` after the decision, on labels decided any way and with any threshold
    ``weight``: the oracle bounds (``training_scripts/selection_ceilings.py``) run them exactly as the product does.
    ``small``: slices of ``images`` with too little brain to be localised (none in ``decided``); with the selection's
    ``grow_into_small_slices`` and a volume step they join it empty, so the lesion may grow into them (a lesion that
    reaches the scan's thin ends), and get a label in the result; otherwise they are left out of it."""
    if small and selection.grow_into_small_slices and selection.volume_radius:
        decided = {**decided, **{index: np.zeros(np.shape(brains[index]), dtype=bool) for index in small}}
    else:
        small = ()
    images, brains = ({index: arrays[index] for index in decided} for arrays in (images, brains))  # levelling reads every slice given
    labels = refine_volume(decided, images, brains, selection.lesion, selection.volume_radius, weight, grown_share=selection.min_grown_share,
                           level=selection.level_slices, end_weight=selection.end_weight, carry_share=selection.carry_share, small=small)
    labels = followed_into_decided(keep_main_lesions(labels, selection.min_component_share), decided, images, brains, selection.lesion, selection.volume_radius,
                                   selection.follow_share, weight, selection.end_weight, selection.level_slices)
    return smooth_labels(labels, brains, selection.label_sigma, selection.label_sigma_slices)


def scan_labels(prepared: PreparedScan, answers: dict[int, SliceAnswer], selection: Selection, small: Collection[int] = ()) -> dict[int, np.ndarray]:
    """:func:`volume_labels` of slices of ``prepared`` (keyed by slice index); ``small``: slices with brain, but too
    little to be localised, that the labels may grow into (:func:`finished_labels`)."""
    indices = [*answers, *(index for index in small if index not in answers and prepared.brain[:, :, index].any())]
    images = {index: prepared.image[:, :, index] for index in indices}
    brains = {index: prepared.brain[:, :, index] for index in indices}
    return volume_labels(answers, images, brains, selection)


def prepare_scan(scan: Scan, *, skull_stripped: bool = False, device: str = "cpu") -> PreparedScan:
    """Brain-extract and normalise a scan; a 2D image becomes a one-slice volume (assumed skull-stripped).

    ``skull_stripped`` skips deepbet and takes each slice's filled non-zero foreground as the brain: fast,
    deterministic, and right for templates and already-stripped datasets (background exactly 0, or NaN/Inf).
    """
    data = check_finite(np.asarray(scan.data, dtype=np.float32), what=str(scan.path or "scan"), background=skull_stripped or np.ndim(scan.data) == 2)
    if not np.any(data != 0):
        raise InputError(f"{scan.path or 'scan'}: the image is empty (every voxel is 0)")
    if data.ndim == 2:
        data, skull_stripped = data[:, :, None], True
    if skull_stripped:
        brain = np.stack([foreground_mask_2d(data[:, :, z]) for z in range(data.shape[2])], axis=2)
    else:
        brain = extract_brain_volume(data, scan.affine, device=device)
    if not brain.any():
        raise InputError(f"{scan.path or 'scan'}: no brain was found in this image")
    return PreparedScan(scan=scan, image=normalize_in_brain(data, brain), brain=brain)


Model = tuple[torch.nn.Module, ModelConfig]
# Threads that segment slices (segment_volume: while the next slice is localised): one core is left to the
# localiser or the viewer; the cores this process may use, not the machine's (taskset, containers).
SEGMENTATION_WORKERS = max(1, min(4, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) - 1))
POLARITY_CHOICES = ("auto", *POLARITIES)


def resolve_polarity(choice: str, modality: str) -> str:
    """``choice`` as the localiser takes it (which checks it): "auto" is the error sign of the modality's lesion
    (:data:`~.segmentation.LESION_SIGN`; measured on the validation patients, docs/results.md)."""
    return LESION_SIGN.get(modality, "both") if choice == "auto" else choice


# Progress units per model when several are fused (their window counts are only known once each starts).
_FUSED_PROGRESS_UNITS = 1000


def brain_needed(gamma: int) -> int:
    """The brain pixels a slice of a volume needs to be localised at all: one window's area. Less has too little
    to inpaint around, so such a slice is left empty (the command line, the widget and the evaluation)."""
    return gamma**2


def enough_brain(brain: np.ndarray, gamma: int) -> bool:
    """Whether a slice has :func:`brain_needed` pixels of brain for windows of side ``gamma``."""
    return int(brain.sum()) >= brain_needed(gamma)


def check_geometry(prepared: PreparedScan, configs: list[ModelConfig]) -> None:
    height, width = prepared.image.shape[:2]
    gamma = max(config.gamma for config in configs)
    if min(height, width) < gamma:
        raise InputError(f"slices of {height}x{width} pixels are smaller than the window gamma={gamma}")


def localize_slice(
    prepared: PreparedScan, index: int, models: list[Model], *, step: int | None = None, fast: bool = True, device: str = "cpu", polarity: str = "both",
    refine_fraction: float | None = None,
) -> Iterator[HeatmapUpdate]:
    """Live heatmap updates for slice ``index`` (the last one is complete); ``step`` None: each window's
    default stride (:func:`~.localizer.step_for_window`); ``polarity``: which error sign counts (resolved,
    see :func:`resolve_polarity`); ``refine_fraction``: the fast path's (:func:`~.localizer.fast_heatmap`).

    With several models (window sizes) each runs in turn and the updates show the fusion
    (:func:`~.localizer.fuse_heatmaps`) of those finished and the one running; progress is then counted in
    fractions of a model, so only the very last update is finished.
    """
    run = partial(fast_heatmap, refine_fraction=refine_fraction) if fast else reference_heatmap
    image, brain = prepared.image[:, :, index], prepared.brain[:, :, index]
    if len(models) == 1:
        generator, config = models[0]
        yield from run(generator, config, image, brain, step=step_for_window(config.gamma, step), device=device, polarity=polarity)
        return
    finished: list[np.ndarray] = []
    units = _FUSED_PROGRESS_UNITS
    for position, (generator, config) in enumerate(models):
        update = None
        for update in run(generator, config, image, brain, step=step_for_window(config.gamma, step), device=device, polarity=polarity):
            share = round(units * update.windows_done / update.windows_total) if update.windows_total else units
            yield HeatmapUpdate(fuse_heatmaps([*finished, update.heatmap], brain), position * units + share, len(models) * units)
        finished.append(update.heatmap)


def segment_slice(
    prepared: PreparedScan, index: int, heatmap: np.ndarray, params: FelzenszwalbParams = FelzenszwalbParams(), selection: Selection = Selection()
) -> SliceResult:
    """Superpixels of slice ``index`` ranked by ``heatmap``, answered as ``selection`` says."""
    return segment_image(index, prepared.image[:, :, index], prepared.brain[:, :, index], heatmap, params, selection)


def slice_answer(prepared: PreparedScan, index: int, heatmap: np.ndarray, params: FelzenszwalbParams, selection: Selection) -> SliceAnswer:
    """Slice ``index`` segmented and reduced to what deciding across slices needs (a worker's task)."""
    return segment_slice(prepared, index, heatmap, params, selection).summary()


def answer_slices(
    prepared: PreparedScan, heatmaps: dict[int, np.ndarray], params: FelzenszwalbParams, selection: Selection
) -> Iterator[tuple[int, SliceAnswer]]:
    """Each slice's own answer from its heatmap, in the order given; the slices are segmented by
    :data:`SEGMENTATION_WORKERS` threads (superpixels take most of the time, and slices do not depend on each other).

    Only a few slices are handed out ahead of the one awaited: a caller that stops iterating without closing the
    generator (a cancelled napari worker) leaves at most those running.
    """
    workers = ThreadPoolExecutor(max_workers=SEGMENTATION_WORKERS)
    waiting = iter(heatmaps.items())
    running: deque[tuple[int, Future[SliceAnswer]]] = deque()
    try:
        while True:
            for index, heatmap in islice(waiting, 2 * SEGMENTATION_WORKERS - len(running)):
                running.append((index, workers.submit(slice_answer, prepared, index, heatmap, params, selection)))
            if not running:
                return
            index, future = running.popleft()
            yield index, future.result()
    finally:  # also when the caller closes the generator early: slices not started are dropped
        workers.shutdown(wait=False, cancel_futures=True)


def segment_image(index: int, image: np.ndarray, brain: np.ndarray, heatmap: np.ndarray, params: FelzenszwalbParams, selection: Selection) -> SliceResult:
    return result_from_superpixels(index, image, superpixels(image, params), brain, heatmap, selection)


def result_from_superpixels(index: int, image: np.ndarray, labels: np.ndarray, brain: np.ndarray, heatmap: np.ndarray, selection: Selection) -> SliceResult:
    """:func:`segment_image` with the superpixels already computed (tuning reuses them across selections)."""
    result = SliceResult(index=index, image=image, heatmap=heatmap, superpixels=labels, brain=brain, selection=selection)
    heat, counted = result.scoring
    result.ranking = rank_segments(result.superpixels, heat, brain, counted)
    return result


@dataclass
class VolumeProgress:
    """Yielded after every slice; ``labels``/``heatmap`` are filled in as slices finish."""

    slices_done: int
    slices_total: int
    labels: np.ndarray
    heatmap: np.ndarray


def segment_volume(
    prepared: PreparedScan,
    models: list[Model],
    slices: list[int] | None = None,
    *,
    step: int | None = None,
    params: FelzenszwalbParams = FelzenszwalbParams(),
    fast: bool = True,
    selection: Selection = Selection(),
    device: str = "cpu",
    polarity: str = "both",
    refine_fraction: float | None = None,
) -> Iterator[VolumeProgress]:
    """Segment the given axial slices (all when None): 0/1 labels and the heatmap, both of the scan's shape.

    Slices with less brain than the largest window are not localised: there is nothing to inpaint around; they get
    a label only where the lesion grows into them, when the selection asks (:func:`finished_labels`). While
    slices are running, ``labels`` holds each slice's own answer; the last update holds the labels decided
    across slices and redrawn together (:func:`volume_labels`).
    """
    check_geometry(prepared, [config for _, config in models])
    indices = list(range(prepared.n_slices)) if slices is None else list(slices)
    if not indices:
        raise InputError("no slices to segment: the list of slices is empty")
    for index in indices:
        if not 0 <= index < prepared.n_slices:
            raise InputError(f"slice {index} is outside the scan (it has {prepared.n_slices} slices, 0 to {prepared.n_slices - 1})")
    labels = np.zeros(prepared.image.shape, dtype=np.uint8)
    heatmaps = np.zeros(prepared.image.shape, dtype=np.float32)
    largest = max(config.gamma for _, config in models)
    # Each slice is segmented (superpixels and selection: CPU work only) in a worker while the next one is
    # localised: on a GPU the segmentation would otherwise take most of a scan's time. Not answer_slices: its
    # bounded lookahead makes localisation wait for segmentation (an 88-slice scan took 8-16 % longer).
    workers = ThreadPoolExecutor(max_workers=SEGMENTATION_WORKERS)
    pending: dict[int, Future[SliceAnswer]] = {}
    finished: dict[int, SliceAnswer] = {}
    try:
        for done, index in enumerate(indices, start=1):
            if enough_brain(prepared.brain[:, :, index], largest):
                heatmaps[:, :, index] = final(
                    localize_slice(prepared, index, models, step=step, fast=fast, device=device, polarity=polarity, refine_fraction=refine_fraction)
                )
                pending[index] = workers.submit(slice_answer, prepared, index, heatmaps[:, :, index], params, selection)
            for ready in [pending_index for pending_index, future in pending.items() if future.done() or done == len(indices)]:
                finished[ready] = pending.pop(ready).result()
                labels[:, :, ready] = finished[ready].top if finished[ready].detected else 0  # this slice's own answer, for now
            if done < len(indices):
                yield VolumeProgress(done, len(indices), labels, heatmaps)
    finally:  # also when the caller stops early: slices not started are dropped
        workers.shutdown(wait=False, cancel_futures=True)
    answers = {index: finished[index] for index in indices if index in finished}  # in the order asked, as the slices ran
    small = [index for index in indices if not enough_brain(prepared.brain[:, :, index], largest)]
    for index, label in scan_labels(prepared, answers, selection, small).items():
        labels[:, :, index] = label
    yield VolumeProgress(len(indices), len(indices), labels, heatmaps)


def run_to_end(progress: Iterator[VolumeProgress]) -> VolumeProgress:
    """The last progress report of a volume run: its finished labels and heatmap."""
    last = None
    for last in progress:
        pass
    return last
