"""Brain masks, the intensity convention and the network frame: what every slice goes through first."""

from __future__ import annotations

import numpy as np
import pytest

from napari_inpaint_seg.brain import extract_brain_volume, foreground_mask_2d
from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.frame import pad_to_multiple, unpad
from napari_inpaint_seg.intensity import check_finite, normalize_in_brain


def disc(size=40, radius=14):
    rows, cols = np.mgrid[:size, :size]
    return (rows - size / 2) ** 2 + (cols - size / 2) ** 2 <= radius**2


def test_normalize_maps_brain_percentiles_to_unit_range():
    rng = np.random.default_rng(0)
    brain = disc()
    data = np.where(brain, rng.normal(500, 80, brain.shape), 3000.0)  # a bright 'skull' outside the brain
    out = normalize_in_brain(data, brain)
    assert out.dtype == np.float32 and out.shape == data.shape
    assert np.all(out[~brain] == 0)
    assert out.min() >= 0 and out.max() <= 1
    inside = out[brain]
    assert np.mean(inside == 0) == pytest.approx(0.005, abs=0.004) and np.mean(inside == 1) == pytest.approx(0.005, abs=0.004)
    assert 0.3 < np.median(inside) < 0.7  # the skull did not squash the brain into a narrow band


@pytest.mark.parametrize("dtype", [np.int16, np.float64, np.uint8])
def test_normalize_ignores_scanner_scaling_and_offset(dtype):
    """Negative, integer and double inputs land on the same convention as the original."""
    rng = np.random.default_rng(1)
    brain = disc()
    base = np.where(brain, rng.uniform(10, 100, brain.shape), 0)
    shifted = (2.0 * base - 150.0).astype(dtype) if dtype != np.uint8 else base.astype(np.uint8)
    reference = normalize_in_brain(np.round(base).astype(np.float64) if dtype != np.float64 else base, brain)
    np.testing.assert_allclose(normalize_in_brain(shifted, brain), reference, atol=0.02)


def test_normalize_constant_brain_and_empty_brain_give_zeros():
    brain = disc()
    assert not normalize_in_brain(np.full(brain.shape, 7.0), brain).any()
    assert not normalize_in_brain(np.ones(brain.shape), np.zeros(brain.shape, bool)).any()


def test_normalize_extreme_values_stay_finite():
    brain = disc()
    data = np.where(brain, np.linspace(-3e38, 3e38, brain.size).reshape(brain.shape), 0).astype(np.float32)
    out = normalize_in_brain(data, brain)
    assert np.isfinite(out).all() and out.max() == 1.0


def test_check_finite_replaces_a_few_and_refuses_many():
    data = np.ones((10, 10), np.float32)
    data[0, :3] = [np.nan, np.inf, -np.inf]
    fixed = check_finite(data)
    assert np.isfinite(fixed).all() and fixed[0, :3].tolist() == [0, 0, 0] and fixed[5, 5] == 1
    with pytest.raises(InputError, match="NaN or Inf"):
        check_finite(np.full((10, 10), np.nan))


def test_check_finite_takes_non_finite_voxels_as_the_background_of_a_stripped_scan():
    data = np.full((10, 10), np.nan, np.float32)
    data[4:6, 4:6] = 1.0
    fixed = check_finite(data, background=True)
    assert fixed.sum() == 4 and np.isfinite(fixed).all()


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (16, 16), (33, 5), (2, 9, 11)])
@pytest.mark.parametrize("multiple,minimum", [(4, 0), (8, 0), (8, 40), (3, 10)])
def test_pad_then_unpad_is_identity(shape, multiple, minimum):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    padded, padding = pad_to_multiple(image, multiple, minimum)
    assert padded.shape[:-2] == image.shape[:-2]
    assert all(side % multiple == 0 and side >= max(minimum, original) for side, original in zip(padded.shape[-2:], image.shape[-2:]))
    assert abs(padding.top - padding.bottom) <= 1 and abs(padding.left - padding.right) <= 1  # centred
    assert padded.sum() == pytest.approx(image.sum())  # only zeros were added
    np.testing.assert_array_equal(unpad(padded, padding), image)


def test_foreground_mask_fills_holes_and_keeps_the_largest_part():
    image = np.where(disc(40, 14), 1.0, 0.0)
    image[18:22, 18:22] = 0  # a dark ventricle inside the brain
    image[1:3, 1:3] = 1  # a speck of noise
    mask = foreground_mask_2d(image)
    assert mask[20, 20] and not mask[1, 1]
    np.testing.assert_array_equal(mask, disc(40, 14))


def test_foreground_mask_with_negative_background():
    """A slice stored with an offset (background -1000) has the same brain as with background 0."""
    image = np.where(disc(40, 14), 300.0, 0.0)
    np.testing.assert_array_equal(foreground_mask_2d(image - 1000.0), foreground_mask_2d(image))


def test_brain_extraction_refuses_thin_volumes():
    with pytest.raises(InputError, match="too thin"):
        extract_brain_volume(np.ones((64, 64, 1), np.float32), np.eye(4))
    with pytest.raises(InputError, match="3D"):
        extract_brain_volume(np.ones((64, 64), np.float32), np.eye(4))


@pytest.mark.parametrize("failure", [AssertionError("no bounding box"), ValueError("attempt to get argmax of an empty sequence")])
def test_brain_extraction_that_finds_no_head_is_one_clear_error(monkeypatch, failure):
    """deepbet asserts, or takes the argmax of nothing, on a volume without a head (one bright voxel in zeros)."""
    import napari_inpaint_seg.brain as brain

    class NoHead:
        def run_model(self, volume):
            raise failure

    monkeypatch.setattr(brain, "_deepbet_model", lambda device: NoHead())
    volume = np.zeros((16, 16, 16), np.float32)
    volume[8, 8, 8] = 1
    with pytest.raises(InputError, match="brain extraction found no head in this volume"):
        extract_brain_volume(volume, np.eye(4))


def test_brain_extraction_of_a_constant_volume_is_empty():
    assert not extract_brain_volume(np.full((16, 16, 16), 5.0, np.float32), np.eye(4)).any()


def test_a_broken_affine_is_read_as_axes_as_stored():
    """A degenerate affine (zeros, NaN) must not crash the reorientation for deepbet (nibabel's SVD fails)."""
    from napari_inpaint_seg.brain import RAS, _orientation

    for broken in (np.zeros((4, 4)), np.diag([np.nan, 1, 1, 1]), np.diag([1.0, 0, 1, 1])):
        np.testing.assert_array_equal(_orientation(broken), RAS)
    np.testing.assert_array_equal(_orientation(np.diag([-1.0, 1, 1, 1])), [[0, -1], [1, 1], [2, 1]])


@pytest.mark.data
@pytest.mark.slow
def test_deepbet_keeps_the_tumour_inside_the_brain(data_dir):
    from napari_inpaint_seg.io import read_scan

    patient = data_dir / "lgg" / "TCGA_CS_4942_19970222"
    scan = read_scan(f"{patient}_flair.nii.gz")
    tumour = read_scan(f"{patient}_mask.nii.gz").data > 0
    brain = extract_brain_volume(scan.data, scan.affine)
    assert brain.shape == scan.data.shape
    assert (brain & tumour).sum() >= 0.98 * tumour.sum()
    assert 0.05 < brain.mean() < 0.6  # a brain, neither nothing nor the whole field of view
