"""The whole napari workflow as a user does it: open -> Localize -> Segment -> Swap -> Accept -> undo -> Export."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from conftest import BLOB_CENTRE, TOY_AFFINE, toy_volume
from napari_inpaint_seg import PLUGIN

pytestmark = pytest.mark.gui

WORKER_TIMEOUT_MS = 60_000


@pytest.fixture
def session(make_napari_viewer, toy_scan_path, tiny_model, tmp_path):
    """A viewer with the toy scan and both widgets docked, set up for the tiny model and the skull-stripped path."""
    from napari_inpaint_seg._widget_common import PREPARED
    from napari_inpaint_seg._widget_localize import LocalizeWidget
    from napari_inpaint_seg._widget_segment import SegmentWidget

    PREPARED.clear()
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(toy_scan_path), plugin=PLUGIN)
    answers = SimpleNamespace(path=tmp_path / "labels.nii.gz", overwrite=False, asked=[])

    def confirm(path):
        answers.asked.append(path)
        return answers.overwrite

    localize = LocalizeWidget(viewer)
    segment = SegmentWidget(viewer, ask_path=lambda default: answers.path, confirm=confirm)
    viewer.window.add_dock_widget(localize, name="Localize")
    viewer.window.add_dock_widget(segment, name="Segment")
    localize.select_image(image)
    segment.select_image(image)
    localize.select_model(checkpoint=tiny_model)
    localize._skull_stripped.value = True
    viewer.dims.set_current_step(0, 2)
    yield SimpleNamespace(viewer=viewer, image=image, localize=localize, segment=segment, answers=answers, scan_path=toy_scan_path, model_path=tiny_model)
    PREPARED.clear()


def run_and_wait(qtbot, localize):
    localize.run()
    qtbot.waitUntil(lambda: not localize.running, timeout=WORKER_TIMEOUT_MS)


def test_reader_puts_axial_slices_on_the_slider(session):
    image = session.image
    assert image.data.shape == (4, 48, 48)
    np.testing.assert_allclose(image.scale, [3.0, 0.9, 1.1])
    np.testing.assert_allclose(image.metadata["affine"], TOY_AFFINE)
    assert image.metadata["axial_axis"] == 2


def test_whole_workflow(session, qtbot):
    from napari_inpaint_seg._widget_common import heatmap_for, layer_by_role

    viewer, image, localize, segment = session.viewer, session.image, session.localize, session.segment

    # Localize the current slice in napari's thread worker.
    run_and_wait(qtbot, localize)
    heatmap = heatmap_for(viewer, image)
    assert heatmap is not None and heatmap.data.shape == image.data.shape
    np.testing.assert_allclose(heatmap.scale, image.scale)
    assert heatmap.data[2].max() > 0
    assert not heatmap.data[[0, 1, 3]].any(), "only the current slice is localized"

    # The heatmap's data event re-ranks the candidates (debounced).
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    result = segment.result
    assert result.index == 2 and len(result.candidates()) >= 2
    boundaries = layer_by_role(viewer, image, "superpixels")
    candidate = layer_by_role(viewer, image, "candidate")
    assert boundaries.data[2].any() and not boundaries.data[[0, 1, 3]].any()
    np.testing.assert_array_equal(candidate.data[2] > 0, segment.candidate_mask())

    # Swap cycles through the ranking.
    top = segment.candidate_mask().copy()
    segment.swap()
    assert segment.rank == 1 and not np.array_equal(segment.candidate_mask(), top)
    for _ in range(len(result.candidates()) - 1):
        segment.swap()
    assert segment.rank == 0

    # A click picks the segment under the mouse: the blob.
    blob_world = image.data_to_world((2, *BLOB_CENTRE))
    assert segment.pick_at(blob_world)
    blob_mask = segment.candidate_mask()
    assert blob_mask[BLOB_CENTRE]

    # Accept writes into a new labels layer that inherits geometry, through the undoable path.
    segment._label_value.value = 3
    segment.accept()
    labels = segment.labels_layer()
    assert labels is not None and labels.data.shape == image.data.shape
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.metadata["affine"], TOY_AFFINE)
    np.testing.assert_array_equal(labels.data[2] == 3, blob_mask)
    labels.undo()
    assert not labels.data.any()
    labels.redo()
    np.testing.assert_array_equal(labels.data[2] == 3, blob_mask)
    labels.undo()
    segment.accept()

    # Export, then refuse and accept replacing the file.
    path = segment.export()
    assert path == session.answers.path and path.is_file()
    written = nib.load(str(path))
    np.testing.assert_allclose(written.affine, TOY_AFFINE)
    voxels = np.asarray(written.dataobj)
    assert voxels.shape == toy_volume().shape and voxels.dtype == np.uint8
    np.testing.assert_array_equal(voxels[:, :, 2] == 3, blob_mask)
    assert not np.delete(voxels, 2, axis=2).any()
    # Beside it, what made the labels: the scan, the model and settings behind the heat of each slice, the Segment settings.
    record = json.loads(path.with_name("labels.json").read_text())
    assert record["MadeIn"] == "napari" and record["Sources"] == [str(session.scan_path.resolve())]
    assert record["TumourVoxels"] == int((voxels > 0).sum()) and record["LabelledSlices"] == 1
    (run,) = record["LocaliserRuns"]
    assert run["Slices"] == [2] and run["BrainExtraction"] == "none (taken as skull-stripped)"
    assert run["Models"][0]["SHA256"] == hashlib.sha256(session.model_path.read_bytes()).hexdigest()
    assert run["Localiser"]["Path"] == "fast" and run["Localiser"]["Windows"][0]["Gamma"] == 8 and run["Localiser"]["ErrorSign"] == "bright"
    assert record["Superpixels"]["scale"] == segment.params.scale and record["SelectionAtExport"]["mode"] == segment.selection.mode

    segment.swap()
    segment.accept()  # a second segment, so the file would change
    session.answers.overwrite = False
    assert segment.export() is None and session.answers.asked == [path]
    np.testing.assert_array_equal(np.asarray(nib.load(str(path)).dataobj), voxels)
    session.answers.overwrite = True
    assert segment.export() == path
    assert (np.asarray(nib.load(str(path)).dataobj) > 0).sum() > (voxels > 0).sum()
    replaced = json.loads(path.with_name("labels.json").read_text())  # a new export, a new record
    assert replaced["TumourVoxels"] == int((np.asarray(nib.load(str(path)).dataobj) > 0).sum()) and "Edits" not in replaced


def test_live_parameters_are_debounced(session, qtbot):
    segment = session.segment
    run_and_wait(qtbot, session.localize)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    fine = segment.result.superpixels.max()
    segment._scale.value = 5000.0
    segment._min_size.value = 200
    assert segment.result.superpixels.max() == fine, "nothing is recomputed before the pause"
    qtbot.waitUntil(lambda: segment.result.superpixels.max() < fine, timeout=5_000)


def test_shortcuts_and_click(session, qtbot):
    from napari.utils.key_bindings import KeyBinding

    from napari_inpaint_seg._widget_segment import ACCEPT_KEY, SWAP_KEY

    viewer, segment = session.viewer, session.segment
    run_and_wait(qtbot, session.localize)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    viewer.keymap[KeyBinding.from_str(SWAP_KEY)](viewer)
    assert segment.rank == 1
    viewer.keymap[KeyBinding.from_str(ACCEPT_KEY)](viewer)
    assert segment.labels_layer().data[2].any()

    # A click (press, release) picks; a drag (press, move) does not.
    callback = viewer.mouse_drag_callbacks[-1]
    blob_world = session.image.data_to_world((2, *BLOB_CENTRE))
    segment.swap()
    rank = segment.rank
    event = SimpleNamespace(type="mouse_press", position=blob_world)
    drag = callback(viewer, event)
    next(drag)
    event.type = "mouse_move"
    with pytest.raises(StopIteration):
        next(drag)
    assert segment.rank == rank
    event = SimpleNamespace(type="mouse_press", position=blob_world)
    click = callback(viewer, event)
    next(click)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(click)
    assert segment.candidate_mask()[BLOB_CENTRE]


def run_and_cancel_at_first_update(qtbot, localize) -> None:
    """The paper's reference localiser with step 1 over all slices (hundreds of updates), cancelled from the
    callback that draws the first update, so a busy machine cannot let the run finish first."""
    localize._fast.value = False
    localize._step.value = 1
    localize._slices.value = "all slices"
    draw = localize._on_yielded

    def draw_then_cancel(value):
        draw(value)
        if localize._status.value.startswith("slice"):
            localize.cancel()

    localize._on_yielded = draw_then_cancel
    localize.run()
    qtbot.waitUntil(lambda: not localize.running, timeout=WORKER_TIMEOUT_MS)


def test_refined_share_reaches_the_fast_localiser(session, qtbot):
    """At 1 every window runs, as in the reference; at 0.1 mostly the coarse first pass; 0 is the window's
    default share (0.6 for this 8-px window). Off with the fast localiser."""
    from napari_inpaint_seg._widget_common import heatmap_for

    viewer, image, localize = session.viewer, session.image, session.localize
    heat = {}
    for name, fast, share in (("reference", False, 0.3), ("every", True, 1.0), ("coarse", True, 0.1), ("auto", True, 0.0), ("0.6", True, 0.6)):
        localize._fast.value, localize._refine.value = fast, share
        run_and_wait(qtbot, localize)
        heat[name] = heatmap_for(viewer, image).data[2].copy()
        assert localize._refine.enabled == fast
    difference = {name: np.abs(heat[name] - heat["reference"]).max() for name in ("every", "coarse")}
    assert difference["every"] < 0.1 * difference["coarse"]  # the same windows, in bfloat16 where the CPU has it
    np.testing.assert_array_equal(heat["auto"], heat["0.6"])


def test_cancel_restores_the_previous_heatmap(session, qtbot):
    from napari_inpaint_seg._widget_common import heatmap_for

    viewer, image, localize = session.viewer, session.image, session.localize
    run_and_wait(qtbot, localize)
    before = heatmap_for(viewer, image).data.copy()
    run_and_cancel_at_first_update(qtbot, localize)
    assert "cancelled" in localize._status.value
    np.testing.assert_array_equal(heatmap_for(viewer, image).data, before)


def test_cancel_first_run_removes_its_layer(session, qtbot):
    from napari_inpaint_seg._widget_common import heatmap_for

    run_and_cancel_at_first_update(qtbot, session.localize)
    assert "cancelled" in session.localize._status.value
    assert heatmap_for(session.viewer, session.image) is None


def test_a_model_is_read_again_only_when_its_file_changes(tiny_model):
    """Runs reuse the loaded generator; a checkpoint retrained under the same name is not served stale."""
    import os

    import torch

    from napari_inpaint_seg._widget_localize import loaded_generator
    from napari_inpaint_seg.models.checkpoint import build_generator, save_generator

    generator, config = loaded_generator(tiny_model, "cpu")
    assert loaded_generator(tiny_model, "cpu")[0] is generator
    retrained = build_generator(config)
    with torch.no_grad():
        for parameter in retrained.parameters():
            parameter.fill_(0.5)
    save_generator(tiny_model, retrained, config)
    stat = tiny_model.stat()
    os.utime(tiny_model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later save, whatever the clock's resolution
    reloaded, _ = loaded_generator(tiny_model, "cpu")
    assert reloaded is not generator
    assert all(torch.equal(parameter, torch.full_like(parameter, 0.5)) for parameter in reloaded.parameters())


def test_synchronous_mode_runs_inline(session, monkeypatch):
    from napari_inpaint_seg._widget_common import SYNC_ENV, heatmap_for

    monkeypatch.setenv(SYNC_ENV, "1")
    session.localize._slices.value = "all slices"
    session.localize.run()
    assert not session.localize.running
    assert heatmap_for(session.viewer, session.image).data.any(axis=(1, 2)).all()


def test_problems_become_notifications(session, qtbot, tmp_path):
    from napari.utils.notifications import notification_manager

    localize = session.localize
    before = len(notification_manager.records)
    localize.select_model(checkpoint=tmp_path / "missing.safetensors")
    localize.run()
    qtbot.waitUntil(lambda: not localize.running, timeout=WORKER_TIMEOUT_MS)
    messages = [str(record.message) for record in notification_manager.records[before:]]
    assert any("checkpoint not found" in message for message in messages)

    # A slice outside the brain: a message, not a traceback; no heatmap layer is left behind.
    from napari_inpaint_seg._widget_common import heatmap_for

    session.image.data[1] = 0
    localize.select_model(checkpoint=tmp_path / "tiny.safetensors")
    session.viewer.dims.set_current_step(0, 1)
    before = len(notification_manager.records)
    run_and_wait(qtbot, localize)
    messages = [str(record.message) for record in notification_manager.records[before:]]
    assert any("contains no brain" in message for message in messages)
    assert heatmap_for(session.viewer, session.image) is None

    # Nothing to accept or export yet: messages again.
    before = len(notification_manager.records)
    session.segment.accept()
    assert session.segment.export() is None
    assert len(notification_manager.records) - before == 2


def test_2d_image_workflow(make_napari_viewer, tiny_model, tmp_path, qtbot):
    """A skull-stripped 2D slice (PNG): localize, accept the blob, export a 2D NIfTI."""
    from skimage.io import imsave

    from napari_inpaint_seg._widget_common import PREPARED, heatmap_for
    from napari_inpaint_seg._widget_localize import LocalizeWidget
    from napari_inpaint_seg._widget_segment import SegmentWidget

    PREPARED.clear()
    png = tmp_path / "slice.png"
    imsave(str(png), (toy_volume()[:, :, 0] * 250).astype(np.uint8), check_contrast=False)
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(png), plugin=PLUGIN)
    localize, segment = LocalizeWidget(viewer), SegmentWidget(viewer, ask_path=lambda default: tmp_path / "slice_labels.nii.gz")
    viewer.window.add_dock_widget(localize)
    viewer.window.add_dock_widget(segment)
    localize.select_image(image)
    segment.select_image(image)
    localize.select_model(checkpoint=tiny_model)
    run_and_wait(qtbot, localize)
    assert heatmap_for(viewer, image).data.shape == (48, 48)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    assert segment.pick_at(image.data_to_world(BLOB_CENTRE))
    segment.accept()
    path = segment.export()
    written = np.asarray(nib.load(str(path)).dataobj)
    assert written.shape == (48, 48) and written[BLOB_CENTRE] == 1
    PREPARED.clear()


@pytest.mark.slow
def test_brain_extraction_path_runs_once_per_image(make_napari_viewer, make_head_volume, tiny_model, tmp_path, qtbot):
    """A scan with background around the head goes through deepbet (in the worker) once; the result is cached."""
    from napari_inpaint_seg._widget_common import PREPARED, heatmap_for
    from napari_inpaint_seg._widget_localize import LocalizeWidget

    PREPARED.clear()
    path = tmp_path / "head.nii.gz"
    nib.save(nib.Nifti1Image(make_head_volume(), np.eye(4)), str(path))
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(path), plugin=PLUGIN)
    localize = LocalizeWidget(viewer)
    viewer.window.add_dock_widget(localize)
    localize.select_image(image)
    localize.select_model(checkpoint=tiny_model)
    assert not localize._skull_stripped.value
    viewer.dims.set_current_step(0, image.data.shape[0] // 2)
    run_and_wait(qtbot, localize)
    assert heatmap_for(viewer, image) is not None
    prepared = PREPARED.get(image, skull_stripped=False)
    assert prepared is not None and prepared.brain.any()
    run_and_wait(qtbot, localize)
    assert PREPARED.get(image, skull_stripped=False) is prepared, "no second brain extraction"
    PREPARED.clear()


def test_segment_prepares_a_scan_it_has_not_seen(session, qtbot):
    """A heatmap without a cached brain mask (e.g. the cache was cleared): Segment prepares the scan in a worker."""
    from napari_inpaint_seg._widget_common import PREPARED

    run_and_wait(qtbot, session.localize)
    PREPARED.clear()
    session.image.metadata["skull_stripped"] = True
    session.segment.refresh()
    qtbot.waitUntil(lambda: PREPARED.get(session.image) is not None and session.segment.result is not None, timeout=WORKER_TIMEOUT_MS)
    assert session.segment.result.index == 2


def test_the_chosen_scan_is_prepared_before_the_first_run(session, qtbot):
    """Brain extraction starts in the background once the scan is chosen, with the widget's skull-stripped choice."""
    from napari_inpaint_seg._widget_common import PREPARED

    assert PREPARED.get(session.image) is None
    qtbot.waitUntil(lambda: PREPARED.get(session.image, skull_stripped=True) is not None, timeout=WORKER_TIMEOUT_MS)
    assert not session.localize.running and PREPARED.get(session.image, skull_stripped=False) is None


@pytest.fixture
def slow_preparation(monkeypatch):
    """prepare_layer_data taking a second, counting its calls, those finished, and the most under way at once."""
    import time

    from napari_inpaint_seg import _widget_common

    real = _widget_common.prepare_layer_data
    calls = SimpleNamespace(started=0, finished=0, most_at_once=0)

    def slow(*args):
        calls.started += 1
        calls.most_at_once = max(calls.most_at_once, calls.started - calls.finished)
        time.sleep(1.0)
        try:
            return real(*args)
        finally:
            calls.finished += 1

    monkeypatch.setattr(_widget_common, "prepare_layer_data", slow)
    return calls


def test_a_run_during_the_background_preparation_waits_for_it(session, qtbot, slow_preparation):
    from napari_inpaint_seg._widget_common import PREPARED, heatmap_for

    session.localize._prepare_ahead()
    run_and_wait(qtbot, session.localize)
    assert slow_preparation.started == 1, "the Run did not prepare the scan a second time"
    assert heatmap_for(session.viewer, session.image).data[2].any()
    assert PREPARED.get(session.image, skull_stripped=True) is not None


def test_scans_chosen_one_after_the_other_are_prepared_one_at_a_time(session, qtbot, slow_preparation):
    """Each brain extraction peaks at about 1.2 GB: the background preparations do not run side by side."""
    from napari_inpaint_seg._widget_common import PREPARED

    (second,) = session.viewer.open(str(session.viewer.layers[0].source.path), plugin=PLUGIN)
    session.localize._prepare_ahead()  # the first scan
    session.localize.select_image(second)
    session.localize._skull_stripped.value = True  # as the fixture set it for the first
    qtbot.waitUntil(lambda: PREPARED.get(second, skull_stripped=True) is not None, timeout=WORKER_TIMEOUT_MS)
    assert PREPARED.get(session.image, skull_stripped=True) is not None
    assert slow_preparation.started == 2 and slow_preparation.most_at_once == 1


def test_cancel_while_the_scan_is_prepared_stops_the_run_and_keeps_the_preparation(session, qtbot, slow_preparation):
    from napari_inpaint_seg._widget_common import PREPARED, heatmap_for

    localize = session.localize
    localize.run()
    assert localize._status.value.startswith("preparing the scan")
    localize.cancel()
    qtbot.waitUntil(lambda: not localize.running, timeout=WORKER_TIMEOUT_MS)
    assert slow_preparation.finished == 0, "Cancel waited for the brain extraction"
    assert "cancelled" in localize._status.value and heatmap_for(session.viewer, session.image) is None
    qtbot.waitUntil(lambda: PREPARED.get(session.image, skull_stripped=True) is not None, timeout=WORKER_TIMEOUT_MS)
    assert slow_preparation.started == 1


def test_a_failed_preparation_is_reported_and_tried_again(session, monkeypatch):
    from napari_inpaint_seg import _widget_common
    from napari_inpaint_seg._widget_common import PREPARED, SYNC_ENV
    from napari_inpaint_seg.errors import InputError

    monkeypatch.setenv(SYNC_ENV, "1")
    real, results = _widget_common.prepare_layer_data, []

    def failing_once(*args):
        monkeypatch.setattr(_widget_common, "prepare_layer_data", real)
        raise InputError("no brain was found in this image")

    monkeypatch.setattr(_widget_common, "prepare_layer_data", failing_once)
    future = PREPARED.preparation(session.image, True, "cpu", when_done=results.append)
    with pytest.raises(InputError, match="no brain"):
        future.result()
    assert results[0].message == "no brain was found in this image" and PREPARED.get(session.image) is None
    assert PREPARED.preparation(session.image, True, "cpu").result().brain.any()
    assert PREPARED.get(session.image, skull_stripped=True) is not None


def test_mode_switch_between_merge_and_paper(session, qtbot):
    """Merge mode (the default) answers the top segment grown over hot neighbours; paper mode the top one alone."""
    segment = session.segment
    run_and_wait(qtbot, session.localize)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    assert segment.selection.mode == "merge"
    segment._heat_sigma.value = 0.0  # the raw heatmap, so both modes start from the same top segment
    segment._edge_margin.value = 0
    segment._merge_ratio.value = 0.0  # every touching segment hotter than the median joins
    segment._refine_radius.value = 0  # superpixels as they are, so the merged answer contains the top segment
    qtbot.waitUntil(lambda: segment.result.selection == segment.selection, timeout=5_000)
    merged = segment.candidate_mask().copy()
    segment._mode.value = "paper"
    qtbot.waitUntil(lambda: segment.result.selection.mode == "paper", timeout=5_000)
    paper = segment.candidate_mask()
    assert len(segment.result.candidates()[0]) == 1
    assert paper.any() and (paper <= merged).all() and merged.sum() >= paper.sum()


def test_error_sign_follows_the_model_modality_unless_chosen(session, qtbot):
    """"auto" is the sign that marks LGG on the model's modality (the tiny model is a FLAIR one: bright)."""
    from napari_inpaint_seg._widget_common import heatmap_for

    localize = session.localize
    heat = {}
    for sign in ("bright", "auto", "dark"):
        localize._polarity.value = sign
        run_and_wait(qtbot, localize)
        heat[sign] = heatmap_for(session.viewer, session.image).data[2].copy()
    np.testing.assert_array_equal(heat["auto"], heat["bright"])
    assert heat["dark"].max() > 0 and not np.array_equal(heat["bright"], heat["dark"])


def test_segment_draws_the_lesion_on_the_side_of_the_heat_error_sign(session, qtbot):
    """Localize's error sign bright on a T1-pre scan (an LGG that is not dark there) makes Segment draw a bright
    lesion, dark a dark one; heat of mixed signs over the slices leaves the modality's side (dark on T1-pre)."""
    localize, segment, image = session.localize, session.segment, session.image
    image.metadata["modality"] = "t1"
    segment._on_image_changed()
    assert segment.selection.lesion == "dark"  # no heat yet
    localize._slices.value = "all slices"
    for sign in ("bright", "dark"):
        localize._polarity.value = sign
        run_and_wait(qtbot, localize)
        assert segment.selection.lesion == sign
        segment.label_all()
        qtbot.waitUntil(lambda: not segment.labelling, timeout=WORKER_TIMEOUT_MS)
        assert segment._status.value.endswith("(settings tuned for t1, bright lesion (Localize's error sign))" if sign == "bright" else "(settings tuned for t1)")
    localize._polarity.value = "bright"
    localize._slices.value = "current slice"
    run_and_wait(qtbot, localize)  # this slice's heat bright, the others' dark
    assert segment.selection.lesion == "dark"


def test_segment_controls_take_the_tuned_settings_of_the_image_modality(session):
    from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS

    segment, image = session.segment, session.image
    for modality in ("flair", "t1"):
        image.metadata["modality"] = modality
        segment._on_image_changed()
        tuned = DEFAULT_SELECTIONS[modality]
        assert (segment.selection.merge_ratio, segment.selection.heat_sigma, segment.selection.edge_margin) == (tuned.merge_ratio, tuned.heat_sigma, tuned.edge_margin)
        assert (segment.selection.refine_radius, segment.selection.lesion, segment.selection.dark_share, segment.selection.dark_margin) == (
            tuned.refine_radius, tuned.lesion, tuned.dark_share, tuned.dark_margin)
        across = segment.volume_selection  # Label all slices: the command line's decision and volume steps
        assert (across.min_contrast, across.grow_contrast, across.volume_radius, across.min_component_share, across.label_sigma, across.label_sigma_slices) == (
            tuned.min_contrast, tuned.grow_contrast, tuned.volume_radius, tuned.min_component_share, tuned.label_sigma, tuned.label_sigma_slices)
        assert (across.run_contrast, across.run_length, across.carry_share, across.follow_share, across.grow_into_small_slices) == (
            tuned.run_contrast, tuned.run_length, tuned.carry_share, tuned.follow_share, tuned.grow_into_small_slices)


def test_label_all_slices_lets_the_labels_grow_into_the_slices_localize_left_for_too_little_brain():
    """As ``inpaint-seg segment``: the slices a Localize run went over without heat for having less brain than its
    largest window; a slice with enough brain but no heat (not localised yet), or one no run went over, is not one."""
    from types import SimpleNamespace

    from napari_inpaint_seg._widget_common import LOCALISER_RUNS
    from napari_inpaint_seg._widget_segment import unlocalised_slices

    brain = np.zeros((32, 32, 5), bool)
    brain[4:28, 4:28, 1:] = True  # 576 px: enough for a 16-px window, not for a 32-px one
    brain[12:16, 12:16, 0] = True  # 16 px
    runs = [{"Slices": [0, 1, 2], "Localiser": {"Windows": [{"Gamma": 16}]}}, {"Slices": [3], "Localiser": {"Windows": [{"Gamma": 16}, {"Gamma": 32}]}}]
    layer = SimpleNamespace(metadata={LOCALISER_RUNS: runs})
    heatmaps = {1: np.ones((32, 32))}
    assert unlocalised_slices(layer, heatmaps, brain) == [0, 3]  # slice 2 has enough brain for 16 px: only not localised yet; 4: no run


def test_an_unmarked_scan_is_segmented_with_the_settings_of_the_model_that_localised_it(session, qtbot):
    """A scan opened with File > Open has no modality; its heatmap's model has one, and Label all slices then
    does what ``inpaint-seg segment --modality`` does (before: generic settings and no no-tumour decision)."""
    from napari_inpaint_seg._widget_common import MODEL_MODALITY, heatmap_for
    from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS

    segment, localize = session.segment, session.localize
    del session.image.metadata["modality"]  # the toy file's name states it: here it says nothing
    segment._on_image_changed()
    assert segment._modality() is None
    localize._slices.value = "all slices"
    run_and_wait(qtbot, localize)  # the tiny model is a FLAIR model
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    tuned = DEFAULT_SELECTIONS["flair"]
    assert segment._modality() == "flair"
    assert (segment.selection.merge_ratio, segment.selection.heat_sigma, segment.selection.edge_margin) == (tuned.merge_ratio, tuned.heat_sigma, tuned.edge_margin)
    assert (segment.volume_selection.min_contrast, segment.volume_selection.min_component_share) == (tuned.min_contrast, tuned.min_component_share)
    segment.label_all()
    qtbot.waitUntil(lambda: not segment.labelling, timeout=WORKER_TIMEOUT_MS)
    assert segment._status.value.endswith("(settings tuned for flair)")

    del heatmap_for(session.viewer, session.image).metadata[MODEL_MODALITY]  # e.g. a heatmap layer read from a file
    assert segment._modality() is None
    segment.label_all()
    qtbot.waitUntil(lambda: not segment.labelling, timeout=WORKER_TIMEOUT_MS)
    assert segment._status.value.endswith("(modality unknown: generic settings, no no-tumour decision)")


def test_label_all_keeps_its_summary_when_a_re_ranking_was_due(session, qtbot):
    """A heatmap that has just changed schedules a re-ranking of the current slice; Label all slices clicked before
    it runs does it first, so its summary is not overwritten by the slice's candidate a moment later."""
    from napari_inpaint_seg._widget_segment import DEBOUNCE_MS

    segment = session.segment
    session.localize._slices.value = "all slices"
    run_and_wait(qtbot, session.localize)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    segment.schedule_refresh()  # as the heatmap's data event at the end of a run does
    segment.label_all()
    qtbot.waitUntil(lambda: not segment.labelling, timeout=WORKER_TIMEOUT_MS)
    qtbot.wait(2 * DEBOUNCE_MS)
    assert "slices with a heatmap" in segment._status.value


def test_label_all_slices_decides_across_slices_in_one_undoable_step(session, qtbot):
    from napari_inpaint_seg._widget_common import heatmap_for

    viewer, image, localize, segment = session.viewer, session.image, session.localize, session.segment
    segment.label_all()  # no heatmap yet: refused, nothing created
    assert segment.labels_layer() is None and not segment.labelling

    run_and_wait(qtbot, localize)
    # A heatmap hot on the blob on slices 1-2 (the tiny model's own heat is random), flat on slice 3, where the
    # no-tumour decision empties the slice and only the volume step finds the blob going on; slice 0 has none.
    rows, cols = np.mgrid[: image.data.shape[1], : image.data.shape[2]]
    blob = (rows - BLOB_CENTRE[0]) ** 2 + (cols - BLOB_CENTRE[1]) ** 2 < 5**2
    brain = image.data[1] > 0
    heatmap = heatmap_for(viewer, image)
    heatmap.data[0] = 0
    heatmap.data[1:3] = np.where(blob, 50.0, np.where(brain, 1.0, 0.0))
    heatmap.data[3] = np.where(brain, 1.0, 0.0)
    image.metadata["modality"] = "flair"
    segment._on_image_changed()
    segment._label_value.value = 2
    segment.label_all()
    qtbot.waitUntil(lambda: not segment.labelling, timeout=WORKER_TIMEOUT_MS)

    labels = segment.labels_layer()
    written = int((labels.data == 2).sum())
    assert f"labelled ({written} px, {written * 0.9 * 1.1 * 3.0 / 1000:.2f} mL)" in segment._status.value  # TOY_AFFINE's voxels
    assert not labels.data[0].any(), "a slice without a heatmap is left alone"
    for index in (1, 2, 3):
        found = labels.data[index] == 2
        assert 2 * (found & blob).sum() / (found.sum() + blob.sum()) > 0.8, index
    labels.undo()
    assert not labels.data.any(), "one Ctrl-Z undoes the whole volume"


# ---------------------------------------------------------------- review findings: state and lost work


def test_a_runtime_error_in_the_worker_is_reported_and_the_widget_recovers(session, qtbot, monkeypatch):
    """superqt takes a job's RuntimeError (torch's out of memory among them) for a deleted worker and reports
    nothing; the widget would stay busy for good. It must end as an error with the heatmap put back."""
    import napari_inpaint_seg._widget_localize as widget_module
    from napari_inpaint_seg._widget_common import heatmap_for

    def failing(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")
        yield  # a generator, like the real one

    monkeypatch.setattr(widget_module, "localize_slice", failing)
    localize = session.localize
    with qtbot.capture_exceptions() as raised:  # napari shows a worker's error as an error notification
        localize.run()
        qtbot.waitUntil(lambda: not localize.running, timeout=15_000)
    assert any("out of memory (simulated)" in str(error) for _, error, _ in raised)
    assert "out of memory (simulated)" in localize._status.value
    assert localize._run.enabled and not localize._cancel.enabled
    assert heatmap_for(session.viewer, session.image) is None


def test_overlays_belong_to_the_layer_not_to_its_name(session, qtbot):
    """A renamed scan keeps its heatmap and the user's settings; a scan opened later under the name of a closed
    one does not inherit that one's heatmap."""
    from napari_inpaint_seg._widget_common import heatmap_for

    viewer, image, localize = session.viewer, session.image, session.localize
    run_and_wait(qtbot, localize)
    heatmap = heatmap_for(viewer, image)
    model, skull_stripped = localize._model.value, localize._skull_stripped.value
    image.name = "renamed scan"
    assert heatmap_for(viewer, image) is heatmap
    assert (localize._model.value, localize._skull_stripped.value) == (model, skull_stripped)

    viewer.layers.remove(image)
    (newcomer,) = viewer.open(str(image.metadata["source_path"]), plugin=PLUGIN)
    newcomer.name = "renamed scan"
    assert heatmap_for(viewer, newcomer) is None


def test_labels_follow_the_image_and_never_mix_two_scans(session, qtbot):
    viewer, first, localize, segment = session.viewer, session.image, session.localize, session.segment
    second = viewer.add_image(np.array(first.data), name="second scan", scale=first.scale, metadata=dict(first.metadata))
    checkpoint = localize._checkpoint.value
    for image in (first, second):
        localize.select_image(image)
        localize.select_model(checkpoint=checkpoint)  # the tiny model and the skull-stripped path, as the session set them up
        localize._skull_stripped.value = True
        run_and_wait(qtbot, localize)
        segment.select_image(image)
        qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
        segment.accept()
    first_labels, second_labels = (layer for layer in viewer.layers if layer.name in ("toy_flair labels", "second scan labels"))
    assert first_labels is not second_labels and first_labels.data[2].any() and second_labels.data[2].any()
    segment.select_image(first)
    assert segment.labels_layer() is first_labels

    segment._labels.value = second_labels  # chosen by hand for the other scan: refused, nothing written
    before = np.array(second_labels.data)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    segment.accept()
    np.testing.assert_array_equal(second_labels.data, before)


def test_a_layer_converted_from_an_overlay_is_not_drawn_into(session, qtbot):
    """napari's Convert to Labels keeps the candidate layer's metadata; the user's edits there are theirs."""
    viewer, image, segment = session.viewer, session.image, session.segment
    run_and_wait(qtbot, session.localize)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    candidate = next(layer for layer in viewer.layers if layer.name.endswith("candidate"))
    painted = np.zeros(image.data.shape, np.uint8)
    painted[2, 5:9, 5:9] = 1
    viewer.layers.remove(candidate)  # Convert to Labels replaces the layer by a labels layer with its metadata
    converted = viewer.add_labels(painted.copy(), name="my edits", metadata=dict(candidate.metadata))
    segment.swap()
    viewer.dims.set_current_step(0, 1)  # the widget clears what it drew on the slice it leaves
    qtbot.wait(800)  # past the refresh's debounce
    np.testing.assert_array_equal(converted.data, painted)


def test_an_all_slices_heatmap_is_shown_with_the_contrast_of_the_whole_scan(session, monkeypatch):
    from napari_inpaint_seg._widget_common import SYNC_ENV, heatmap_for
    from napari_inpaint_seg._widget_localize import heatmap_contrast

    monkeypatch.setenv(SYNC_ENV, "1")
    session.image.data[3] = 0  # the last slice has no brain, as the top of a real scan
    session.localize._slices.value = "all slices"
    session.localize.run()
    heatmap = heatmap_for(session.viewer, session.image)
    np.testing.assert_allclose(heatmap.contrast_limits, heatmap_contrast(np.asarray(heatmap.data)))
    assert heatmap.contrast_limits[1] > 1


def test_overlays_share_the_images_rotation(session, monkeypatch):
    from napari_inpaint_seg._widget_common import SYNC_ENV, heatmap_for

    monkeypatch.setenv(SYNC_ENV, "1")
    session.image.rotate = 30
    session.localize.run()
    heatmap = heatmap_for(session.viewer, session.image)
    np.testing.assert_allclose(heatmap.rotate, session.image.rotate)
    np.testing.assert_allclose(heatmap.affine.affine_matrix, session.image.affine.affine_matrix)


def test_accept_after_the_image_was_closed_says_so(session, qtbot, monkeypatch):
    import napari_inpaint_seg._widget_segment as segment_module

    said = []
    monkeypatch.setattr(segment_module, "show_problem", said.append)
    run_and_wait(qtbot, session.localize)
    qtbot.waitUntil(lambda: session.segment.result is not None, timeout=5_000)
    session.viewer.layers.remove(session.image)
    session.segment.accept()
    session.segment.swap()
    assert said and all("the one segmented was closed" in message for message in said)


def export_drawn_labels(session, where: tuple):
    """Paint ``where`` on a labels layer made with napari's own button, choose it in Segment and export it."""
    drawn = session.viewer.add_labels(np.zeros(session.image.data.shape, np.uint8), name="Labels")
    drawn.data[where] = 1
    session.segment._labels.reset_choices()
    session.segment._labels.value = drawn
    return session.segment.export()


def test_export_writes_a_record_without_heat_and_leaves_another_tool_s_json_alone(session):
    """Labels painted by hand with no heatmap still get a record (no localiser runs); a JSON file of the same name
    that this tool did not write is neither replaced nor edited."""
    segment = session.segment
    path = export_drawn_labels(session, (1, slice(5, 7), slice(5, 8)))
    record = json.loads(path.with_name("labels.json").read_text())
    assert record["LocaliserRuns"] == [] and record["TumourVoxels"] == 6 and record["Modality"] == "flair"
    session.answers.path = path.with_name("other.nii.gz")
    foreign = path.with_name("other.json")
    foreign.write_text('{"Name": "another tool"}')
    assert segment.export() == session.answers.path
    assert foreign.read_text() == '{"Name": "another tool"}'


def test_labels_drawn_on_a_napari_labels_layer_are_exported_aligned_with_the_scan(session):
    """A labels layer made with napari's own button has no scan geometry; drawn on the chosen scan and of its
    shape, it is saved in the scan's file order with its affine, like the widget's own labels."""
    path = export_drawn_labels(session, (2, slice(30, 34), slice(10, 12)))
    written = nib.load(str(path))
    np.testing.assert_allclose(written.affine, TOY_AFFINE)
    voxels = np.asarray(written.dataobj)
    assert voxels.shape == toy_volume().shape
    assert voxels[30:34, 10:12, 2].all() and voxels.sum() == 8


def test_acting_on_a_slice_the_view_does_not_show_warns(session, monkeypatch):
    import napari.utils.notifications as notifications

    from napari_inpaint_seg._widget_common import SYNC_ENV

    warned = []
    monkeypatch.setattr(notifications, "show_warning", warned.append)
    monkeypatch.setenv(SYNC_ENV, "1")
    session.localize.run()
    assert not warned
    session.viewer.dims.order = (1, 0, 2)  # a coronal view
    session.localize.run()
    assert len(warned) == 1 and "axial slice 2" in warned[0]


def test_closing_the_widget_during_a_run_stops_it_and_draws_nothing(session, qtbot):
    from napari_inpaint_seg._widget_common import heatmap_for

    localize = session.localize
    localize.run()
    localize._on_closed()  # what the widget's (or the viewer's) closing does
    qtbot.waitUntil(lambda: localize._job is None, timeout=WORKER_TIMEOUT_MS)
    assert heatmap_for(session.viewer, session.image) is None


def test_the_samples_truth_is_shown_for_comparison_and_never_written_into(make_napari_viewer):
    """The synthetic-lesion sample comes with its lesion as a hidden labels layer; Accept must not pick it."""
    from napari_inpaint_seg._widget_segment import NEW_LABELS, SegmentWidget

    viewer = make_napari_viewer()
    image, truth = viewer.open_sample(PLUGIN, "mni152_synthetic_lesion")
    assert truth.data.shape == image.data.shape and truth.data.any() and not truth.visible
    segment = SegmentWidget(viewer)
    segment.select_image(image)
    assert truth not in [value for _, value in segment._labels_choices()] and segment._labels.value == NEW_LABELS
    labels = segment.labels_layer(create=True)
    assert labels is not truth and not labels.data.any()


def test_label_all_slices_takes_the_no_tumour_decision_stored_with_the_model(session, qtbot):
    """A model calibrated with calibrate_decision.py carries its decision; the heatmap it made hands it to Label all
    slices, whose status says so, and the Localize status no longer asks for a calibration."""
    from napari_inpaint_seg.models.checkpoint import store_decision
    from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS

    segment, localize = session.segment, session.localize
    store_decision(session.model_path, {"min_contrast": 2.5, "grow_contrast": 1.5})
    localize._slices.value = "all slices"
    run_and_wait(qtbot, localize)
    assert "note" not in localize._status.value
    across, tuned = segment.volume_selection, DEFAULT_SELECTIONS["flair"]
    assert (across.min_contrast, across.grow_contrast, across.volume_radius) == (2.5, 1.5, tuned.volume_radius)
    segment.label_all()
    qtbot.waitUntil(lambda: not segment.labelling, timeout=WORKER_TIMEOUT_MS)
    assert segment._status.value.endswith("(settings tuned for flair, the model's own no-tumour decision (contrast 2.5))")


def test_a_shipped_models_caveat_stays_in_the_status_line(session, qtbot, tiny_model, monkeypatch):
    """The tiny model stands in for a shipped model whose modality has a caveat (the shipped T1-pre models')."""
    from napari_inpaint_seg import brain_size
    from napari_inpaint_seg.models import config

    run_and_wait(qtbot, session.localize)
    assert session.localize._status.value.count("note") == 1  # a user's own model: only that its decision is not its own
    assert session.localize._status.value.endswith("calibrate one with training_scripts/calibrate_decision.py (docs/training.md)")
    monkeypatch.setattr(config, "shipped_models", lambda: [("flair", 8)])
    monkeypatch.setattr(config, "shipped_model_path", lambda modality, gamma: tiny_model)
    monkeypatch.setitem(config.SHIPPED_MODEL_CAVEATS, "flair", "check these labels")
    monkeypatch.setattr(brain_size, "TRAINING_SECTION_PX", (1.0, 1000.0))  # the toy brain as large as the training ones
    run_and_wait(qtbot, session.localize)
    assert session.localize._status.value.startswith("done: heatmap of 1 slice(s)")
    assert session.localize._status.value.endswith("; note: check these labels")


def test_a_brain_smaller_than_the_shipped_models_saw_is_noted_in_the_status_line(session, qtbot, tiny_model, monkeypatch):
    """The toy scan's brain (a few dozen pixels across) is far smaller than the shipped models' training brains."""
    from napari_inpaint_seg.models import config

    monkeypatch.setattr(config, "shipped_models", lambda: [("flair", 8)])
    monkeypatch.setattr(config, "shipped_model_path", lambda modality, gamma: tiny_model)
    run_and_wait(qtbot, session.localize)
    status = session.localize._status.value
    assert status.startswith("done: heatmap of 1 slice(s)") and "; note: the brain is small for the shipped models" in status
    assert status.endswith("Resample in-plane in the Localize widget, or inpaint-seg segment --in-plane-zoom auto, does it)")


def resample(qtbot, localize, factor: float):
    localize._zoom.value = factor
    localize.resample()
    qtbot.waitUntil(lambda: not localize.running, timeout=WORKER_TIMEOUT_MS)


def test_resample_in_plane_adds_an_aligned_scan_that_both_widgets_then_work_on(session, qtbot):
    from napari_inpaint_seg._widget_common import PREPARED
    from napari_inpaint_seg.in_plane import zoom_prepared

    viewer, image, localize, segment = session.viewer, session.image, session.localize, session.segment
    resample(qtbot, localize, 2.0)
    resampled = viewer.layers[-1]
    assert resampled is not image and resampled.data.shape == (4, 96, 96)
    assert localize._image.value is resampled and segment._image.value is resampled
    assert "resampled in-plane by x2.00 (96x96)" in localize._status.value
    # Drawn where it was read: pixel (2r + 0.5, 2c + 0.5) of the resampled scan is pixel (r, c) of the scan.
    np.testing.assert_allclose(resampled.data_to_world((2, 2 * 30 + 0.5, 2 * 18 + 0.5)), image.data_to_world((2, 30, 18)))
    np.testing.assert_allclose(resampled.data[2, 60:62, 36:38], image.data[2, 30, 18], rtol=0.05)
    # Prepared as the command line's --in-plane-zoom: the scan's own preparation, resampled (not prepared again).
    expected, prepared = zoom_prepared(PREPARED.get(image, True), 2.0), PREPARED.get(resampled, True)
    np.testing.assert_array_equal(prepared.image, expected.image)
    np.testing.assert_array_equal(prepared.brain, expected.brain)

    localize.resample()  # a resampled scan is not resampled again
    assert viewer.layers[-1] is resampled and not localize.running


def test_labels_made_on_a_resampled_scan_are_exported_as_the_command_line_writes_them(session, qtbot, toy_scan_path, tiny_model, tmp_path):
    """Resample in-plane, Run on all slices, Label all slices, Export: the file is inpaint-seg segment --in-plane-zoom's."""
    from napari_inpaint_seg.cli import main

    localize, segment = session.localize, session.segment
    resample(qtbot, localize, 2.0)
    localize._slices.value = "all slices"
    run_and_wait(qtbot, localize)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    segment.label_all()
    qtbot.waitUntil(lambda: not segment.labelling, timeout=WORKER_TIMEOUT_MS)
    exported = nib.load(str(segment.export()))

    command_line = tmp_path / "command_line.nii.gz"
    assert main(["segment", str(toy_scan_path), "--model", str(tiny_model), "--gamma", "8", "--skull-stripped", "--in-plane-zoom", "2", "--device", "cpu",
                 "--out", str(command_line)]) == 0
    expected = nib.load(str(command_line))
    assert exported.shape == toy_volume().shape and np.asarray(expected.dataobj).any()
    np.testing.assert_allclose(exported.affine, TOY_AFFINE)
    np.testing.assert_array_equal(np.asarray(exported.dataobj) > 0, np.asarray(expected.dataobj) > 0)


def test_auto_resampling_of_a_brain_as_large_as_the_training_brains_says_there_is_nothing_to_do(session, qtbot, monkeypatch):
    from napari_inpaint_seg import brain_size

    monkeypatch.setattr(brain_size, "TRAINING_SECTION_PX", (1.0, 1000.0))
    n_layers = len(session.viewer.layers)
    resample(qtbot, session.localize, 0.0)
    assert len(session.viewer.layers) == n_layers
    assert session.localize._status.value.startswith("nothing to resample: the brain's largest axial section is")
    resample(qtbot, session.localize, 0.1)  # below the range: refused before anything runs
    assert len(session.viewer.layers) == n_layers


def test_a_scan_stored_turned_is_shown_and_segmented_as_trained_and_its_labels_saved_in_its_own_order(make_napari_viewer, tiny_model, tmp_path, qtbot):
    """The toy scan stored with its voxel axes running R, A, S (as many converters write): napari shows it turned to
    the training orientation, exactly as the toy scan stored that way is shown, and the labels accepted on it are
    written in the file's own voxel order with its affine."""
    from napari_inpaint_seg._widget_common import PREPARED
    from napari_inpaint_seg._widget_localize import LocalizeWidget
    from napari_inpaint_seg._widget_segment import SegmentWidget

    stored = nib.Nifti1Image(toy_volume(), TOY_AFFINE)
    ras = stored.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(TOY_AFFINE), nib.orientations.axcodes2ornt("RAS")))
    nib.save(ras, str(tmp_path / "turned_flair.nii.gz"))
    PREPARED.clear()
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(tmp_path / "turned_flair.nii.gz"), plugin=PLUGIN)
    np.testing.assert_array_equal(image.data, np.moveaxis(toy_volume(), -1, 0))  # as the toy scan stored as trained is shown
    localize, segment = LocalizeWidget(viewer), SegmentWidget(viewer, ask_path=lambda default: tmp_path / "labels.nii.gz")
    for widget in (localize, segment):
        widget.select_image(image)
    localize.select_model(checkpoint=tiny_model)
    localize._skull_stripped.value = True
    viewer.dims.set_current_step(0, 2)
    run_and_wait(qtbot, localize)
    qtbot.waitUntil(lambda: segment.result is not None, timeout=5_000)
    assert segment.pick_at(image.data_to_world((2, *BLOB_CENTRE)))
    segment.accept()
    written = nib.load(str(segment.export()))
    np.testing.assert_allclose(written.affine, ras.affine)
    back_as_trained = nib.Nifti1Image(np.asarray(written.dataobj), written.affine).as_reoriented(
        nib.orientations.ornt_transform(nib.io_orientation(written.affine), nib.io_orientation(TOY_AFFINE)))
    np.testing.assert_array_equal(np.asarray(back_as_trained.dataobj)[:, :, 2] > 0, segment.candidate_mask())
    PREPARED.clear()
