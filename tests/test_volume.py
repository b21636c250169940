"""The volume redrawn with one threshold (volume.refine_volume), its small pieces dropped and its labels smoothed, on small volumes made here."""

from dataclasses import replace

import numpy as np
import pytest

from napari_inpaint_seg.evaluation import EvaluatedSlice, answers, score_selection
from napari_inpaint_seg.segmentation import FelzenszwalbParams, Selection
from napari_inpaint_seg.io import Scan
from napari_inpaint_seg.pipeline import PreparedScan, SliceAnswer, finished_labels, scan_labels
from napari_inpaint_seg.volume import MIN_GROWN_SHARE, MIN_LEVEL_PIXELS, followed_into_decided, keep_main_lesions, level_slices, refine_volume, smooth_labels

SIDE = 48


def disc(radius: float, centre=(24, 24)) -> np.ndarray:
    rows, cols = np.mgrid[:SIDE, :SIDE]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def volume(lesion_radii: dict[int, float], lesion_value: float = 0.9, tissue: float = 0.4, n_slices: int = 9):
    """Slices of a round brain (tissue intensity) holding a round lesion of the given radius per slice."""
    images, brains = {}, {}
    for index in range(n_slices):
        image = np.where(disc(22), tissue, 0.0)
        if index in lesion_radii:
            image[disc(lesion_radii[index])] = lesion_value
        images[index], brains[index] = image, disc(22)
    return images, brains


def test_labels_grow_to_the_lesion_in_plane_and_into_neighbouring_slices():
    # The lesion narrows towards its ends (slices 2 and 6); only the middle slices were labelled, in part.
    images, brains = volume({2: 6, 3: 8, 4: 9, 5: 8, 6: 6})
    labels = {index: np.zeros((SIDE, SIDE), bool) for index in images}
    for index in (3, 4, 5):
        labels[index] = disc(4)
    refined = refine_volume(labels, images, brains, "bright", radius=8)
    for index in range(9):
        expected = disc({2: 6, 3: 8, 4: 9, 5: 8, 6: 6}[index]) if 2 <= index <= 6 else np.zeros((SIDE, SIDE), bool)
        assert np.array_equal(refined[index], expected), index


def test_growth_into_an_unlabelled_slice_needs_a_share_of_the_neighbours_label():
    # Slice 5 holds a bright spot much smaller than slice 4's lesion: a spill, not the lesion going on.
    images, brains = volume({4: 9, 5: 2})
    labels = {index: disc(9) if index == 4 else np.zeros((SIDE, SIDE), bool) for index in images}
    assert disc(2).sum() < MIN_GROWN_SHARE * disc(9).sum()
    refined = refine_volume(labels, images, brains, "bright", radius=5)
    assert np.array_equal(refined[4], disc(9)) and not refined[5].any()
    share = disc(2).sum() / disc(9).sum()  # a selection that asks for less keeps it (FLAIR's lesion ends narrow fast)
    assert np.array_equal(refine_volume(labels, images, brains, "bright", radius=5, grown_share=share)[5], disc(2))
    assert not refine_volume(labels, images, brains, "bright", radius=5, grown_share=share * 1.01)[5].any()


def test_a_slice_left_empty_takes_the_lesions_fainter_end_at_its_own_threshold():
    # Slice 5 cuts through the lesion's end, which partial volume makes fainter: 0.6, between tissue (0.4) and lesion
    # (0.9). The labelled slice has a rim of the same value around its lesion.
    images, brains = volume({4: 9})
    images[5] = np.where(disc(7), 0.6, images[5])
    images[4] = np.where(disc(11) & ~disc(9), 0.6, images[4])
    labels = {index: disc(9) if index == 4 else np.zeros((SIDE, SIDE), bool) for index in images}
    assert not refine_volume(labels, images, brains, "bright", radius=5)[5].any()  # 0.6 lies below 0.4 + 0.6 x (0.9 - 0.4)
    ends = refine_volume(labels, images, brains, "bright", radius=5, end_weight=0.3)  # 0.4 + 0.3 x 0.5 = 0.55 on slice 5
    assert np.array_equal(ends[5], disc(7))
    assert np.array_equal(ends[4], disc(9))  # a labelled slice keeps the scan's threshold: its faint rim stays out


def test_labels_are_carried_one_slice_further_where_the_lesion_keeps_its_size():
    # Only slice 4 is labelled; the lesion goes on at nearly full size through slices 5 and 6, then ends with a small
    # bright spot on slice 7. The volume step reaches slice 5; the carry takes slice 6, not the spot, and goes no further.
    images, brains = volume({4: 9, 5: 9, 6: 8.5, 7: 2})
    labels = {index: disc(9) if index == 4 else np.zeros((SIDE, SIDE), bool) for index in images}
    once = refine_volume(labels, images, brains, "bright", radius=5)
    assert [index for index, label in once.items() if label.any()] == [4, 5]
    carried = refine_volume(labels, images, brains, "bright", radius=5, carry_share=0.75)
    assert [index for index, label in carried.items() if label.any()] == [4, 5, 6]
    assert np.array_equal(carried[6], disc(8.5)) and all(np.array_equal(carried[index], once[index]) for index in (4, 5))
    assert disc(8.5).sum() < 0.95 * disc(9).sum()  # a larger share than the lesion keeps leaves slice 6 empty
    assert not refine_volume(labels, images, brains, "bright", radius=5, carry_share=0.95)[6].any()


def test_the_carry_leaves_slices_that_already_have_a_label_as_they_are():
    # The first redraw takes slices 3 and 5, fainter (0.75) than slice 4's lesion (0.9), so the grown labels' median drops
    # to 0.75 and the threshold with it to 0.61 (0.4 + 0.6 x 0.35): redrawn again, slice 5 would take the rim (0.66) around its lesion.
    images, brains = volume({3: 10, 4: 9, 5: 10})
    for index in (3, 5):
        images[index] = np.where(disc(10), 0.75, images[index])
    images[5] = np.where(disc(12) & ~disc(10), 0.66, images[5])
    labels = {index: disc(9) if index == 4 else np.zeros((SIDE, SIDE), bool) for index in images}
    once = refine_volume(labels, images, brains, "bright", radius=5)
    assert np.array_equal(once[5], disc(10))
    assert np.array_equal(refine_volume(once, images, brains, "bright", radius=5)[5], disc(12))  # what a second redraw of it would draw
    carried = refine_volume(labels, images, brains, "bright", radius=5, carry_share=0.5)
    assert all(np.array_equal(carried[index], once[index]) for index in images)


def test_a_label_with_nothing_on_the_lesions_side_is_dropped_and_dark_lesions_work_alike():
    images, brains = volume({4: 8}, lesion_value=0.1)  # dark lesion (T1-pre)
    labels = {index: np.zeros((SIDE, SIDE), bool) for index in images}
    labels[4] = disc(5)
    labels[8] = disc(4, centre=(10, 24))  # a false answer on ordinary tissue, far from the lesion
    refined = refine_volume(labels, images, brains, "dark", radius=5)
    assert np.array_equal(refined[4], disc(8)) and not refined[8].any()


def test_slices_brought_to_one_brightness_keep_a_dimmer_slices_lesion():
    # Slice 5 is the same lesion as slice 4 on a slice half as bright overall (a scan's slices drift in brightness):
    # against one threshold for the scan its lesion is no brighter than slice 4's tissue and is lost. Levelled, it is kept.
    images, brains = volume({3: 8, 4: 8, 5: 8})
    images[5] = images[5] * 0.45
    labels = {index: disc(6) if index in (3, 4) else np.zeros((SIDE, SIDE), bool) for index in images}
    assert not refine_volume(labels, images, brains, "bright", radius=5)[5].any()
    levelled = refine_volume(labels, images, brains, "bright", radius=5, level=True)
    assert all(np.array_equal(levelled[index], disc(8)) for index in (3, 4, 5))


def test_levelling_scales_each_slice_to_the_scans_median_and_leaves_thin_slices_alone():
    images, brains = volume({})
    images[2] = images[2] * 2
    brains[7] = disc(5)  # fewer brain pixels than a level needs: kept as it is
    images[7] = images[7] * 3
    assert disc(5).sum() < MIN_LEVEL_PIXELS <= disc(22).sum()
    levelled = level_slices(images, brains)
    assert np.allclose(levelled[2], images[0]) and np.allclose(levelled[4], images[4]) and levelled[7] is images[7]
    assert level_slices(images, {index: np.zeros((SIDE, SIDE), bool) for index in images}) is images  # no brain: nothing to level


def test_nothing_to_sharpen_leaves_the_labels_alone():
    images, brains = volume({4: 8})
    labels = {index: np.zeros((SIDE, SIDE), bool) for index in images}
    labels[4] = disc(5)
    assert refine_volume(labels, images, brains, "bright", radius=0) is labels  # off
    assert refine_volume(labels, images, brains, "dark", radius=5) is labels  # the labels are brighter, not darker
    empty = {index: np.zeros((SIDE, SIDE), bool) for index in images}
    assert refine_volume(empty, images, brains, "bright", radius=5) is empty


def test_slices_not_segmented_break_the_volume_apart():
    # Slices 3 and 5 were segmented, 4 was not (--slices 3,5): nothing may grow across or into slice 4.
    images, brains = volume({3: 8, 4: 8, 5: 8})
    labels = {3: disc(8), 5: np.zeros((SIDE, SIDE), bool)}
    refined = refine_volume(labels, {i: images[i] for i in labels}, {i: brains[i] for i in labels}, "bright", radius=5)
    assert set(refined) == {3, 5}
    assert np.array_equal(refined[3], disc(8)) and not refined[5].any()


def test_a_negative_volume_radius_is_refused():
    with pytest.raises(ValueError, match="volume_radius"):
        Selection(volume_radius=-1)


def test_evaluation_redraws_each_patients_volume_after_the_decision():
    """Slices 3-5 are hot on the lesion; on slice 6 the lesion goes on but its heat is flat, so the no-tumour
    decision empties it: only the volume redraw labels it, as ``inpaint-seg segment`` would."""
    images, brains = volume({3: 8, 4: 9, 5: 8, 6: 7}, n_slices=8)
    slices = []
    for index in range(8):
        lesion = images[index] > 0.5
        heat = np.where(lesion & (index < 6), 50.0, 10.0) * brains[index]
        slices.append(EvaluatedSlice("a", index, images[index].astype(np.float32), brains[index], lesion, heat.astype(np.float32), 0.1))
    params = FelzenszwalbParams(scale=1, sigma=0, min_size=1)
    decided = Selection(mode="merge", merge_ratio=0.5, min_contrast=1.5, heat_sigma=0.0, edge_margin=0, lesion="bright")
    without, redrawn = (answers(slices, params, replace(decided, volume_radius=radius)) for radius in (0, 5))
    assert [index for index, label in enumerate(without) if label.any()] == [3, 4, 5]
    assert all(np.array_equal(label, item.tumour) for label, item in zip(redrawn, slices))


def test_a_lower_threshold_weight_takes_in_the_lesions_fainter_fringe():
    images, brains = volume({4: 6}, lesion_value=0.9, n_slices=9)
    fringe = disc(9) & ~disc(6)
    images[4][fringe] = 0.6  # between the tissue (0.4) and the core (0.9)
    labels = {index: disc(6) if index == 4 else np.zeros((SIDE, SIDE), bool) for index in images}
    core_only = refine_volume(labels, images, brains, "bright", radius=5, weight=0.6)  # threshold 0.7
    with_fringe = refine_volume(labels, images, brains, "bright", radius=5, weight=0.3)  # threshold 0.55
    assert np.array_equal(core_only[4], disc(6)) and np.array_equal(with_fringe[4], disc(9))


def test_pieces_far_smaller_than_the_largest_are_dropped_in_3d():
    # The lesion spans slices 3-5 (one piece across them); a spot on slice 4 apart from it and one on slice 8.
    labels = {index: np.zeros((SIDE, SIDE), bool) for index in range(9)}
    for index in (3, 4, 5):
        labels[index] = disc(8)
    labels[4] = labels[4] | disc(3, centre=(40, 40))
    labels[8] = disc(5, centre=(10, 24))
    lesion, spot, far = 3 * disc(8).sum(), disc(3).sum(), disc(5).sum()
    assert spot < far < 0.5 * lesion
    kept = keep_main_lesions(labels, 0.5)
    assert all(np.array_equal(kept[index], disc(8) if index in (3, 4, 5) else np.zeros((SIDE, SIDE), bool)) for index in range(9))
    kept = keep_main_lesions(labels, (spot + far) / 2 / lesion)  # between the two: only the spot goes
    assert np.array_equal(kept[8], labels[8]) and np.array_equal(kept[4], disc(8))
    assert keep_main_lesions(labels, 0.0) is labels


def test_slices_segmented_apart_are_not_one_volume():
    # Slice 5 was not segmented: 4 and 6 are two runs, each keeps its own lesion however small beside the other's,
    # while within a run the small piece goes.
    labels = {4: disc(9), 6: disc(4), 7: disc(4) | disc(2, centre=(8, 8))}
    kept = keep_main_lesions(labels, 0.5)
    assert np.array_equal(kept[4], disc(9)) and np.array_equal(kept[6], disc(4)) and np.array_equal(kept[7], disc(4))
    assert np.array_equal(keep_main_lesions({4: disc(9), 5: disc(6), 6: disc(4)}, 0.5)[6], disc(4))  # through slice 5: one piece


def test_a_component_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="min_component_share"):
        Selection(min_component_share=1.5)


def test_evaluation_drops_a_false_positive_apart_from_the_lesion():
    """Slices 3-5 are hot on the lesion; slice 7, tumour-free, has a small hot bright spot that passes the
    decision: only dropping small pieces empties it."""
    images, brains = volume({3: 8, 4: 9, 5: 8}, n_slices=8)
    images[7][disc(3, centre=(24, 10))] = 0.9
    slices = []
    for index in range(8):
        bright = images[index] > 0.5
        heat = np.where(bright, 50.0, 10.0) * brains[index]
        tumour = bright if index in (3, 4, 5) else np.zeros((SIDE, SIDE), bool)
        slices.append(EvaluatedSlice("a", index, images[index].astype(np.float32), brains[index], tumour, heat.astype(np.float32), 0.1))
    params = FelzenszwalbParams(scale=1, sigma=0, min_size=1)
    decided = Selection(mode="merge", merge_ratio=0.5, min_contrast=1.5, heat_sigma=0.0, edge_margin=0, lesion="bright", volume_radius=5)
    every_piece, main_only = (answers(slices, params, replace(decided, min_component_share=share)) for share in (0.0, 0.5))
    assert every_piece[7].any() and not main_only[7].any()
    assert all(np.array_equal(label, item.tumour) for label, item in zip(main_only, slices))


def empty_labels(n_slices: int = 9) -> dict[int, np.ndarray]:
    return {index: np.zeros((SIDE, SIDE), bool) for index in range(n_slices)}


def test_the_lesion_is_followed_into_the_slices_the_decision_labelled_and_no_further():
    # The lesion spans slices 1-7. Only slice 3 kept a label on it; the decision also labelled slices 4-6, where the
    # answers lay elsewhere and were dropped, and none of slices 1, 2 and 7. Followed slice after slice: 4, 5, 6.
    images, brains = volume({index: 9 for index in range(1, 8)})
    labels = empty_labels() | {3: disc(9)}
    decided = empty_labels() | {3: disc(9)} | {index: disc(2, centre=(6, 24)) for index in (4, 5, 6)}
    followed = followed_into_decided(labels, decided, images, brains, "bright", radius=3, share=0.5)
    assert [index for index, label in followed.items() if label.any()] == [3, 4, 5, 6]
    assert all(np.array_equal(followed[index], disc(9)) for index in (3, 4, 5, 6))
    assert followed_into_decided(labels, decided, images, brains, "bright", radius=3, share=0.0) is labels  # 0: off


def test_following_stops_where_the_lesion_shrinks_below_the_share():
    # Slice 5 holds only a small bright spot where the lesion was: under half of slice 4's label, so neither slice 5 nor,
    # past it, slice 6 is followed, though the decision labelled both.
    images, brains = volume({3: 9, 4: 9, 5: 3, 6: 9})
    labels = empty_labels() | {3: disc(9)}
    decided = empty_labels() | {index: disc(9) for index in (3, 4, 5, 6)}
    followed = followed_into_decided(labels, decided, images, brains, "bright", radius=3, share=0.5)
    assert [index for index, label in followed.items() if label.any()] == [3, 4]
    assert disc(3).sum() >= 0.1 * disc(9).sum()  # with a share the spot passes, the lesion is followed through it
    assert [index for index, label in followed_into_decided(labels, decided, images, brains, "bright", radius=3, share=0.1).items()
            if label.any()] == [3, 4, 5, 6]


def test_finished_labels_follow_the_lesion_past_false_answers_whose_piece_was_dropped():
    # Slices 2-5 answered on a bright spot outside the lesion, which survives the redraw but is dropped as a small 3D
    # piece; the lesion itself (slices 1-6) kept only slice 1's answer, grown into slice 2. Followed, it fills 3-5; slice 6,
    # which the decision left empty, stays empty.
    images, brains = volume({index: 9 for index in range(1, 7)}, n_slices=8)
    spot = disc(2, centre=(6, 24))
    for index in range(2, 6):
        images[index][spot] = 0.9
    decided = empty_labels(8) | {1: disc(9)} | {index: spot for index in range(2, 6)}
    selection = Selection(lesion="bright", volume_radius=3, min_component_share=0.5, min_grown_share=0.25)
    unfollowed = finished_labels(decided, images, brains, selection)
    assert [index for index, label in unfollowed.items() if label.any()] == [1, 2]
    followed = finished_labels(decided, images, brains, replace(selection, follow_share=0.5))
    assert [index for index, label in followed.items() if label.any()] == [1, 2, 3, 4, 5]
    assert all(np.array_equal(followed[index], disc(9)) for index in range(1, 6))


def test_a_follow_share_outside_zero_to_one_is_refused():
    for share in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="follow_share"):
            Selection(follow_share=share)


def thin_end(n_slices: int = 9):
    """A lesion (slices 5 to the last) reaching the scan's thin end: the last slice's brain is a small disc, far less
    than its neighbour's, and holds the lesion's last, small section."""
    images, brains = volume({index: 9 for index in range(5, n_slices - 1)}, n_slices=n_slices)
    last = n_slices - 1
    brains[last] = disc(8)
    images[last] = np.where(disc(8), 0.4, 0.0)
    images[last][disc(5)] = 0.9
    return images, brains, last


def test_growth_into_a_slice_with_too_little_brain_needs_the_share_scaled_by_its_brain():
    images, brains, last = thin_end()
    labels = empty_labels() | {index: disc(9) for index in range(5, last)}
    assert disc(5).sum() < 0.5 * disc(9).sum()  # unscaled, the last slice's section misses the share
    plain = refine_volume(labels, images, brains, "bright", radius=3, grown_share=0.5)
    assert not plain[last].any()
    scaled = refine_volume(labels, images, brains, "bright", radius=3, grown_share=0.5, small=[last])
    assert np.array_equal(scaled[last], disc(5))
    assert all(np.array_equal(scaled[index], plain[index]) for index in range(last))


def test_finished_labels_take_in_slices_with_too_little_brain_only_when_the_selection_grows_into_them():
    images, brains, last = thin_end()
    decided = empty_labels(last) | {index: disc(9) for index in range(5, last)}  # the last slice was not localised
    selection = Selection(lesion="bright", volume_radius=3, min_grown_share=0.5)
    assert last not in finished_labels(decided, images, brains, selection, small=[last])
    grown = finished_labels(decided, images, brains, replace(selection, grow_into_small_slices=True), small=[last])
    assert np.array_equal(grown[last], disc(5))
    nothing_near = empty_labels(last) | {2: disc(9)}  # a label far from the thin end: it stays empty, but is part of the result
    assert not finished_labels(nothing_near, images, brains, replace(selection, grow_into_small_slices=True), small=[last])[last].any()


def test_a_scans_labels_reach_its_thin_end_only_among_the_slices_given_as_too_small():
    """``scan_labels`` as ``segment_volume`` and Label all slices call it: the thin slice is labelled by growth when passed
    as too small to localise, and left out of the result otherwise."""
    images, brains, last = thin_end()
    prepared = PreparedScan(Scan(np.zeros((SIDE, SIDE, last + 1)), np.eye(4), None), np.stack([images[i] for i in range(last + 1)], axis=2),
                            np.stack([brains[i] for i in range(last + 1)], axis=2))
    answers = {index: SliceAnswer(disc(9) if index >= 5 else np.zeros((SIDE, SIDE), bool), 10.0, index >= 5, None) for index in range(last)}
    selection = Selection(lesion="bright", volume_radius=3, min_grown_share=0.5, grow_into_small_slices=True)
    assert np.array_equal(scan_labels(prepared, answers, selection, small=[last])[last], disc(5))
    assert last not in scan_labels(prepared, answers, selection)


def test_evaluation_labels_a_slice_with_too_little_brain_by_growth_and_counts_it_in_the_false_positive_rate():
    images, brains, last = thin_end()
    slices = []
    for index in range(last + 1):
        lesion = images[index] > 0.5
        heat = np.where(lesion, 50.0, 10.0) * brains[index] if brains[index].sum() >= 1000 else np.zeros((SIDE, SIDE))
        slices.append(EvaluatedSlice("a", index, images[index].astype(np.float32), brains[index], lesion, heat.astype(np.float32), 0.1))
    params = FelzenszwalbParams(scale=1, sigma=0, min_size=1)
    selection = Selection(mode="merge", merge_ratio=0.5, min_contrast=1.5, heat_sigma=0.0, edge_margin=0, lesion="bright", volume_radius=3,
                          min_grown_share=0.5)
    left_out, grown = (answers(slices, params, replace(selection, grow_into_small_slices=on), min_brain_pixels=1000) for on in (False, True))
    assert not left_out[last].any() and np.array_equal(grown[last], disc(5))
    assert all(np.array_equal(label, item.tumour) for label, item in zip(grown, slices))
    healthy_counted = [score_selection(slices, params, replace(selection, grow_into_small_slices=on), min_brain_pixels=1000)["n_healthy_slices"]
                       for on in (False, True)]
    assert healthy_counted == [5, 5]  # slices 0-4; the thin end has tumour, so it is scored for Dice, not here
    slices[last] = replace(slices[last], tumour=np.zeros((SIDE, SIDE), bool))  # as if the thin end were tumour-free
    scores = [score_selection(slices, params, replace(selection, grow_into_small_slices=on), min_brain_pixels=1000) for on in (False, True)]
    assert [row["n_healthy_slices"] for row in scores] == [5, 6]
    assert scores[0]["false_positive_rate"] == 0 and scores[1]["false_positive_rate"] == pytest.approx(1 / 6)


def ragged(index: int) -> np.ndarray:
    """A lesion's label as a threshold leaves it on T1-pre: a disc with pinholes and a frayed edge."""
    label = disc(9).copy()
    label[20, 20] = label[26, 27] = False  # holes
    label[24, 33:36] = True  # a spur off the edge
    label[5 + index, 5] = True  # a stray pixel, elsewhere on each slice
    return label


def test_smoothing_fills_holes_and_drops_spurs_and_stray_pixels_but_keeps_the_lesion():
    brains = {index: disc(22) for index in range(3, 8)}
    labels = {index: ragged(index) for index in brains}
    smoothed = smooth_labels(labels, brains, sigma=1.5, sigma_slices=1.0)
    for index in brains:
        assert smoothed[index][20, 20] and smoothed[index][26, 27], index
        assert not smoothed[index][24, 35] and not smoothed[index][5 + index, 5], index
        assert 0.9 < (smoothed[index] & disc(9)).sum() / disc(9).sum() and not (smoothed[index] & ~disc(10)).any(), index


def test_smoothing_across_slices_drops_a_label_on_one_slice_alone_and_stays_inside_the_brain():
    brains = {index: disc(22) for index in range(8)}
    labels = {index: disc(8) if index in (1, 2, 3) else np.zeros((SIDE, SIDE), bool) for index in brains}
    labels[6] = disc(3, centre=(24, 10))  # a label on one slice, nothing next to it
    labels[2] = disc(30)  # reaching past the brain
    smoothed = smooth_labels(labels, brains, sigma=0.0, sigma_slices=1.5)
    assert not smoothed[6].any() and not (smoothed[2] & ~brains[2]).any()
    assert smoothed[2][disc(8)].all()
    assert smooth_labels(labels, brains, 0.0, 0.0) is labels


def test_smoothing_never_erases_the_largest_piece_whole_but_drops_smaller_ones():
    # A lesion narrower than the Gaussian keeps its label; a smaller piece apart from it may go.
    brains = {index: disc(22) for index in (3, 4)}
    labels = {index: disc(2) | disc(1, centre=(24, 10)) for index in brains}
    smoothed = smooth_labels(labels, brains, sigma=4.0, sigma_slices=1.5)
    assert all(np.array_equal(smoothed[index], disc(2)) for index in brains)


def test_slices_smoothed_apart_do_not_lend_each_other_labels():
    # Slices 4 and 6 were segmented, 5 was not: a lone slice keeps a label big enough in-plane, across the gap or not.
    brains = {index: disc(22) for index in (4, 6)}
    labels = {4: disc(9), 6: disc(9)}
    smoothed = smooth_labels(labels, brains, sigma=1.0, sigma_slices=1.0)
    assert set(smoothed) == {4, 6} and all(smoothed[index][disc(7)].all() for index in (4, 6))


def test_negative_label_sigmas_are_refused():
    with pytest.raises(ValueError, match="label_sigma"):
        Selection(label_sigma=-1.0)
    with pytest.raises(ValueError, match="label_sigma"):
        Selection(label_sigma_slices=-0.5)


def test_evaluation_smooths_the_labels_last():
    """A threshold that follows a thin bright spur off the lesion (on every slice): smoothing cuts it off."""
    images, brains = volume({3: 8, 4: 9, 5: 8}, n_slices=8)
    for index in (3, 4, 5):
        images[index][24, 33:38] = 0.9
    slices = []
    for index in range(8):
        tumour = disc({3: 8, 4: 9, 5: 8}[index]) if index in (3, 4, 5) else np.zeros((SIDE, SIDE), bool)
        heat = np.where(tumour, 50.0, 10.0) * brains[index]
        slices.append(EvaluatedSlice("a", index, images[index].astype(np.float32), brains[index], tumour, heat.astype(np.float32), 0.1))
    params = FelzenszwalbParams(scale=1, sigma=0, min_size=1)
    decided = Selection(mode="merge", merge_ratio=0.5, min_contrast=1.5, heat_sigma=0.0, edge_margin=0, lesion="bright", volume_radius=5, min_component_share=0.5)
    plain, smoothed = (answers(slices, params, replace(decided, label_sigma=sigma)) for sigma in (0.0, 1.5))
    assert plain[4][24, 33:38].all() and not smoothed[4][24, 34:38].any()
    assert all((label == item.tumour).mean() > 0.99 for label, item in zip(smoothed, slices))
