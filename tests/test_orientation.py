"""Slices lying as the shipped models learnt them: a scan whose affine says otherwise is turned for segmenting, and
what is made on it goes back to the file's own voxel order."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from conftest import TOY_AFFINE, toy_volume
from napari_inpaint_seg.cli import main
from napari_inpaint_seg.io import Scan
from napari_inpaint_seg.orientation import as_trained, lies_as_trained, reoriented, says_orientation, to_file_order

RAS = np.array([[1.0, 0, 0, -90], [0, 1.0, 0, -126], [0, 0, 1.0, -72], [0, 0, 0, 1]])  # as the MNI152 template is stored


def test_placeholder_affines_say_nothing_and_leave_the_scan_as_stored():
    for affine in (np.eye(4), np.diag([1.0, 1.0, 3.0, 1.0]), np.zeros((4, 4)), None):  # the LGG files' identity among them
        assert not says_orientation(affine) and lies_as_trained(affine)
    assert says_orientation(RAS) and says_orientation(TOY_AFFINE)


def test_slices_are_compared_in_plane_whatever_the_axial_axis():
    assert lies_as_trained(TOY_AFFINE)  # rows to posterior, columns to the left
    axial_first = TOY_AFFINE[:, [2, 0, 1, 3]]  # the same axes, the slices first
    assert lies_as_trained(axial_first)
    assert not lies_as_trained(RAS)


def test_a_reoriented_scan_keeps_every_voxel_in_its_place_in_the_world():
    data = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    turned = reoriented(Scan(data, RAS, None))
    assert lies_as_trained(turned.affine) and turned.data.shape == (6, 5, 7)
    for index in [(0, 0, 0), (4, 5, 6), (2, 3, 1)]:
        world = RAS @ [*index, 1]
        there = np.round(np.linalg.solve(turned.affine, world)[:3]).astype(int)
        assert turned.data[tuple(there)] == data[index]


def test_arrays_made_on_the_turned_grid_go_back_to_the_files_order():
    data = np.random.default_rng(1).random((5, 6, 7)).astype(np.float32)
    turned, back = as_trained(Scan(data, RAS, None))
    np.testing.assert_array_equal(to_file_order(turned.data, back), data)
    same, none = as_trained(Scan(data, np.eye(4), None))  # an LGG file: as stored
    assert same.data is data and none is None and to_file_order(data, none) is data


def test_the_command_line_segments_a_turned_scan_as_trained_and_writes_the_files_order(tmp_path, tiny_model, capsys):
    stored = nib.Nifti1Image(toy_volume(), TOY_AFFINE)
    ras = stored.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(TOY_AFFINE), nib.orientations.axcodes2ornt("RAS")))
    nib.save(stored, str(tmp_path / "as_trained.nii.gz"))
    nib.save(ras, str(tmp_path / "turned.nii.gz"))
    for name in ("as_trained", "turned"):
        assert main(["segment", str(tmp_path / f"{name}.nii.gz"), "--model", str(tiny_model), "--modality", "flair", "--gamma", "8", "--skull-stripped",
                     "--min-contrast", "0", "--device", "cpu", "--out", str(tmp_path / f"{name}_labels.nii.gz")]) == 0
    assert "voxel axes RAS by the affine: slices turned to PLS" in capsys.readouterr().err
    expected, turned = (nib.load(str(tmp_path / f"{name}_labels.nii.gz")) for name in ("as_trained", "turned"))
    np.testing.assert_allclose(turned.affine, ras.affine)
    assert np.asarray(expected.dataobj).any()
    back = nib.Nifti1Image(np.asarray(turned.dataobj), turned.affine).as_reoriented(
        nib.orientations.ornt_transform(nib.io_orientation(turned.affine), nib.io_orientation(TOY_AFFINE)))
    np.testing.assert_array_equal(np.asarray(back.dataobj), np.asarray(expected.dataobj))
