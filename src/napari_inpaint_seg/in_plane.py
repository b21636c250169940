"""Segmenting a scan on an in-plane grid of another size, and bringing the result back to the scan's own grid.

The method's sizes are pixels (the window, the smoothing, the radii), and the shipped models know a brain by its
size in pixels (:mod:`.brain_size`), so a brain much smaller than theirs is segmented better on a finer grid.
Only the prepared image and brain are resampled: brain extraction has already run on the scan as stored, and the
labels and heatmap written come back to the scan's grid, so they overlay the scan the user sees and exports.
The widget's *Resample in-plane* shows the scan on the same grid (:func:`zoom_display_data`), placed where each pixel
was read (:func:`pixel_mapping`, :func:`zoomed_affine`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .brain_size import advised_zoom
from .errors import InputError
from .io import check_size

if TYPE_CHECKING:
    from .pipeline import PreparedScan

ZOOM_RANGE = (0.25, 4.0)  # beyond these a 256-px slice is a few windows wide, or a volume of gigabytes


def parse_zoom(text: str) -> str | float:
    """``--in-plane-zoom``: "auto" or a factor within :data:`ZOOM_RANGE`."""
    if text == "auto":
        return text
    try:
        factor = float(text)
    except ValueError:
        raise InputError(f"--in-plane-zoom takes 'auto' or a number, got {text!r}") from None
    if not ZOOM_RANGE[0] <= factor <= ZOOM_RANGE[1]:
        raise InputError(f"--in-plane-zoom must lie between {ZOOM_RANGE[0]} and {ZOOM_RANGE[1]}, got {text}")
    return factor


def chosen_zoom(choice: str | float | None, brain: np.ndarray) -> float | None:
    """The factor to resample by: "auto" is the one :func:`~.brain_size.advised_zoom` advises, at most the top of
    :data:`ZOOM_RANGE` (None for a brain as large as the shipped models' training brains); None or 1 means no resampling."""
    factor = advised_zoom(brain) if choice == "auto" else choice
    if choice == "auto" and factor is not None:
        factor = min(factor, ZOOM_RANGE[1])  # a thumbnail-sized brain would otherwise ask for a grid of gigabytes
    return None if factor is None or factor == 1 else float(factor)


def _resized(volume: np.ndarray, shape: tuple[int, ...], *, order: int, anti_aliasing: bool) -> np.ndarray:
    """``volume`` as float32 on a grid of ``shape``: order 0 nearest, 1 linear; anti-aliasing smooths before shrinking."""
    from skimage.transform import resize  # imported here: it brings scipy, and parse_zoom checks arguments before anything slow

    return resize(volume.astype(np.float32), shape, order=order, anti_aliasing=anti_aliasing, preserve_range=True).astype(np.float32)


def zoomed_plane(height: int, width: int, factor: float) -> tuple[int, int]:
    """The in-plane size of a ``height`` x ``width`` grid resampled by ``factor``: one rounding for every array of a scan."""
    return max(1, round(height * factor)), max(1, round(width * factor))


def zoom_prepared(prepared: PreparedScan, factor: float) -> PreparedScan:
    """``prepared`` with image and brain resampled in-plane by ``factor`` (slices unchanged).

    The image is interpolated from brain pixels only (linear interpolation of image and brain, divided by that of
    the brain), so the brain's rim is not darkened by the zeros around it; the brain is where more than half of
    the interpolated mask is brain. ``scan`` stays the scan as stored: outputs are written on its grid.
    """
    height, width, n_slices = prepared.image.shape
    shape = (*zoomed_plane(height, width, factor), n_slices)
    check_size(f"{prepared.scan.path or 'scan'} resampled in-plane by x{factor:.2f}", shape)  # before gigabytes are allocated
    weight = _resized(prepared.brain, shape, order=1, anti_aliasing=factor < 1)
    brain = weight > 0.5
    image = np.zeros(shape, np.float32)
    image[brain] = np.clip(_resized(prepared.image, shape, order=1, anti_aliasing=factor < 1)[brain] / weight[brain], 0.0, 1.0)
    return replace(prepared, image=image, brain=brain)


def labels_to_grid(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Labels read at the pixel centres of a grid of ``shape`` (nearest): 0/1 stay 0/1, nothing is blurred."""
    return _resized(labels, shape, order=0, anti_aliasing=False).astype(labels.dtype)


def heatmap_to_grid(heatmap: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A heatmap resampled (linear, smoothed first when shrinking) onto a grid of ``shape``."""
    return _resized(heatmap, shape, order=1, anti_aliasing=True)


def zoom_display_data(data: np.ndarray, factor: float) -> np.ndarray:
    """A layer's display-order data, (slices, rows, columns) or (rows, columns), resampled in-plane by ``factor``
    on the grid of :func:`zoom_prepared`, to be shown under the layers computed on that grid."""
    return _resized(np.asarray(data), (*data.shape[:-2], *zoomed_plane(*data.shape[-2:], factor)), order=1, anti_aliasing=factor < 1)


def pixel_mapping(size: int, zoomed_size: int) -> tuple[float, float]:
    """(step, offset): pixel ``i`` of an axis resampled from ``size`` to ``zoomed_size`` pixels lies at
    ``offset + step * i`` in the original's pixel coordinates, where :func:`~skimage.transform.resize` reads it
    (pixel centres, the grid's outer edges kept). The step is the exact ratio, not 1 / factor: sizes are rounded."""
    step = size / zoomed_size
    return step, 0.5 * step - 0.5


def zoomed_affine(affine: np.ndarray, in_plane_axes: tuple[int, int], sizes: tuple[int, int], zoomed_sizes: tuple[int, int]) -> np.ndarray:
    """The voxel-to-world affine of a grid whose ``in_plane_axes`` (file order) were resampled from ``sizes`` to
    ``zoomed_sizes`` pixels: each voxel centre lands on the same world point as the place it was read from."""
    zoomed = np.array(affine, dtype=np.float64)
    for axis, size, zoomed_size in zip(in_plane_axes, sizes, zoomed_sizes):
        step, offset = pixel_mapping(size, zoomed_size)
        zoomed[:3, 3] += offset * zoomed[:3, axis]
        zoomed[:3, axis] *= step
    return zoomed
