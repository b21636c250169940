"""Dice for masks, PSNR/SSIM for inpainting."""

from __future__ import annotations

import numpy as np
import pytest

from napari_inpaint_seg.metrics import dice, psnr, ssim


def test_dice_known_values():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:4] = True  # 40 pixels
    b[2:8] = True  # 60 pixels, 20 shared
    assert dice(a, b) == pytest.approx(2 * 20 / 100)
    assert dice(a, b) == dice(b, a)
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0
    assert dice(a, np.zeros_like(a)) == 0.0
    assert dice(np.zeros_like(a), np.zeros_like(a)) == 1.0  # nothing to find, nothing found


def test_dice_accepts_labels_as_any_nonzero():
    assert dice(np.array([0, 1, 2, 0]), np.array([0, 5, 1, 0], dtype=np.uint8)) == 1.0


def test_psnr_matches_its_definition():
    reference = np.random.default_rng(0).random((16, 16))
    noisy = reference + 0.1 * np.sign(np.random.default_rng(1).standard_normal((16, 16)))
    assert psnr(reference, noisy) == pytest.approx(10 * np.log10(1 / 0.01))
    assert psnr(reference, reference + 0.01) > psnr(reference, noisy)
    with np.errstate(divide="ignore"):
        assert psnr(reference, reference) == np.inf


def test_ssim_is_one_for_identical_images_and_lower_with_noise():
    rng = np.random.default_rng(0)
    reference = rng.random((32, 32))
    assert ssim(reference, reference) == pytest.approx(1.0)
    slightly, badly = reference + 0.02 * rng.standard_normal((32, 32)), rng.random((32, 32))
    assert 1.0 > ssim(reference, slightly) > ssim(reference, badly)


def test_ssim_of_holes_smaller_than_its_window():
    """Windows of 4-6 pixels are valid models; scikit-image's 7-pixel SSIM window refused their holes."""
    rng = np.random.default_rng(1)
    for side in (4, 5, 6):
        reference = rng.random((side, side))
        assert ssim(reference, reference) == pytest.approx(1.0)
        assert ssim(reference, rng.random((side, side))) < 0.9
    assert np.isnan(ssim(np.zeros((2, 2)), np.zeros((2, 2))))


def test_quality_summary_stays_valid_json():
    import json

    from napari_inpaint_seg.evaluation import quality_summary

    summary = quality_summary([{"psnr": float("inf"), "ssim": float("nan")}, {"psnr": 20.0, "ssim": 0.5}])
    assert summary["psnr_mean"] == 20.0 and summary["ssim_mean"] == 0.5
    json.loads(json.dumps(summary), parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


def test_the_mean_tumour_slice_dice_counts_only_the_papers_tumour_slices():
    from napari_inpaint_seg.evaluation import mean_tumour_slice_dice

    tumour = np.zeros((20, 20, 3), bool)
    tumour[2:12, 2:12, 0] = True  # 100 pixels: counted
    tumour[2:12, 2:12, 1] = True
    tumour[2:5, 2:5, 2] = True  # 9 pixels: too small to count, whatever the labels say there
    labels = tumour.copy()
    labels[:, :, 1] = False
    assert mean_tumour_slice_dice(labels, tumour) == pytest.approx(0.5)
