"""Healthy training slices from three kinds of source, packed compactly, and random hole crops from them.

Every slice is kept with its brain mask in the project's intensity convention; holes are centred on brain
pixels so the generator learns to inpaint tissue, not background.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..brain import extract_brain_volume, foreground_mask_2d
from ..intensity import normalize_in_brain
from ..io import IMAGE_SUFFIXES, NIFTI_SUFFIXES, has_suffix, read_scan

# A slice needs this much brain to hold a hole with context around it.
MIN_BRAIN_PIXELS = 2000


@dataclass
class SliceSet:
    """Normalised healthy slices (float32 in [0, 1]) with their brain masks; slices may differ in size."""

    images: list[np.ndarray]
    brains: list[np.ndarray]
    description: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def extend(self, other: "SliceSet") -> None:
        self.images += other.images
        self.brains += other.brains
        self.description = "; ".join(d for d in (self.description, other.description) if d)


def _slices_of_volume(volume: np.ndarray, brain: np.ndarray, keep: np.ndarray) -> SliceSet:
    normalized = normalize_in_brain(volume, brain)
    images, brains = [], []
    for z in np.flatnonzero(keep):
        if brain[:, :, z].sum() >= MIN_BRAIN_PIXELS:
            images.append(normalized[:, :, z])
            brains.append(brain[:, :, z])
    return SliceSet(images, brains)


def cached_brain_mask(scan_path: Path, cache_dir: Path | None) -> np.ndarray:
    """deepbet mask of a volume, cached as a compressed .npz because extraction takes seconds per volume."""
    cache_file = cache_dir / f"{scan_path.name.split('.')[0]}_{_file_fingerprint(scan_path)}_brain.npz" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        return np.load(cache_file)["brain"]
    scan = read_scan(scan_path)
    brain = extract_brain_volume(scan.data, scan.affine)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache_file, brain=brain)
    return brain


def _file_fingerprint(path: Path) -> str:
    """Short hash of where a file is, its size and its mtime: same-named scans in other folders, or an
    edited scan, must not reuse a stale cached mask."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def lgg_patient_volume_paths(data_dir: Path, patient: str, modality: str) -> tuple[Path, Path]:
    """(scan, tumour mask) paths of one patient in the LGG layout of ``shared/data/lgg``."""
    suffix = {"t1": "t1pre", "flair": "flair"}[modality]
    return data_dir / f"{patient}_{suffix}.nii.gz", data_dir / f"{patient}_mask.nii.gz"


def lgg_tumour_free_slices(data_dir: str | os.PathLike, patients: list[str], modality: str, cache_dir: Path | None = None) -> SliceSet:
    """The slices without any tumour voxel of the listed LGG patients (training data of the shipped models)."""
    data_dir = Path(data_dir)
    result = SliceSet([], [], f"lgg tumour-free {modality} slices of {len(patients)} patients")
    for patient in patients:
        scan_path, mask_path = lgg_patient_volume_paths(data_dir, patient, modality)
        volume = read_scan(scan_path).data
        tumour = read_scan(mask_path).data > 0
        brain = cached_brain_mask(scan_path, cache_dir)
        part = _slices_of_volume(volume, brain, keep=~tumour.any(axis=(0, 1)))
        result.images += part.images
        result.brains += part.brains
    return result


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
            part = _slices_of_volume(volume, brain, keep=np.ones(volume.shape[2], dtype=bool))
            result.images += part.images
            result.brains += part.brains
    return result


def save_slice_pack(path: str | os.PathLike, slices: SliceSet) -> None:
    """Pack slices as uint8 images plus bit-packed masks in one compressed .npz (a few MB for thousands)."""
    arrays = {"description": np.array(slices.description)}
    for i, (image, brain) in enumerate(zip(slices.images, slices.brains)):
        arrays[f"image_{i}"] = np.round(image * 255).astype(np.uint8)
        arrays[f"brain_{i}"] = np.packbits(brain)
        arrays[f"shape_{i}"] = np.array(brain.shape)
    np.savez_compressed(path, **arrays)


def load_slice_pack(path: str | os.PathLike) -> SliceSet:
    with np.load(path) as pack:
        count = sum(1 for key in pack.files if key.startswith("image_"))
        images, brains = [], []
        for i in range(count):
            shape = tuple(pack[f"shape_{i}"])
            images.append(pack[f"image_{i}"].astype(np.float32) / 255.0)
            brains.append(np.unpackbits(pack[f"brain_{i}"])[: np.prod(shape)].reshape(shape).astype(bool))
        return SliceSet(images, brains, str(pack["description"]))


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
