"""A folder holding a DICOM series reads as a scan lying where its NIfTI conversion would, and is segmented."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import toy_volume
from napari_inpaint_seg.cli import main
from napari_inpaint_seg.dicom import kept_locale
from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.io import read_scan

SPACING = (0.9, 1.1, 3.0)
ORIGIN = (-40.0, 20.0, 5.0)  # patient coordinates (LPS), as DICOM gives them


def write_series(folder, volume, series_uid="1.2.826.0.1.3680043.2.1125.7"):
    """``volume`` (column, row, slice) as one DICOM file per slice, axial, with the tags a scanner writes."""
    folder.mkdir()
    image = sitk.GetImageFromArray(np.transpose(volume, (2, 1, 0)).astype(np.int16))
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    with kept_locale():  # GDCM's writer leaves the C locale set: later subprocess output would be decoded as ASCII
        write_slices(folder, image, series_uid)
    return folder


def write_slices(folder, image, series_uid):
    direction = image.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(image.GetDepth()):
        one = image[:, :, z]
        for tag, value in (("0008|0060", "MR"), ("0020|000d", "1.2.826.0.1.3680043.2.1125.1"), ("0020|000e", series_uid),
                           ("0020|0013", str(z + 1)), ("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, z))))),
                           ("0020|0037", "\\".join(map(str, (direction[0], direction[3], direction[6], direction[1], direction[4], direction[7])))),
                           ("0018|0050", str(SPACING[2]))):
            one.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{z:03d}.dcm"))
        writer.Execute(one)


def test_a_series_reads_with_its_voxels_and_where_they_lie(tmp_path):
    volume = np.round(toy_volume() * 1000)
    scan = read_scan(write_series(tmp_path / "sub-01_FLAIR", volume))
    np.testing.assert_array_equal(scan.data, volume)
    assert scan.is_volume and scan.path == tmp_path / "sub-01_FLAIR"
    # RAS: DICOM's x (patient's left) and y (posterior) change sign; the voxel sizes are the series'.
    np.testing.assert_allclose(scan.affine @ [0, 0, 0, 1], [40.0, -20.0, 5.0, 1])
    np.testing.assert_allclose(scan.affine[:3, :3], np.diag([-0.9, -1.1, 3.0]))
    assert nib.aff2axcodes(scan.affine) == ("L", "P", "S")


def test_a_folder_of_other_files_or_of_two_series_is_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    with pytest.raises(InputError, match="is a folder without a DICOM series"):
        read_scan(tmp_path / "notes")
    two = write_series(tmp_path / "two", toy_volume()[:, :, :2] * 100)
    other = write_series(tmp_path / "other", toy_volume()[:, :, :2] * 100, series_uid="1.2.826.0.1.3680043.2.1125.8")
    for file in other.iterdir():
        file.rename(two / f"other_{file.name}")
    with pytest.raises(InputError, match="holds 2 DICOM series"):
        read_scan(two)


def test_a_series_is_segmented_into_a_nifti_that_lies_where_it_does(tmp_path, tiny_model):
    series = write_series(tmp_path / "sub-01_FLAIR", np.round(toy_volume() * 1000))
    assert main(["segment", str(series), "--model", str(tiny_model), "--gamma", "8", "--skull-stripped", "--min-contrast", "0", "--device", "cpu",
                 "--out", str(tmp_path / "labels.nii.gz")]) == 0
    labels = nib.load(str(tmp_path / "labels.nii.gz"))
    np.testing.assert_allclose(labels.affine, read_scan(series).affine)
    assert labels.shape == toy_volume().shape and np.asarray(labels.dataobj).any()


def test_napari_opens_a_series_folder_and_leaves_other_folders_to_other_readers(tmp_path):
    from napari_inpaint_seg._reader import napari_get_reader

    series = write_series(tmp_path / "series", np.round(toy_volume() * 1000))
    (tmp_path / "empty").mkdir()
    assert napari_get_reader(str(tmp_path / "empty")) is None
    ((data, kwargs, kind),) = napari_get_reader(str(series))(str(series))
    assert kind == "image" and data.shape == (4, 48, 48) and kwargs["metadata"]["source_path"] == str(series)


@pytest.mark.gui
def test_napari_open_folder_shows_a_series_as_trained(make_napari_viewer, tmp_path):
    from napari_inpaint_seg import PLUGIN

    volume = np.round(toy_volume() * 1000)
    series = write_series(tmp_path / "sub-01_FLAIR", volume)
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(series), plugin=PLUGIN)
    assert image.name == "sub-01_FLAIR" and image.metadata["modality"] == "flair"
    # Stored column by column (L, P, S by its geometry), shown row by row: anterior at the top, right on the left.
    np.testing.assert_array_equal(image.data, np.transpose(volume, (2, 1, 0)))
