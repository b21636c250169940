"""Healthy training slices from three kinds of source, packed compactly, and random hole crops from them.

Every slice is kept with its brain mask in the project's intensity convention; holes are centred on brain
pixels so the generator learns to inpaint tissue, not background.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..brain import extract_brain_volume, foreground_mask_2d
from ..errors import InputError, first_line
from ..intensity import normalize_in_brain
from ..io import IMAGE_SUFFIXES, NIFTI_SUFFIXES, has_suffix, read_scan, write_npz_atomically

# A slice needs this much brain (where holes may be centred) to hold a hole with context around it.
MIN_BRAIN_PIXELS = 2000
# What np.load raises for a file that is not a readable .npz (truncated, text, another format).
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
# In the description of a set that holds LGG tumour slices (SliceSet.shows_tumour); packs keep the description.
WITH_TUMOUR_SLICES = "plus their tumour slices"


@dataclass
class SliceSet:
    """Normalised healthy slices (float32 in [0, 1]) with their brain masks; slices may differ in size.

    ``modality`` is "" when the source does not say (2D images, volumes, packs written before the field).
    """

    images: list[np.ndarray]
    brains: list[np.ndarray]
    description: str = ""
    modality: str = ""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shows_tumour(self) -> bool:
        """Whether some slices show a tumour (LGG tumour slices added with ``tumour_margin``): their brain masks keep
        holes off it, but the images still show it, so they are not healthy slices for anything else."""
        return WITH_TUMOUR_SLICES in self.description

    def extend(self, other: SliceSet) -> None:
        """Append ``other``; refuses to mix modalities, since one generator learns one modality."""
        if self.modality and other.modality and self.modality != other.modality:
            raise InputError(f"cannot mix {self.modality} slices ({self.description}) with {other.modality} slices ({other.description})")
        self.images += other.images
        self.brains += other.brains
        self.description = "; ".join(d for d in (self.description, other.description) if d)
        self.modality = self.modality or other.modality


def check_slices(slices: SliceSet) -> None:
    """Raise :class:`InputError` for the first slice training cannot use.

    Holes are centred on brain pixels, so every slice needs some; :func:`normalize_in_brain` clips to [0, 1],
    so a value outside it (or NaN) means the slices skipped the intensity convention, and a pack would wrap it.
    """
    if not len(slices):
        raise InputError("no training slices")
    if len(slices.images) != len(slices.brains):
        raise InputError(f"{len(slices.images)} images but {len(slices.brains)} brain masks")
    for index, (image, brain) in enumerate(zip(slices.images, slices.brains)):
        where = f"slice {index} of {slices.description or 'the training slices'}"
        if image.ndim != 2 or image.shape != brain.shape:
            raise InputError(f"{where}: image {image.shape} and brain mask {brain.shape} are not one 2D shape")
        if not brain.any():
            raise InputError(f"{where}: the brain mask is empty (holes are centred on brain pixels)")
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise InputError(f"{where}: values outside [0, 1] or NaN; slices must follow the intensity convention (normalize_in_brain)")


def _slices_of_volume(normalized: np.ndarray, centres: np.ndarray, keep: np.ndarray) -> SliceSet:
    """The kept axial slices of a volume normalised over its whole brain, with enough room for holes: a slice's
    stored mask is ``centres``, where holes may be centred (the brain, or the part of it away from a tumour)."""
    images, brains = [], []
    for z in np.flatnonzero(keep):
        if centres[:, :, z].sum() >= MIN_BRAIN_PIXELS:
            images.append(normalized[:, :, z])
            brains.append(centres[:, :, z])
    return SliceSet(images, brains)


def cached_brain_mask(scan_path: Path, cache_dir: Path | None) -> np.ndarray:
    """deepbet mask of a volume, cached as a compressed .npz because extraction takes seconds per volume."""
    cache_file = cache_dir / f"{scan_path.name.split('.')[0]}_{_file_fingerprint(scan_path)}_brain.npz" if cache_dir else None
    cached = _read_cached_mask(cache_file) if cache_file is not None else None
    if cached is not None:
        return cached
    scan = read_scan(scan_path)
    brain = extract_brain_volume(scan.data, scan.affine)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_npz_atomically(cache_file, {"brain": brain})
    return brain


def _read_cached_mask(cache_file: Path) -> np.ndarray | None:
    """The cached mask, or None when there is none or it is unreadable (half-written by a killed older version)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as cached:
            return cached["brain"]
    except NPZ_READ_ERRORS:
        return None


def _file_fingerprint(path: Path) -> str:
    """Short hash of where a file is, its size and its mtime: same-named scans in other folders, or an
    edited scan, must not reuse a stale cached mask."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def read_patient_list(path: str | os.PathLike) -> list[str]:
    """Patient ids, one per line; blank lines and # comments skipped. utf-8-sig: a list saved by a spreadsheet
    starts with an invisible byte-order mark that would otherwise become part of the first id."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such patient list")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def lgg_patient_volume_paths(data_dir: Path, patient: str, modality: str) -> tuple[Path, Path]:
    """(scan, tumour mask) paths of one patient in the LGG layout of ``shared/data/lgg``."""
    suffix = {"t1": "t1pre", "flair": "flair"}[modality]
    return data_dir / f"{patient}_{suffix}.nii.gz", data_dir / f"{patient}_mask.nii.gz"


def lgg_t1_copies_of_flair(data_dir: Path) -> set[str]:
    """Patients whose T1-pre file is FLAIR again (the dataset's stand-in for a missing T1), per the folder's
    ``summary.json``; empty when the folder has none."""
    summary = data_dir / "summary.json"
    if not summary.is_file():
        return set()
    try:
        entries = json.loads(summary.read_text())
        return {entry["patient"] for entry in entries if entry.get("t1pre_missing_replaced_by_flair")}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(f"{summary}: not the LGG summary (a list of per-patient records): {exc}") from exc


def check_lgg_patients(data_dir: str | os.PathLike, patients: list[str], modality: str, listed_in: str | os.PathLike | None = None) -> None:
    """Before any volume is read (training packs and evaluations take minutes to hours, so a typo on the last
    line must not surface at the end): a non-empty list without repeats (a repeat would count a patient twice),
    and for every patient a scan and a mask of the same shape."""
    import nibabel as nib

    data_dir = Path(data_dir)
    of_list = f" of {listed_in}" if listed_in else ""
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: no such LGG data folder")
    if not patients:
        raise InputError(f"{listed_in or 'the patient list'}: lists no patients")
    duplicates = sorted(patient for patient, count in Counter(patients).items() if count > 1)
    if duplicates:
        raise InputError(f"patient ids listed more than once{of_list}: {', '.join(duplicates)}")
    unknown = [p for p in patients if not all(path.is_file() for path in lgg_patient_volume_paths(data_dir, p, modality))]
    if unknown:
        missing = next(path for path in lgg_patient_volume_paths(data_dir, unknown[0], modality) if not path.is_file())
        raise InputError(f"{data_dir}: no {modality} scan and mask for {len(unknown)} patient(s){of_list}: {', '.join(unknown)} ({missing.name} is missing)")
    for patient in patients:
        try:
            shapes = [tuple(nib.load(str(path)).shape) for path in lgg_patient_volume_paths(data_dir, patient, modality)]
        except Exception as exc:  # nibabel raises many types for damaged headers
            raise InputError(f"patient {patient!r}: a scan or mask header cannot be read ({exc})") from exc
        if shapes[0] != shapes[1]:
            raise InputError(f"patient {patient!r}: scan {shapes[0]} and mask {shapes[1]} differ in shape")


def lgg_healthy_slices(
    data_dir: str | os.PathLike,
    patients: list[str],
    modality: str,
    cache_dir: Path | None = None,
    report: Callable[[str], object] = print,
    tumour_margin: int | None = None,
) -> SliceSet:
    """The slices without any tumour voxel of the listed LGG patients (training data of the shipped models).

    For T1, patients whose T1-pre is a copy of FLAIR are skipped (``report`` names them): they would teach the
    T1 generator FLAIR contrast. With ``tumour_margin``, the tumour slices join too, with hole centres only
    where no tumour pixel lies within that many pixels (a square neighbourhood, so ``gamma / 2`` keeps the hole
    off the tumour): tumour-free slices lie mostly at the scan's ends, and this adds the mid-brain anatomy
    around which tumours grow.
    """
    data_dir = Path(data_dir)
    check_lgg_patients(data_dir, patients, modality)
    if modality == "t1":
        flair_copies = lgg_t1_copies_of_flair(data_dir)
        copies = [p for p in patients if p in flair_copies]
        if copies:
            report(f"note: skipping {len(copies)} patient(s) whose T1-pre is a copy of FLAIR (summary.json): {', '.join(copies)}")
        patients = [p for p in patients if p not in copies]
    description = f"lgg tumour-free {modality} slices of {len(patients)} patients"
    if tumour_margin is not None:
        description += f", {WITH_TUMOUR_SLICES} with hole centres at least {tumour_margin} px from the tumour"
    result = SliceSet([], [], description, modality)
    for patient in patients:
        scan_path, mask_path = lgg_patient_volume_paths(data_dir, patient, modality)
        volume = read_scan(scan_path).data
        tumour = read_scan(mask_path).data > 0
        brain = cached_brain_mask(scan_path, cache_dir)
        normalized = normalize_in_brain(volume, brain)
        has_tumour = tumour.any(axis=(0, 1))
        result.extend(_slices_of_volume(normalized, brain, keep=~has_tumour))
        if tumour_margin is not None:
            result.extend(_slices_of_volume(normalized, brain & _away_from(tumour, tumour_margin), keep=has_tumour))
    return result


def _away_from(tumour: np.ndarray, margin: int) -> np.ndarray:
    """Per axial slice, the pixels with no tumour pixel within ``margin`` (square neighbourhood)."""
    from scipy import ndimage  # imported here: only this training option needs it

    return ~ndimage.maximum_filter(tumour, size=(2 * margin + 1, 2 * margin + 1, 1))


def image_folder_slices(folder: str | os.PathLike) -> SliceSet:
    """Every 2D image below ``folder``; images must be skull-stripped (background 0), like OASIS."""
    result = SliceSet([], [], f"2D images from {folder}")
    for path in sorted(Path(folder).rglob("*")):
        if has_suffix(path, IMAGE_SUFFIXES):
            image = read_scan(path).data
            brain = foreground_mask_2d(image)
            if brain.sum() >= MIN_BRAIN_PIXELS:
                result.images.append(normalize_in_brain(image, brain))
                result.brains.append(brain)
    return result


def nifti_folder_slices(folder: str | os.PathLike, cache_dir: Path | None = None) -> SliceSet:
    """All axial slices (last axis) with enough brain of the user's own healthy NIfTI volumes."""
    result = SliceSet([], [], f"NIfTI volumes from {folder}")
    for path in sorted(Path(folder).rglob("*")):
        if has_suffix(path, NIFTI_SUFFIXES):
            volume = read_scan(path).data
            brain = cached_brain_mask(path, cache_dir)
            result.extend(_slices_of_volume(normalize_in_brain(volume, brain), brain, keep=np.ones(volume.shape[2], dtype=bool)))
    return result


def gather_slices(
    modality: str,
    *,
    pack: Path | None = None,
    lgg: Path | None = None,
    patients: Path | None = None,
    images: Path | None = None,
    volumes: Path | None = None,
    cache_dir: Path | None = None,
    report: Callable[[str], object] = print,
    tumour_margin: int | None = None,
) -> SliceSet:
    """Slices from any mix of the sources of ``pack_slices.py`` and ``train.py`` (``None`` skips a source).

    Sources that do not record a modality (2D images, volumes, older packs) take the declared ``modality``; a
    pack that does record one keeps it, so training can refuse a mismatch.
    """
    if lgg is not None and patients is None:
        raise InputError("an LGG folder (--lgg) needs its patient list (--patients)")
    if tumour_margin is not None and lgg is None:
        raise InputError("--tumour-margin picks regions of LGG tumour slices; it needs --lgg")
    slices = load_slice_pack(pack) if pack is not None else SliceSet([], [])
    if lgg is not None:
        slices.extend(lgg_healthy_slices(lgg, read_patient_list(patients), modality, cache_dir, report, tumour_margin))
    if images is not None:
        slices.extend(image_folder_slices(images))
    if volumes is not None:
        slices.extend(nifti_folder_slices(volumes, cache_dir))
    slices.modality = slices.modality or modality
    return slices


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """The pack's storage of a [0, 1] image."""
    return np.round(image * 255).astype(np.uint8)


def slices_fingerprint(slices: SliceSet) -> str:
    """Slice count and a hash of the slices at the pack's precision, so a resumed run can tell whether it still
    trains on the data it began with, whether it reads them from a pack or from their sources."""
    digest = hashlib.sha1()
    for image, brain in zip(slices.images, slices.brains):
        digest.update(np.asarray(image.shape, dtype=np.int64).tobytes())
        digest.update(_as_uint8(image).tobytes())
        digest.update(np.packbits(brain).tobytes())
    return f"{len(slices)} slices, sha1 {digest.hexdigest()[:12]}"


def save_slice_pack(path: str | os.PathLike, slices: SliceSet) -> None:
    """Pack slices as uint8 images plus bit-packed masks in one compressed .npz (a few MB for thousands).

    The file is written exactly at ``path`` (no ``.npz`` appended), and only once complete.
    """
    check_slices(slices)
    arrays = {"description": np.array(slices.description), "modality": np.array(slices.modality)}
    for i, (image, brain) in enumerate(zip(slices.images, slices.brains)):
        arrays[f"image_{i}"] = _as_uint8(image)
        arrays[f"brain_{i}"] = np.packbits(brain)
        arrays[f"shape_{i}"] = np.array(brain.shape)
    write_npz_atomically(Path(path), arrays)


def load_slice_pack(path: str | os.PathLike) -> SliceSet:
    """Inverse of :func:`save_slice_pack`; a missing, damaged or foreign file is an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such slice pack")
    try:
        pack = np.load(path, allow_pickle=False)
    except NPZ_READ_ERRORS as exc:
        raise _not_a_pack(path, exc) from exc
    if not isinstance(pack, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: holds a single array, not a slice pack made by pack_slices.py")
    try:
        with pack:
            return _slices_of_pack(pack)
    except NPZ_READ_ERRORS as exc:
        raise _not_a_pack(path, exc) from exc


def _not_a_pack(path: Path, exc: Exception) -> InputError:
    return InputError(f"{path}: not a slice pack made by pack_slices.py ({first_line(exc)})")


def _slices_of_pack(pack: np.lib.npyio.NpzFile) -> SliceSet:
    """The slices of an open pack; KeyError or ValueError when it lacks an array or an array does not fit."""
    count = sum(1 for key in pack.files if key.startswith("image_"))
    if count == 0:
        raise ValueError("it holds no slices")
    images, brains = [], []
    for i in range(count):
        shape = tuple(int(n) for n in pack[f"shape_{i}"])
        image = pack[f"image_{i}"]
        if image.dtype != np.uint8 or image.shape != shape:
            raise ValueError(f"slice {i}: image {image.dtype} {image.shape} does not match its shape {shape}")
        images.append(image.astype(np.float32) / 255.0)
        brains.append(np.unpackbits(pack[f"brain_{i}"])[: np.prod(shape)].reshape(shape).astype(bool))
    modality = str(pack["modality"]) if "modality" in pack.files else ""
    return SliceSet(images, brains, str(pack["description"]), modality)


def sample_hole_crops(slices: SliceSet, batch: int, gamma: int, context: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A batch of (context x context) crops with a gamma x gamma hole near their centre, on brain pixels.

    Returns images (B, 1, C, C) float32 and holes (B, 1, C, C) float32 (1 inside the hole).
    """
    images = np.zeros((batch, 1, context, context), dtype=np.float32)
    holes = np.zeros_like(images)
    jitter = gamma // 4
    for b in range(batch):
        index = rng.integers(len(slices))
        image, brain = slices.images[index], slices.brains[index]
        rows, cols = np.nonzero(brain)
        pick = rng.integers(len(rows))
        hole_top = rows[pick] - gamma // 2
        hole_left = cols[pick] - gamma // 2
        offset_r, offset_c = (context - gamma) // 2 + rng.integers(-jitter, jitter + 1, size=2)
        images[b, 0] = _crop_with_zeros(image, hole_top - offset_r, hole_left - offset_c, context)
        holes[b, 0, offset_r : offset_r + gamma, offset_c : offset_c + gamma] = 1.0
    return images, holes


def _crop_with_zeros(image: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``image[top:top+size, left:left+size]`` with zeros where the window leaves the image."""
    out = np.zeros((size, size), dtype=np.float32)
    height, width = image.shape
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + size, height), min(left + size, width)
    if r1 > r0 and c1 > c0:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = image[r0:r1, c0:c1]
    return out
