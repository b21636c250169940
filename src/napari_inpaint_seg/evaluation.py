"""Table 1 of the paper on LGG-layout data: Dice on tumour slices, PSNR/SSIM of inpainting on healthy ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .io import read_scan
from .localizer import DEFAULT_STEP, final
from .metrics import dice, psnr, ssim
from .models.config import ModelConfig
from .models.generator import inpaint
from .pipeline import PreparedScan, localize_slice, prepare_scan, segment_slice
from .segmentation import FelzenszwalbParams
from .training.data import lgg_patient_volume_paths, sample_hole_crops, SliceSet

MIN_TUMOUR_PIXELS = 50
HOLES_PER_HEALTHY_SLICE = 4


def read_patient_list(path: str | Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]


def dice_on_tumour_slices(prepared: PreparedScan, tumour: np.ndarray, generator, config: ModelConfig, *, step: int, params: FelzenszwalbParams, fast: bool, device: str) -> list[dict]:
    """Paper's per-slice Dice for slices with at least :data:`MIN_TUMOUR_PIXELS` tumour pixels."""
    rows = []
    for index in np.flatnonzero(tumour.sum(axis=(0, 1)) >= MIN_TUMOUR_PIXELS):
        began = time.perf_counter()
        heatmap = final(localize_slice(prepared, int(index), generator, config, step=step, fast=fast, device=device))
        result = segment_slice(prepared, int(index), heatmap, params)
        predicted = result.mask(0, prepared.brain[:, :, index])
        rows.append({"slice": int(index), "dice": dice(predicted, tumour[:, :, index]), "seconds": time.perf_counter() - began})
    return rows


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
    device: str = "cpu",
    seed: int = 0,
    report: Callable[[str], None] = print,
) -> dict:
    """Dice mean ± sd over tumour slices and PSNR/SSIM over healthy slices of ``patients``; JSON-ready."""
    rng = np.random.default_rng(seed)
    dice_rows, quality_rows = [], []
    for patient in patients:
        scan_path, mask_path = lgg_patient_volume_paths(Path(data_dir), patient, modality)
        prepared = prepare_scan(read_scan(scan_path), device=device)
        tumour = read_scan(mask_path).data > 0
        rows = dice_on_tumour_slices(prepared, tumour, generator, config, step=step, params=params, fast=fast, device=device)
        dice_rows += [{"patient": patient, **row} for row in rows]
        enough_brain = prepared.brain.sum(axis=(0, 1)) >= 2000
        healthy = np.flatnonzero(~tumour.any(axis=(0, 1)) & enough_brain)
        quality_rows += inpainting_quality(prepared, healthy, generator, config, rng, device)
        if rows:
            report(f"{patient}: {len(rows)} tumour slices, mean Dice {np.mean([r['dice'] for r in rows]):.3f}")
    dices = np.array([row["dice"] for row in dice_rows])
    return {
        "modality": modality,
        "gamma": config.gamma,
        "step": step,
        "felzenszwalb": {"scale": params.scale, "sigma": params.sigma, "min_size": params.min_size},
        "localizer": "fast" if fast else "reference",
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
