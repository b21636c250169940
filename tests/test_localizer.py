"""The sliding-window localiser: both paths, their live updates, and where the fast one equals the paper's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.localizer import (
    _WindowErrors,
    all_window_positions,
    brain_window_positions,
    fast_heatmap,
    final,
    PAD_UNIT,
    batch_edges,
    first_stage_mask,
    first_stage_period,
    padded_batch_size,
    SMALL_WINDOW_FIRST_PERIOD,
    localize,
    reference_heatmap,
    refinement_positions,
    window_error,
    window_starts,
)
from napari_inpaint_seg.models.checkpoint import build_generator
from napari_inpaint_seg.models.generator import UNetGenerator


def constant_unet(config, value: float) -> UNetGenerator:
    """A UNet of ``config``'s shape that predicts ``value`` everywhere (head weights 0, bias its logit)."""
    generator = build_generator(config).eval()
    with torch.no_grad():
        generator.head.weight.zero_()
        generator.head.bias.fill_(float(np.log(value / (1 - value))))
    return generator


def random_unet(config, seed: int) -> UNetGenerator:
    """Random weights, its sigmoid spread out so the predictions vary across the slice."""
    torch.manual_seed(seed)
    generator = build_generator(config).eval()
    with torch.no_grad():
        generator.head.weight.mul_(30)
    return generator


def random_slice(shape=(30, 34), seed=0):
    """Random brain intensities in a disc, 0 outside, the maximum 1.0 at two pixels (so some windows hold the
    slice's maximum and others do not: both cases of the reconstruction's normalisation)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    brain = (rows - shape[0] / 2) ** 2 + (cols - shape[1] / 2) ** 2 <= (0.4 * min(shape)) ** 2
    image = np.where(brain, rng.uniform(0.05, 0.9, shape), 0.0).astype(np.float32)
    bright = np.argwhere(brain)
    image[tuple(bright[0])] = image[tuple(bright[-1])] = 1.0
    return image, brain


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("shape", [(24, 24), (26, 37)])
def test_heatmap_shape_zero_outside_brain_non_negative(tiny_generator, tiny_config, make_brain_slice, fast, shape):
    image, brain, _ = make_brain_slice(size=max(shape))
    image, brain = image[: shape[0], : shape[1]], brain[: shape[0], : shape[1]]
    heatmap = localize(tiny_generator, tiny_config, image, brain, step=4, fast=fast)
    assert heatmap.shape == image.shape and heatmap.dtype == np.float32
    assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() <= 255
    assert np.all(heatmap[~brain] == 0)
    assert heatmap[brain].max() > 0


@pytest.mark.parametrize("run", [reference_heatmap, fast_heatmap])
def test_updates_grow_and_the_last_is_finished(tiny_generator, tiny_config, make_brain_slice, run):
    image, brain, _ = make_brain_slice(size=32)
    updates = list(run(tiny_generator, tiny_config, image, brain, step=3, batch_size=8))
    assert len(updates) > 2
    done = [u.windows_done for u in updates]
    assert done == sorted(set(done))  # strictly increasing
    assert updates[-1].finished and not any(u.finished for u in updates[:-1])
    assert all(u.windows_done <= u.windows_total for u in updates)
    assert all(u.heatmap.shape == image.shape for u in updates)
    # Partial heatmaps only ever add windows: the covered area grows.
    covered = [int((u.heatmap > 0).sum()) for u in updates]
    assert covered == sorted(covered)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("downsample", [1, 2])
def test_fast_equals_reference_when_every_window_runs_in_float32(tiny_config, seed, downsample):
    """Every stride-``step`` brain window (``refine_fraction=1``), float32: the fast path recomputes only what
    each window changes, yet must give the reference's whole-slice heatmap up to float rounding."""
    config = replace(tiny_config, downsample=downsample)
    generator = random_unet(config, seed)
    image, brain = random_slice(seed=seed)
    reference = final(reference_heatmap(generator, config, image, brain, step=2))
    fast = final(fast_heatmap(generator, config, image, brain, step=2, refine_fraction=1.0, bfloat16=False))
    np.testing.assert_allclose(fast, reference, atol=2e-3, rtol=1e-5)
    assert reference[brain].std() > 1  # not trivially flat


def test_window_error_splits_the_absolute_error_by_sign():
    slice_255 = np.array([[10.0, 200.0], [50.0, 50.0]])
    reconstruction = np.array([[30.0, 100.0], [50.0, 0.0]])
    np.testing.assert_array_equal(window_error(slice_255, reconstruction, "bright"), [[0, 100], [0, 50]])
    np.testing.assert_array_equal(window_error(slice_255, reconstruction, "dark"), [[20, 0], [0, 0]])
    np.testing.assert_array_equal(window_error(slice_255, reconstruction, "both"), [[20, 100], [0, 50]])


@pytest.mark.parametrize("run", [reference_heatmap, fast_heatmap])
def test_bright_plus_dark_heat_is_the_absolute_heat(tiny_config, run):
    """Accumulation is linear, so the two one-sided heatmaps add up to the paper's (every window evaluated)."""
    image, brain = random_slice(seed=3)
    generator = random_unet(tiny_config, 2)
    extra = {"refine_fraction": 1.0} if run is fast_heatmap else {}
    heat = {sign: final(run(generator, tiny_config, image, brain, step=2, polarity=sign, **extra)) for sign in ("both", "bright", "dark")}
    np.testing.assert_allclose(heat["bright"] + heat["dark"], heat["both"], atol=1e-3)
    assert heat["bright"][brain].max() > 1 and heat["dark"][brain].max() > 1
    assert not np.allclose(heat["bright"], heat["dark"])


def test_a_bright_lesion_shows_in_bright_heat_only(tiny_config):
    """A generator that predicts ordinary tissue: a hyperintense blob is an error of the slice being brighter."""
    image, brain = random_slice(seed=4)
    image = np.where(brain, 0.4, 0.0).astype(np.float32)
    image[12:18, 14:20] = 1.0
    generator = constant_unet(tiny_config, 0.4)
    bright = final(fast_heatmap(generator, tiny_config, image, brain, step=2, refine_fraction=1.0, polarity="bright"))
    dark = final(fast_heatmap(generator, tiny_config, image, brain, step=2, refine_fraction=1.0, polarity="dark"))
    assert bright[12:18, 14:20].mean() > 10 * max(dark[12:18, 14:20].mean(), 1e-3)


def test_unknown_polarity_is_refused(tiny_generator, tiny_config):
    image, brain = random_slice()
    with pytest.raises(InputError, match="polarity"):
        next(fast_heatmap(tiny_generator, tiny_config, image, brain, polarity="up"))


def coverage_counts(positions: np.ndarray, shape: tuple[int, int], gamma: int) -> np.ndarray:
    counts = np.zeros(shape, int)
    for row, col in positions:
        counts[row : row + gamma, col : col + gamma] += 1
    return counts


def test_coarse_to_fine_skips_windows_and_is_exact_where_every_window_ran(tiny_generator, tiny_config, make_brain_slice):
    """Default fast path: the first stage's windows, then the stride-step windows hottest on average on their
    heatmap; wherever all the stride-step windows covering a pixel ran, the heat is that of the full path."""
    image, brain, _ = make_brain_slice(size=40)
    gamma, step, fraction = tiny_config.gamma, 2, 0.3
    updates = list(fast_heatmap(tiny_generator, tiny_config, image, brain, step=step, coarse_factor=2, refine_fraction=fraction))
    full = final(fast_heatmap(tiny_generator, tiny_config, image, brain, step=step, refine_fraction=1.0))
    fine = brain_window_positions(brain, gamma, step)
    first = first_stage_mask(fine, brain, gamma, step, 2, first_stage_period(gamma, step, 2))
    first_heat = final(fast_heatmap(tiny_generator, tiny_config, image, brain, step=step, refine_fraction=0.0))
    ran = np.concatenate([fine[first], refinement_positions(first_heat, fine[~first], gamma, fraction)])
    assert updates[-1].windows_done == len(ran) < 0.6 * len(fine)  # the saving is real
    assert updates[-1].finished and not any(update.finished for update in updates[:-1])
    exact = (coverage_counts(ran, brain.shape, gamma) == coverage_counts(fine, brain.shape, gamma)) & brain
    assert exact.sum() > 0.1 * brain.sum()
    np.testing.assert_allclose(updates[-1].heatmap[exact], full[exact], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("size,gamma,step,factor,period", [(40, 8, 2, 2, 4), (37, 8, 2, 2, 4), (64, 16, 2, 2, 4), (64, 16, 2, 2, 8), (64, 16, 2, 4, None),
                                                          (40, 8, 5, 2, None), (50, 12, 3, 2, 4), (50, 12, 3, 2, None)])
def test_the_first_stage_covers_every_brain_pixel_from_every_grid_offset(make_brain_slice, size, gamma, step, factor, period):
    """One in ``period`` windows (a few more at corners the pattern misses), over every brain pixel; on the
    diagonals, windows at every offset from the generator's pooling grid, not only the coarse grid's."""
    _, brain, _ = make_brain_slice(size=size)
    fine = brain_window_positions(brain, gamma, step)
    first = first_stage_mask(fine, brain, gamma, step, factor, period)
    assert (coverage_counts(fine[first], brain.shape, gamma)[brain] > 0).all()
    if period is not None:
        assert first.sum() <= 1.2 * len(fine) / period
        for axis in (0, 1):  # every offset along each axis, in steps
            assert set(fine[first][:, axis] // step % period) == set(range(period))


@pytest.mark.parametrize("gamma,step,factor,asked,expected", [(32, 4, 2, None, SMALL_WINDOW_FIRST_PERIOD), (32, 4, 2, 2, 2), (16, 4, 2, None, 4),
                                                               (8, 4, 2, None, None), (12, 3, 2, None, 4), (16, 2, 4, None, None), (64, 8, 2, None, None)])
def test_the_first_period_is_one_that_covers_pixels_evenly(gamma, step, factor, asked, expected):
    """The diagonals' period divides the windows per pixel along an axis, else the coarse grid (None) is used, as
    it is for windows above 32 px; a period that cannot cover evenly, or one asked of a large window, is refused."""
    assert first_stage_period(gamma, step, factor, asked) == expected
    with pytest.raises(InputError, match="first_period must divide"):
        first_stage_period(32, 4, 2, 3)
    with pytest.raises(InputError, match="windows up to 32 px"):
        first_stage_period(64, 8, 2, 8)


def test_windows_never_run_count_with_the_first_stages_mean(tiny_generator, tiny_config, make_brain_slice):
    """Refining nothing, every pixel's heat is the mean of the first-stage windows over it: the windows never
    run are estimated by them, not left out."""
    image, brain, _ = make_brain_slice(size=40)
    gamma, step = tiny_config.gamma, 2
    fine = brain_window_positions(brain, gamma, step)
    first = fine[first_stage_mask(fine, brain, gamma, step, 2, first_stage_period(gamma, step, 2))]
    with torch.inference_mode():
        errors = _WindowErrors(tiny_generator, tiny_config, image, "cpu", "both", bfloat16=False).errors(first, len(first))
    total, count = np.zeros(brain.shape), np.zeros(brain.shape)
    for (row, col), error in zip(first, errors):
        total[row : row + gamma, col : col + gamma] += error
        count[row : row + gamma, col : col + gamma] += 1
    heat = final(fast_heatmap(tiny_generator, tiny_config, image, brain, step=step, refine_fraction=0.0, bfloat16=False))
    np.testing.assert_allclose(heat[brain], (total / np.maximum(count, 1))[brain], rtol=1e-4, atol=1e-4)


def test_refinement_takes_the_windows_hottest_on_average_not_those_touching_a_hot_pixel():
    coarse = np.zeros((20, 20))
    coarse[2, 2] = 100.0  # one hot pixel
    coarse[10:18, 10:18] = 10.0  # a warm patch the size of a window
    candidates = all_window_positions(coarse.shape, 8, 1)
    chosen = refinement_positions(coarse, candidates, 8, fraction=0.01)
    assert [10, 10] in chosen.tolist() and not any(row <= 2 and col <= 2 for row, col in chosen)


@pytest.mark.parametrize("run", [reference_heatmap, fast_heatmap])
def test_slice_smaller_than_gamma_is_refused(tiny_generator, tiny_config, run):
    image = np.ones((6, 20), np.float32)
    with pytest.raises(InputError, match="smaller than the window"):
        next(run(tiny_generator, tiny_config, image, image > 0))


@pytest.mark.parametrize("run", [reference_heatmap, fast_heatmap])
def test_bad_slices_are_refused(tiny_generator, tiny_config, run):
    image, brain = random_slice()
    with pytest.raises(InputError, match="NaN"):
        next(run(tiny_generator, tiny_config, np.where(brain, np.nan, 0).astype(np.float32), brain))
    with pytest.raises(InputError, match="differ in shape"):
        next(run(tiny_generator, tiny_config, image, brain[:-1]))
    with pytest.raises(InputError, match="step"):
        next(run(tiny_generator, tiny_config, image, brain, step=0))
    with pytest.raises(InputError, match="larger than the window"):  # pixels between windows would get no heat
        next(run(tiny_generator, tiny_config, image, brain, step=tiny_config.gamma + 1))


@pytest.mark.parametrize("step", [5, 6, 8])
def test_every_brain_pixel_gets_heat_when_the_coarse_stride_exceeds_the_window(tiny_generator, tiny_config, make_brain_slice, step):
    """With k > gamma / 2 the coarse pass (stride 2k) would leave strips no window covers: it is skipped."""
    image, brain, _ = make_brain_slice(size=40)
    heatmap = final(fast_heatmap(tiny_generator, tiny_config, image, brain, step=step, refine_fraction=0.3))
    assert (heatmap[brain] > 0).all()


@pytest.mark.parametrize("run", [reference_heatmap, fast_heatmap])
def test_a_nearly_constant_slice_gives_finite_heat(tiny_generator, tiny_config, run):
    """255 / span overflows float32 for spans near its smallest numbers; such a slice counts as constant."""
    image, brain = random_slice()
    for span in (1e-38, 1e-45):
        heatmap = final(run(tiny_generator, tiny_config, (image * span).astype(np.float32), brain))
        assert np.isfinite(heatmap).all()


def test_empty_brain_gives_a_finished_zero_heatmap(tiny_generator, tiny_config):
    image = np.zeros((24, 24), np.float32)
    updates = list(fast_heatmap(tiny_generator, tiny_config, image, image > 0))
    assert len(updates) == 1 and updates[0].finished and not updates[0].heatmap.any()


@pytest.mark.parametrize("length,gamma,step", [(24, 8, 4), (25, 8, 4), (8, 8, 3), (31, 7, 5)])
def test_windows_cover_every_pixel_and_end_at_the_edge(length, gamma, step):
    starts = window_starts(length, gamma, step)
    assert starts[0] == 0 and starts[-1] == length - gamma
    assert np.all(np.diff(starts) > 0) and np.all(np.diff(starts) <= step)
    covered = np.zeros(length, bool)
    for start in starts:
        covered[start : start + gamma] = True
    assert covered.all()


def test_brain_windows_are_exactly_those_touching_the_brain():
    brain = np.zeros((20, 20), bool)
    brain[9:11, 3:5] = True
    positions = brain_window_positions(brain, 6, 2)
    expected = [tuple(p) for p in all_window_positions(brain.shape, 6, 2) if brain[p[0] : p[0] + 6, p[1] : p[1] + 6].any()]
    assert sorted(map(tuple, positions)) == sorted(expected) and len(expected) > 0


def test_only_the_last_update_is_finished_when_nothing_is_refined(tiny_generator, tiny_config):
    """A 12x12 slice at step 4: the stride-8 grid already holds every window, so there is nothing to refine."""
    image, brain = random_slice(shape=(12, 12))
    updates = list(fast_heatmap(tiny_generator, tiny_config, image, brain, step=4))
    assert updates[-1].finished and not any(u.finished for u in updates[:-1])


def test_default_stride_is_the_papers_up_to_32_and_gamma_over_8_above():
    from napari_inpaint_seg.localizer import step_for_window

    assert [step_for_window(g) for g in (8, 16, 32, 64, 128)] == [4, 4, 4, 8, 16]
    assert step_for_window(64, 4) == 4  # an explicit stride is always honoured


def test_a_deeper_cascade_skips_more_and_keeps_the_lesion_exact(tiny_config):
    """coarse_factor 4 (strides 4*step, 2*step, step) evaluates fewer windows than 2, and a hot lesion still gets
    every stride-``step`` window over it, so its heat is that of the full path; other factors are refused."""
    image, brain = random_slice(shape=(48, 48), seed=5)
    image = np.where(brain, 0.4, 0.0).astype(np.float32)
    image[20:26, 22:28] = 1.0
    generator, step = constant_unet(tiny_config, 0.4), 2
    full = final(fast_heatmap(generator, tiny_config, image, brain, step=step, refine_fraction=1.0))
    runs = {factor: list(fast_heatmap(generator, tiny_config, image, brain, step=step, coarse_factor=factor, refine_fraction=0.3)) for factor in (2, 4)}
    assert runs[4][-1].windows_done < runs[2][-1].windows_done < len(brain_window_positions(brain, tiny_config.gamma, step))
    assert runs[4][-1].finished and not any(update.finished for update in runs[4][:-1])
    np.testing.assert_allclose(runs[4][-1].heatmap[20:26, 22:28], full[20:26, 22:28], rtol=1e-5)
    with pytest.raises(InputError, match="power of two"):
        next(fast_heatmap(generator, tiny_config, image, brain, coarse_factor=3))
    with pytest.raises(InputError, match="refine_fraction must lie between 0 and 1"):
        next(fast_heatmap(generator, tiny_config, image, brain, refine_fraction=1.5))


@pytest.mark.parametrize("height,width,gamma", [(12, 15, 4), (40, 33, 13), (8, 8, 8), (9, 9, 1)])
def test_extremes_outside_each_window_match_brute_force(height, width, gamma):
    """The reconstruction's normalisation needs, per window, the slice's extremes outside it."""
    from napari_inpaint_seg.localizer import _extremes_outside_windows

    image = np.random.default_rng(gamma).random((height, width))
    low, high = _extremes_outside_windows(image, gamma)
    for row in range(height - gamma + 1):
        for col in range(width - gamma + 1):
            outside = np.ones(image.shape, bool)
            outside[row : row + gamma, col : col + gamma] = False
            expected = (image[outside].min(), image[outside].max()) if outside.any() else (np.inf, -np.inf)
            assert (low[row, col], high[row, col]) == expected


def test_small_windows_estimate_what_they_skip_and_refine_less_by_default():
    """Windows up to 32 px estimate the windows not run, start with one in 8 and refine 0.15 (the reference's top
    segment on 97-100 % of the 36 + 24 benchmark slices); larger ones keep revision 5's plain mean and 0.3, on which
    the defaults were tuned (docs/performance.md)."""
    from napari_inpaint_seg.localizer import estimates_unrun_windows, refine_fraction_for_window

    assert refine_fraction_for_window(32) == refine_fraction_for_window(8) == 0.15 and refine_fraction_for_window(64) == 0.3
    assert SMALL_WINDOW_FIRST_PERIOD == 8 and first_stage_period(32, 4, 2) == 8
    assert estimates_unrun_windows(32) and not estimates_unrun_windows(64)
    assert refine_fraction_for_window(32, 0.3) == 0.3  # a given share wins


def test_the_default_share_is_the_windows(tiny_generator, tiny_config, make_brain_slice):
    image, brain, _ = make_brain_slice(size=40)
    windows = {share: list(fast_heatmap(tiny_generator, tiny_config, image, brain, refine_fraction=share))[-1].windows_done for share in (None, 0.1, 0.15)}
    assert windows[None] == windows[0.15] > windows[0.1]


def test_the_default_first_stage_runs_one_window_in_eight_where_that_covers_evenly(tiny_config, make_brain_slice):
    """At 8 windows per pixel along an axis (gamma 16, stride 2, as gamma 32 at the paper's stride 4) the first
    stage is the diagonals with period 8: an eighth of the windows, each pixel still covered."""
    config = replace(tiny_config, gamma=16)
    torch.manual_seed(0)
    generator = build_generator(config).eval()
    image, brain, _ = make_brain_slice(size=64)
    fine = brain_window_positions(brain, config.gamma, 2)
    first = first_stage_mask(fine, brain, config.gamma, 2, 2, 8)
    updates = list(fast_heatmap(generator, config, image, brain, step=2, refine_fraction=0.0))
    assert updates[-1].windows_done == first.sum() <= 1.2 * len(fine) / 8
    assert (updates[-1].heatmap[brain] > 0).all()


@pytest.mark.parametrize("seed", range(5))
def test_batches_are_cut_where_the_offset_changes_once_they_are_large_enough(seed):
    """Batches keep to their size limits, cover every window once, and end at a change of offset (one offset per
    batch recomputes less) whenever the batch holds ``smallest`` windows by then."""
    rng = np.random.default_rng(seed)
    offsets = np.repeat(np.arange(12), rng.integers(1, 150, 12))
    first_batch, batch_size, smallest = 32, 256, 64
    edges = batch_edges(offsets, first_batch, batch_size, smallest)
    assert edges[0] == 0 and edges[-1] == len(offsets) and all(np.diff(edges) > 0)
    assert edges[1] <= first_batch and max(np.diff(edges)) <= batch_size
    changes = set((np.flatnonzero(np.diff(offsets)) + 1).tolist())
    for start, end in zip(edges[:-1], edges[1:]):
        inside = [change for change in changes if start + smallest <= change < end]
        assert not inside  # a batch runs on past a change only while it is smaller than `smallest`
        limit = first_batch if start == 0 else batch_size
        assert end in changes or end == len(offsets) or end - start == limit


def test_batches_are_padded_to_few_sizes_with_little_waste():
    """The convolution backend keeps kernels per batch shape, so sizes are few; padding wastes at most a unit."""
    sizes = {padded_batch_size(count) for count in range(1, 257)}
    assert len(sizes) <= 40
    for count in range(1, 257):
        assert count <= padded_batch_size(count) < count + max(PAD_UNIT, count)
