"""The writer: labels go back to the source scan's file order, affine and header, atomically."""

from __future__ import annotations

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
    affine = np.array([[0, 1.0, 0, 0], [0, 0, 1.0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]])
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
