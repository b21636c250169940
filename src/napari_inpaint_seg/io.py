"""Reading scans (NIfTI and 2D images) and writing label volumes that stay aligned with their source scan."""

from __future__ import annotations

import os
import stat
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import InputError, first_line

NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Refuse volumes whose float32 working copy (plus heatmap and labels) would not fit comfortably.
MAX_VOXELS = 512 * 512 * 512
# Working memory per voxel: float32 scan, normalised image and heatmap, brain mask, labels, temporaries.
BYTES_PER_VOXEL = 20


@dataclass
class Scan:
    """A scan as stored on disk: ``data`` keeps the file's axis order; ``affine``/``header`` travel to outputs.

    ``data`` is 3D (row, column, slice) for a volume and 2D for a single slice (a 2D image or a NIfTI with
    two dimensions); single slices are assumed skull-stripped.
    """

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
    """Read a NIfTI volume, a 2D greyscale image or a folder holding a DICOM series; raise :class:`InputError` with a
    readable reason otherwise."""
    path = Path(path)
    if path.is_dir():
        from .dicom import read_dicom_series

        return read_dicom_series(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if has_suffix(path, NIFTI_SUFFIXES):
        return _read_nifti(path)
    if has_suffix(path, IMAGE_SUFFIXES):
        return _read_image(path)
    raise InputError(f"{path}: not a NIfTI (.nii, .nii.gz) or image (.png, .jpg, .tif) file")


def is_multipage_tiff(path: str | os.PathLike) -> bool:
    """True for a TIFF file with more than one page (a stack, not one slice); False when it cannot be opened."""
    if not has_suffix(path, (".tif", ".tiff")):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(str(path)) as tiff:
            return len(tiff.pages) > 1
    except Exception:  # unreadable: read_scan will say why
        return False


def _read_nifti(path: Path) -> Scan:
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for damaged files
        raise InputError(f"{path}: not a readable NIfTI file ({first_line(exc)})") from exc
    shape = tuple(int(s) for s in img.shape)
    while len(shape) > 3 and shape[-1] == 1:  # (H, W, Z, 1): a 3D volume stored as a one-frame series
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        hint = "; split the series into 3D volumes first" if len(shape) > 3 else ""
        raise InputError(f"{path}: expected a 3D volume or a 2D slice, got shape {shape}{hint}")
    if 0 in shape:
        raise InputError(f"{path}: the volume is empty (shape {shape})")
    dtype = img.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise InputError(f"{path}: voxels of type {dtype} (colour or complex) are not supported; convert to a greyscale scalar volume")
    check_size(path, shape)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except MemoryError as exc:
        raise InputError(f"{path}: not enough memory to read a volume of shape {shape}") from exc
    except Exception as exc:  # EOFError, zlib.error, OSError, ValueError (short buffer), ... for damaged data
        raise InputError(f"{path}: the file is truncated or corrupt ({first_line(exc)})") from exc
    header = img.header.copy() if isinstance(img.header, nib.Nifti1Header) else None
    return Scan(data=data, affine=np.asarray(img.affine, dtype=np.float64), header=header, path=path)


def check_size(path: str | Path, shape: tuple[int, ...]) -> None:
    """Refuse, before reading any voxel, a scan whose processing would need more memory than allowed or available."""
    n_voxels = int(np.prod(shape, dtype=np.int64))
    need = n_voxels * BYTES_PER_VOXEL
    available = _available_memory()
    if n_voxels > MAX_VOXELS or (available is not None and need > available):
        limit = f"limit {MAX_VOXELS} voxels" + (f", {available / 1e9:.1f} GB available" if available is not None else "")
        raise InputError(f"{path}: scan of shape {shape} is too large (about {need / 1e9:.1f} GB to process; {limit})")


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``, else the physical total), or None if unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _read_image(path: Path) -> Scan:
    from PIL import Image
    from skimage import io as skio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_size says it in one line
            with Image.open(path) as probe:  # reads the header only: refuse huge images before decoding them
                width, height = probe.size
        check_size(path, (height, width))
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: image is too large ({first_line(exc)})") from exc
    except Exception:  # Pillow cannot open every TIFF that scikit-image (tifffile) reads; decode and see
        pass
    try:
        image = np.asarray(skio.imread(str(path)))
    except Exception as exc:
        raise InputError(f"{path}: not a readable image ({first_line(exc)})") from exc
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        from skimage.color import rgb2gray

        image = rgb2gray(image[..., :3]) * 255.0
    elif image.ndim == 3 and image.shape[-1] == 2:  # greyscale with alpha
        image = image[..., 0]
    if image.ndim != 2:
        raise InputError(f"{path}: expected a 2D greyscale image, got shape {image.shape}")
    if image.dtype.kind not in "biuf":
        raise InputError(f"{path}: pixels of type {image.dtype} are not supported")
    return Scan(data=np.asarray(image, dtype=np.float32), affine=np.eye(4), header=None, path=path)


# NIFTI_INTENT_LABEL: marks the file as labels, so the reader opens it as a labels layer again.
LABEL_INTENT = "label"


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
    return _write_volume(path, labels, np.uint8, like, force, what="labels", intent=LABEL_INTENT)


def write_float_volume(path: str | os.PathLike, volume: np.ndarray, like: Scan | None = None, *, force: bool = False) -> Path:
    """Write a float32 map (e.g. a heatmap) aligned with ``like``; same safety rules as :func:`write_labels`."""
    return _write_volume(path, volume, np.float32, like, force, what="maps", intent="none")


def _write_volume(path: str | os.PathLike, array: np.ndarray, dtype: type, like: Scan | None, force: bool, what: str, intent: str) -> Path:
    path = check_writable(path, force, what=what)
    check_fits(array.shape, like, what)
    img = nib.Nifti1Image(np.asarray(array, dtype=dtype), _affine(like), _header(like))
    img.set_data_dtype(dtype)
    img.header["scl_slope"], img.header["scl_inter"] = 1.0, 0.0
    img.header["cal_min"], img.header["cal_max"] = 0.0, 0.0  # the scan's display window means nothing here
    img.header.set_intent(intent)  # not the source scan's
    write_atomically(path, img.to_filename)
    return path


def geometry_difference(scan: Scan, other: Scan) -> str | None:
    """How ``scan`` lies differently from ``other`` (its shape, or its voxel-to-world affine beyond 1e-3), or None
    when both are on one grid."""
    if scan.data.shape != other.data.shape:
        return f"shape {scan.data.shape} differs from the shape {other.data.shape}"
    if not np.allclose(scan.affine, other.affine, atol=1e-3):
        return "the affine (where the voxels lie) differs from the affine"
    return None


def check_fits(shape: tuple[int, ...], like: Scan | None, what: str = "labels") -> None:
    """Refuse an array that does not have the shape of the scan whose affine and header it is written with: the
    scan's data, and the shape its header names (labels rebuilt from a layer carry only the header)."""
    if like is None:
        return
    if shape != like.data.shape:
        raise InputError(f"{what} shape {shape} differs from the scan's {like.data.shape}")
    if like.header is not None:
        named = tuple(int(n) for n in like.header.get_data_shape())
        while len(named) > len(shape) and named[-1] == 1:  # a 4D file with one frame holds a 3D scan
            named = named[:-1]
        if named != shape:
            source = f" ({like.path.name})" if like.path is not None else ""
            raise InputError(f"{what} shape {shape} differs from the shape of the scan they belong to{source}, {named}: "
                             "they would be saved with another scan's geometry")


def check_writable(
    path: str | os.PathLike, force: bool, what: str = "labels", suffixes: tuple[str, ...] | None = NIFTI_SUFFIXES, how_to_force: str = "pass --force (or confirm)"
) -> Path:
    """The checks every output passes before any work: a NIfTI name (unless ``suffixes`` is None), no clobbering,
    an existing folder; ``how_to_force`` completes the message for an existing file."""
    path = Path(path)
    if suffixes is not None and not has_suffix(path, suffixes):
        raise InputError(f"{path}: {what} are written as NIfTI; use a .nii.gz or .nii file name")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name such as labels.nii.gz")
    if path.exists() and not force:
        raise InputError(f"{path}: file exists; {how_to_force} to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: {'is a file, not a folder' if path.parent.exists() else 'output folder does not exist'}")
    return path


def _affine(like: Scan | None) -> np.ndarray:
    return like.affine if like is not None else np.eye(4)


def _header(like: Scan | None) -> nib.Nifti1Header | None:
    return like.header.copy() if like is not None and like.header is not None else None


def write_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path`` and rename it into place only when complete.

    Whatever happens (an error, Ctrl-C), the temporary file is removed and ``path`` is either untouched or whole.
    """
    path = Path(os.path.realpath(path))  # through a symlink: its target is updated, the link stays
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else path.suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot write here ({exc.strerror or exc})") from exc
    os.close(fd)
    try:
        # mkstemp makes 0600 files: a new output gets the usual permissions, a replaced file keeps its own
        os.chmod(tmp_name, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~current_umask())
        write(tmp_name)
        os.replace(tmp_name, path)
    except OSError as exc:
        raise InputError(f"{path}: could not be written ({exc.strerror or exc})") from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def write_npz_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` through :func:`write_atomically`, into a file handle so that numpy writes exactly
    the temporary name (given a name without ``.npz``, it would append one)."""

    def write(tmp_path: str) -> None:
        with open(tmp_path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    write_atomically(Path(path), write)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
