"""How scans are shown in napari: the axial axis first (on the slider), spacing as ``scale``, geometry in metadata.

A NIfTI volume keeps its file's axis order on disk and in :class:`~napari_inpaint_seg.io.Scan`; napari shows
the *display order*, which is the file order with the axial axis moved to the front, so the slider walks
through axial slices and each slice is drawn exactly as the CLI and the pipeline see it (rows, columns in
file order). The axial axis is the array axis whose direction is superior/inferior according to the affine
(``nibabel.io_orientation``); for the LGG data (identity affine, axes row, column, slice) it is the last one.

The source affine, header and axial axis travel in ``layer.metadata`` so that labels drawn on a layer can be
written back aligned with the source scan, and pipeline functions can run on a layer's data.

Pure NumPy/nibabel: no Qt, no napari.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import InputError
from .in_plane import labels_to_grid, zoomed_affine
from .io import IMAGE_SUFFIXES, LABEL_INTENT, NIFTI_SUFFIXES, Scan
from .models.config import MODALITIES
from .orientation import as_trained, to_file_order

AFFINE = "affine"
HEADER = "nifti_header"
AXIAL_AXIS = "axial_axis"
SOURCE_PATH = "source_path"
SKULL_STRIPPED = "skull_stripped"
MODALITY = "modality"
ROLE = "inpaint_seg_role"  # marks layers the widgets draw (heatmap, superpixels, candidate)
TRUTH_ROLE = "truth"  # a reference labels layer (the sample's lesion): shown for comparison, never written into
READ_AS_LABELS = "inpaint_seg_read_as_labels"  # a labels layer read from a labels file (its source path is that file)
ORIENTED_FROM = "inpaint_seg_oriented_from"  # a volume shown turned to the training orientation: its file's voxel order and geometry
RESAMPLED_FROM = "inpaint_seg_resampled_from"  # a scan resampled in-plane: the grid it came from, where its labels are written

DEFAULT_AXIAL_AXIS = 2
SUPERIOR_INFERIOR = 2  # nibabel.io_orientation's output axis index for S/I


def axial_axis(affine: np.ndarray | None) -> int:
    """The array axis of a 3D volume pointing superior/inferior; the last axis when the affine cannot tell."""
    if affine is None:
        return DEFAULT_AXIAL_AXIS
    orientation = nib.io_orientation(np.asarray(affine, dtype=np.float64))
    matches = np.flatnonzero(orientation[:, 0] == SUPERIOR_INFERIOR)
    return int(matches[0]) if len(matches) == 1 else DEFAULT_AXIAL_AXIS


def to_display(data: np.ndarray, axis: int | None) -> np.ndarray:
    """File order -> display order (a view: the axial axis first). 2D images (``axis`` None) are unchanged."""
    return data if axis is None or data.ndim != 3 else np.moveaxis(data, axis, 0)


def to_file(data: np.ndarray, axis: int | None) -> np.ndarray:
    """Display order -> file order; the exact inverse of :func:`to_display`."""
    return data if axis is None or data.ndim != 3 else np.moveaxis(data, 0, axis)


def to_pipeline(data: np.ndarray) -> np.ndarray:
    """Display order (axial, row, column) -> the pipeline's order (row, column, axial); 2D unchanged."""
    return data if data.ndim != 3 else np.moveaxis(data, 0, -1)


def voxel_spacing(affine: np.ndarray | None, ndim: int = 3) -> tuple[float, ...]:
    """Voxel sizes in file order from the affine's column norms (1 where the affine is missing or degenerate)."""
    if affine is None:
        return (1.0,) * ndim
    sizes = nib.affines.voxel_sizes(np.asarray(affine, dtype=np.float64))[:ndim]
    return tuple(float(s) if np.isfinite(s) and s > 0 else 1.0 for s in sizes)


def voxel_volume_ml(affine: np.ndarray | None) -> float | None:
    """Millilitres per voxel by the affine (its 3x3 part's determinant, in mm³), None where it is missing or
    degenerate: a label's volume is what a radiologist reads off it."""
    if affine is None:
        return None
    volume = abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3])))
    return volume / 1000 if np.isfinite(volume) and volume > 0 else None


def display_scale(affine: np.ndarray | None, axis: int | None, ndim: int = 3) -> tuple[float, ...]:
    """napari ``scale`` (spacing in display order)."""
    spacing = voxel_spacing(affine, ndim)
    if axis is None or ndim != 3:
        return spacing
    rest = [s for i, s in enumerate(spacing) if i != axis]
    return (spacing[axis], *rest)


def pipeline_affine(affine: np.ndarray, axis: int) -> np.ndarray:
    """Affine of the volume in pipeline order (the axial axis moved last), mapping to the same world points."""
    order = [i for i in range(3) if i != axis] + [axis]
    moved = np.array(affine, dtype=np.float64)
    moved[:, :3] = moved[:, order]
    return moved


def axial_last(scan: Scan) -> tuple[Scan, int | None]:
    """The scan in the pipeline's order (axial axis last, affine adjusted to the same world points) and the file's
    axial axis (None for a 2D image): the command line then slices a scan as the plugin shows it, whatever the
    file's axis order."""
    if not scan.is_volume:
        return scan, None
    axis = axial_axis(scan.affine)
    if axis == DEFAULT_AXIAL_AXIS:
        return scan, axis
    return Scan(data=np.moveaxis(scan.data, axis, -1), affine=pipeline_affine(scan.affine, axis), header=None, path=scan.path), axis


def layer_metadata(scan: Scan, **extra) -> dict:
    """``layer.metadata`` for a scan: source affine and header, axial axis (None for 2D images) and path."""
    axis = axial_axis(scan.affine) if scan.is_volume else None
    metadata = {
        AFFINE: np.asarray(scan.affine, dtype=np.float64),
        HEADER: scan.header.copy() if scan.header is not None else None,
        AXIAL_AXIS: axis,
        SOURCE_PATH: str(scan.path) if scan.path is not None else None,
    }
    metadata.update(extra)
    return metadata


# The last part of a file name that says the sequence: BIDS suffixes, and the LGG layout of ../shared/data
# (PATIENT_t1pre, PATIENT_flair). Nothing else is guessed; a contrast-enhanced T1w (BIDS "ce-" entity) is not T1-pre.
MODALITY_SUFFIXES = {"FLAIR": "flair", "T1w": "t1", "flair": "flair", "t1pre": "t1"}


def modality_from_name(path: str | os.PathLike | None) -> str | None:
    """The modality a file's name states (``sub-01_FLAIR.nii.gz``, ``sub-01_T1w.nii.gz``, ``X_t1pre.nii.gz``), or None."""
    stem = file_stem(path)
    if not stem:
        return None
    parts = stem.split("_")
    if any(part.startswith("ce-") for part in parts[:-1]):
        return None
    return MODALITY_SUFFIXES.get(parts[-1])


def scan_modality(path: str | os.PathLike | None, given: str | None) -> str:
    """``given`` (``--modality``, or a checkpoint's), else what the scan's file name states. The shipped models are
    one per modality, and a FLAIR model on a T1 scan gives a confident, wrong heatmap: neither saying it is refused."""
    modality = given or modality_from_name(path)
    if modality is None:
        raise InputError(f"{path}: say which sequence it is with --modality ({' or '.join(MODALITIES)}); its file name does not state it")
    return modality


def image_layer_data(scan: Scan, name: str | None = None, **extra_metadata) -> tuple[np.ndarray, dict, str]:
    """A napari layer data tuple ``(data, kwargs, "image")`` for a scan, in display order; its modality is the one
    given, else the one its file name states (:func:`modality_from_name`), so that the widgets pick the model and
    the settings of that sequence."""
    named = modality_from_name(scan.path)
    scan, oriented_from = shown_as_trained(scan)
    metadata = layer_metadata(scan, **({MODALITY: named} if named else {}) | oriented_from | extra_metadata)
    axis = metadata[AXIAL_AXIS]
    data = to_display(scan.data, axis)
    low, high = _contrast(data)
    kwargs = {
        "name": name or file_stem(scan.path) or "scan",
        "scale": display_scale(scan.affine, axis, data.ndim),
        "metadata": metadata,
        "colormap": "gray",
        "contrast_limits": (low, high),
    }
    return data, kwargs, "image"


def shown_as_trained(scan: Scan) -> tuple[Scan, dict]:
    """The scan turned to the shipped models' training orientation when its affine says it lies otherwise
    (:func:`~.orientation.as_trained`), and the metadata that takes what is drawn on it back to the file's voxel
    order, affine and header when it is saved (:func:`in_file_order`); else the scan as stored and no metadata."""
    turned, back = as_trained(scan)
    if back is None:
        return scan, {}
    return turned, {ORIENTED_FROM: {"back": back, AFFINE: np.asarray(scan.affine, dtype=np.float64), HEADER: scan.header.copy() if scan.header is not None else None}}


def in_file_order(scan: Scan, metadata: dict | None) -> Scan:
    """A scan rebuilt from a layer (:func:`scan_from_layer`) in its file's voxel order with the file's affine and header,
    when the layer shows the file turned (:func:`shown_as_trained`); else as it is."""
    oriented_from = (metadata or {}).get(ORIENTED_FROM)
    if oriented_from is None:
        return scan
    return Scan(data=to_file_order(scan.data, oriented_from["back"]), affine=oriented_from[AFFINE], header=header_from_metadata(oriented_from), path=scan.path)


def is_labels_file(scan: Scan) -> bool:
    """True for a NIfTI marked as labels (the writer marks its files so) whose values are whole numbers."""
    if scan.header is None or scan.header.get_intent()[0] != LABEL_INTENT:
        return False
    data = scan.data
    return bool(np.isfinite(data).all() and data.min() >= 0 and data.max() <= np.iinfo(np.int32).max and np.array_equal(data, np.round(data)))


def labels_layer_data(scan: Scan, name: str | None = None) -> tuple[np.ndarray, dict, str]:
    """A napari labels layer data tuple for a labels file, in display order, with the geometry it was saved with
    (so that saving it again writes it where it was)."""
    scan, oriented_from = shown_as_trained(scan)  # as its scan is shown
    metadata = layer_metadata(scan, **{READ_AS_LABELS: True} | oriented_from)
    data = to_display(scan.data, metadata[AXIAL_AXIS])
    dtype = np.uint8 if data.max(initial=0) <= np.iinfo(np.uint8).max else np.int32
    kwargs = {"name": name or file_stem(scan.path) or "labels", "scale": display_scale(scan.affine, metadata[AXIAL_AXIS], data.ndim), "metadata": metadata}
    return data.astype(dtype), kwargs, "labels"


def header_from_metadata(metadata: dict) -> nib.Nifti1Header | None:
    """The NIfTI header kept in metadata, stored either as a header object or as its raw bytes."""
    header = metadata.get(HEADER)
    if header is None or isinstance(header, nib.Nifti1Header):
        return header
    if isinstance(header, (bytes, bytearray)):
        return nib.Nifti1Header(binaryblock=bytes(header))
    raise InputError(f"layer metadata '{HEADER}' is a {type(header).__name__}, not a NIfTI header")


def scan_from_layer(data: np.ndarray, metadata: dict | None, scale: tuple[float, ...] | None = None) -> Scan:
    """Rebuild the :class:`Scan` (file order, affine, header) that a layer's display-order data came from.

    A layer without our metadata (drawn by hand, opened by another reader) is taken as already in file order,
    with a diagonal affine built from its ``scale``.
    """
    metadata = metadata or {}
    data = np.asarray(data)
    if AFFINE not in metadata:
        spacing = tuple(scale) if scale is not None else (1.0,) * data.ndim
        affine = np.diag([*spacing[-3:], *([1.0] * (4 - min(data.ndim, 3)))])
        return Scan(data=data, affine=affine, header=None, path=None)
    affine = np.asarray(metadata[AFFINE], dtype=np.float64)
    if affine.shape != (4, 4):
        raise InputError(f"layer metadata '{AFFINE}' has shape {affine.shape}, not (4, 4)")
    axis = metadata.get(AXIAL_AXIS)
    if data.ndim == 3 and axis is None:
        axis = DEFAULT_AXIAL_AXIS
    source = metadata.get(SOURCE_PATH)
    return Scan(data=to_file(data, axis), affine=affine, header=header_from_metadata(metadata), path=Path(source) if source else None)


def pipeline_scan(data: np.ndarray, metadata: dict | None, scale: tuple[float, ...] | None = None) -> Scan:
    """A :class:`Scan` in the pipeline's order (axial axis last) for a display-order layer, affine adjusted.

    Slice ``z`` of the layer (``data[z]``) is slice ``z`` of the pipeline (``[:, :, z]``); when the file's
    axial axis is already last this is exactly the file's scan, so widget and CLI agree.
    """
    scan = scan_from_layer(data, metadata, scale)
    if scan.data.ndim != 3:
        return scan
    metadata = metadata or {}
    if AFFINE in metadata:
        axis = metadata.get(AXIAL_AXIS)
        axis = DEFAULT_AXIAL_AXIS if axis is None else axis
    else:  # a foreign layer: its display order is its file order, the slider is axis 0
        axis = 0
    return Scan(data=to_pipeline(np.asarray(data)), affine=pipeline_affine(scan.affine, axis), header=None, path=scan.path)


def resampled_metadata(metadata: dict, scale: tuple[float, ...], shape: tuple[int, ...], zoomed_shape: tuple[int, ...]) -> dict:
    """Metadata for a layer resampled in-plane from one with ``metadata``, ``scale`` and display ``shape``: its own
    affine (so that it can be prepared again, brain extraction included) and, under :data:`RESAMPLED_FROM`, the
    original's grid and geometry, where labels drawn on it are written (:func:`on_source_grid`)."""
    source = {key: metadata[key] for key in (AFFINE, HEADER, AXIAL_AXIS, SOURCE_PATH, ORIENTED_FROM) if key in metadata}
    resampled = {**metadata, RESAMPLED_FROM: {"shape": tuple(shape), "scale": tuple(scale), "metadata": source}}
    if AFFINE in metadata:
        axis = metadata.get(AXIAL_AXIS)
        axis = DEFAULT_AXIAL_AXIS if axis is None else axis
        in_plane = (0, 1) if len(shape) == 2 else tuple(a for a in range(3) if a != axis)  # display order keeps their order
        resampled[AFFINE] = zoomed_affine(metadata[AFFINE], in_plane, shape[-2:], zoomed_shape[-2:])
        resampled[HEADER] = None  # the original's header describes the original's grid
    return resampled


def on_source_grid(labels: np.ndarray, metadata: dict | None, scale: tuple[float, ...] | None) -> tuple[np.ndarray, dict | None, tuple[float, ...] | None]:
    """Display-order labels drawn on a scan resampled in-plane, with the metadata and scale to save them by: brought
    back (nearest) to the grid of the scan it was resampled from, with that scan's geometry, so the file overlays the
    scan the user opened; other labels as they are."""
    source = (metadata or {}).get(RESAMPLED_FROM)
    if source is None:
        return labels, metadata, scale
    return labels_to_grid(np.asarray(labels), tuple(source["shape"])), dict(source["metadata"]), tuple(source["scale"])


def _contrast(data: np.ndarray) -> tuple[float, float]:
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(np.percentile(finite, 99.8))
    return (low, high) if high > low else (low, low + 1.0)


def file_stem(path: str | os.PathLike | None) -> str | None:
    """A file's name without its image suffix (``sub-01_FLAIR.nii.gz`` -> ``sub-01_FLAIR``); None for no path."""
    if path is None:
        return None
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES[::-1] + IMAGE_SUFFIXES:  # .nii.gz before .nii
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
