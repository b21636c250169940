"""Dice for segmentations; PSNR and SSIM (scikit-image) for inpainting quality."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty (nothing to find, nothing found)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    return float(peak_signal_noise_ratio(reference, test, data_range=data_range))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM with scikit-image's 7-pixel window, narrowed for holes smaller than that (NaN below 3 pixels)."""
    side = min(reference.shape)
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        return float("nan")
    return float(structural_similarity(reference, test, data_range=data_range, win_size=window))
