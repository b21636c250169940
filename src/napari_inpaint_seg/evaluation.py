"""Table 1 of the paper on LGG-layout data: Dice on tumour slices, PSNR/SSIM of inpainting on healthy ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import read_scan
from .localizer import DEFAULT_STEP, final
from .metrics import dice, psnr, ssim
from .models.config import ModelConfig
from .models.generator import inpaint
from .pipeline import PreparedScan, SliceResult, localize_slice, prepare_scan
from .segmentation import FelzenszwalbParams, rank_segments, superpixels
from .training.data import lgg_patient_volume_paths, sample_hole_crops, SliceSet

MIN_TUMOUR_PIXELS = 50
HOLES_PER_HEALTHY_SLICE = 4


def read_patient_list(path: str | Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]


@dataclass
class TumourSlice:
    """One evaluated slice: its normalised image, brain, ground truth and heatmap (cacheable for tuning)."""

    patient: str
    index: int
    image: np.ndarray
    brain: np.ndarray
    tumour: np.ndarray
    heatmap: np.ndarray
    seconds: float


def tumour_slice_heatmaps(prepared: PreparedScan, tumour: np.ndarray, patient: str, generator, config: ModelConfig, *, step: int, fast: bool, device: str) -> list[TumourSlice]:
    """Heatmaps of the slices with at least :data:`MIN_TUMOUR_PIXELS` tumour pixels (the paper's test set)."""
    rows = []
    for index in np.flatnonzero(tumour.sum(axis=(0, 1)) >= MIN_TUMOUR_PIXELS):
        began = time.perf_counter()
        heatmap = final(localize_slice(prepared, int(index), generator, config, step=step, fast=fast, device=device))
        rows.append(TumourSlice(patient, int(index), prepared.image[:, :, index], prepared.brain[:, :, index], tumour[:, :, index], heatmap, time.perf_counter() - began))
    return rows


def selection_dice(slices: list[TumourSlice], params: FelzenszwalbParams, merge_ratio: float | None) -> np.ndarray:
    """Dice of the top candidate on every slice, for one choice of superpixels and merging."""
    scores = []
    for item in slices:
        labels = superpixels(item.image, params)
        result = SliceResult(item.index, item.heatmap, labels, rank_segments(labels, item.heatmap, item.brain), merge_ratio)
        scores.append(dice(result.mask(0, item.brain), item.tumour))
    return np.asarray(scores)


@torch.inference_mode()
def inpainting_quality(prepared: PreparedScan, healthy_slices: np.ndarray, generator, config: ModelConfig, rng: np.random.Generator, device: str) -> list[dict]:
    """PSNR and SSIM inside random gamma x gamma holes on brain pixels of tumour-free slices (range [0, 1])."""
    slices = SliceSet([prepared.image[:, :, z] for z in healthy_slices], [prepared.brain[:, :, z] for z in healthy_slices])
    if not len(slices):
        return []
    images, holes = sample_hole_crops(slices, HOLES_PER_HEALTHY_SLICE * len(slices), config.gamma, config.context, rng)
    filled = inpaint(generator, torch.from_numpy(images).to(device), torch.from_numpy(holes).to(device)).cpu().numpy()
    rows = []
    for original, result, hole in zip(images[:, 0], filled[:, 0], holes[:, 0].astype(bool)):
        side = config.gamma
        a, b = original[hole].reshape(side, side), result[hole].reshape(side, side)
        rows.append({"psnr": psnr(a, b), "ssim": ssim(a, b)})
    return rows


def evaluate_lgg(
    data_dir: str | Path,
    patients: list[str],
    modality: str,
    generator,
    config: ModelConfig,
    *,
    step: int = DEFAULT_STEP,
    params: FelzenszwalbParams = FelzenszwalbParams(),
    fast: bool = True,
    merge_ratio: float | None = None,
    device: str = "cpu",
    seed: int = 0,
    report: Callable[[str], None] = print,
) -> dict:
    """Dice mean ± sd over tumour slices and PSNR/SSIM over healthy slices of ``patients``; JSON-ready."""
    rng = np.random.default_rng(seed)
    slices, quality_rows = [], []
    for patient in patients:
        scan_path, mask_path = lgg_patient_volume_paths(Path(data_dir), patient, modality)
        prepared = prepare_scan(read_scan(scan_path), device=device)
        tumour = read_scan(mask_path).data > 0
        rows = tumour_slice_heatmaps(prepared, tumour, patient, generator, config, step=step, fast=fast, device=device)
        slices += rows
        enough_brain = prepared.brain.sum(axis=(0, 1)) >= 2000
        healthy = np.flatnonzero(~tumour.any(axis=(0, 1)) & enough_brain)
        quality_rows += inpainting_quality(prepared, healthy, generator, config, rng, device)
        report(f"{patient}: {len(rows)} tumour slices")
    dices = selection_dice(slices, params, merge_ratio)
    dice_rows = [{"patient": item.patient, "slice": item.index, "dice": float(d), "seconds": item.seconds} for item, d in zip(slices, dices)]
    return {
        "modality": modality,
        "gamma": config.gamma,
        "step": step,
        "felzenszwalb": {"scale": params.scale, "sigma": params.sigma, "min_size": params.min_size},
        "localizer": "fast" if fast else "reference",
        "mode": "paper" if merge_ratio is None else f"merge (ratio {merge_ratio})",
        "model_iterations": config.iterations,
        "patients": patients,
        "n_tumour_slices": int(len(dices)),
        "dice_mean": float(dices.mean()) if len(dices) else None,
        "dice_sd": float(dices.std()) if len(dices) else None,
        "psnr_mean": float(np.mean([r["psnr"] for r in quality_rows])) if quality_rows else None,
        "psnr_sd": float(np.std([r["psnr"] for r in quality_rows])) if quality_rows else None,
        "ssim_mean": float(np.mean([r["ssim"] for r in quality_rows])) if quality_rows else None,
        "ssim_sd": float(np.std([r["ssim"] for r in quality_rows])) if quality_rows else None,
        "n_inpainted_holes": len(quality_rows),
        "seconds_per_tumour_slice": float(np.mean([r["seconds"] for r in dice_rows])) if dice_rows else None,
        "slices": dice_rows,
    }
