"""Sample data: nilearn's bundled MNI152 template, reoriented like the LGG slices, and its synthetic-lesion twin."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_inpaint_seg import _sample_data
from napari_inpaint_seg.display import scan_from_layer


@pytest.fixture(scope="module")
def template():
    return _sample_data.mni152()[0]


def test_template_layer_keeps_world_coordinates(template):
    from nilearn.datasets import load_mni152_template

    data, kwargs, layer_type = template
    assert layer_type == "image" and data.ndim == 3
    metadata = kwargs["metadata"]
    assert metadata["skull_stripped"] and metadata["modality"] == "t1"
    assert nib.aff2axcodes(metadata["affine"]) == ("P", "L", "S")
    scan = scan_from_layer(data, metadata)
    original = load_mni152_template(resolution=1)
    # The voxel at the world origin holds the same value in both.
    here = np.round(nib.affines.apply_affine(np.linalg.inv(scan.affine), (0, 0, 0))).astype(int)
    there = np.round(nib.affines.apply_affine(np.linalg.inv(original.affine), (0, 0, 0))).astype(int)
    assert scan.data[tuple(here)] == pytest.approx(original.get_fdata()[tuple(there)], abs=1e-6)
    assert data.shape[0] == original.shape[2], "axial slices on the slider"


def test_synthetic_lesion_is_inside_the_brain_and_darker():
    scan, mask = _sample_data.mni152_synthetic_lesion_scan()
    healthy = _sample_data.mni152_scan()
    assert 500 < mask.sum() < 20000
    assert (healthy.data[mask] > 0).all()
    assert scan.data[mask].mean() < 0.7 * healthy.data[mask].mean()
    np.testing.assert_array_equal(scan.data[~mask & (_sample_data.synthetic_lesion(scan.data.shape) == 0)],
                                  healthy.data[~mask & (_sample_data.synthetic_lesion(scan.data.shape) == 0)])
    (data, kwargs, _), (truth, truth_kwargs, layer_type) = _sample_data.mni152_synthetic_lesion()
    assert "synthetic lesion" in kwargs["name"] and layer_type == "labels" and not truth_kwargs["visible"]
    assert truth.shape == data.shape and truth.sum() == mask.sum() and data[truth > 0].mean() < data[(truth == 0) & (data > 0)].mean()
