"""Superpixels ranked by the heatmap: the top candidate is where the inpainting failed."""

from __future__ import annotations

import numpy as np
import pytest

from napari_inpaint_seg.metrics import dice
from napari_inpaint_seg.segmentation import FelzenszwalbParams, rank_segments, superpixels


def peaked_heatmap(shape, centre, width=4.0):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (200 * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * width**2))).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_segment_is_the_bright_square_under_the_heatmap_peak(make_brain_slice, seed):
    image, brain, square = make_brain_slice(size=64, seed=seed, square=(20, 30, 16))
    heatmap = np.where(brain, peaked_heatmap(image.shape, (28, 38)), 0)
    labels = superpixels(image)
    ranking = rank_segments(labels, heatmap, brain)
    top = (labels == ranking[0].label) & brain
    assert dice(top, square) > 0.8


def test_ranking_is_sorted_and_scores_are_mean_heat_inside_the_brain(make_brain_slice):
    image, brain, _ = make_brain_slice(size=48)
    heatmap = np.where(brain, np.random.default_rng(0).random(image.shape) * 50, 0).astype(np.float32)
    labels = superpixels(image, FelzenszwalbParams(scale=20, sigma=0.5, min_size=10))
    ranking = rank_segments(labels, heatmap, brain)
    scores = [segment.score for segment in ranking]
    assert len(ranking) > 3 and scores == sorted(scores, reverse=True)
    for segment in ranking:
        inside = (labels == segment.label) & brain
        assert segment.area == (labels == segment.label).sum()
        assert segment.score == pytest.approx(heatmap[inside].mean())
        assert inside.sum() >= 0.5 * segment.area  # mostly-outside segments are not candidates


def test_segments_mostly_outside_the_brain_are_never_candidates():
    labels = np.zeros((10, 10), np.int32)
    labels[:, 5:] = 1
    brain = np.zeros((10, 10), bool)
    brain[:, 4:] = True  # segment 0 has 10 of its 50 pixels in the brain
    heatmap = np.where(brain, 100.0, 0.0)
    heatmap[:, 4] = 1000.0  # ...and they are the hottest
    assert [s.label for s in rank_segments(labels, heatmap, brain)] == [1]


def test_superpixels_cover_the_slice_with_int_labels(make_brain_slice):
    image, _, _ = make_brain_slice(size=32)
    labels = superpixels(image)
    assert labels.shape == image.shape and labels.dtype == np.int32 and labels.min() == 0
    assert set(np.unique(labels)) == set(range(labels.max() + 1))


def test_lesion_sign_follows_an_explicit_error_sign_else_the_modality():
    from napari_inpaint_seg.segmentation import lesion_sign

    assert [lesion_sign("auto", "t1"), lesion_sign("both", "t1"), lesion_sign("bright", "t1"), lesion_sign("dark", "flair")] == ["dark", "dark", "bright", "dark"]
    assert lesion_sign("both", None) == lesion_sign("auto", "unknown") == "bright"  # the generic selection's
