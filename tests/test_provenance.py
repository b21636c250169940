"""Every labels file the command line writes has a JSON sidecar saying what made it: the command, the models (file
and hash), every setting as it was resolved, what was done to the scan's geometry, and what was found."""

from __future__ import annotations

import hashlib
import json
import os

import nibabel as nib
import numpy as np
import pytest

from conftest import TOY_AFFINE, toy_volume
from napari_inpaint_seg import __version__
from napari_inpaint_seg.cli import main
from napari_inpaint_seg.localizer import FAST_PATH_REVISION
from napari_inpaint_seg._reader import read_layers
from napari_inpaint_seg._writer import write_labels_layer
from napari_inpaint_seg.provenance import localiser_runs_after, record_edit, sidecar_maker, sidecar_path

SETTINGS = ["--modality", "flair", "--gamma", "8", "--device", "cpu", "--skull-stripped", "--min-contrast", "0"]


@pytest.fixture
def scan(tmp_path):
    path = tmp_path / "sub-01.nii.gz"
    nib.save(nib.Nifti1Image(toy_volume(), TOY_AFFINE), str(path))
    return path


def test_the_sidecar_names_the_name_of_the_labels_file_with_json(tmp_path):
    assert sidecar_path(tmp_path / "sub-01_labels.nii.gz") == tmp_path / "sub-01_labels.json"
    assert sidecar_path(tmp_path / "a.b.nii") == tmp_path / "a.b.json"


def test_the_sidecar_records_what_made_the_labels(scan, tiny_model, tmp_path):
    command = ["segment", str(scan), "--model", str(tiny_model), *SETTINGS, "--out", str(tmp_path / "labels.nii.gz")]
    assert main(command) == 0
    record = json.loads((tmp_path / "labels.json").read_text())
    labels = np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj)
    assert record["Command"] == ["inpaint-seg", *command] and record["GeneratedBy"][0]["Version"] == __version__
    assert record["WorkingDirectory"] == os.getcwd()
    assert record["Sources"] == [str(scan.resolve())] and record["Modality"] == "flair"
    (model,) = record["Models"]
    assert model["SHA256"] == hashlib.sha256(tiny_model.read_bytes()).hexdigest() and model["Gamma"] == 8 and not model["Shipped"]
    # the defaults, resolved (an 8-px window at stride 4 starts on the coarse grid: no period covers it evenly)
    assert record["Localiser"]["Windows"] == [{"Gamma": 8, "Step": 4, "FirstPeriod": None, "RefineFraction": 0.15}]
    assert record["Localiser"]["Path"] == "fast" and record["Localiser"]["ErrorSign"] == "bright"
    assert record["Localiser"]["FastPathRevision"] == FAST_PATH_REVISION
    assert record["Selection"]["min_contrast"] == 0 and record["Selection"]["grow_contrast"] == 4.0 and record["Superpixels"]["scale"] == 50
    assert record["Geometry"] == {"BrainExtraction": "none (--skull-stripped)", "InPlaneZoom": None, "TurnedFromAxes": None}
    assert record["TumourVoxels"] == int(labels.sum()) > 0 and record["LabelledSlices"] == int(labels.any(axis=(0, 1)).sum())
    assert record["TumourMillilitres"] == pytest.approx(labels.sum() * 0.9 * 1.1 * 3.0 / 1000, abs=1e-3)


def test_the_recorded_command_makes_the_same_labels_again(scan, tiny_model, tmp_path):
    assert main(["segment", str(scan), "--model", str(tiny_model), *SETTINGS, "--slices", "1,2", "--out", str(tmp_path / "labels.nii.gz")]) == 0
    first = np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj).copy()
    record = json.loads((tmp_path / "labels.json").read_text())
    assert record["Slices"] == [1, 2]
    assert main([*record["Command"][1:], "--force"]) == 0
    np.testing.assert_array_equal(np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj), first)


def test_what_was_done_to_the_geometry_is_recorded(scan, tiny_model, tmp_path):
    ras = nib.load(str(scan)).as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(TOY_AFFINE), nib.orientations.axcodes2ornt("RAS")))
    nib.save(ras, str(tmp_path / "turned.nii.gz"))
    assert main(["segment", str(tmp_path / "turned.nii.gz"), "--model", str(tiny_model), *SETTINGS, "--in-plane-zoom", "2",
                 "--out", str(tmp_path / "labels.nii.gz")]) == 0
    geometry = json.loads((tmp_path / "labels.json").read_text())["Geometry"]
    assert geometry["TurnedFromAxes"] == "RAS" and geometry["InPlaneZoom"] == 2.0


def test_an_existing_sidecar_is_not_replaced_without_force(scan, tiny_model, tmp_path, capsys):
    (tmp_path / "labels.json").write_text("my notes")
    assert main(["segment", str(scan), "--model", str(tiny_model), *SETTINGS, "--out", str(tmp_path / "labels.nii.gz")]) == 2
    assert "labels.json: file exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "labels.json").read_text() == "my notes" and not (tmp_path / "labels.nii.gz").exists()


def test_a_cohort_writes_one_sidecar_per_labels_file(scan, tiny_model, tmp_path):
    second = tmp_path / "sub-02.nii.gz"
    nib.save(nib.Nifti1Image(toy_volume(seed=1), TOY_AFFINE), str(second))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["segment", str(scan), str(second), "--model", str(tiny_model), *SETTINGS, "--out-dir", str(out)]) == 0
    for name in ("sub-01", "sub-02"):
        record = json.loads((out / f"{name}_labels.json").read_text())
        assert record["Sources"] == [str((tmp_path / f"{name}.nii.gz").resolve())]
        assert record["TumourVoxels"] == int(np.asarray(nib.load(str(out / f"{name}_labels.nii.gz")).dataobj).sum())


def test_labels_saved_again_from_napari_keep_their_record_and_note_the_edit(scan, tiny_model, tmp_path):
    out = tmp_path / "labels.nii.gz"
    assert main(["segment", str(scan), "--model", str(tiny_model), *SETTINGS, "--out", str(out)]) == 0
    made = json.loads((tmp_path / "labels.json").read_text())
    data, kwargs, _ = read_layers(str(scan))[0]
    corrected = np.zeros(data.shape, np.uint8)
    corrected[1, 10:14, 10:15] = 1  # 20 voxels, drawn by hand
    write_labels_layer(str(out), corrected, {"metadata": kwargs["metadata"], "scale": kwargs["scale"]})  # napari's File > Save
    record = json.loads((tmp_path / "labels.json").read_text())
    assert {key: value for key, value in record.items() if key != "Edits"} == made
    (edit,) = record["Edits"]
    assert edit["How"] == "napari: File > Save" and edit["TumourVoxels"] == 20 and edit["LabelledSlices"] == 1
    assert edit["TumourMillilitres"] == pytest.approx(20 * 0.9 * 1.1 * 3.0 / 1000, abs=1e-3)


def test_a_sidecar_that_is_not_ours_or_is_missing_is_left_alone(tmp_path):
    labels = np.ones((4, 4, 2), np.uint8)
    assert not record_edit(tmp_path / "none.nii.gz", labels, np.eye(4), "test")
    for name, text in (("foreign", '{"GeneratedBy": [{"Name": "another tool"}]}'), ("broken", "{not json"), ("list", "[1, 2]")):
        (tmp_path / f"{name}.json").write_text(text)
        assert not record_edit(tmp_path / f"{name}.nii.gz", labels, np.eye(4), "test")
        assert (tmp_path / f"{name}.json").read_text() == text


def test_the_runs_behind_a_heatmap_name_for_each_slice_the_settings_of_its_heat_now():
    first, second = {"Localiser": {"Step": 4}}, {"Localiser": {"Step": 8}}
    runs = localiser_runs_after([], first, [0, 1, 2, 3])
    assert runs == [{**first, "Slices": [0, 1, 2, 3]}]
    runs = localiser_runs_after(runs, second, [2, 1])
    assert runs == [{**first, "Slices": [0, 3]}, {**second, "Slices": [1, 2]}]
    assert localiser_runs_after(runs, second, [0, 1, 2, 3]) == [{**second, "Slices": [0, 1, 2, 3]}]  # nothing of the first is left


def test_who_wrote_a_sidecar_is_told_apart(scan, tiny_model, tmp_path):
    labels = tmp_path / "labels.nii.gz"
    assert sidecar_maker(labels) is None
    assert main(["segment", str(scan), "--model", str(tiny_model), *SETTINGS, "--out", str(labels)]) == 0
    assert sidecar_maker(labels) == "command line"
    (tmp_path / "napari.json").write_text(json.dumps({"GeneratedBy": [{"Name": "napari-inpaint-seg"}], "MadeIn": "napari"}))
    assert sidecar_maker(tmp_path / "napari.nii.gz") == "napari"
    for name, text in (("foreign", '{"GeneratedBy": [{"Name": "another tool"}]}'), ("broken", "{not json")):
        (tmp_path / f"{name}.json").write_text(text)
        assert sidecar_maker(tmp_path / f"{name}.nii.gz") == "other"


def test_an_evaluation_records_the_run_and_its_models(tmp_path, tiny_model_path, monkeypatch):
    from napari_inpaint_seg import evaluation

    data = tmp_path / "lgg"
    data.mkdir()
    for suffix in ("t1pre", "mask"):
        nib.save(nib.Nifti1Image(np.zeros((16, 16, 8), np.float32), np.eye(4)), str(data / f"P1_{suffix}.nii.gz"))
    (tmp_path / "patients.txt").write_text("P1\n")
    monkeypatch.setattr(evaluation, "evaluate_lgg", lambda *args, **kwargs: {"selections": {}, "inpainting": {}})  # the scores are not the point
    command = ["evaluate", "--data", str(data), "--patients", str(tmp_path / "patients.txt"), "--modality", "t1", "--gamma", "8",
               "--model", str(tiny_model_path), "--device", "cpu", "--json", str(tmp_path / "out.json")]
    assert main(command) == 0
    provenance = json.loads((tmp_path / "out.json").read_text())["provenance"]
    assert provenance["Command"] == ["inpaint-seg", *command] and provenance["GeneratedBy"][0]["Version"] == __version__
    assert [model["SHA256"] for model in provenance["Models"]] == [hashlib.sha256(tiny_model_path.read_bytes()).hexdigest()]
