"""Display order (axial axis first) and back, spacing as scale, and rebuilding scans from layers."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_inpaint_seg import display
from napari_inpaint_seg.io import Scan


def affine_with_axial(axis: int, spacing=(0.9, 1.1, 3.0)) -> np.ndarray:
    """An affine whose array axis ``axis`` points superior and the other two, in order, posterior and to the patient's
    left: the orientation of the training slices, so the scan is shown in its file's order."""
    rows, columns = (a for a in range(3) if a != axis)
    affine = np.eye(4)
    affine[:3, :3] = 0
    affine[2, axis], affine[1, rows], affine[0, columns] = spacing[axis], -spacing[rows], -spacing[columns]
    affine[:3, 3] = (10.0, -20.0, 30.0)
    return affine


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_axial_axis_follows_the_affine(axis):
    assert display.axial_axis(affine_with_axial(axis)) == axis


def test_lgg_identity_affine_means_last_axis_and_unknown_defaults_to_last():
    assert display.axial_axis(np.eye(4)) == 2
    assert display.axial_axis(None) == 2


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_display_order_round_trips_exactly(axis):
    data = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    shown = display.to_display(data, axis)
    assert shown.shape[0] == data.shape[axis]
    np.testing.assert_array_equal(display.to_file(shown, axis), data)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_scale_is_spacing_in_display_order(axis):
    spacing = (0.9, 1.1, 3.0)
    scale = display.display_scale(affine_with_axial(axis, spacing), axis)
    assert scale[0] == pytest.approx(spacing[axis])
    assert sorted(scale[1:]) == pytest.approx(sorted(s for i, s in enumerate(spacing) if i != axis))


def test_2d_images_are_unchanged():
    image = np.arange(12.0).reshape(3, 4)
    assert display.to_display(image, None) is image
    assert display.display_scale(np.eye(4), None, ndim=2) == (1.0, 1.0)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("header_as_bytes", [False, True])
def test_scan_from_layer_restores_file_order_affine_and_header(axis, header_as_bytes):
    data = np.random.default_rng(1).random((5, 6, 7)).astype(np.float32)
    affine = affine_with_axial(axis)
    header = nib.Nifti1Image(data, affine).header
    scan = Scan(data=data, affine=affine, header=header)
    shown, kwargs, layer_type = display.image_layer_data(scan)
    assert layer_type == "image"
    metadata = dict(kwargs["metadata"])
    if header_as_bytes:
        metadata[display.HEADER] = header.binaryblock
    rebuilt = display.scan_from_layer(shown, metadata)
    np.testing.assert_array_equal(rebuilt.data, data)
    np.testing.assert_array_equal(rebuilt.affine, affine)
    assert rebuilt.header.binaryblock == header.binaryblock


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_pipeline_scan_puts_the_axial_axis_last_and_keeps_world_coordinates(axis):
    data = np.random.default_rng(2).random((5, 6, 7)).astype(np.float32)
    affine = affine_with_axial(axis)
    shown, kwargs, _ = display.image_layer_data(Scan(data=data, affine=affine, header=None))
    working = display.pipeline_scan(shown, kwargs["metadata"])
    for z in range(shown.shape[0]):
        np.testing.assert_array_equal(working.data[:, :, z], shown[z])
    # The same voxel maps to the same world point in both orders.
    file_index = [1, 2, 3]
    rest = [i for i in range(3) if i != axis]
    working_index = [file_index[rest[0]], file_index[rest[1]], file_index[axis]]
    np.testing.assert_allclose(nib.affines.apply_affine(working.affine, working_index), nib.affines.apply_affine(affine, file_index))
    assert display.axial_axis(working.affine) == 2


def test_foreign_layers_are_their_own_file_order():
    data = np.zeros((3, 4, 5))
    scan = display.scan_from_layer(data, {}, scale=(2.0, 1.0, 0.5))
    assert scan.data is data
    np.testing.assert_array_equal(np.diag(scan.affine), [2.0, 1.0, 0.5, 1.0])
    working = display.pipeline_scan(data, {}, scale=(2.0, 1.0, 0.5))
    assert working.data.shape == (4, 5, 3)


def test_a_voxels_volume_comes_from_the_affine():
    from napari_inpaint_seg.display import voxel_volume_ml

    oblique = np.array([[0.0, -0.9, 0.1, 90.0], [1.1, 0.0, 0.0, -126.0], [0.0, 0.0, 2.5, -72.0], [0, 0, 0, 1]])
    assert voxel_volume_ml(oblique) == pytest.approx(0.9 * 1.1 * 2.5 / 1000)
    assert voxel_volume_ml(None) is None and voxel_volume_ml(np.diag([1.0, 0.0, 1.0, 1.0])) is None
