"""Resampling in napari: the chosen scan as a new layer on a finer (or coarser) in-plane grid that overlays it.

The method's sizes are pixels and the shipped models know a brain by its size in pixels (:mod:`.brain_size`), so
a small brain is segmented better on a finer grid; the command line does it with ``--in-plane-zoom``. Here the
resampled scan is a layer of its own, so that every widget works on it unchanged and the user sees what is
segmented: the heatmap, superpixels and labels are drawn on its grid and, through its scale and translation,
over the original. Its prepared image is the original's, brain-extracted as stored and then resampled, exactly
as ``--in-plane-zoom`` does, and labels drawn on it are saved on the original's grid
(:func:`~.display.on_source_grid`), so the file overlays the scan the user opened, as the command line's does.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from . import brain_size
from ._widget_common import RESAMPLED_OF, Failed, image_key, wait_for
from .display import ROLE, SKULL_STRIPPED, resampled_metadata
from .errors import InputError
from .in_plane import (
    ZOOM_RANGE,
    chosen_zoom,
    pixel_mapping,
    zoom_display_data,
    zoom_prepared,
)
from .pipeline import PreparedScan

AUTO = 0.0  # the zoom box's value for "as advised for the shipped models"


@dataclass
class Resampled:
    """A scan resampled in-plane by ``factor``: its prepared image and brain, and its data to show."""

    factor: float
    prepared: PreparedScan
    data: np.ndarray


def zoom_choice(value: float) -> str | float:
    """The zoom box's value as :func:`~.in_plane.chosen_zoom` takes it: 0 is "auto"; others must lie in :data:`ZOOM_RANGE`."""
    if value == AUTO:
        return "auto"
    if not ZOOM_RANGE[0] <= value <= ZOOM_RANGE[1]:
        raise InputError(f"the in-plane zoom must be 0 (auto) or lie between {ZOOM_RANGE[0]} and {ZOOM_RANGE[1]}, got {value:g}")
    return float(value)


def resample_job(preparation: Future, choice: str | float, data: np.ndarray):
    """Worker body: wait for the scan's preparation, then resample it and its data; a :class:`Failed` says why not."""
    yield from wait_for(preparation)
    try:
        prepared = preparation.result()
        factor = chosen_zoom(choice, prepared.brain)
        if factor is None:
            return Failed(nothing_to_resample(prepared.brain, choice))
        return Resampled(factor, zoom_prepared(prepared, factor), zoom_display_data(data, factor))
    except InputError as exc:
        return Failed(str(exc))


def nothing_to_resample(brain: np.ndarray, choice: str | float) -> str:
    if choice != "auto":
        return "an in-plane zoom of 1 leaves the scan as it is"
    smallest, largest = brain_size.TRAINING_SECTION_PX
    return (f"nothing to resample: the brain's largest axial section is {brain_size.largest_section_px(brain):.0f} pixels across, not smaller than "
            f"the shipped models' training brains ({smallest:.0f}-{largest:.0f}); give a zoom factor to resample anyway")


def zoomed_geometry(image, zoomed_shape: tuple[int, ...]) -> dict:
    """napari geometry for ``image``'s data resampled in-plane to ``zoomed_shape``: each pixel is drawn where
    it was read from in ``image`` (:func:`~.in_plane.pixel_mapping`), through all of ``image``'s transform."""
    from napari.utils.transforms import Affine

    steps, offsets = [1.0] * image.ndim, [0.0] * image.ndim
    for axis in (image.ndim - 2, image.ndim - 1):
        steps[axis], offsets[axis] = pixel_mapping(image.data.shape[axis], zoomed_shape[axis])
    original = Affine(scale=image.scale, translate=image.translate, rotate=image.rotate, shear=image.shear)
    zoomed = original.compose(Affine(scale=steps, translate=offsets))
    return {"scale": zoomed.scale, "translate": zoomed.translate, "rotate": zoomed.rotate, "shear": zoomed.shear, "affine": image.affine}


def add_resampled_layer(viewer, image, resampled: Resampled, skull_stripped: bool, cache):
    """Add ``resampled`` as an image layer over ``image`` and give ``cache`` its prepared scan, so that no widget
    prepares (brain-extracts) it again; returns the layer."""
    from napari.layers import Image

    metadata = {key: value for key, value in image.metadata.items() if key != ROLE}
    metadata = resampled_metadata(metadata, tuple(image.scale), image.data.shape, resampled.data.shape)
    metadata[SKULL_STRIPPED] = skull_stripped  # the kind of preparation cached for it
    metadata[RESAMPLED_OF] = image_key(image)  # the Segment widget follows from the original to it
    layer = Image(resampled.data, name=f"{image.name} x{resampled.factor:.2f}", metadata=metadata, colormap=image.colormap,
                  contrast_limits=image.contrast_limits, **zoomed_geometry(image, resampled.data.shape))
    cache.put(layer, skull_stripped, resampled.prepared)  # before the widgets hear of the layer
    return viewer.add_layer(layer)
