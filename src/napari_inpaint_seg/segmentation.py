"""Felzenszwalb superpixels of the query slice, ranked by the heatmap: the top segment is the tumour.

Felzenszwalb runs on the slice in the project's intensity convention ([0, 1], see :mod:`.intensity`), so
``scale`` means the same on every scan. A segment is scored by its *mean* heatmap over its brain pixels
(a sum would favour large segments regardless of how anomalous they are); segments lying mostly outside the
brain are not candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from skimage.segmentation import felzenszwalb

# Smaller than the paper's 75: merging then assembles a tumour from finer pieces (validation patients,
# docs/results.md). --mode paper uses the paper's.
DEFAULT_SCALE = 50.0
PAPER_SCALE = 75.0
DEFAULT_SIGMA = 0.8
DEFAULT_MIN_SIZE = 20
MIN_BRAIN_FRACTION = 0.5
# Generic defaults (the absolute-error heat of the paper, any modality); see DEFAULT_SELECTIONS for the tuned ones.
DEFAULT_MERGE_RATIO = 0.2
DEFAULT_MIN_CONTRAST = 0.0
DEFAULT_HEAT_SIGMA = 16.0
DEFAULT_EDGE_MARGIN = 30
SELECTION_MODES = ("paper", "merge")
LESION_SIGNS = ("bright", "dark")
# How a low-grade glioma looks on each modality: hyperintense on FLAIR, hypointense on T1-pre. The sign of the
# inpainting error that marks it (the localiser's polarity) and the side its edge is refined to both follow.
LESION_SIGN = {"flair": "bright", "t1": "dark"}
# The volume step (volume.refine_volume): a slice without a label of its own keeps what grew into it only if that is
# at least this share of the largest labelled neighbour's label, since a spill into tissue beside the lesion is
# small. The tuned selections set their own (DEFAULT_SELECTIONS: lower on FLAIR, whose lesion ends narrow fast).
MIN_GROWN_SHARE = 0.5
# Slices a run of answers needs to be labelled without any of them at the no-tumour contrast (Selection.run_contrast).
DEFAULT_RUN_LENGTH = 4


@dataclass(frozen=True)
class FelzenszwalbParams:
    scale: float = DEFAULT_SCALE
    sigma: float = DEFAULT_SIGMA
    min_size: int = DEFAULT_MIN_SIZE


# The paper's superpixel step, for paper mode's comparisons (the baselines rank its superpixels as the paper did),
# so that they do not follow a later change of the default scale.
PAPER_SUPERPIXELS = FelzenszwalbParams(scale=PAPER_SCALE)


@dataclass(frozen=True)
class Selection:
    """How the answer is chosen from ranked segments.

    ``mode`` "paper": the top segment alone. "merge": the top segment grown over touching segments whose
    excess score (over the brain's median heat) is at least ``merge_ratio`` times the top one's.
    ``min_contrast``: if the top segment's score is below ``min_contrast`` times the brain's median heat, the
    slice is called tumour-free and gets an empty label (0 disables the decision, as in the paper), unless
    ``grow_contrast`` (below ``min_contrast``; None: never) rescues it: in a volume, a slice scoring at least
    ``grow_contrast`` keeps its answer when that overlaps the answer of a neighbouring slice that is labelled
    (:func:`~.pipeline.consistent_labels`). A tumour spans several slices; noise rarely lines up across them. So
    ``run_contrast`` (0: off) also labels every run of at least ``run_length`` consecutive slices scoring at least
    that much whose answers overlap from slice to slice (:func:`~.pipeline.persistent_runs`): a lesion that
    stands out on no slice alone.
    ``heat_sigma`` (pixels) smooths the heatmap inside the brain before scoring, and ``edge_margin`` (pixels)
    leaves the brain's rim out of the scores: thin hot lines at the brain's edge and the midline, where
    inpainting is always hard, then stop outscoring a broad anomaly. Both 0 is the paper.
    ``refine_radius`` (pixels; 0: off, as the paper) redraws each answer along the lesion's own intensity edge
    (:func:`refine_by_intensity`; ``lesion`` says whether the lesion is "bright" or "dark" on the modality).
    ``volume_radius`` (pixels; 0: off) redraws the labels of the slices segmented together, with one threshold for
    the scan, after the decision across slices (:func:`~.volume.refine_volume`), on slices brought to one brightness first
    when ``level_slices`` (:func:`~.volume.level_slices`); a slice without a label of its own keeps
    what grew into it when that is at least ``min_grown_share`` of its labelled neighbour's label; there the threshold
    lies ``end_weight`` of the way from the rest of the brain to the labels (None: as on the labelled slices, 0.6),
    since a lesion fades at its ends; ``carry_share`` (0: off) then carries the labels one slice further where what
    grows there is at least this share of the neighbour's label; with ``grow_into_small_slices`` the slices with too
    little brain to be localised (less than one window) join it too, and keep what grows into them from the share
    scaled by their brain over the neighbour's, since the lesion's section shrinks with the brain at the scan's ends
    (:func:`~.volume.refine_volume`). ``min_component_share`` (0: off)
    then drops the 3D pieces of those labels smaller than this share of the largest (:func:`~.volume.keep_main_lesions`);
    ``follow_share`` (0: off) then follows the lesion, slice after slice, into the slices the decision labelled that
    are empty now, where what grows there is at least this share of the neighbour's label
    (:func:`~.volume.followed_into_decided`); and
    ``label_sigma`` (pixels in-plane) with ``label_sigma_slices`` (slices; both 0: off) smooths what is left
    (:func:`~.volume.smooth_labels`).
    ``dark_share`` (0: off) takes the heat off the darkest share of the brain before scoring, and ``dark_margin``
    (pixels) off a rim that wide around it (:func:`without_darkest`).
    """

    mode: str = "merge"
    merge_ratio: float = DEFAULT_MERGE_RATIO
    min_contrast: float = DEFAULT_MIN_CONTRAST
    grow_contrast: float | None = None
    run_contrast: float = 0.0
    run_length: int = DEFAULT_RUN_LENGTH
    heat_sigma: float = DEFAULT_HEAT_SIGMA
    edge_margin: int = DEFAULT_EDGE_MARGIN
    refine_radius: int = 0
    lesion: str = "bright"
    volume_radius: int = 0
    min_component_share: float = 0.0
    min_grown_share: float = MIN_GROWN_SHARE
    end_weight: float | None = None
    carry_share: float = 0.0
    follow_share: float = 0.0
    level_slices: bool = False
    grow_into_small_slices: bool = False
    dark_share: float = 0.0
    dark_margin: int = 0
    label_sigma: float = 0.0
    label_sigma_slices: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in SELECTION_MODES:
            raise ValueError(f"mode must be one of {SELECTION_MODES}, got {self.mode!r}")
        if not 0 <= self.merge_ratio <= 1:
            raise ValueError(f"merge ratio must lie in [0, 1], got {self.merge_ratio}")
        if min(self.min_contrast, self.run_contrast) < 0 or (self.grow_contrast is not None and self.grow_contrast < 0):
            raise ValueError(f"min_contrast, grow_contrast and run_contrast must be at least 0, got {self.min_contrast}, {self.grow_contrast} "
                             f"and {self.run_contrast}")
        if self.run_length < 1:
            raise ValueError(f"run_length must be at least 1, got {self.run_length}")
        if min(self.heat_sigma, self.edge_margin, self.refine_radius, self.volume_radius, self.label_sigma, self.label_sigma_slices) < 0:
            raise ValueError(f"heat_sigma, edge_margin, refine_radius, volume_radius, label_sigma and label_sigma_slices must be at least 0, got "
                             f"{self.heat_sigma}, {self.edge_margin}, {self.refine_radius}, {self.volume_radius}, {self.label_sigma} and {self.label_sigma_slices}")
        if not all(0 <= share <= 1 for share in (self.min_component_share, self.min_grown_share, self.carry_share, self.follow_share)):
            raise ValueError(f"min_component_share, min_grown_share, carry_share and follow_share must lie in [0, 1], got {self.min_component_share}, "
                             f"{self.min_grown_share}, {self.carry_share} and {self.follow_share}")
        if self.end_weight is not None and not 0 <= self.end_weight <= 1:
            raise ValueError(f"end_weight must lie in [0, 1], got {self.end_weight}")
        if not 0 <= self.dark_share < 1:
            raise ValueError(f"dark_share must lie in [0, 1), got {self.dark_share}")
        if self.dark_margin < 0:
            raise ValueError(f"dark_margin must be at least 0, got {self.dark_margin}")
        if self.lesion not in LESION_SIGNS:
            raise ValueError(f"lesion must be one of {LESION_SIGNS}, got {self.lesion!r}")

    @property
    def description(self) -> str:
        text = "paper (top segment)" if self.mode == "paper" else f"merge (ratio {self.merge_ratio:g})"
        if self.heat_sigma:
            text += f", heat smoothed sigma {self.heat_sigma:g}"
        if self.edge_margin:
            text += f", brain rim {self.edge_margin} px ignored"
        if self.dark_share:
            text += f", heat of the darkest {self.dark_share:g} of the brain ignored"
            if self.dark_margin:
                text += f" with {self.dark_margin} px around it"
        if self.refine_radius:
            text += f", refined to the {self.lesion} lesion's edge within {self.refine_radius} px"
        if self.min_contrast:
            text += f", no-tumour below contrast {self.min_contrast:g}"
            if self.grow_contrast is not None and self.grow_contrast < self.min_contrast:
                text += f" ({self.grow_contrast:g} beside a labelled slice)"
        if self.run_contrast:
            text += f", runs of {self.run_length}+ overlapping slices at contrast {self.run_contrast:g} labelled"
        if self.volume_radius:
            text += f", volume redrawn with one threshold within {self.volume_radius} px"
            if self.level_slices:
                text += " on slices brought to one brightness"
            if self.min_grown_share != MIN_GROWN_SHARE:
                text += f" (kept in a slice of its own from {self.min_grown_share:g} of the neighbour's label)"
            if self.end_weight is not None:
                text += f", in a slice left empty at {self.end_weight:g} of the way to the labels"
            if self.carry_share:
                text += f", carried one slice further from {self.carry_share:g} of the neighbour's label"
            if self.grow_into_small_slices:
                text += ", grown into slices with less brain than one window"
        if self.min_component_share:
            text += f", 3D pieces under {self.min_component_share:g} of the largest dropped"
        if self.volume_radius and self.follow_share:
            text += f", followed into slices labelled by the decision from {self.follow_share:g} of the neighbour's label"
        if self.label_sigma or self.label_sigma_slices:
            text += f", labels smoothed sigma {self.label_sigma:g} px, {self.label_sigma_slices:g} slices"
        return text


# Per modality, because the heat differs: one-sided FLAIR heat is sharp and wants little smoothing, T1-pre
# heat is noisy and wants much; contrasts scale with the smoothing, so the no-tumour decision goes with it.
# LGG is bright on FLAIR, where its edge is sharp enough to refine each answer; on T1-pre that did not help, but
# one threshold for the whole volume (volume_radius) helped both (on FLAIR more so on slices brought to one
# brightness first, level_slices; on T1-pre that left the Dice as it was and cost volume Dice), and so did dropping
# the small 3D pieces beside the lesion (min_component_share: the best Dice, ties broken towards dropping less); with those dropped, FLAIR's
# labels may also grow into the narrow ends of a lesion (min_grown_share), which on T1-pre only added false positives,
# and there take its fainter voxels too (end_weight), which on T1-pre changed nothing, and go on one slice further where
# the lesion keeps nearly its size (carry_share), which on T1-pre only added false positives. On FLAIR a run of four
# slices whose answers overlap is labelled at a lower contrast (run_contrast): chosen on the training patients as
# well as the validation ones, since 6 of the 56 FLAIR training patients stood out on no slice alone (no label on any
# tumour slice), and on the 12 validation patients none did; off on T1-pre. Also chosen on the training patients: on
# FLAIR the finished labels follow the lesion into slices the decision labelled but whose answer lay elsewhere
# (follow_share; on the validation patients no such slice, on T1-pre's no Dice for one more false positive). On FLAIR the
# labels also grow into the slices with less brain than one window, which the localiser cannot look at
# (grow_into_small_slices: validation and training Dice up, on T1-pre down, where growth reached none of them).
# On T1-pre the darkest tenth of the brain (its fluid) and a 1-px rim around it are kept out of the heat (dark_share,
# dark_margin), and the decision retuned with them;
# its ragged labels are smoothed last (label_sigma, label_sigma_slices), which on FLAIR's sharp edge hardly mattered.
# Chosen on the validation patients with training_scripts/tune_selection.py (docs/results.md).
DEFAULT_SELECTIONS = {
    "flair": Selection(merge_ratio=0.3, heat_sigma=4.0, edge_margin=20, min_contrast=6.0, grow_contrast=4.0, refine_radius=20, lesion=LESION_SIGN["flair"],
                       volume_radius=3, level_slices=True, min_component_share=0.5, min_grown_share=0.25, end_weight=0.45, carry_share=0.75,
                       run_contrast=3.5, follow_share=0.5, grow_into_small_slices=True),
    "t1": Selection(merge_ratio=0.2, heat_sigma=16.0, edge_margin=30, min_contrast=1.4, grow_contrast=1.3, lesion=LESION_SIGN["t1"], volume_radius=3,
                    min_component_share=0.1, dark_share=0.1, dark_margin=1, label_sigma=4.0, label_sigma_slices=1.5),
}


# The settings that act on the slices segmented together, after each slice's answer (pipeline.volume_labels): the
# widget has no controls for them, so Label all slices takes the modality's tuned values, as the command line does.
ACROSS_SLICES = ("min_contrast", "grow_contrast", "run_contrast", "run_length", "volume_radius", "level_slices", "min_component_share", "min_grown_share",
                 "end_weight", "carry_share", "follow_share", "grow_into_small_slices", "label_sigma", "label_sigma_slices")


def lesion_sign(polarity: str, modality: str | None) -> str:
    """The lesion's side for the selection: the error sign the heat was made with when it names one, else the
    modality's (:data:`LESION_SIGN`). A quarter of the training patients' LGGs are not darker than the rest of
    the brain on T1-pre (docs/results.md); whoever asks for bright errors on such a scan wants a bright lesion
    drawn, not the bright heat redrawn along the dark side."""
    return polarity if polarity in LESION_SIGNS else LESION_SIGN.get(modality or "", "bright")


def default_selection(modality: str | None) -> Selection:
    """The tuned selection of ``modality`` (:data:`DEFAULT_SELECTIONS`); the generic one if it is unknown."""
    return DEFAULT_SELECTIONS.get(modality or "", Selection())


def with_decision(selection: Selection, decision: tuple[float, float | None]) -> Selection:
    """``selection`` with a no-tumour decision calibrated for a model (:func:`~.models.config.stored_decision`).
    The runs' contrast was tuned on the shipped model's heat only and is not part of a calibration, so it is off."""
    return replace(selection, min_contrast=decision[0], grow_contrast=decision[1], run_contrast=0.0)


PAPER_SELECTION = Selection(mode="paper", min_contrast=0.0, heat_sigma=0.0, edge_margin=0)


@dataclass(frozen=True)
class Segment:
    """One candidate: its label in the superpixel map, mean heatmap score and area in pixels."""

    label: int
    score: float
    area: int


def superpixels(image: np.ndarray, params: FelzenszwalbParams = FelzenszwalbParams()) -> np.ndarray:
    """Felzenszwalb label map (int32, labels from 0) of a [0, 1] slice."""
    return felzenszwalb(np.asarray(image, dtype=np.float64), scale=params.scale, sigma=params.sigma, min_size=int(params.min_size)).astype(np.int32)


def scoring_heat(heatmap: np.ndarray, brain: np.ndarray, sigma: float = 0.0, edge_margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The heat segments are scored with, and the pixels that count (see :class:`Selection`).

    Smoothing is a normalised convolution inside the brain, so the zeros outside do not cool the brain's edge.
    """
    heat = np.where(brain, heatmap, 0.0).astype(np.float64)
    if sigma > 0:
        weight = ndimage.gaussian_filter(brain.astype(np.float64), sigma)
        heat = np.where(brain, ndimage.gaussian_filter(heat, sigma) / np.maximum(weight, 1e-6), 0.0)
    counted = brain
    if edge_margin > 0:
        inner = ndimage.binary_erosion(brain, iterations=edge_margin)
        counted = inner if inner.any() else brain
    return heat, counted


def without_darkest(heatmap: np.ndarray, image: np.ndarray, brain: np.ndarray, share: float, margin: int = 0) -> np.ndarray:
    """``heatmap`` without heat on the darkest ``share`` of the brain's pixels and on the brain within ``margin``
    pixels of them (share 0 returns ``heatmap`` itself).

    Why: on T1-pre the cerebrospinal fluid of the ventricles and sulci is the brain's darkest tissue, and the
    generator fills its odd shapes with tissue, so the fluid is darker than its inpainting: errors of the lesion's
    sign. On the validation slices where the heat missed the tumour, its maximum lay within 8 pixels of the darkest
    tenth of the brain on 79 of 87, while a median 1 % of a tumour's pixels are that dark: a low-grade glioma is
    darker than white matter, not as dark as fluid (docs/results.md). The fluid's partial-volume rim is darker than
    the tissue the generator paints over it as well, so a margin of a pixel takes that off too.
    """
    inside = np.asarray(brain, dtype=bool)
    if share <= 0 or not inside.any():
        return heatmap
    darkest = inside & (image < np.quantile(image[inside], share))
    if margin > 0:
        darkest = ndimage.binary_dilation(darkest, iterations=margin) & inside
    return np.where(darkest, 0, heatmap).astype(heatmap.dtype, copy=False)


def rank_segments(labels: np.ndarray, heatmap: np.ndarray, brain: np.ndarray, counted: np.ndarray | None = None) -> list[Segment]:
    """Candidates sorted by descending score (mean heat over their ``counted`` pixels, default the brain);
    only segments with at least half their pixels in the brain and some counted pixels."""
    counted = brain if counted is None else counted
    flat = labels.ravel()
    n = int(flat.max()) + 1
    area = np.bincount(flat, minlength=n)
    in_brain = np.bincount(flat, weights=brain.ravel().astype(np.float64), minlength=n)
    n_counted = np.bincount(flat, weights=counted.ravel().astype(np.float64), minlength=n)
    heat = np.bincount(flat, weights=np.where(counted, heatmap, 0).ravel().astype(np.float64), minlength=n)
    candidates = np.flatnonzero((in_brain >= MIN_BRAIN_FRACTION * area) & (n_counted > 0))
    scores = heat[candidates] / n_counted[candidates]
    order = np.argsort(-scores, kind="stable")
    return [Segment(int(candidates[i]), float(scores[i]), int(area[candidates[i]])) for i in order]


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


def brain_baseline(heatmap: np.ndarray, counted: np.ndarray) -> float:
    """The heat of ordinary tissue: the median of the heatmap over the counted brain pixels (0 if none)."""
    return float(np.median(heatmap[counted])) if counted.any() else 0.0


def grow_from(
    labels: np.ndarray, ranking: list[Segment], seed_rank: int, ratio: float, baseline: float = 0.0, exclude: frozenset[int] | set[int] = frozenset(),
    neighbours: dict[int, set[int]] | None = None,
) -> list[Segment]:
    """Heatmap-guided merging: from the candidate at ``seed_rank``, absorb touching candidates whose excess
    score over ``baseline`` is at least ``ratio`` times the seed's, repeatedly, so a tumour cut into several
    superpixels is taken whole. Excess over the baseline, because healthy tissue is never at zero error.
    Labels in ``exclude`` (taken by earlier candidates) are never absorbed; ``neighbours`` is
    :func:`segment_adjacency` of ``labels`` when the caller already has it."""
    by_label = {segment.label: segment for segment in ranking}
    seed = ranking[seed_rank]
    threshold = baseline + ratio * (seed.score - baseline)
    neighbours = segment_adjacency(labels) if neighbours is None else neighbours
    region, frontier = {seed.label}, [seed.label]
    while frontier:
        current = frontier.pop()
        for other in neighbours.get(current, ()):
            candidate = by_label.get(other)
            if other not in region and other not in exclude and candidate is not None and candidate.score >= threshold:
                region.add(other)
                frontier.append(other)
    return [segment for segment in ranking if segment.label in region]


def redraw_along_edge(
    labels: np.ndarray, image: np.ndarray, brain: np.ndarray, lesion: str, radius: int, weight: float, end_weight: float | None = None,
) -> np.ndarray | None:
    """Labels of a stack of slices (Z, H, W) redrawn along the lesion's intensity edge; None if there is nothing
    to sharpen (no radius, no labels, or labels not on the lesion's side of the rest of the brain).

    The threshold lies ``weight`` of the way from the rest of the brain's median intensity to the labels'; kept
    are the brain pixels on the lesion's side of it ("bright": above, "dark": below) within ``radius`` pixels
    in-plane of a label on the same slice or the next one in the stack, in pieces (3D) that touch a label, holes
    filled per slice. On slices without a label, ``end_weight`` (None: ``weight``) places the threshold: a lesion
    fades where it ends, in slices that cut through only part of it. Shared by the per-answer refinement (one
    slice) and the volume step (a scan).
    """
    labels = labels & brain
    rest = brain & ~labels
    if radius <= 0 or not labels.any() or not rest.any():
        return None
    sign = 1.0 if lesion == "bright" else -1.0
    inside, outside = float(np.median(image[labels])), float(np.median(image[rest]))
    if sign * (inside - outside) <= 0:
        return None
    weights = np.full(len(labels), weight)
    if end_weight is not None:
        weights[~labels.any(axis=(1, 2))] = end_weight
    thresholds = (outside + weights * (inside - outside)).astype(image.dtype)  # in the image's precision, as a scalar would be
    lesion_side = brain & (sign * (image - thresholds[:, None, None]) >= 0)
    near_in_plane = np.stack([ndimage.distance_transform_edt(~plane) <= radius if plane.any() else np.zeros(plane.shape, bool) for plane in labels])
    near = near_in_plane.copy()
    near[1:] |= near_in_plane[:-1]
    near[:-1] |= near_in_plane[1:]
    pieces, _ = ndimage.label(near & lesion_side)
    touching = np.unique(pieces[labels & lesion_side])
    return np.stack([ndimage.binary_fill_holes(plane) for plane in np.isin(pieces, touching[touching > 0])]) & brain


def refine_by_intensity(region: np.ndarray, image: np.ndarray, brain: np.ndarray, lesion: str, radius: int) -> np.ndarray:
    """``region`` redrawn along the lesion's intensity edge instead of the superpixels' boundaries.

    Superpixels chosen by heat rarely follow the lesion exactly: they spill into tissue around it or miss its
    fringe. :func:`redraw_along_edge` on this one slice, the threshold halfway between the region's median
    intensity and the rest of the brain's. A region that is not on the lesion's side of the brain (nothing to
    sharpen) is returned as it is.
    """
    redrawn = redraw_along_edge(region[None], image[None], brain[None], lesion, radius, weight=0.5)
    return region if redrawn is None else redrawn[0]
