"""Reading scans (NIfTI and 2D images) and writing label volumes that stay aligned with their source scan."""

from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Refuse volumes whose float32 working copy (plus heatmap and labels) would not fit comfortably.
MAX_VOXELS = 512 * 512 * 512


@dataclass
class Scan:
    """A scan as stored on disk: ``data`` keeps the file's axis order; ``affine``/``header`` travel to outputs."""

    data: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header | None
    path: Path | None = None

    @property
    def is_volume(self) -> bool:
        return self.data.ndim == 3


def has_suffix(path: str | os.PathLike, suffixes: tuple[str, ...]) -> bool:
    """Case-insensitive suffix test that understands double suffixes such as ``.nii.gz``."""
    return str(path).lower().endswith(suffixes)


def read_scan(path: str | os.PathLike) -> Scan:
    """Read a NIfTI volume or a 2D greyscale image; raise :class:`InputError` with a readable reason otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if has_suffix(path, NIFTI_SUFFIXES):
        return _read_nifti(path)
    if has_suffix(path, IMAGE_SUFFIXES):
        return _read_image(path)
    raise InputError(f"{path}: not a NIfTI (.nii, .nii.gz) or image (.png, .jpg, .tif) file")


def _read_nifti(path: Path) -> Scan:
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for damaged files
        raise InputError(f"{path}: not a readable NIfTI file ({exc})") from exc
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(f"{path}: expected a 3D volume, got shape {shape}; split 4D series or use a 2D image")
    n_voxels = int(np.prod(shape))
    if n_voxels > MAX_VOXELS:
        need_gb = n_voxels * 4 * 3 / 1e9
        raise InputError(f"{path}: volume {shape} is too large (about {need_gb:.1f} GB to process; limit {MAX_VOXELS} voxels)")
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        raise InputError(f"{path}: the file is truncated or corrupt ({exc})") from exc
    header = img.header.copy() if isinstance(img.header, nib.Nifti1Header) else None
    return Scan(data=data, affine=np.asarray(img.affine, dtype=np.float64), header=header, path=path)


def _read_image(path: Path) -> Scan:
    from skimage import io as skio

    try:
        image = skio.imread(str(path))
    except Exception as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from exc
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        from skimage.color import rgb2gray

        image = rgb2gray(image[..., :3]) * 255.0
    if image.ndim != 2:
        raise InputError(f"{path}: expected a 2D greyscale image, got shape {image.shape}")
    return Scan(data=np.asarray(image, dtype=np.float32), affine=np.eye(4), header=None, path=path)


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    like: Scan | None = None,
    *,
    force: bool = False,
) -> Path:
    """Write ``labels`` as a uint8 NIfTI with ``like``'s affine and header, atomically (temporary file, then rename).

    An existing file is never replaced unless ``force`` is set, so a user's earlier labels are not lost by accident.
    """
    path = Path(path)
    if not has_suffix(path, NIFTI_SUFFIXES):
        raise InputError(f"{path}: labels are written as NIfTI; use a .nii.gz or .nii file name")
    if path.exists() and not force:
        raise InputError(f"{path}: file exists; pass --force (or confirm) to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output folder does not exist")
    if like is not None and labels.shape != like.data.shape:
        raise InputError(f"labels shape {labels.shape} differs from the scan's {like.data.shape}")
    affine = like.affine if like is not None else np.eye(4)
    header = like.header.copy() if like is not None and like.header is not None else None
    img = nib.Nifti1Image(np.asarray(labels, dtype=np.uint8), affine, header)
    img.set_data_dtype(np.uint8)
    img.header["scl_slope"], img.header["scl_inter"] = 1.0, 0.0
    write_atomically(path, img.to_filename)
    return path


def write_float_volume(path: str | os.PathLike, volume: np.ndarray, like: Scan | None = None, *, force: bool = False) -> Path:
    """Write a float32 map (e.g. a heatmap) aligned with ``like``; same safety rules as :func:`write_labels`."""
    path = Path(path)
    if not has_suffix(path, NIFTI_SUFFIXES):
        raise InputError(f"{path}: maps are written as NIfTI; use a .nii.gz or .nii file name")
    if path.exists() and not force:
        raise InputError(f"{path}: file exists; pass --force (or confirm) to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output folder does not exist")
    affine = like.affine if like is not None else np.eye(4)
    img = nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine)
    write_atomically(path, img.to_filename)
    return path


def write_atomically(path: Path, write: callable) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path`` and rename it into place only when complete."""
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else path.suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot write here ({exc.strerror})") from exc
    os.close(fd)
    try:
        write(tmp_name)
        os.replace(tmp_name, path)
    except OSError as exc:
        raise InputError(f"{path}: could not be written ({exc.strerror or exc})") from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
