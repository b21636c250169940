"""Reviewing a cohort: the cases of an ``inpaint-seg segment --out-dir`` folder one after the other, each accepted,
corrected (written back, its sidecar noting the edit) or rejected, the verdicts kept in the folder's review table;
labels changed and not saved are never dropped without asking."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from conftest import TOY_AFFINE, toy_volume
from napari_inpaint_seg import launcher
from napari_inpaint_seg.cli import main
from napari_inpaint_seg.cohort import SUMMARY_NAME
from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.review import REVIEW_NAME, first_unreviewed, read_cases, read_verdicts, record_verdict


@pytest.fixture
def cohort(tmp_path, tiny_model, monkeypatch):
    """Three toy scans segmented into a folder from another working directory (relative paths in the summary), one
    of them broken (no labels)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scans").mkdir()
    for name, seed in (("sub-01", 0), ("sub-02", 1)):
        nib.save(nib.Nifti1Image(toy_volume(seed=seed), TOY_AFFINE), str(tmp_path / "scans" / f"{name}.nii.gz"))
    (tmp_path / "scans" / "sub-03.nii.gz").write_bytes(b"broken")
    (tmp_path / "labels").mkdir()
    main(["segment", "scans/sub-01.nii.gz", "scans/sub-02.nii.gz", "scans/sub-03.nii.gz", "--model", str(tiny_model), "--modality", "flair",
          "--gamma", "8", "--device", "cpu", "--skull-stripped", "--min-contrast", "0", "--out-dir", "labels"])
    monkeypatch.chdir(tmp_path / "scans")  # the review runs elsewhere: the summary's relative paths do not lead to the scans
    return tmp_path / "labels"


def table(folder):
    with open(folder / REVIEW_NAME, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_cases_are_the_scans_with_labels_found_where_they_are(cohort, tmp_path):
    cases = read_cases(cohort)
    assert [case.labels.name for case in cases] == ["sub-01_labels.nii.gz", "sub-02_labels.nii.gz"]  # the broken scan has none
    assert [case.scan for case in cases] == [tmp_path / "scans" / "sub-01.nii.gz", tmp_path / "scans" / "sub-02.nii.gz"]  # by the sidecars
    assert all(case.modality == "flair" and case.skull_stripped and float(case.tumour_ml) > 0 for case in cases)


def test_a_folder_without_a_cohort_is_refused(tmp_path):
    with pytest.raises(InputError, match=f"holds no {SUMMARY_NAME}; give the --out-dir folder"):
        read_cases(tmp_path)
    (tmp_path / SUMMARY_NAME).write_text("scan,modality,labels,tumour_voxels,tumour_ml,labelled_slices,status\nx.nii.gz,flair,,,,,failed: broken\n")
    with pytest.raises(InputError, match="lists no labels file"):
        read_cases(tmp_path)


def test_verdicts_are_kept_one_per_case_and_a_review_resumes_at_the_first_without_one(cohort):
    cases = read_cases(cohort)
    assert first_unreviewed(cases, read_verdicts(cohort)) == 0
    record_verdict(cohort, cases[0], "rejected", "label on the orbit")
    record_verdict(cohort, cases[0], "corrected", "orbit removed", 1.25)  # a second look replaces the first
    assert [(row["labels"], row["verdict"], row["note"], row["tumour_ml"]) for row in table(cohort)] == [
        ("sub-01_labels.nii.gz", "corrected", "orbit removed", "1.250")]
    assert first_unreviewed(cases, read_verdicts(cohort)) == 1
    record_verdict(cohort, cases[1], "accepted")
    assert first_unreviewed(cases, read_verdicts(cohort)) == 0
    with pytest.raises(ValueError, match="verdict must be one of"):
        record_verdict(cohort, cases[1], "maybe")


@pytest.fixture
def review(make_napari_viewer, cohort):
    answers = []
    viewer, widget = launcher.open_review(cohort, viewer=make_napari_viewer())
    widget.ask_changes = lambda case: answers.pop(0)
    return viewer, widget, answers


def labels_file(path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


@pytest.mark.gui
def test_each_case_is_shown_with_its_labels_in_the_segment_widget_and_a_verdict_opens_the_next(review, cohort):
    viewer, widget, _ = review
    first = widget.case
    assert first.labels.name == "sub-01_labels.nii.gz"
    labels = [layer for layer in viewer.layers if layer.__class__.__name__ == "Labels"]
    assert len(labels) == 1 and np.array_equal(np.moveaxis(labels[0].data, 0, 2), labels_file(first.labels))
    assert viewer.dims.current_step[0] in np.flatnonzero(labels[0].data.any(axis=(1, 2)))  # the slider on the labels
    widget._note.value = "fine"
    assert widget.give_verdict("accepted")
    assert widget.case.labels.name == "sub-02_labels.nii.gz"
    assert [layer.name for layer in viewer.layers if first.scan.name.split(".")[0] in layer.name] == []  # the first case closed
    assert [(row["labels"], row["verdict"], row["note"]) for row in table(cohort)] == [("sub-01_labels.nii.gz", "accepted", "fine")]


@pytest.mark.gui
def test_corrections_are_written_back_and_noted_in_the_sidecar(review, cohort):
    viewer, widget, _ = review
    widget.move(+1)
    case = widget.case
    layer = widget._case_labels
    layer.data = np.zeros_like(layer.data)
    layer.data[1, 10:14, 10:15] = 1  # drawn by hand: 20 voxels
    assert not widget.give_verdict("accepted")  # unsaved changes: not "accepted as is"
    assert "Save corrections" in widget._status.value
    assert widget.save_corrections()
    assert labels_file(case.labels).sum() == 20
    edit = json.loads(case.labels.with_name("sub-02_labels.json").read_text())["Edits"][0]
    assert edit["How"] == "napari-inpaint-seg: cohort review" and edit["TumourVoxels"] == 20
    row = table(cohort)[0]
    assert row["verdict"] == "corrected" and float(row["tumour_ml"]) == pytest.approx(20 * 0.9 * 1.1 * 3.0 / 1000, abs=1e-3)
    assert "that was the last case" in widget._status.value


@pytest.mark.gui
def test_changed_labels_are_not_dropped_without_asking(review, cohort):
    viewer, widget, answers = review
    case = widget.case
    before = labels_file(case.labels).copy()
    widget._case_labels.data = np.zeros_like(widget._case_labels.data)
    answers.append("cancel")
    assert not widget.move(+1) and widget.case == case  # stays, changes kept
    assert not widget._case_labels.data.any()
    answers.append("discard")
    assert widget.move(+1) and widget.case != case
    np.testing.assert_array_equal(labels_file(case.labels), before)  # the file as it was
    widget._case_labels.data = np.zeros_like(widget._case_labels.data)
    answers.append("save")
    assert widget.move(-1)
    assert labels_file(read_cases(cohort)[1].labels).sum() == 0 and read_verdicts(cohort) == {}  # saved; no verdict given


def test_the_launcher_refuses_a_review_without_a_cohort_before_napari_starts(tmp_path, toy_scan_path, capsys):
    assert launcher.main(["--review", str(tmp_path)]) == 2
    assert "holds no inpaint-seg-summary.csv" in capsys.readouterr().err
    assert launcher.main([str(toy_scan_path), "--review", str(tmp_path)]) == 2
    assert "--review opens each case's scan and labels itself" in capsys.readouterr().err


@pytest.mark.gui
def test_a_case_that_cannot_be_opened_is_reported_and_the_shown_case_stays(review, cohort, tmp_path, monkeypatch):
    import napari_inpaint_seg._widget_review as module

    viewer, widget, _ = review
    problems = []
    monkeypatch.setattr(module, "show_problem", problems.append)
    shown = widget.case
    (tmp_path / "scans" / "sub-02.nii.gz").unlink()
    assert not widget.move(+1)
    assert widget.case == shown and widget._case_labels in viewer.layers
    assert len(problems) == 1 and problems[0].startswith("case 2 cannot be opened: ") and "sub-02.nii.gz" in problems[0]


@pytest.mark.gui
def test_opening_a_cohort_over_changed_labels_asks_once(review, cohort):
    viewer, widget, answers = review
    widget._case_labels.data = np.zeros_like(widget._case_labels.data)
    asked = []
    widget.ask_changes = lambda case: asked.append(case) or "discard"
    assert widget.open_cohort(cohort)
    assert len(asked) == 1 and widget.case.labels.name == "sub-01_labels.nii.gz" and widget._case_labels.data.any()  # read again from the file


@pytest.mark.gui
def test_the_next_case_closes_what_was_drawn_over_the_last_but_not_labels_the_user_made(review, cohort):
    from napari_inpaint_seg._widget_common import OVERLAY_OF, RESAMPLED_OF, image_key

    viewer, widget, _ = review
    image = widget._case_image
    heat = viewer.add_image(np.zeros(image.data.shape, np.float32), name="heat", metadata={OVERLAY_OF: image_key(image)})
    finer = viewer.add_image(np.zeros((4, 96, 96), np.float32), name="finer", metadata={RESAMPLED_OF: image_key(image)})
    finer_heat = viewer.add_image(np.zeros((4, 96, 96), np.float32), name="finer heat", metadata={OVERLAY_OF: image_key(finer)})
    viewer.add_labels(np.zeros((4, 96, 96), np.uint8), name="my labels")  # made by the user: kept
    assert widget.move(+1)
    names = [layer.name for layer in viewer.layers]
    assert "my labels" in names and not {heat.name, finer.name, finer_heat.name} & set(names)
