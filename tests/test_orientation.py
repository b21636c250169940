"""Slices lying as the shipped models learnt them: when a scan's affine says otherwise, a note; inpaint-seg reorient."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from conftest import TOY_AFFINE, toy_volume
from napari_inpaint_seg.cli import main
from napari_inpaint_seg.io import Scan
from napari_inpaint_seg.orientation import lies_as_trained, reoriented, says_orientation, turned_note

RAS = np.array([[1.0, 0, 0, -90], [0, 1.0, 0, -126], [0, 0, 1.0, -72], [0, 0, 0, 1]])  # as the MNI152 template is stored


def test_placeholder_affines_say_nothing_and_are_never_noted():
    for affine in (np.eye(4), np.diag([1.0, 1.0, 3.0, 1.0]), np.zeros((4, 4)), None):  # the LGG files' identity among them
        assert not says_orientation(affine) and lies_as_trained(affine) and turned_note(affine) is None
    assert says_orientation(RAS) and says_orientation(TOY_AFFINE)


def test_slices_are_compared_in_plane_whatever_the_axial_axis():
    assert lies_as_trained(TOY_AFFINE)  # rows to posterior, columns to the left
    axial_first = TOY_AFFINE[:, [2, 0, 1, 3]]  # the same axes, the slices first
    assert lies_as_trained(axial_first)
    assert not lies_as_trained(RAS) and "voxel axes run RAS" in turned_note(RAS)


def test_a_reoriented_scan_keeps_every_voxel_in_its_place_in_the_world():
    data = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    turned = reoriented(Scan(data, RAS, None))
    assert lies_as_trained(turned.affine) and turned.data.shape == (6, 5, 7)
    for index in [(0, 0, 0), (4, 5, 6), (2, 3, 1)]:
        world = RAS @ [*index, 1]
        there = np.round(np.linalg.solve(turned.affine, world)[:3]).astype(int)
        assert turned.data[tuple(there)] == data[index]


def test_reorient_writes_the_scan_as_the_models_learnt_it_and_refuses_a_placeholder(tmp_path, capsys):
    volume = toy_volume()
    nib.save(nib.Nifti1Image(volume, RAS), str(tmp_path / "ras.nii.gz"))
    assert main(["reorient", str(tmp_path / "ras.nii.gz"), "--out", str(tmp_path / "pls.nii.gz")]) == 0
    assert "voxel axes RAS -> PLS" in capsys.readouterr().out
    written = nib.load(str(tmp_path / "pls.nii.gz"))
    assert nib.aff2axcodes(written.affine) == ("P", "L", "S")
    there = np.round(np.linalg.solve(written.affine, RAS @ [30, 18, 2, 1])[:3]).astype(int)  # the blob's centre, found in the world
    assert np.asarray(written.dataobj)[tuple(there)] == volume[30, 18, 2]
    assert main(["reorient", str(tmp_path / "ras.nii.gz"), "--out", str(tmp_path / "pls.nii.gz")]) == 2  # no --force
    assert "file exists" in capsys.readouterr().err
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "lgg_like.nii.gz"))
    assert main(["reorient", str(tmp_path / "lgg_like.nii.gz"), "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "does not say where anterior and right are" in capsys.readouterr().err and not (tmp_path / "x.nii.gz").exists()


@pytest.mark.parametrize("affine, noted", [(RAS, True), (TOY_AFFINE, False), (np.eye(4), False)])
def test_segmenting_a_turned_scan_with_a_shipped_model_says_so(tmp_path, capsys, affine, noted):
    volume = np.pad(toy_volume(), ((8, 8), (8, 8), (0, 0)))  # 64 x 64: room for the shipped gamma = 32 window
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "scan.nii.gz"))
    assert main(["segment", str(tmp_path / "scan.nii.gz"), "--modality", "flair", "--gamma", "32", "--skull-stripped", "--slices", "1",
                 "--device", "cpu", "--out", str(tmp_path / "labels.nii.gz")]) == 0
    assert ("note: this scan's voxel axes run RAS" in capsys.readouterr().err) == noted
