"""The writer: labels go back to the source scan's file order, affine and header, atomically."""

from __future__ import annotations

import stat

import nibabel as nib
import numpy as np
import pytest

from conftest import TOY_AFFINE
from napari_inpaint_seg._reader import read_layers
from napari_inpaint_seg._writer import write_labels_layer
from napari_inpaint_seg.errors import InputError


def labels_like(layer_tuple, seed=0):
    data, kwargs, _ = layer_tuple
    labels = (np.random.default_rng(seed).random(data.shape) > 0.9).astype(np.uint8) * 2
    return labels, {"metadata": kwargs["metadata"], "scale": kwargs["scale"], "name": "labels"}


def test_labels_are_written_in_file_order_with_the_source_geometry(toy_scan_path, tmp_path):
    source = nib.load(str(toy_scan_path))
    labels, attributes = labels_like(read_layers(str(toy_scan_path))[0])
    out = tmp_path / "labels.nii.gz"
    assert write_labels_layer(str(out), labels, attributes) == [str(out)]
    written = nib.load(str(out))
    np.testing.assert_allclose(written.affine, TOY_AFFINE)
    assert written.shape == source.shape and written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.moveaxis(labels, 0, 2))
    assert written.header.get_zooms() == pytest.approx(source.header.get_zooms())


def test_axial_first_source_round_trips(tmp_path):
    affine = np.array([[0, 0, -1.0, 0], [0, -1.0, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]])  # superior, posterior, left
    source = tmp_path / "axial_first.nii"
    nib.save(nib.Nifti1Image(np.ones((6, 20, 24), np.float32), affine), str(source))
    labels, attributes = labels_like(read_layers(str(source))[0])
    out = tmp_path / "labels.nii"
    write_labels_layer(str(out), labels, attributes)
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), labels)


def test_existing_file_is_replaced_whole(toy_scan_path, tmp_path):
    """napari's save dialog has asked before overwriting; the new file replaces the old one atomically."""
    layer = read_layers(str(toy_scan_path))[0]
    out = tmp_path / "labels.nii.gz"
    first, attributes = labels_like(layer, seed=1)
    second, _ = labels_like(layer, seed=2)
    write_labels_layer(str(out), first, attributes)
    write_labels_layer(str(out), second, attributes)
    np.testing.assert_array_equal(np.moveaxis(np.asarray(nib.load(str(out)).dataobj), 2, 0), second)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary file is left"


def test_refuses_other_names_and_values_beyond_uint8(toy_scan_path, tmp_path):
    labels, attributes = labels_like(read_layers(str(toy_scan_path))[0])
    with pytest.raises(InputError, match="NIfTI"):
        write_labels_layer(str(tmp_path / "labels.gz"), labels, attributes)
    with pytest.raises(InputError, match="between 0 and 255"):
        write_labels_layer(str(tmp_path / "labels.nii.gz"), labels.astype(np.int32) * 200, attributes)
    for bad in (labels * 0.3, np.where(labels > 0, np.nan, 0.0)):  # would be truncated or written as 0
        with pytest.raises(InputError, match="whole numbers"):
            write_labels_layer(str(tmp_path / "labels.nii.gz"), bad, attributes)
    assert not (tmp_path / "labels.nii.gz").exists()


def test_refuses_labels_of_another_shape_than_the_scan_they_name(toy_scan_path, tmp_path):
    """Labels carrying a scan's metadata but drawn on something else would be saved with that scan's geometry."""
    _, attributes = labels_like(read_layers(str(toy_scan_path))[0])
    for shape in ((4, 30, 30), (48, 48)):
        with pytest.raises(InputError, match="differs from the shape of the scan"):
            write_labels_layer(str(tmp_path / "labels.nii.gz"), np.zeros(shape, np.uint8), attributes)
    assert not (tmp_path / "labels.nii.gz").exists()


def test_saved_labels_open_again_as_labels_where_they_were(toy_scan_path, tmp_path):
    labels, attributes = labels_like(read_layers(str(toy_scan_path))[0])
    out = tmp_path / "labels.nii.gz"
    write_labels_layer(str(out), labels, attributes)
    assert nib.load(str(out)).header.get_intent()[0] == "label"
    (data, kwargs, layer_type), = read_layers(str(out))
    assert layer_type == "labels" and data.dtype == np.uint8
    np.testing.assert_array_equal(data, labels)
    assert kwargs["scale"] == attributes["scale"]
    write_labels_layer(str(tmp_path / "again.nii.gz"), data, kwargs)  # saved again, it lies where it was
    np.testing.assert_allclose(nib.load(str(tmp_path / "again.nii.gz")).affine, TOY_AFFINE)


def test_overwrite_keeps_the_file_mode_and_writes_through_a_symlink(toy_scan_path, tmp_path):
    labels, attributes = labels_like(read_layers(str(toy_scan_path))[0])
    target, link = tmp_path / "labels.nii.gz", tmp_path / "link.nii.gz"
    write_labels_layer(str(target), labels * 0, attributes)
    target.chmod(0o640)
    link.symlink_to(target)
    write_labels_layer(str(link), labels, attributes)
    assert link.is_symlink() and stat.S_IMODE(target.stat().st_mode) == 0o640
    np.testing.assert_array_equal(np.moveaxis(np.asarray(nib.load(str(target)).dataobj), 2, 0), labels)


def test_labels_without_source_metadata_use_their_scale(tmp_path):
    labels = np.zeros((3, 10, 12), np.uint8)
    labels[1, 2:5, 3:6] = 1
    write_labels_layer(str(tmp_path / "drawn.nii.gz"), labels, {"metadata": {}, "scale": (2.0, 1.0, 0.5)})
    written = nib.load(str(tmp_path / "drawn.nii.gz"))
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels)
    np.testing.assert_allclose(np.diag(written.affine), [2.0, 1.0, 0.5, 1.0])


@pytest.mark.gui
@pytest.mark.parametrize("name", ["labels.nii.gz", "labels.nii"])
def test_file_save_layers_uses_this_writer(make_napari_viewer, toy_scan_path, tmp_path, name):
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(toy_scan_path), plugin="napari-inpaint-seg")
    labels = viewer.add_labels(np.zeros(image.data.shape, np.uint8), scale=image.scale, metadata=dict(image.metadata))
    labels.data[2, 10:20, 10:20] = 4
    out = tmp_path / name
    assert labels.save(str(out)) == [str(out)]  # what File > Save Selected Layers calls
    saved = nib.load(str(out))
    np.testing.assert_allclose(saved.affine, TOY_AFFINE)
    assert (np.asarray(saved.dataobj)[:, :, 2] == 4).sum() == 100


@pytest.mark.gui
def test_labels_made_with_napari_are_saved_with_the_scan_they_were_made_for(make_napari_viewer, toy_scan_path, tmp_path):
    """napari's New labels layer copies the image's scale but not its geometry: the file must still line up."""
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(toy_scan_path), plugin="napari-inpaint-seg")
    labels = viewer.add_labels(np.zeros(image.data.shape, np.uint8), scale=image.scale)
    labels.data[2, 10:20, 10:20] = 4
    out = tmp_path / "drawn.nii.gz"
    assert labels.save(str(out)) == [str(out)]
    saved = nib.load(str(out))
    np.testing.assert_allclose(saved.affine, TOY_AFFINE)
    assert saved.shape == nib.load(str(toy_scan_path)).shape and (np.asarray(saved.dataobj)[:, :, 2] == 4).sum() == 100

    other, elsewhere = tmp_path / "other.nii.gz", TOY_AFFINE.copy()  # a scan of that shape and spacing lying elsewhere
    elsewhere[:3, 3] += 10.0
    nib.save(nib.Nifti1Image(np.asarray(nib.load(str(toy_scan_path)).dataobj), elsewhere), str(other))
    viewer.open(str(other), plugin="napari-inpaint-seg")
    with pytest.raises(InputError, match="several open scans"):
        write_labels_layer(str(out), labels.data, {"metadata": {}, "scale": tuple(labels.scale)})


@pytest.mark.parametrize("axial_first", [False, True])
def test_labels_drawn_on_a_scan_resampled_in_plane_are_written_on_the_scans_own_grid(tmp_path, axial_first):
    """The Localize widget's Resample in-plane: labels made on the resampled layer are saved where the scan is."""
    from napari_inpaint_seg.display import resampled_metadata
    from napari_inpaint_seg.in_plane import labels_to_grid

    affine = np.array([[0, 1.0, 0, 0], [0, 0, 1.2, 3], [2.5, 0, 0, -7], [0, 0, 0, 1]]) if axial_first else TOY_AFFINE
    source = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 20, 24) if axial_first else (20, 24, 6), np.float32), affine), str(source))
    labels, attributes = labels_like(read_layers(str(source))[0])
    zoomed_shape = (6, 40, 48)
    zoomed_metadata = resampled_metadata(attributes["metadata"], attributes["scale"], labels.shape, zoomed_shape)
    assert zoomed_metadata["nifti_header"] is None and not np.allclose(zoomed_metadata["affine"], affine)
    drawn = labels_to_grid(labels, zoomed_shape)  # what each resampled pixel shows
    out = tmp_path / "labels.nii.gz"
    write_labels_layer(str(out), drawn, {"metadata": zoomed_metadata, "scale": (1.0, 0.5, 0.5), "name": "labels"})
    written, expected = nib.load(str(out)), tmp_path / "expected.nii.gz"
    write_labels_layer(str(expected), labels, attributes)
    np.testing.assert_allclose(written.affine, affine)
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(nib.load(str(expected)).dataobj))


def test_labels_drawn_on_a_turned_scan_resampled_in_plane_go_back_to_the_files_grid_and_order(tmp_path):
    """Both ways of working on another grid at once: a scan shown turned (its affine says it lies R, A, S) and then
    resampled in-plane; the labels file has the scan's own shape, voxel order and affine."""
    from napari_inpaint_seg.display import image_layer_data, resampled_metadata
    from napari_inpaint_seg.in_plane import labels_to_grid
    from napari_inpaint_seg.io import read_scan

    ras = np.array([[1.0, 0, 0, -90], [0, 1.2, 0, -126], [0, 0, 3.0, -72], [0, 0, 0, 1]])
    volume = np.zeros((20, 24, 5), np.float32)
    volume[3:7, 15:20, 2] = 1.0  # off-centre: a turn or a flip would move it
    source = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(volume, ras), str(source))
    data, kwargs, _ = image_layer_data(read_scan(source))
    assert data.shape == (5, 24, 20)  # shown turned: rows posterior, columns to the patient's left
    zoomed_shape = (5, 48, 40)
    metadata = resampled_metadata(kwargs["metadata"], kwargs["scale"], data.shape, zoomed_shape)
    drawn = labels_to_grid((data > 0.5).astype(np.uint8), zoomed_shape)  # the lesion, painted on the resampled grid
    out = tmp_path / "labels.nii.gz"
    write_labels_layer(str(out), drawn, {"metadata": metadata, "scale": (3.0, 0.6, 0.5), "name": "labels"})
    written = nib.load(str(out))
    np.testing.assert_allclose(written.affine, ras)
    np.testing.assert_array_equal(np.asarray(written.dataobj), (volume > 0.5).astype(np.uint8))
