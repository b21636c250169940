"""How the answer is chosen from ranked superpixels: paper mode, merging, the no-tumour decision, evaluation scores."""

from __future__ import annotations

import numpy as np
import pytest

from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.evaluation import EvaluatedSlice, fuse_slices, healthy_slice_indices, load_heatmap_cache, save_heatmap_cache, score_selection
from napari_inpaint_seg.pipeline import segment_image
from napari_inpaint_seg.segmentation import PAPER_SELECTION, FelzenszwalbParams, Segment, Selection, grow_from, rank_segments, scoring_heat, without_darkest

# A 4 x 4 grid of 16 x 16 blocks: superpixel labels are block numbers, so merging is easy to reason about.
BLOCK = 16


def block_labels() -> np.ndarray:
    rows, cols = np.mgrid[: 4 * BLOCK, : 4 * BLOCK]
    return (rows // BLOCK * 4 + cols // BLOCK).astype(np.int32)


def block_heatmap(heat_by_block: dict[int, float], baseline: float = 10.0) -> np.ndarray:
    labels = block_labels()
    heat = np.full(labels.shape, baseline, np.float32)
    for block, value in heat_by_block.items():
        heat[labels == block] = value
    return heat


def ranking_of(heatmap: np.ndarray) -> list[Segment]:
    labels = block_labels()
    scores = [(label, float(heatmap[labels == label].mean())) for label in range(16)]
    return [Segment(label, score, BLOCK * BLOCK) for label, score in sorted(scores, key=lambda item: -item[1])]


def test_grow_from_takes_hot_touching_blocks_and_skips_cold_or_distant_ones():
    # Block 5 is the hottest; 6 touches it and is nearly as hot; 15 is hot but does not touch the region; 9 is lukewarm.
    heatmap = block_heatmap({5: 50.0, 6: 45.0, 9: 20.0, 15: 48.0})
    region = {s.label for s in grow_from(block_labels(), ranking_of(heatmap), 0, ratio=0.5, baseline=10.0)}
    assert region == {5, 6}


def test_excess_over_the_baseline_decides_not_the_raw_score():
    # Block 9 has half the top block's raw score (25 / 50) but only 3/8 of its excess over the baseline ((25-10) / (50-10)).
    heatmap = block_heatmap({5: 50.0, 9: 25.0})
    labels, ranking = block_labels(), ranking_of(heatmap)
    assert {s.label for s in grow_from(labels, ranking, 0, ratio=0.5, baseline=0.0)} == {5, 9}
    assert {s.label for s in grow_from(labels, ranking, 0, ratio=0.5, baseline=10.0)} == {5}


def result_for(heatmap: np.ndarray, selection: Selection, image: np.ndarray | None = None):
    image = block_labels().astype(np.float32) / 15 if image is None else image  # every block its own grey: one superpixel each
    brain = np.ones(image.shape, bool)
    return segment_image(0, image, brain, heatmap, FelzenszwalbParams(scale=1, sigma=0, min_size=1), selection)


def test_paper_mode_answers_one_superpixel_and_merge_mode_the_grown_region():
    heatmap = block_heatmap({5: 50.0, 6: 45.0})
    paper = result_for(heatmap, PAPER_SELECTION).answer()
    merged = result_for(heatmap, Selection(mode="merge", heat_sigma=0.0, edge_margin=0, merge_ratio=0.5)).answer()
    labels = block_labels()
    assert np.array_equal(paper, labels == 5)
    assert np.array_equal(merged, (labels == 5) | (labels == 6))


def test_swap_candidates_in_merge_mode_never_repeat_a_superpixel():
    heatmap = block_heatmap({5: 50.0, 6: 45.0, 15: 40.0, 0: 30.0})
    candidates = result_for(heatmap, Selection(mode="merge", heat_sigma=0.0, edge_margin=0, merge_ratio=0.5)).candidates()
    seen = [segment.label for candidate in candidates for segment in candidate]
    assert len(seen) == len(set(seen)) == 16
    assert {s.label for s in candidates[0]} == {5, 6} and candidates[1][0].label == 15


def test_no_tumour_decision_empties_the_answer_but_keeps_candidates():
    flat = block_heatmap({5: 12.0})  # nothing stands out: top block is 1.2 x the median heat
    result = result_for(flat, Selection(mode="merge", heat_sigma=0.0, edge_margin=0, min_contrast=1.5))
    assert not result.detected and not result.answer().any()
    assert result.mask(0).any()  # Swap/Accept in the widget can still show and take it
    assert result_for(block_heatmap({5: 40.0}), Selection(mode="merge", heat_sigma=0.0, edge_margin=0, min_contrast=1.5)).detected


@pytest.mark.parametrize("bad", [dict(mode="best"), dict(merge_ratio=1.5), dict(min_contrast=-1.0), dict(grow_contrast=-0.5), dict(dark_share=-0.1),
                                 dict(dark_share=1.0), dict(dark_margin=-1)])
def test_selection_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        Selection(**bad)


def evaluated(patient: str, index: int, heatmap: np.ndarray, tumour: np.ndarray) -> EvaluatedSlice:
    image = block_labels().astype(np.float32) / 15
    return EvaluatedSlice(patient, index, image, np.ones(image.shape, bool), tumour, heatmap, 0.1)


def test_score_selection_counts_dice_and_false_positives():
    labels = block_labels()
    slices = [
        evaluated("a", 0, block_heatmap({5: 50.0, 6: 45.0}), (labels == 5) | (labels == 6)),  # merge finds it all
        evaluated("a", 1, block_heatmap({5: 11.0}), np.zeros(labels.shape, bool)),  # healthy, flat heat
    ]
    paper = score_selection(slices, FelzenszwalbParams(scale=1, sigma=0, min_size=1), PAPER_SELECTION)
    merged = score_selection(slices, FelzenszwalbParams(scale=1, sigma=0, min_size=1), Selection(mode="merge", heat_sigma=0.0, edge_margin=0, merge_ratio=0.5, min_contrast=1.5))
    assert paper["dice_mean"] == pytest.approx(2 * 256 / (256 + 512))
    assert merged["dice_mean"] == pytest.approx(1.0)
    assert paper["false_positive_rate"] == 1.0 and merged["false_positive_rate"] == 0.0
    assert paper["n_tumour_slices"] == merged["n_healthy_slices"] == 1


def volume_of(heats: dict[int, dict[int, float]], selection: Selection) -> dict:
    """Slice index -> what the decision across slices needs, for block heatmaps (labels: block numbers)."""
    from napari_inpaint_seg.pipeline import result_from_superpixels

    brain = np.ones((4 * BLOCK, 4 * BLOCK), bool)
    return {index: result_from_superpixels(index, np.zeros(brain.shape), block_labels(), brain, block_heatmap(heat), selection).summary() for index, heat in heats.items()}


def test_a_weak_slice_is_labelled_only_beside_a_labelled_slice_with_an_overlapping_answer():
    from napari_inpaint_seg.pipeline import consistent_labels

    selection = Selection(mode="paper", heat_sigma=0.0, edge_margin=0, min_contrast=3.0, grow_contrast=1.5)
    # Baseline heat 10: slice 4 stands out (contrast 5) on block 5; slices 5 and 6 are weaker (2.0) on the same
    # block, so they join one after the other; slice 2 is as weak but not beside a labelled slice; slice 8 is
    # weak beside nothing; slice 7 is weak on another block (no overlap with slice 6).
    results = volume_of({2: {5: 20.0}, 4: {5: 50.0}, 5: {5: 20.0}, 6: {5: 20.0}, 7: {10: 20.0}, 8: {5: 12.0}}, selection)
    labels = consistent_labels(results)
    assert [index for index, label in sorted(labels.items()) if label.any()] == [4, 5, 6]
    assert labels[5][block_labels() == 5].all()
    without_growth = consistent_labels(volume_of({4: {5: 50.0}, 5: {5: 20.0}}, Selection(mode="paper", heat_sigma=0.0, edge_margin=0, min_contrast=3.0)))
    assert without_growth[4].any() and not without_growth[5].any()


def test_a_run_of_overlapping_slices_is_labelled_though_none_stands_out_alone():
    from napari_inpaint_seg.pipeline import consistent_labels, persistent_runs

    selection = Selection(mode="paper", heat_sigma=0.0, edge_margin=0, min_contrast=6.0, grow_contrast=4.0)
    # Baseline heat 10: slices 1-4 score 4.5 on block 5, under the no-tumour contrast on each; slices 7-9 score as
    # much but only three in a row; slices 11-14 score as much but slice 12's answer lies elsewhere (block 10).
    heats = {**{index: {5: 45.0} for index in (1, 2, 3, 4, 7, 8, 9, 11, 13, 14)}, 12: {10: 45.0}}
    results = volume_of(heats, selection)
    assert not any(label.any() for label in consistent_labels(results).values())  # the decision alone labels none
    assert persistent_runs(results, 4.0, 4) == [1, 2, 3, 4]
    labels = consistent_labels(results, run_contrast=4.0, run_length=4)
    assert [index for index, label in sorted(labels.items()) if label.any()] == [1, 2, 3, 4]
    assert labels[2][block_labels() == 5].all()
    assert persistent_runs(results, 4.0, 3) == [1, 2, 3, 4, 7, 8, 9]
    assert persistent_runs(results, 5.0, 4) == []  # the run's slices must each reach the run's contrast
    assert persistent_runs(results, 0.0, 1) == []  # off


def test_a_run_seeds_growth_like_a_slice_that_stands_out():
    from napari_inpaint_seg.pipeline import consistent_labels

    # Slices 2-5 make a run at contrast 3 (30 over the baseline 10); slice 6 (contrast 4.5) grows from it, as it
    # would from a slice at the no-tumour contrast; slice 7 (contrast 2) is too weak for either.
    selection = Selection(mode="paper", heat_sigma=0.0, edge_margin=0, min_contrast=6.0, grow_contrast=4.0)
    results = volume_of({2: {5: 30.0}, 3: {5: 30.0}, 4: {5: 30.0}, 5: {5: 30.0}, 6: {5: 45.0}, 7: {5: 20.0}}, selection)
    labels = consistent_labels(results, run_contrast=3.0, run_length=4)
    assert [index for index, label in sorted(labels.items()) if label.any()] == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("settings,problem", [({"run_contrast": -1.0}, "run_contrast"), ({"run_length": 0}, "run_length")])
def test_a_run_needs_a_contrast_of_at_least_0_and_one_slice(settings, problem):
    with pytest.raises(ValueError, match=problem):
        Selection(**settings)


def test_a_calibrated_decision_turns_the_runs_off():
    from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS, with_decision

    calibrated = with_decision(DEFAULT_SELECTIONS["flair"], (9.0, None))
    assert DEFAULT_SELECTIONS["flair"].run_contrast > 0
    assert (calibrated.min_contrast, calibrated.grow_contrast, calibrated.run_contrast) == (9.0, None, 0.0)
    assert "runs of" in DEFAULT_SELECTIONS["flair"].description and "runs of" not in calibrated.description


def test_default_selections_merge_and_decide_per_modality():
    from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS, default_selection

    assert set(DEFAULT_SELECTIONS) == {"flair", "t1"}
    for modality, chosen in DEFAULT_SELECTIONS.items():
        assert default_selection(modality) == chosen and chosen.mode == "merge"
        assert 0 < chosen.grow_contrast < chosen.min_contrast  # growth must be able to rescue a slice
    assert default_selection(None) == default_selection("pd") == Selection()
    assert Selection().min_contrast == 0  # the generic default: every slice gets an answer


def test_whole_volume_scores_count_every_labelled_slice_and_skip_small_brains():
    labels = block_labels()
    tumour = (labels == 5) | (labels == 6)
    flat = np.zeros(labels.shape, bool)
    small_brain = evaluated("a", 2, block_heatmap({9: 50.0}), flat)
    small_brain.brain = labels == 9  # 256 brain pixels: fewer than the window's area below, so never labelled
    slices = [
        evaluated("a", 0, block_heatmap({5: 50.0, 6: 45.0}), tumour),
        evaluated("a", 1, block_heatmap({5: 50.0}), labels == 5),  # tumour found in part
        small_brain,
        evaluated("b", 0, block_heatmap({5: 11.0}), flat),  # healthy patient, flat heat: called tumour-free
        evaluated("b", 1, block_heatmap({3: 80.0}), flat),  # healthy but a hot block: a false positive
    ]
    params, selection = FelzenszwalbParams(scale=1, sigma=0, min_size=1), Selection(mode="merge", heat_sigma=0.0, edge_margin=0, merge_ratio=0.5, min_contrast=1.5)
    scores = score_selection(slices, params, selection, min_brain_pixels=400, whole_volumes=True)
    assert scores["n_tumour_slices"] == 2 and scores["n_healthy_slices"] == 2  # the small-brain slice is not labelled
    assert scores["false_positive_rate"] == 0.5
    # Patient a: the answers are blocks 5+6, then 5 alone: TP 768, 768 predicted, 768 true -> 1.0. Patient b: no tumour, 256 predicted -> 0.
    assert scores["volume_dice_mean"] == pytest.approx(0.5)
    assert score_selection(slices, params, selection)["volume_dice_mean"] is None


def test_healthy_slices_are_spread_and_exclude_tumour():
    tumour = np.zeros((64, 64, 10), bool)
    tumour[10:20, 10:20, 4:6] = True
    brain = np.zeros_like(tumour)
    brain[:, :, 1:9] = True
    chosen = healthy_slice_indices(tumour, brain, 3)
    assert len(chosen) == 3 and not set(chosen) & {0, 4, 5, 9}
    assert chosen[0] == 1 and chosen[-1] == 8
    brain[:16, :, 1] = False  # 3,072 pixels: enough for the false-positive rate, less than a 64-px window's area
    assert healthy_slice_indices(tumour, brain, 3)[0] == 1
    assert healthy_slice_indices(tumour, brain, 3, min_brain_pixels=64**2)[0] == 2  # the scoring would not count 1


def test_heatmap_cache_round_trip_and_key_check(tmp_path):
    labels = block_labels()
    slices = [evaluated("a", 3, block_heatmap({5: 50.0}), labels == 5)]
    path = tmp_path / "cache.npz"
    save_heatmap_cache(path, slices, [{"psnr": 30.0, "ssim": 0.9}], {"model": 1})
    loaded, quality = load_heatmap_cache(path, {"model": 1})
    assert quality == [{"psnr": 30.0, "ssim": 0.9}]
    assert loaded[0].patient == "a" and loaded[0].index == 3
    np.testing.assert_array_equal(loaded[0].heatmap, slices[0].heatmap)
    assert load_heatmap_cache(path, {"model": 2}) is None  # other settings: recompute, never reuse


def test_scripts_read_only_caches_of_their_modality_and_kind(tmp_path):
    from napari_inpaint_seg.evaluation import read_heatmap_cache_for

    labels = block_labels()
    path = tmp_path / "cache.npz"
    save_heatmap_cache(path, [evaluated("a", 3, block_heatmap({5: 50.0}), labels == 5)], [], {"modality": "flair", "whole_volumes": False})
    assert len(read_heatmap_cache_for(path, "flair")[0]) == 1
    with pytest.raises(InputError, match="holds flair heatmaps, not t1"):
        read_heatmap_cache_for(path, "t1")
    with pytest.raises(InputError, match="without --whole-volumes"):
        read_heatmap_cache_for(path, "flair", whole_volumes=True)
    (tmp_path / "other.npz").write_bytes(b"not a cache")
    for name, message in (("other.npz", "not a heatmap cache"), ("missing.npz", "no such heatmap cache")):
        with pytest.raises(InputError, match=message):
            read_heatmap_cache_for(tmp_path / name, "flair")


def test_a_cache_made_in_another_precision_is_refused_not_replaced(tmp_path, monkeypatch, tiny_config):
    """bfloat16 heat (a GPU, an AVX-512 CPU) differs from float32 heat by up to about 1 on the 0-255 scale; a
    cache holds hours of localisation, so a run with other settings must not overwrite it."""
    from napari_inpaint_seg import evaluation, localizer

    labels = block_labels()
    runs, said = [], []
    monkeypatch.setattr(evaluation, "localise_patients", lambda *args, **kwargs: runs.append(1) or ([evaluated("a", 3, block_heatmap({5: 50.0}), labels == 5)], []))

    def localised(bfloat16: bool):
        monkeypatch.setattr(localizer, "bfloat16_is_fast", lambda device: bfloat16)
        return evaluation.localised_slices(tmp_path, ["a"], "t1", [(None, tiny_config)], cache=tmp_path / "cache.npz", report=said.append)

    localised(False), localised(False)
    assert len(runs) == 1 and said[-1].startswith("heatmaps read from")
    saved = (tmp_path / "cache.npz").read_bytes()
    with pytest.raises(InputError, match="precision: float32 -> bfloat16"):
        localised(True)
    assert len(runs) == 1 and (tmp_path / "cache.npz").read_bytes() == saved


def test_smoothing_inside_the_brain_keeps_a_constant_heat_constant_up_to_the_edge():
    brain = np.zeros((40, 40), bool)
    brain[5:35, 8:30] = True
    heat, counted = scoring_heat(np.where(brain, 7.0, 0.0), brain, sigma=4.0)
    np.testing.assert_allclose(heat[brain], 7.0, rtol=1e-6)  # zeros outside do not cool the rim
    assert not heat[~brain].any() and np.array_equal(counted, brain)


def test_the_darkest_share_of_the_brain_loses_its_heat_and_nothing_else_does():
    image = np.random.default_rng(0).random((40, 40))
    brain = np.zeros((40, 40), bool)
    brain[5:35, 5:35] = True
    heatmap = np.ones((40, 40), np.float32)
    cooled = without_darkest(heatmap, image, brain, 0.1)
    assert cooled.dtype == heatmap.dtype and (cooled[~brain] == 1).all()  # dark pixels outside the brain are no concern
    cold = brain & (cooled == 0)
    assert cold.sum() == 90 and image[cold].max() < image[brain & ~cold].min()  # the darkest tenth of 900 brain pixels
    assert without_darkest(heatmap, image, brain, 0.0) is heatmap


def test_a_margin_takes_the_heat_off_the_darkest_pixels_rim_inside_the_brain_only():
    """The fluid's partial-volume rim: a margin of m px cools the brain pixels within m px (4-connected steps) of the
    darkest share, and nothing outside the brain."""
    image = np.full((20, 20), 0.5, dtype=np.float32)
    image[8:12, 8:12] = 0.0  # 16 dark pixels: the darkest share of the brain below
    brain = np.zeros((20, 20), dtype=bool)
    brain[2:18, 2:18] = True
    heatmap = np.ones((20, 20), dtype=np.float32)
    plain = without_darkest(heatmap, image, brain, 0.1)
    assert (plain == 0).sum() == 16
    rim = without_darkest(heatmap, image, brain, 0.1, margin=1)
    assert (rim == 0).sum() == 16 + 16 and rim[7, 7] == 1 and rim[7, 8] == 0  # the 4-px block grown by one pixel, corners kept
    wide = without_darkest(heatmap, image, brain, 0.1, margin=12)  # 12 steps reach the brain's corners
    assert (wide[~brain] == 1).all() and (wide[brain] == 0).all()
    assert without_darkest(heatmap, image, brain, 0.0, margin=3) is heatmap  # no share, no margin
    assert "with 1 px around it" in Selection(dark_share=0.1, dark_margin=1).description


def test_ignoring_the_darkest_tissue_moves_the_answer_from_hot_fluid_to_the_lesion():
    """As on T1-pre: the darkest block (fluid, the generator fills it with tissue) has the most heat of the lesion's sign."""
    heatmap = block_heatmap({0: 50.0, 9: 30.0})  # block 0 is the darkest sixteenth of the image, block 9 a mid-grey lesion
    plain = Selection(mode="merge", heat_sigma=0.0, edge_margin=0, merge_ratio=0.9)
    assert result_for(heatmap, plain).answer().sum() == BLOCK * BLOCK and result_for(heatmap, plain).answer()[block_labels() == 0].all()
    answer = result_for(heatmap, Selection(mode="merge", heat_sigma=0.0, edge_margin=0, merge_ratio=0.9, dark_share=0.1)).answer()
    assert np.array_equal(answer, block_labels() == 9)
    assert "darkest 0.1 of the brain" in Selection(dark_share=0.1).description


def test_edge_margin_leaves_the_rim_out_of_the_scores():
    brain = np.zeros((40, 40), bool)
    brain[5:35, 5:35] = True
    heatmap = np.where(brain, 1.0, 0.0)
    rim = brain & ~np.pad(np.ones((20, 20), bool), 10)
    heatmap[rim] = 100.0  # a hot brain edge, as inpainting at the skull-stripping boundary gives
    labels = np.where(np.pad(np.ones((20, 20), bool), 10), 1, 0).astype(np.int32)  # inner square = segment 1
    labels[rim] = 2
    _, counted = scoring_heat(heatmap, brain, edge_margin=6)
    ranking = rank_segments(labels, heatmap, brain, counted)
    assert [s.label for s in ranking] == [1]  # the rim segment has no counted pixel left: not a candidate
    assert rank_segments(labels, heatmap, brain)[0].label == 2  # without the margin the rim wins


def test_fused_slices_keep_common_slices_and_add_their_seconds():
    labels = block_labels()
    a = [evaluated("a", 1, block_heatmap({5: 50.0}), labels == 5), evaluated("a", 2, block_heatmap({6: 50.0}), labels == 6)]
    b = [evaluated("a", 1, block_heatmap({5: 30.0}), labels == 5)]
    (fused,) = fuse_slices([a, b])
    assert (fused.patient, fused.index) == ("a", 1) and fused.seconds == pytest.approx(0.2)
    assert fused.heatmap[labels == 5].mean() == pytest.approx((5.0 + 3.0) / 2)


def disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_refinement_redraws_a_region_along_the_bright_lesions_edge():
    from napari_inpaint_seg.segmentation import refine_by_intensity

    brain = disc((96, 96), (48, 48), 45)
    lesion = disc((96, 96), (40, 40), 12)
    image = np.where(lesion, 0.8, 0.3) * brain
    square = np.zeros(brain.shape, bool)
    square[30:46, 30:46] = True  # covers part of the lesion and some healthy tissue beside it
    refined = refine_by_intensity(square, image, brain, "bright", radius=20)
    assert np.array_equal(refined, lesion)
    assert not refine_by_intensity(square, image, brain, "bright", radius=0)[~square].any()  # radius 0: unchanged


def test_refinement_keeps_only_pieces_that_touch_the_region_and_follows_the_lesions_sign():
    from napari_inpaint_seg.segmentation import refine_by_intensity

    brain = disc((96, 96), (48, 48), 45)
    dark = disc((96, 96), (35, 35), 8)
    elsewhere = disc((96, 96), (65, 65), 8)  # just as dark but far from the region
    image = np.where(dark | elsewhere, 0.2, 0.6) * brain
    region = disc((96, 96), (35, 35), 10)
    refined = refine_by_intensity(region, image, brain, "dark", radius=12)
    assert np.array_equal(refined, dark)
    # Asked for a bright lesion, a dark region is not on the lesion's side: nothing to sharpen, the region stays.
    assert np.array_equal(refine_by_intensity(region, image, brain, "bright", radius=12), region)


def test_a_refining_selection_refines_every_candidate_and_validates_its_lesion_sign():
    from napari_inpaint_seg.pipeline import result_from_superpixels

    # Superpixels are the blocks; the image has a bright disc filling most of each of the two hot blocks 5 and 10.
    shape, brain = (4 * BLOCK, 4 * BLOCK), np.ones((4 * BLOCK, 4 * BLOCK), bool)
    discs = [disc(shape, (BLOCK + 8, BLOCK + 8), 7), disc(shape, (2 * BLOCK + 8, 2 * BLOCK + 8), 7)]
    image = np.where(discs[0] | discs[1], 0.9, 0.4)
    heatmap = block_heatmap({5: 50.0, 10: 40.0})
    selection = Selection(heat_sigma=0.0, edge_margin=0, merge_ratio=0.9, refine_radius=BLOCK, lesion="bright")
    result = result_from_superpixels(0, image, block_labels(), brain, heatmap, selection)
    assert np.array_equal(result.mask(0), discs[0]) and np.array_equal(result.mask(1), discs[1])  # Swap offers refined answers too
    with pytest.raises(ValueError, match="lesion"):
        Selection(lesion="grey")
    with pytest.raises(ValueError, match="refine_radius"):
        Selection(refine_radius=-1)
    with pytest.raises(ValueError, match="end_weight"):
        Selection(end_weight=1.5)
