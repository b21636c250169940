"""The project's single intensity convention, computed inside the brain only.

Voxels are mapped linearly so that the 0.5th and 99.5th percentiles *of the brain* become 0 and 1, then
clipped to [0, 1]; everything outside the brain is 0. Models, Felzenszwalb and the heatmap all use this range.
Percentiles inside the brain make the mapping independent of skull, background and scanner scaling.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5
INTENSITY_CONVENTION = "brain-percentile-0.5-99.5-to-0-1"


def check_finite(data: np.ndarray, what: str = "scan", *, background: bool = False) -> np.ndarray:
    """Replace NaN/Inf by 0 only if they are few; a scan that is mostly non-finite is refused. With
    ``background`` (a skull-stripped scan) they are its background, as some tools store it, and all become 0."""
    finite = np.isfinite(data)
    if finite.all():
        return data
    if finite.mean() < 0.5 and not background:
        raise InputError(f"{what}: {100 * (1 - finite.mean()):.0f}% of voxels are NaN or Inf")
    return np.where(finite, data, 0).astype(np.float32)


def normalize_in_brain(data: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Map ``data`` into [0, 1] by brain percentiles (see module docstring); zero outside ``brain``."""
    brain = np.asarray(brain, dtype=bool)
    if data.shape != brain.shape:
        raise ValueError(f"data {data.shape} and brain mask {brain.shape} differ in shape")
    data = check_finite(np.asarray(data, dtype=np.float32))
    out = np.zeros(data.shape, dtype=np.float32)
    if not brain.any():
        return out
    inside = data[brain].astype(np.float64)  # float64: the span of extreme float32 values would overflow
    low, high = np.percentile(inside, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if high <= low:
        return out
    out[brain] = np.clip((inside - low) / (high - low), 0.0, 1.0)
    return out
