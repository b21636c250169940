"""One picture per scan of what was labelled: the labelled axial slices with the label's outline over the scan.

A study segments dozens of scans with one command; opening each in napari to see whether its label sits on the
lesion takes minutes per scan. A PNG beside each labels file is read in seconds, in any image viewer, and shows at
a glance which scans need a closer look (a label on the orbits, an empty scan, a lesion cut short).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_TILES = 12
COLUMNS = 4
OUTLINE_RGB = (255, 48, 48)
CAPTION_HEIGHT = 14
TITLE_HEIGHT = 18


def shown_slices(labels: np.ndarray, count: int = MAX_TILES) -> np.ndarray:
    """The slices a picture shows: every labelled slice, or ``count`` of them evenly spread from the first to the
    last; without labels, ``count`` slices evenly spread over the middle half of the scan (where a brain is)."""
    labelled = np.flatnonzero(labels.any(axis=(0, 1)))
    if not len(labelled):
        depth = labels.shape[2]
        labelled = np.arange(depth // 4, max(depth // 4 + 1, 3 * depth // 4))
    if len(labelled) <= count:
        return labelled
    return labelled[np.unique(np.linspace(0, len(labelled) - 1, count).round().astype(int))]


def grey_levels(image: np.ndarray) -> np.ndarray:
    """The scan in 0-255 between the 0.5th and 99.5th percentiles of its nonzero voxels, so that a few bright
    voxels (vessels, fat, an artefact) do not leave the brain dark; one window for the whole scan, so that slices
    compare."""
    values = image[np.isfinite(image) & (image != 0)]
    low, high = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    scaled = (np.nan_to_num(image, nan=low) - low) / (high - low if high > low else 1.0)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def outlined_tile(grey: np.ndarray, label: np.ndarray) -> np.ndarray:
    """An RGB slice with the label's boundary drawn in :data:`OUTLINE_RGB`: an outline rather than a fill, so the
    tissue under the label stays visible; two pixels wide (one each side of the edge), so it survives a viewer that
    shows the picture smaller."""
    from skimage.segmentation import find_boundaries

    tile = np.repeat(grey[:, :, None], 3, axis=2)
    tile[find_boundaries(label, mode="thick")] = OUTLINE_RGB
    return tile


def overview_image(image: np.ndarray, labels: np.ndarray, title: str) -> np.ndarray:
    """The picture (H, W, 3) uint8 of a scan ``image`` (H, W, Z, as segmented: axial slices last, anterior at
    the top) and its ``labels``: a title line, then the :func:`shown_slices` in rows of :data:`COLUMNS`, each
    captioned with its slice number as ``--slices`` counts it."""
    from PIL import Image, ImageDraw

    if image.ndim == 2:  # a 2D image: one slice
        image = image[:, :, None]
    labels = np.asarray(labels).reshape(image.shape) > 0
    grey = grey_levels(np.asarray(image, dtype=np.float64))
    indices = shown_slices(labels)
    height, width = image.shape[:2]
    columns = min(COLUMNS, len(indices))
    rows = -(-len(indices) // columns)
    title_width = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title)) + 8  # a small image must not cut the title
    canvas = Image.new("RGB", (max(columns * width, title_width), TITLE_HEIGHT + rows * (height + CAPTION_HEIGHT)))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), title, fill=(255, 255, 255))
    for position, index in enumerate(indices):
        left, top = (position % columns) * width, TITLE_HEIGHT + (position // columns) * (height + CAPTION_HEIGHT)
        draw.text((left + 4, top + 1), f"slice {index}" if labels[:, :, index].any() else f"slice {index} (no label)", fill=(220, 220, 220))
        canvas.paste(Image.fromarray(outlined_tile(grey[:, :, index], labels[:, :, index])), (left, top + CAPTION_HEIGHT))
    return np.asarray(canvas)


def write_overview(path: Path, picture: np.ndarray) -> None:
    """The picture as PNG, written atomically (a half-written PNG would look like a finished one)."""
    from PIL import Image

    from .io import write_atomically

    write_atomically(path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))
