"""Padding a slice into the network's frame (a multiple of the UNet's stride) and the exact inverse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Padding:
    """Zero rows/columns added before and after each axis; :func:`unpad` removes exactly these."""

    top: int
    bottom: int
    left: int
    right: int


def pad_to_multiple(image: np.ndarray, multiple: int, minimum: int = 0) -> tuple[np.ndarray, Padding]:
    """Zero-pad a 2D array, centred, so both sides are multiples of ``multiple`` and at least ``minimum``."""
    height, width = image.shape[-2:]
    target_h = max(-(-height // multiple) * multiple, -(-minimum // multiple) * multiple)
    target_w = max(-(-width // multiple) * multiple, -(-minimum // multiple) * multiple)
    top, left = (target_h - height) // 2, (target_w - width) // 2
    padding = Padding(top, target_h - height - top, left, target_w - width - left)
    widths = [(0, 0)] * (image.ndim - 2) + [(padding.top, padding.bottom), (padding.left, padding.right)]
    return np.pad(image, widths), padding


def unpad(image: np.ndarray, padding: Padding) -> np.ndarray:
    """Inverse of :func:`pad_to_multiple`: crop back to the original geometry."""
    height, width = image.shape[-2:]
    return image[..., padding.top : height - padding.bottom, padding.left : width - padding.right]
