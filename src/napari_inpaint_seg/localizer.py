"""Sliding-window localisation: erase a gamma x gamma window, inpaint it, and record the error inside it.

Two paths behind one API, both generators that yield :class:`HeatmapUpdate` as batches of windows finish
(so a GUI can draw the heatmap live) and whose last update is the finished heatmap:

* :func:`reference_heatmap` is the paper, literally: every window position, a full-slice forward pass per
  window, slice and reconstruction each min-max normalised to [0, 255], L1 inside the window only, errors
  accumulated per pixel and divided by how many windows cover the pixel. It is the ground truth.
* :func:`fast_heatmap` evaluates only windows that touch the brain (others only add to pixels outside it),
  each with the same whole-slice prediction as the reference but recomputing only what erasing the window
  changes (:class:`~.models.window_inference.SliceInpainter`), many windows per batch, in bfloat16 where
  that is fast. It works coarse-to-fine: a coarse stride first, then finer strides only for the windows that
  are hottest so far. Each reconstruction is normalised by its own extremes, as in the reference (those of the
  slice outside the window and of the prediction). In float32 with every window evaluated it equals the
  reference to float rounding.

Heatmaps are in units of error on the [0, 255] scale and are zero outside the brain. ``polarity`` says which
error counts: "both" (the paper) the absolute difference; "bright" only where the slice is brighter than its
inpainting, "dark" only where it is darker. A lesion that is hyperintense on the modality (LGG on FLAIR) or
hypointense (LGG on T1-pre) stands out more once the generator's errors of the other sign, which are as
frequent in healthy tissue, no longer count. "bright" + "dark" = "both".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from .errors import InputError
from .frame import pad_to_multiple, unpad
from .models.config import ModelConfig
from .models.generator import UNetGenerator, inpaint
from .models.window_inference import SliceInpainter, bfloat16_is_fast

DEFAULT_STEP = 4


def step_for_window(gamma: int, step: int | None = None) -> int:
    """The stride to use: ``step`` when given; else the paper's 4 px, or gamma / 8 for windows above 32 px
    (the error of a 64-px window changes little over 4 px, and 8 px makes it 4x cheaper)."""
    return step if step is not None else max(DEFAULT_STEP, gamma // 8)


# The fast path's first stage and refined share (docs/performance.md). Windows up to 32 px estimate the windows not
# run from the first stage's (revision 6) and start with one in 8 stride-k windows, refining 0.15 of the rest
# (revision 7): the reference's top segment on 97.2 % of 36 and 100 % of 24 agreement-benchmark slices at gamma 32
# (Dice within 0.003 on a slice), with 36 % fewer windows than one in 4 and 0.2. Larger windows keep revision 5's scheme
# and 0.3: the defaults' selection and decisions were tuned on its heat, and revision 6's, though closer to the
# reference, lowered the validation Dice at gamma 64 (FLAIR 0.740 -> 0.731, T1-pre 0.246 -> 0.200).
# A share of 1 gives the reference's heatmap itself.
SMALL_WINDOW_REFINE_FRACTION = 0.15
SMALL_WINDOW_FIRST_PERIOD = 8
DEFAULT_REFINE_FRACTION = 0.3
LARGEST_ESTIMATING_WINDOW = 32
DEFAULT_COARSE_FACTOR = 2
FIRST_BATCH = 32
# Batches end where the windows' offset from the UNet's grid changes once they hold this many (:func:`batch_edges`),
# and are padded to multiples of PAD_UNIT windows (:func:`padded_batch_size`): 13-15 % less time at gamma 32, k 4
# (revision 7, float32) than batches of any offsets padded to multiples of 64.
SMALLEST_SPLIT_BATCH = 64
PAD_UNIT = 8
# Windows per batch of the fast path, as pixels of (2 gamma)^2 squares: 256 windows at gamma 32, 64 at gamma 64.
# A budget rather than a window count keeps memory flat whatever the window (what each window recomputes grows
# with the square of gamma).
BATCH_PIXELS = 256 * 64 * 64
POLARITIES = ("both", "bright", "dark")


def heat_precision(fast: bool, device: str) -> str:
    """The number format the heatmaps are computed in: the fast path uses bfloat16 where it is fast (a GPU, a CPU
    with AVX-512 BF16), which moves the heat by up to about 1 on the 0-255 scale, so caches and sidecars record it."""
    return "bfloat16" if fast and bfloat16_is_fast(device) else "float32"


def refine_fraction_for_window(gamma: int, refine_fraction: float | None = None) -> float:
    """The share of windows to refine: ``refine_fraction`` when given; else 0.15 for windows up to 32 px, whose
    windows not run are estimated (:func:`estimates_unrun_windows`), and 0.3 above."""
    if refine_fraction is not None:
        return refine_fraction
    return SMALL_WINDOW_REFINE_FRACTION if estimates_unrun_windows(gamma) else DEFAULT_REFINE_FRACTION


def fast_path_settings(gamma: int, step: int, refine_fraction: float | None = None) -> dict:
    """The fast path's settings for one window as resolved from its defaults, under the names sidecars and
    caches record: with :data:`FAST_PATH_REVISION` and the precision, what decides its heat."""
    return {"FirstPeriod": first_stage_period(gamma, step, DEFAULT_COARSE_FACTOR), "RefineFraction": refine_fraction_for_window(gamma, refine_fraction)}


def estimates_unrun_windows(gamma: int) -> bool:
    """Whether the fast path starts on the grid's diagonals and estimates the windows it does not run (revision 6)
    for this window, or starts on the coarse grid and averages only the windows that ran (revision 5)."""
    return gamma <= LARGEST_ESTIMATING_WINDOW


# Raise when a change makes the fast path's heatmaps differ: evaluation caches record it and are then remade.
# 2: crops three windows wide, refinement by each window's mean coarse heat.
# 3: whole-slice predictions (not crops), bfloat16 where fast, exactly the refine_fraction share among tied windows,
#    cascades for coarse_factor > 2.
# 4: tried and reverted (the heat of the finest complete stride per pixel); not used again, to keep caches apart.
# 5: bfloat16 by weights and maps of that dtype instead of autocast (which mixed in float32), the output layer in
#    float32; batches padded to fewer extra windows.
# 6: windows up to 32 px: the first stage on the stride-k grid's diagonals instead of the coarse grid, windows
#    never run estimated by the first stage's cold windows instead of left out (larger windows: revision 5's heat).
# 7: windows up to 32 px: the first stage one in 8 windows where that covers pixels evenly (gamma / k divisible
#    by 8), was one in 4; refined share 0.15, was 0.2.
FAST_PATH_REVISION = 7


@dataclass
class HeatmapUpdate:
    """Progress of one localisation: the heatmap so far (windows not yet run count as zero)."""

    heatmap: np.ndarray
    windows_done: int
    windows_total: int

    @property
    def finished(self) -> bool:
        return self.windows_done == self.windows_total


def window_starts(length: int, gamma: int, step: int) -> np.ndarray:
    """Window start offsets along one axis with stride ``step``; the last window always touches the edge."""
    starts = list(range(0, length - gamma + 1, step))
    if starts[-1] != length - gamma:
        starts.append(length - gamma)
    return np.asarray(starts)


def all_window_positions(shape: tuple[int, int], gamma: int, step: int) -> np.ndarray:
    """(N, 2) array of (row, col) window starts covering the whole slice."""
    rows, cols = window_starts(shape[0], gamma, step), window_starts(shape[1], gamma, step)
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)


def brain_window_positions(brain: np.ndarray, gamma: int, step: int) -> np.ndarray:
    """Window starts whose window contains at least one brain pixel."""
    positions = all_window_positions(brain.shape, gamma, step)
    return positions[window_sums(brain.astype(np.int64), positions, gamma) > 0]


def summed_area_table(values: np.ndarray) -> np.ndarray:
    """Cumulative sums over both axes with a leading row and column of zeros: any box's sum in four lookups."""
    return np.pad(values.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))


def window_sums(values: np.ndarray, positions: np.ndarray, gamma: int) -> np.ndarray:
    """Sum of ``values`` over the gamma x gamma window at each start, from a summed-area table (a few lookups
    per window, whatever gamma)."""
    table = summed_area_table(values)
    rows, cols = positions[:, 0], positions[:, 1]
    return table[rows + gamma, cols + gamma] - table[rows, cols + gamma] - table[rows + gamma, cols] + table[rows, cols]


def check_slice(image: np.ndarray, brain: np.ndarray, gamma: int, step: int, polarity: str = "both") -> None:
    if image.ndim != 2:
        raise InputError(f"localisation works on 2D slices, got shape {image.shape}")
    if image.shape != brain.shape:
        raise InputError(f"slice {image.shape} and brain mask {brain.shape} differ in shape")
    if min(image.shape) < gamma:
        raise InputError(f"slice {image.shape} is smaller than the window gamma={gamma}")
    if step < 1:
        raise InputError(f"step must be at least 1, got {step}")
    if step > gamma:
        raise InputError(f"step {step} is larger than the window gamma={gamma}: pixels between windows would get no heat; use a step of at most {gamma}")
    if polarity not in POLARITIES:
        raise InputError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    if not np.isfinite(image).all():
        raise InputError("slice contains NaN or Inf values")


# Below this intensity span (images are in [0, 1]) a slice or reconstruction counts as constant: stretching it to
# [0, 255] would only amplify rounding, and 255 / span overflows float32 for spans near its smallest numbers.
MIN_SPAN = 1e-6


def _to_255(values: np.ndarray | torch.Tensor, low, high):
    span = high - low
    return (values - low) * (255.0 / span) if span > MIN_SPAN else values * 0


def window_error(slice_255: np.ndarray, reconstruction_255: np.ndarray, polarity: str = "both") -> np.ndarray:
    """Per-pixel error of a window (or a stack of them) on the [0, 255] scale, of the sign ``polarity`` says."""
    difference = slice_255 - reconstruction_255
    if polarity == "both":
        return np.abs(difference)
    return np.maximum(difference if polarity == "bright" else -difference, 0.0)


def _accumulate(total: np.ndarray, coverage: np.ndarray, errors: np.ndarray, positions: np.ndarray, gamma: int) -> None:
    for (row, col), error in zip(positions, errors):
        total[row : row + gamma, col : col + gamma] += error
        coverage[row : row + gamma, col : col + gamma] += 1


def _normalised(total: np.ndarray, coverage: np.ndarray, brain: np.ndarray) -> np.ndarray:
    return np.where(brain, total / np.maximum(coverage, 1), 0.0).astype(np.float32)


@torch.inference_mode()
def reference_heatmap(
    generator: torch.nn.Module, config: ModelConfig, image: np.ndarray, brain: np.ndarray, *, step: int = DEFAULT_STEP, batch_size: int = 8,
    device: str = "cpu", polarity: str = "both",
) -> Iterator[HeatmapUpdate]:
    """The paper's localiser (see module docstring); ``image`` is in [0, 1] with 0 outside ``brain``."""
    gamma = config.gamma
    check_slice(image, brain, gamma, step, polarity)
    padded, padding = pad_to_multiple(image.astype(np.float32), config.stride)
    x = torch.from_numpy(padded).to(device)[None, None]
    slice_255 = _to_255(image, image.min(), image.max())
    positions = all_window_positions(image.shape, gamma, step)
    total, coverage = np.zeros(image.shape), np.zeros(image.shape)
    for first in range(0, len(positions), batch_size):
        batch = positions[first : first + batch_size]
        holes = torch.zeros((len(batch), 1) + padded.shape, device=device)
        for i, (row, col) in enumerate(batch):
            holes[i, 0, padding.top + row : padding.top + row + gamma, padding.left + col : padding.left + col + gamma] = 1
        reconstructions = unpad(inpaint(generator, x.expand(len(batch), -1, -1, -1), holes)[:, 0].float().cpu().numpy(), padding)
        errors = []
        for (row, col), reconstruction in zip(batch, reconstructions):
            rec_255 = _to_255(reconstruction, reconstruction.min(), reconstruction.max())
            window = (slice(row, row + gamma), slice(col, col + gamma))
            errors.append(window_error(slice_255[window], rec_255[window], polarity))
        _accumulate(total, coverage, errors, batch, gamma)
        yield HeatmapUpdate(_normalised(total, coverage, brain), first + len(batch), len(positions))


def _extremes_outside_windows(image: np.ndarray, gamma: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window start (row, column), the minimum and maximum of the slice outside that gamma x gamma window.

    Outside a window = the rows above it, the rows below it, and its own rows left and right of it; each part
    from running extremes, so the whole table costs a few passes over the slice (inf where nothing is outside).
    """
    height, width = image.shape
    tables = []
    for extreme, neutral in ((np.minimum, np.inf), (np.maximum, -np.inf)):
        def before(values: np.ndarray, axis: int) -> np.ndarray:
            """Extreme of everything before each index along ``axis`` (one longer: the last covers all)."""
            edge = np.full(values.shape[:axis] + (1,) + values.shape[axis + 1 :], neutral)
            return np.concatenate([edge, extreme.accumulate(values, axis=axis)], axis=axis)

        def over_window_rows(values: np.ndarray) -> np.ndarray:
            """Extreme over every run of ``gamma`` rows, by doubling: log2(gamma) passes, not gamma."""
            span = 1
            while 2 * span <= gamma:
                values, span = extreme(values[:-span], values[span:]), 2 * span
            return extreme(values[: len(values) - (gamma - span)], values[gamma - span :])

        row_extremes = extreme.reduce(image, axis=1)
        above = before(row_extremes, 0)[: height - gamma + 1]
        below = before(row_extremes[::-1], 0)[::-1][gamma:]
        left = over_window_rows(before(image, 1))[:, : width - gamma + 1]
        right = over_window_rows(before(image[:, ::-1], 1)[:, ::-1])[:, gamma:]
        tables.append(extreme(extreme(left, right), extreme(above, below)[:, None]))
    return tables[0], tables[1]


class _WindowErrors:
    """Window errors of one slice: G's whole-slice prediction in each window (:class:`SliceInpainter`), batched."""

    def __init__(self, generator: UNetGenerator, config: ModelConfig, image: np.ndarray, device: str, polarity: str, bfloat16: bool) -> None:
        self.gamma, self.stride, self.polarity = config.gamma, config.stride, polarity
        padded, self.padding = pad_to_multiple(image.astype(np.float32), config.stride)
        dtype = torch.bfloat16 if bfloat16 else torch.float32
        self.inpainter = SliceInpainter(generator, torch.from_numpy(padded).to(device), config.gamma, dtype)
        self.low_outside, self.high_outside = _extremes_outside_windows(image, config.gamma)
        self.slice_255 = _to_255(image, image.min(), image.max())

    def offsets(self, positions: np.ndarray) -> np.ndarray:
        """Each window's offset from the UNet's grid, as one number: windows of one offset recompute the same,
        smallest regions (:class:`~.models.window_inference.WindowRegions`)."""
        rows, cols = positions[:, 0] + self.padding.top, positions[:, 1] + self.padding.left
        return rows % self.stride * self.stride + cols % self.stride

    def grouped(self, positions: np.ndarray) -> np.ndarray:
        """``positions`` reordered so that consecutive windows share their offset from the UNet's grid (then in
        raster order), for :func:`batch_edges`; a partial heatmap also spreads over the whole brain sooner."""
        return positions[np.lexsort((positions[:, 1], positions[:, 0], self.offsets(positions)))]

    def errors(self, positions: np.ndarray, largest_batch: int) -> np.ndarray:
        """(N, gamma, gamma) errors on the [0, 255] scale for windows starting at ``positions``.

        The batch is padded (repeating its last window) to one of a few sizes, at most ``largest_batch``
        (:func:`padded_batch_size`). The convolution backend keeps kernels for every input shape it meets, and a
        new shape for each partial batch made an 88-slice scan peak at 2.4 GB instead of 1.2 GB; powers of two all
        the way wasted up to half of a batch.
        """
        count = len(positions)
        padded = min(max(largest_batch, count), padded_batch_size(count))
        positions = np.concatenate([positions, np.repeat(positions[-1:], padded - count, axis=0)])
        prediction = self.inpainter.predict(positions + [self.padding.top, self.padding.left])
        # The reference normalises the reconstruction (the slice with the window inpainted) by its own extremes.
        rows, cols = positions[:, 0], positions[:, 1]
        low = torch.minimum(prediction.amin(dim=(1, 2)), torch.from_numpy(self.low_outside[rows, cols]).to(prediction))[:, None, None]
        high = torch.maximum(prediction.amax(dim=(1, 2)), torch.from_numpy(self.high_outside[rows, cols]).to(prediction))[:, None, None]
        span = high - low  # (N, 1, 1): the scale is chosen per window, the maps are touched once
        scale = torch.where(span > MIN_SPAN, 255.0 / span.clamp_min(MIN_SPAN), 0.0)
        rec_255 = ((prediction - low) * scale).cpu().numpy()
        windows = sliding_window_view(self.slice_255, (self.gamma, self.gamma))[positions[:, 0], positions[:, 1]]
        return window_error(windows, rec_255, self.polarity)[:count]


def padded_batch_size(count: int) -> int:
    """The batch size ``count`` windows are padded to: a power of two up to PAD_UNIT, then multiples of it."""
    return 1 << (count - 1).bit_length() if count <= PAD_UNIT else -(-count // PAD_UNIT) * PAD_UNIT


def batch_edges(offsets: np.ndarray, first_batch: int, batch_size: int, smallest: int = SMALLEST_SPLIT_BATCH) -> list[int]:
    """Where to cut windows grouped by ``offsets`` (:meth:`_WindowErrors.grouped`) into batches: at most
    ``batch_size`` windows (the first at most ``first_batch``, for an early partial heatmap), and where the offset
    changes once a batch holds ``smallest`` (:data:`SMALLEST_SPLIT_BATCH`). A batch of one offset recomputes smaller
    regions than a mixed one (about 40 M multiply-adds a window instead of 60 M at gamma 32), but small batches use
    the CPU less well: cut at every change and the saving was lost (docs/performance.md)."""
    changes = np.flatnonzero(np.diff(offsets)) + 1
    edges = [0]
    while edges[-1] < len(offsets):
        start = edges[-1]
        end = min(start + (first_batch if start == 0 else batch_size), len(offsets))
        cuts = changes[(changes >= start + max(smallest, 1)) & (changes < end)]
        edges.append(int(cuts[0]) if len(cuts) else end)
    return edges


def refinement_positions(coarse: np.ndarray, candidates: np.ndarray, gamma: int, fraction: float) -> np.ndarray:
    """The ``fraction`` of ``candidates`` whose window is hottest on average in the coarse heatmap.

    The mean over the window, not whether the window touches a hot pixel: hot pixels are scattered over the
    whole brain, so nearly every window touches one, and refining those would skip almost nothing.
    """
    if fraction >= 1 or not len(candidates):
        return candidates
    sums = window_sums(coarse.astype(np.float64), candidates, gamma)
    hottest = np.argsort(-sums, kind="stable")[: int(np.ceil(fraction * len(candidates)))]
    return candidates[np.sort(hottest)]  # exactly that share, even among ties; in raster order


def on_stride_grid(positions: np.ndarray, shape: tuple[int, int], gamma: int, stride: int) -> np.ndarray:
    """Which window starts lie on the stride-``stride`` grid (:func:`window_starts`, edge windows included)."""
    return np.isin(positions[:, 0], window_starts(shape[0], gamma, stride)) & np.isin(positions[:, 1], window_starts(shape[1], gamma, stride))


def first_stage_period(gamma: int, step: int, coarse_factor: int, period: int | None = None) -> int | None:
    """One in how many stride-``step`` windows the first stage runs, along the grid's diagonals; None: the stride
    ``coarse_factor * step`` grid instead (larger windows, revision 5; or no period that covers pixels evenly).

    Even coverage needs the period to divide the windows per pixel along an axis, ``gamma // step``. ``period``
    None: :data:`SMALL_WINDOW_FIRST_PERIOD` (or ``coarse_factor**2`` if larger) where it divides, else
    ``coarse_factor**2`` where that does.
    """
    if not estimates_unrun_windows(gamma):
        if period is not None:
            raise InputError(f"first_period is for windows up to {LARGEST_ESTIMATING_WINDOW} px; gamma {gamma} starts on the coarse grid")
        return None
    per_axis = gamma // step
    if period is not None:
        if period < 1 or per_axis % period:
            raise InputError(f"first_period must divide the windows per pixel along an axis ({gamma} // {step} = {per_axis}), got {period}")
        return period
    candidates = (max(SMALL_WINDOW_FIRST_PERIOD, coarse_factor**2), coarse_factor**2)  # a deeper cascade never starts denser
    return next((candidate for candidate in candidates if per_axis % candidate == 0), None)


def first_stage_mask(fine: np.ndarray, brain: np.ndarray, gamma: int, step: int, coarse_factor: int, period: int | None) -> np.ndarray:
    """Which of the stride-``step`` windows ``fine`` run first: one in ``period`` of them, covering every pixel.

    The diagonals of the stride-``step`` grid (window indices with j - i divisible by ``period``), not the stride
    ``coarse_factor * step`` grid: that grid puts every window at one or two offsets from the generator's 16-px
    pooling grid, whose errors differ from the other offsets' (at gamma 32, k 4 the median heat of its windows
    alone was 4.5 % below that of all windows on 36 validation slices, up to 16 % on one); the diagonals take
    every offset (0.6 % below). ``period`` None (:func:`first_stage_period`): that grid, one in
    ``coarse_factor**2`` (revision 5). Windows over brain pixels the chosen ones miss (a corner) are added.
    """
    shape = brain.shape
    if period is not None:
        rows, cols = window_starts(shape[0], gamma, step), window_starts(shape[1], gamma, step)
        row_index, col_index = np.searchsorted(rows, fine[:, 0]), np.searchsorted(cols, fine[:, 1])
        chosen = (col_index - row_index) % period == 0
    else:
        chosen = on_stride_grid(fine, shape, gamma, step * coarse_factor)
    missed = brain & (window_counts(fine[chosen], shape, gamma) == 0)
    return chosen | (window_sums(missed.astype(np.int64), fine, gamma) > 0)


def window_counts(positions: np.ndarray, shape: tuple[int, int], gamma: int) -> np.ndarray:
    """How many of the windows starting at ``positions`` cover each pixel (a box sum over their starts)."""
    starts = np.zeros(shape, np.int64)
    np.add.at(starts, (positions[:, 0], positions[:, 1]), 1)
    table = summed_area_table(starts)
    high_r, high_c = np.arange(1, shape[0] + 1), np.arange(1, shape[1] + 1)
    low_r, low_c = np.maximum(high_r - gamma, 0), np.maximum(high_c - gamma, 0)
    return table[high_r][:, high_c] - table[low_r][:, high_c] - table[high_r][:, low_c] + table[low_r][:, low_c]


@dataclass
class _FirstStage:
    """The first stage's windows, errors and per-pixel sums, kept to stand in for the windows that are never run."""

    positions: np.ndarray
    errors: np.ndarray
    total: np.ndarray
    coverage: np.ndarray

    def estimate(self, heat: np.ndarray, cutoff: float, gamma: int) -> np.ndarray:
        """Per pixel, the mean error of the first-stage windows over it that would not have been refined (their
        mean heat below ``cutoff``, the last refinement's): the stratum the windows never run belong to. Where
        every first-stage window over a pixel is that hot, the mean of all of them. The hot windows, the fewer,
        are the ones summed again and taken off the stage's sums."""
        hot = window_sums(heat.astype(np.float64), self.positions, gamma) >= cutoff
        hot_total, hot_count = np.zeros(heat.shape), np.zeros(heat.shape)
        _accumulate(hot_total, hot_count, self.errors[hot], self.positions[hot], gamma)
        cold_total, cold_count = self.total - hot_total, self.coverage - hot_count
        return np.where(cold_count > 0, cold_total / np.maximum(cold_count, 1), self.total / np.maximum(self.coverage, 1))


@torch.inference_mode()
def fast_heatmap(
    generator: UNetGenerator,
    config: ModelConfig,
    image: np.ndarray,
    brain: np.ndarray,
    *,
    step: int = DEFAULT_STEP,
    batch_size: int | None = None,
    device: str = "cpu",
    coarse_factor: int = DEFAULT_COARSE_FACTOR,
    first_period: int | None = None,
    refine_fraction: float | None = None,
    polarity: str = "both",
    bfloat16: bool | None = None,
) -> Iterator[HeatmapUpdate]:
    """Brain windows only, each with the whole-slice prediction (recomputing only what the window changes),
    batched; coarse-to-fine, with the windows never run estimated (windows up to 32 px).

    First one in ``coarse_factor**2`` of the stride-``step`` windows, spread over the grid
    (:func:`first_stage_mask`; for larger windows the coarse grid, :func:`estimates_unrun_windows`); then, at each
    stride from ``coarse_factor // 2 * step`` down to ``step``, the ``refine_fraction`` of the not yet evaluated
    windows on that grid that are hottest on the heatmap so far (:func:`refinement_positions`). Where every window
    over a pixel ran (the hot region, from which the top segment comes) the heatmap is the stride-``step`` one.
    Elsewhere (windows up to 32 px) the windows not run are counted with the mean error of the first-stage windows
    over the pixel that were as cold as they (:class:`_FirstStage`): averaging only the windows that ran would weigh
    the refined, hottest ones too much (it raised the brain's median heat by 3-5 %, which moved the per-slice
    no-tumour test on some slices); larger windows keep that plain mean, on which the defaults were tuned. The
    partial heatmaps are plain means. ``coarse_factor`` is a power of two; 1 (or ``refine_fraction=1``) evaluates
    every brain window at stride ``step``; None: the window's share, :func:`refine_fraction_for_window`.
    ``batch_size`` None: as many windows as :data:`BATCH_PIXELS` allow. ``bfloat16``: run the generator in
    bfloat16 (None: where that is fast, :func:`~.models.window_inference.bfloat16_is_fast`); False keeps float32,
    as the reference.
    """
    gamma = config.gamma
    refine_fraction = refine_fraction_for_window(gamma, refine_fraction)
    check_slice(image, brain, gamma, step, polarity)
    if coarse_factor < 1 or coarse_factor & (coarse_factor - 1):
        raise InputError(f"coarse_factor must be a power of two, got {coarse_factor}")
    first_period = first_stage_period(gamma, step, coarse_factor, first_period)
    if not 0 <= refine_fraction <= 1:
        raise InputError(f"refine_fraction must lie between 0 and 1, got {refine_fraction}")
    fine = brain_window_positions(brain, gamma, step)
    if len(fine) == 0:
        yield HeatmapUpdate(np.zeros(image.shape, np.float32), 0, 0)
        return
    bfloat16 = bfloat16_is_fast(device) if bfloat16 is None else bfloat16
    inpainter = _WindowErrors(generator, config, image, device, polarity, bfloat16)
    batch_size = batch_size or max(1, BATCH_PIXELS // (2 * gamma) ** 2)
    total, coverage = np.zeros(image.shape), np.zeros(image.shape)
    evaluated = np.zeros(image.shape, bool)  # by window start
    first_errors: list[np.ndarray] = []
    done = 0

    def run(positions: np.ndarray, planned: int, first_batch: int, keep: bool = False, hold_last: bool = False) -> Iterator[HeatmapUpdate]:
        """Evaluate ``positions`` in batches, yielding the plain mean after each (but the last with ``hold_last``:
        the finished heatmap is yielded once the windows never run are estimated)."""
        nonlocal done
        edges = batch_edges(inpainter.offsets(positions), min(first_batch, batch_size), batch_size)
        for first, last in zip(edges[:-1], edges[1:]):
            batch = positions[first:last]
            errors = inpainter.errors(batch, batch_size)
            _accumulate(total, coverage, errors, batch, gamma)
            if keep:
                first_errors.append(errors)
            evaluated[batch[:, 0], batch[:, 1]] = True
            done += len(batch)
            if not (hold_last and last == len(positions)):
                yield HeatmapUpdate(_normalised(total, coverage, brain), done, planned)

    if refine_fraction >= 1 or coarse_factor == 1:
        yield from run(inpainter.grouped(fine), len(fine), FIRST_BATCH)
        return
    strides = [step * coarse_factor >> level for level in range(1, coarse_factor.bit_length())]  # after the first stage
    estimate = estimates_unrun_windows(gamma)
    first = inpainter.grouped(fine[first_stage_mask(fine, brain, gamma, step, coarse_factor, first_period)])
    yield from run(first, len(fine), FIRST_BATCH, keep=estimate, hold_last=len(first) == len(fine))
    stage = _FirstStage(first, np.concatenate(first_errors), total.copy(), coverage.copy()) if estimate else None
    for level, stride in enumerate(strides):
        heat = _normalised(total, coverage, brain)
        candidates = refinement_positions(heat, fine[on_stride_grid(fine, image.shape, gamma, stride) & ~evaluated[fine[:, 0], fine[:, 1]]], gamma, refine_fraction)
        last_stage = level == len(strides) - 1
        # Until the last stage, the total is an upper bound (every brain window); large batches amortise the overhead.
        yield from run(inpainter.grouped(candidates), done + len(candidates) if last_stage else len(fine), batch_size, hold_last=last_stage)
    never_run = fine[~evaluated[fine[:, 0], fine[:, 1]]]
    if stage is not None and len(never_run):
        cutoff = window_sums(heat.astype(np.float64), candidates, gamma).min() if len(candidates) else np.inf
        count = window_counts(never_run, image.shape, gamma)
        total += count * stage.estimate(heat, cutoff, gamma)
        coverage += count
    yield HeatmapUpdate(_normalised(total, coverage, brain), done, done)


def final(updates: Iterator[HeatmapUpdate]) -> np.ndarray:
    """Run a localiser generator to the end and return its heatmap."""
    update = None
    for update in updates:
        pass
    return update.heatmap


def fuse_heatmaps(heatmaps: list[np.ndarray], brain: np.ndarray) -> np.ndarray:
    """Several window sizes in one heatmap: each divided by its median over the brain, then averaged.

    Small windows see small lesions, large windows large ones (a big lesion fills a small window's context, so
    it is inpainted as more lesion); their errors are on different scales, hence the normalisation.
    """
    fused = np.zeros(brain.shape, np.float64)
    for heatmap in heatmaps:
        median = float(np.median(heatmap[brain])) if brain.any() else 0.0
        fused += heatmap / median if median > 0 else heatmap
    return np.where(brain, fused / len(heatmaps), 0.0).astype(np.float32)


def localize(
    generator: torch.nn.Module, config: ModelConfig, image: np.ndarray, brain: np.ndarray, *, step: int = DEFAULT_STEP, fast: bool = True, device: str = "cpu",
    polarity: str = "both",
) -> np.ndarray:
    """Heatmap of one slice with the fast path (default) or the paper's reference path."""
    run = fast_heatmap if fast else reference_heatmap
    return final(run(generator, config, image, brain, step=step, device=device, polarity=polarity))
