"""Segmenting on a resampled in-plane grid: what is resampled, and how results come back to the scan's grid."""

import numpy as np
import pytest

from napari_inpaint_seg.brain_size import TRAINING_MEDIAN_SECTION_PX
from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.in_plane import (
    chosen_zoom,
    heatmap_to_grid,
    labels_to_grid,
    parse_zoom,
    pixel_mapping,
    zoom_display_data,
    zoom_prepared,
    zoomed_affine,
)
from napari_inpaint_seg.io import Scan
from napari_inpaint_seg.pipeline import PreparedScan


def prepared_disc(size: int = 40, value: float = 0.7) -> PreparedScan:
    rows, cols = np.mgrid[:size, :size]
    brain = ((rows - size / 2) ** 2 + (cols - size / 2) ** 2 <= (size / 3) ** 2)[:, :, None].repeat(2, axis=2)
    image = np.where(brain, value, 0.0).astype(np.float32)
    return PreparedScan(scan=Scan(image, np.eye(4), None), image=image, brain=brain)


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_the_brain_is_resampled_without_darkening_its_rim(factor):
    """The image is interpolated from brain pixels only: a uniform brain stays uniform up to its new edge."""
    prepared = prepared_disc()
    zoomed = zoom_prepared(prepared, factor)
    assert zoomed.image.shape == zoomed.brain.shape == (round(40 * factor), round(40 * factor), 2)
    assert zoomed.brain.sum() / prepared.brain.sum() == pytest.approx(factor**2, rel=0.1)
    np.testing.assert_allclose(zoomed.image[zoomed.brain], 0.7, atol=1e-5)
    assert not zoomed.image[~zoomed.brain].any()
    assert zoomed.scan is prepared.scan  # outputs are written on the scan's grid


def test_labels_come_back_to_the_scans_grid_unchanged():
    labels = np.zeros((6, 6, 2), np.uint8)
    labels[1:3, 2:5, 1] = 1
    fine = labels_to_grid(labels, (12, 12, 2))
    np.testing.assert_array_equal(fine, np.repeat(np.repeat(labels, 2, axis=0), 2, axis=1))
    np.testing.assert_array_equal(labels_to_grid(fine, labels.shape), labels)
    assert labels_to_grid(fine, labels.shape).dtype == np.uint8


def test_a_heatmap_comes_back_smoothly():
    heat = np.linspace(0, 1, 24 * 24, dtype=np.float32).reshape(24, 24, 1)
    back = heatmap_to_grid(heat, (12, 12, 1))
    assert back.shape == (12, 12, 1) and back.dtype == np.float32
    assert 0 <= back.min() and back.max() <= 1 and np.all(np.diff(back[:, 0, 0]) > 0)


def test_auto_resamples_only_brains_smaller_than_the_training_brains():
    small = np.zeros((128, 128, 1), bool)
    small[:71, :71] = True
    large = np.zeros((256, 256, 1), bool)
    large[:150, :150] = True
    assert chosen_zoom("auto", small) == pytest.approx(TRAINING_MEDIAN_SECTION_PX / 71)
    assert chosen_zoom("auto", large) is None
    assert chosen_zoom(1.5, large) == 1.5
    assert chosen_zoom(1.0, small) is None and chosen_zoom(None, small) is None


@pytest.mark.parametrize("text, message", [("twice", "takes 'auto' or a number"), ("9", "between 0.25 and 4"), ("0", "between")])
def test_a_bad_zoom_is_refused_with_a_message(text, message):
    with pytest.raises(InputError, match=message):
        parse_zoom(text)
    assert parse_zoom("auto") == "auto" and parse_zoom("1.5") == 1.5


def test_auto_resamples_a_tiny_brain_by_at_most_the_top_of_the_range():
    tiny = np.zeros((64, 64, 1), bool)
    tiny[:10, :10] = True
    assert chosen_zoom("auto", tiny) == 4.0


@pytest.mark.parametrize("factor", [1.37, 0.61])
def test_shown_data_and_prepared_scan_share_one_grid(factor):
    prepared = prepared_disc(size=45)
    shown = np.moveaxis(prepared.image, -1, 0)  # display order: slices first
    assert zoom_display_data(shown, factor).shape == np.moveaxis(zoom_prepared(prepared, factor).image, -1, 0).shape
    assert zoom_display_data(shown[0], factor).shape == zoom_prepared(prepared, factor).image.shape[:2]  # a 2D image


@pytest.mark.parametrize("axial", [0, 2])
def test_a_resampled_grid_keeps_its_voxels_where_they_were_read(axial):
    """Voxel i of an axis resampled from 45 to 62 pixels lies at the original's continuous index step * i + offset,
    and the resampled affine maps it to that world point; the axial axis keeps its voxels."""
    rng = np.random.default_rng(0)
    affine = np.eye(4)
    affine[:3] = rng.normal(size=(3, 4))
    in_plane = tuple(a for a in range(3) if a != axial)
    zoomed = zoomed_affine(affine, in_plane, (45, 30), (62, 41))
    index = np.array([7.0, 3.0, 5.0])
    read_at = index.copy()
    for axis, size, zoomed_size in zip(in_plane, (45, 30), (62, 41)):
        step, offset = pixel_mapping(size, zoomed_size)
        read_at[axis] = offset + step * index[axis]
    np.testing.assert_allclose(zoomed @ [*index, 1], affine @ [*read_at, 1])
    assert pixel_mapping(45, 90) == (0.5, -0.25)


def test_a_resampled_grid_that_would_not_fit_in_memory_is_refused(monkeypatch):
    from napari_inpaint_seg import io

    monkeypatch.setattr(io, "MAX_VOXELS", 40 * 40 * 2)
    zoom_prepared(prepared_disc(), 1.0)
    with pytest.raises(InputError, match=r"scan resampled in-plane by x2.00: scan of shape \(80, 80, 2\) is too large"):
        zoom_prepared(prepared_disc(), 2.0)
