"""``napari-inpaint-seg [SCAN] --modality``: argument problems before napari starts; a viewer ready to work."""

from __future__ import annotations

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
