"""Reading scans and writing labels that stay aligned with them, safely."""

from __future__ import annotations

import os
import stat

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.io import read_scan, write_atomically, write_float_volume, write_labels


def oblique_affine() -> np.ndarray:
    """Anisotropic voxels, a rotation about z and an offset: nothing an identity-assuming writer gets right."""
    angle = np.deg2rad(17)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, 1.1, 3.0])
    affine[:3, 3] = [-90.5, 12.25, 40.0]
    return affine


def write_scan(path, data, affine=None):
    img = nib.Nifti1Image(data, oblique_affine() if affine is None else affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(img.affine, code=1)
    img.header.set_sform(img.affine, code=2)
    img.header["descrip"] = b"test scan"
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_labels_round_trip_keeps_geometry_and_header(tmp_path, suffix):
    data = np.random.default_rng(0).integers(-200, 900, size=(20, 18, 7)).astype(np.int16)
    source = write_scan(tmp_path / f"scan{suffix}", data)
    scan = read_scan(source)
    assert scan.data.shape == data.shape and scan.data.dtype == np.float32
    np.testing.assert_array_equal(scan.data, data)

    labels = np.zeros(data.shape, dtype=np.uint8)
    labels[5:9, 3:11, 2] = 1
    out = write_labels(tmp_path / f"labels{suffix}", labels, scan)

    written, original = nib.load(str(out)), nib.load(str(source))
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels)
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(written.affine, original.affine)
    for field in ("pixdim", "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "srow_x", "srow_y", "srow_z", "xyzt_units", "dim"):
        np.testing.assert_array_equal(written.header[field], original.header[field], err_msg=field)
    np.testing.assert_array_equal(written.get_qform(), original.get_qform())
    assert written.dataobj.slope == 1 and written.dataobj.inter == 0  # labels are stored unscaled


def test_float_map_keeps_qform(tmp_path):
    source = write_scan(tmp_path / "scan.nii.gz", np.ones((8, 9, 10), np.float32))
    scan = read_scan(source)
    heatmap = np.random.default_rng(1).random(scan.data.shape).astype(np.float32)
    out = nib.load(str(write_float_volume(tmp_path / "heat.nii.gz", heatmap, scan)))
    np.testing.assert_array_equal(np.asarray(out.dataobj), heatmap)
    assert int(out.header["qform_code"]) == 1
    np.testing.assert_allclose(out.get_qform(), nib.load(str(source)).get_qform())


def test_read_png_slice(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(21, 33)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "slice.png")
    scan = read_scan(tmp_path / "slice.png")
    assert not scan.is_volume and scan.header is None
    np.testing.assert_array_equal(scan.data, pixels)
    np.testing.assert_array_equal(scan.affine, np.eye(4))


def test_read_rgb_png_as_grey(tmp_path):
    pixels = np.zeros((10, 12, 3), np.uint8)
    pixels[2:5, 3:7] = 200
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    scan = read_scan(tmp_path / "rgb.png")
    assert scan.data.shape == (10, 12)
    np.testing.assert_allclose(scan.data[3, 4], 200, atol=1)
    assert scan.data[0, 0] == 0


def test_two_dimensional_nifti_is_a_single_slice(tmp_path):
    nib.save(nib.Nifti1Image(np.arange(30, dtype=np.float32).reshape(5, 6), np.eye(4)), str(tmp_path / "slice.nii.gz"))
    scan = read_scan(tmp_path / "slice.nii.gz")
    assert scan.data.shape == (5, 6) and not scan.is_volume


def test_single_frame_series_is_a_volume(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((5, 6, 7, 1), np.float32), np.eye(4)), str(tmp_path / "one_frame.nii"))
    assert read_scan(tmp_path / "one_frame.nii").data.shape == (5, 6, 7)


def test_refuses_to_overwrite_without_force(tmp_path):
    scan = read_scan(write_scan(tmp_path / "scan.nii.gz", np.ones((6, 6, 6), np.float32)))
    out = tmp_path / "labels.nii.gz"
    out.write_bytes(b"earlier work")
    with pytest.raises(InputError, match="exists"):
        write_labels(out, np.zeros((6, 6, 6), np.uint8), scan)
    assert out.read_bytes() == b"earlier work"
    write_labels(out, np.ones((6, 6, 6), np.uint8), scan, force=True)
    assert np.asarray(nib.load(str(out)).dataobj).sum() == 216


def test_refuses_labels_of_another_shape(tmp_path):
    scan = read_scan(write_scan(tmp_path / "scan.nii.gz", np.ones((6, 6, 6), np.float32)))
    with pytest.raises(InputError, match="shape"):
        write_labels(tmp_path / "labels.nii.gz", np.zeros((6, 6, 5), np.uint8), scan)
    assert not (tmp_path / "labels.nii.gz").exists()


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_leaves_no_file(tmp_path, monkeypatch, error):
    """A writer that dies halfway through leaves neither the output nor its temporary file behind."""
    scan = read_scan(write_scan(tmp_path / "scan.nii.gz", np.ones((6, 6, 6), np.float32)))
    before = set(os.listdir(tmp_path))

    def half_write(self, filename, *args, **kwargs):
        with open(filename, "wb") as handle:
            handle.write(b"\x1f\x8b partial")
        raise error

    monkeypatch.setattr(nib.Nifti1Image, "to_filename", half_write)
    with pytest.raises((InputError, RuntimeError, KeyboardInterrupt)):
        write_labels(tmp_path / "labels.nii.gz", np.zeros((6, 6, 6), np.uint8), scan)
    assert set(os.listdir(tmp_path)) == before


def test_failed_overwrite_keeps_the_old_file(tmp_path, monkeypatch):
    scan = read_scan(write_scan(tmp_path / "scan.nii.gz", np.ones((6, 6, 6), np.float32)))
    out = write_labels(tmp_path / "labels.nii.gz", np.ones((6, 6, 6), np.uint8), scan)
    old = out.read_bytes()

    def failing(self, filename, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(nib.Nifti1Image, "to_filename", failing)
    with pytest.raises(RuntimeError):
        write_labels(out, np.zeros((6, 6, 6), np.uint8), scan, force=True)
    assert out.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["labels.nii.gz", "scan.nii.gz"]


def test_written_files_get_ordinary_permissions(tmp_path):
    """mkstemp creates 0600 files; the renamed output must follow the umask like any other file."""
    old_mask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "out.json", lambda tmp: open(tmp, "w").write("{}"))
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o644


def test_output_folder_must_exist(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_labels(tmp_path / "missing" / "labels.nii.gz", np.zeros((2, 2, 2), np.uint8))


def test_output_must_be_nifti(tmp_path):
    with pytest.raises(InputError, match="NIfTI"):
        write_labels(tmp_path / "labels.png", np.zeros((2, 2, 2), np.uint8))
