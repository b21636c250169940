"""``napari-inpaint-seg [SCAN] --modality``: argument problems before napari starts; a viewer ready to work."""

from __future__ import annotations

import json

import pytest

from napari_inpaint_seg import launcher


def test_missing_scan_is_an_error_before_napari_starts(tmp_path, capsys):
    assert launcher.main([str(tmp_path / "missing.nii.gz")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_broken_scan_and_missing_model_are_errors(tmp_path, capsys, toy_scan_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a scan")
    assert launcher.main([str(broken)]) == 2
    assert "not a readable NIfTI" in capsys.readouterr().err
    assert launcher.main([str(toy_scan_path), "--model", str(tmp_path / "none.safetensors")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x01")
    assert launcher.main([str(toy_scan_path), "--model", str(corrupt)]) == 2
    assert "not a readable safetensors checkpoint" in capsys.readouterr().err


def test_a_scan_needs_its_modality_and_a_model_its_own(toy_scan_path, tiny_model, capsys, tmp_path):
    """Without --modality the FLAIR model would run on a T1 scan, confidently wrong, without a warning."""
    unnamed = tmp_path / "scan.nii.gz"  # a name that does not state the sequence
    unnamed.write_bytes(toy_scan_path.read_bytes())
    assert launcher.main([str(unnamed)]) == 2
    assert "--modality" in capsys.readouterr().err
    args = launcher.build_parser().parse_args([str(toy_scan_path), "--model", str(tiny_model)])
    launcher.read_arguments(args)
    assert args.modality == "flair"  # the checkpoint says what it was trained on
    assert launcher.main([str(toy_scan_path), "--model", str(tiny_model), "--modality", "t1"]) == 2
    assert "trained on flair, not t1" in capsys.readouterr().err


def test_a_file_name_that_states_the_modality_needs_no_flag(tmp_path, toy_scan_path):
    bids = tmp_path / "sub-01_T1w.nii.gz"
    bids.write_bytes(toy_scan_path.read_bytes())
    args = launcher.build_parser().parse_args([str(bids)])
    _, kwargs, _ = launcher.read_arguments(args)
    assert args.modality == "t1" and kwargs["metadata"]["modality"] == "t1"
    args = launcher.build_parser().parse_args([str(bids), "--modality", "flair"])  # what the user says wins
    assert launcher.read_arguments(args)[1]["metadata"]["modality"] == "flair"


@pytest.mark.gui
def test_opens_the_scan_with_both_widgets(make_napari_viewer, toy_scan_path, tiny_model):
    viewer = make_napari_viewer()
    args = launcher.build_parser().parse_args([str(toy_scan_path), "--modality", "flair", "--model", str(tiny_model), "--skull-stripped"])
    _, localize, segment = launcher.open_viewer(args, launcher.read_arguments(args), viewer=viewer)
    image = viewer.layers["toy_flair"]
    assert image.metadata["modality"] == "flair" and image.metadata["skull_stripped"]
    assert localize._image.value is image and segment._image.value is image
    assert localize.model_paths() == (tiny_model,)
    assert localize._skull_stripped.value
    assert viewer.dims.current_step[0] == 2


@pytest.mark.gui
@pytest.mark.slow
def test_default_is_the_template(make_napari_viewer):
    viewer = make_napari_viewer()
    args = launcher.build_parser().parse_args([])
    _, localize, _ = launcher.open_viewer(args, viewer=viewer)
    assert localize._image.value.metadata["modality"] == "t1"


def labels_for(scan_path, tmp_path, name="labels.nii.gz", shape=None, affine=None):
    """Labels as inpaint-seg segment writes them for the scan (or on another grid)."""
    import nibabel as nib
    import numpy as np

    from napari_inpaint_seg.io import read_scan, write_labels

    scan = read_scan(scan_path)
    labels = np.zeros(shape or scan.data.shape, np.uint8)
    labels[25:35, 13:23, 1:3] = 1
    path = tmp_path / name
    if shape is None and affine is None:
        write_labels(path, labels, scan)
    else:
        nib.save(nib.Nifti1Image(labels, scan.affine if affine is None else affine), str(path))
    return path


def test_labels_to_review_must_be_on_the_scans_grid(toy_scan_path, tmp_path, capsys):
    import numpy as np

    good = labels_for(toy_scan_path, tmp_path)
    args = launcher.build_parser().parse_args([str(toy_scan_path), "--labels", str(good)])
    data, kwargs, kind = launcher.read_review_labels(args, launcher.read_arguments(args))
    assert kind == "labels" and data.shape == (4, 48, 48) and data.sum() == 200 and kwargs["metadata"]["inpaint_seg_read_as_labels"]
    for bad, message in ((labels_for(toy_scan_path, tmp_path, "small.nii.gz", shape=(24, 24, 4)), "shape (24, 24, 4) differs from the shape (48, 48, 4)"),
                         (labels_for(toy_scan_path, tmp_path, "moved.nii.gz", affine=np.eye(4)), "the affine (where the voxels lie) differs"),
                         (toy_scan_path, "not labels (whole numbers from 0 to 255)")):
        assert launcher.main([str(toy_scan_path), "--labels", str(bad)]) == 2
        assert message in capsys.readouterr().err
    assert launcher.main(["--labels", str(good)]) == 2
    assert "--labels needs the scan they were made for" in capsys.readouterr().err


@pytest.mark.gui
def test_labels_opened_for_review_are_corrected_and_written_back(make_napari_viewer, toy_scan_path, tiny_model, tmp_path):
    import nibabel as nib
    import numpy as np

    path = labels_for(toy_scan_path, tmp_path)
    viewer = make_napari_viewer()
    args = launcher.build_parser().parse_args([str(toy_scan_path), "--model", str(tiny_model), "--labels", str(path)])
    layer_data = launcher.read_arguments(args)
    _, _, segment = launcher.open_viewer(args, layer_data, viewer=viewer, labels_data=launcher.read_review_labels(args, layer_data))
    labels = segment.labels_layer()
    assert labels is viewer.layers["labels"] and labels.data[1:3].sum() == 200
    labels.data[1, 30:32, 18:20] = 0  # a correction
    sidecar = path.with_name(path.name.replace(".nii.gz", ".json"))
    sidecar.write_text(json.dumps({"GeneratedBy": [{"Name": "napari-inpaint-seg", "Version": "0.1.0"}], "TumourVoxels": 200}))  # as the CLI's
    asked = []
    segment.ask_path = lambda default: asked.append(default) or default
    segment.confirm_overwrite = lambda _: True
    assert segment.export() == path and asked == [path]  # back to the file it came from, after asking
    written = nib.load(str(path))
    np.testing.assert_allclose(written.affine, nib.load(str(toy_scan_path)).affine)
    assert np.asarray(written.dataobj).sum() == 196
    record = json.loads(sidecar.read_text())  # what the command line made stays; the edit is added
    assert record["TumourVoxels"] == 200 and [edit["TumourVoxels"] for edit in record["Edits"]] == [196]
    assert record["Edits"][0]["How"] == "napari-inpaint-seg: Export labels"
