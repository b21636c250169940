"""The reader: which files it takes, what layers it makes, and what a user sees for a broken file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from conftest import TOY_AFFINE, toy_volume
from napari_inpaint_seg._reader import NO_LAYER, napari_get_reader, read_layers


@pytest.mark.parametrize("name", ["scan.nii", "scan.nii.gz", "SCAN.NII.GZ", "slice.png", "slice.jpg", "slice.tif", "slice.tiff"])
def test_accepts_nifti_and_2d_images(name):
    assert napari_get_reader(name) is read_layers
    assert napari_get_reader([name]) is read_layers


@pytest.mark.parametrize("path", ["notes.txt", "volume.zarr", "scan.gz", "scan.nii.bak", ["a.nii.gz", "b.txt"], []])
def test_returns_none_for_anything_else(path):
    assert napari_get_reader(path) is None


def test_leaves_stacks_to_other_readers(tmp_path):
    """napari passes several paths only to stack them into one layer, and a multi-page TIFF is a stack: this
    reader could only refuse them, which would keep napari's own reader from opening them."""
    import tifffile

    assert napari_get_reader(["a.nii.gz", "b.nii.gz"]) is None
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((5, 20, 24), np.uint8))
    tifffile.imwrite(tmp_path / "slice.tif", np.zeros((20, 24), np.uint8))
    assert napari_get_reader(str(tmp_path / "stack.tif")) is None
    assert napari_get_reader(str(tmp_path / "slice.tif")) is read_layers


def test_volume_is_shown_with_axial_slices_on_the_slider(toy_scan_path):
    (data, kwargs, layer_type), = read_layers(str(toy_scan_path))
    assert layer_type == "image"
    assert data.shape == (4, 48, 48)
    np.testing.assert_array_equal(data[2], toy_volume()[:, :, 2])
    np.testing.assert_allclose(kwargs["scale"], [3.0, 0.9, 1.1])
    metadata = kwargs["metadata"]
    np.testing.assert_allclose(metadata["affine"], TOY_AFFINE)
    assert isinstance(metadata["nifti_header"], nib.Nifti1Header)
    assert metadata["axial_axis"] == 2 and metadata["source_path"] == str(toy_scan_path)
    assert kwargs["name"] == "toy_flair"
    assert metadata["modality"] == "flair"  # as the name states


@pytest.mark.parametrize(("name", "modality"), [
    ("sub-01_FLAIR.nii.gz", "flair"), ("sub-01_ses-1_T1w.nii", "t1"), ("TCGA_CS_4941_19960909_t1pre.nii.gz", "t1"),
    ("TCGA_CS_4941_19960909_flair.nii.gz", "flair"), ("sub-01_ce-gadolinium_T1w.nii.gz", None), ("sub-01_T2w.nii.gz", None),
    ("scan.nii.gz", None), ("flair_scan.nii.gz", None), ("sub-01_flair.png", "flair"),
])
def test_the_modality_is_the_one_the_file_name_states(tmp_path, name, modality):
    """BIDS suffixes and the LGG layout; a contrast-enhanced T1w is not T1-pre; nothing else is guessed."""
    path = tmp_path / name
    if name.endswith(".png"):
        import imageio.v3 as iio

        iio.imwrite(path, np.full((20, 24), 100, np.uint8))
    else:
        nib.save(nib.Nifti1Image(toy_volume(), TOY_AFFINE), str(path))
    (_, kwargs, _), = read_layers(str(path))
    assert kwargs["metadata"].get("modality") == modality


def test_axial_first_file_keeps_its_order(tmp_path):
    affine = np.array([[0, 0, -1.0, 0], [0, -1.0, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]])  # array axis 0 points superior, then posterior, left
    volume = np.random.default_rng(0).random((6, 20, 24)).astype(np.float32)
    path = tmp_path / "axial_first.nii"
    nib.save(nib.Nifti1Image(volume, affine), str(path))
    (data, kwargs, _), = read_layers(str(path))
    assert kwargs["metadata"]["axial_axis"] == 0
    np.testing.assert_array_equal(data, volume)
    np.testing.assert_allclose(kwargs["scale"], [2.5, 1.0, 1.0])


def test_2d_image_becomes_a_2d_layer(tmp_path):
    from skimage.io import imsave

    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[10:20, 10:30] = (200, 100, 50)
    path = tmp_path / "slice.png"
    imsave(str(path), rgb, check_contrast=False)
    (data, kwargs, layer_type), = read_layers(str(path))
    assert layer_type == "image" and data.shape == (30, 40)
    assert kwargs["metadata"]["axial_axis"] is None
    assert kwargs["scale"] == (1.0, 1.0)


def broken_files(tmp_path) -> dict:
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((40, 40, 20)).astype(np.float32), np.eye(4)), str(good))
    files = {"garbage": b"this is not a NIfTI file" * 20, "truncated": good.read_bytes()[: good.stat().st_size // 2]}
    for name, content in files.items():
        (tmp_path / f"{name}.nii.gz").write_bytes(content)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.float32), np.eye(4)), str(tmp_path / "series.nii.gz"))
    return {"garbage": "not a readable NIfTI", "truncated": "truncated or corrupt", "series": "expected a 3D volume"}


def test_broken_files_give_a_message_and_no_layer(tmp_path, monkeypatch):
    import napari.utils.notifications

    shown = []
    monkeypatch.setattr(napari.utils.notifications, "show_error", shown.append)
    for name, reason in broken_files(tmp_path).items():
        assert read_layers(str(tmp_path / f"{name}.nii.gz")) == NO_LAYER
        assert reason in shown[-1] and f"{name}.nii.gz" in shown[-1]


@pytest.mark.gui
def test_broken_file_in_napari_is_one_clear_notification(make_napari_viewer, tmp_path, toy_scan_path):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    broken_files(tmp_path)
    before = len(notification_manager.records)
    assert viewer.open(str(tmp_path / "series.nii.gz"), plugin="napari-inpaint-seg") == []
    messages = [str(record.message) for record in notification_manager.records[before:]]
    assert len(messages) == 1 and "expected a 3D volume" in messages[0]
    # napari carries on: the next file opens normally.
    (layer,) = viewer.open(str(toy_scan_path), plugin="napari-inpaint-seg")
    assert layer.data.shape == (4, 48, 48)
