"""Table 1 of the paper on LGG-layout data: Dice on tumour slices, PSNR/SSIM of inpainting on healthy ones."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .io import read_scan, write_npz_atomically
from .localizer import FAST_PATH_REVISION, fast_path_settings, final, fuse_heatmaps, heat_precision, step_for_window
from .metrics import dice, psnr, ssim
from .models.config import ModelConfig
from .models.generator import inpaint
from .pipeline import Model, PreparedScan, brain_needed, localize_slice, prepare_scan, result_from_superpixels, volume_labels
from .segmentation import PAPER_SELECTION, FelzenszwalbParams, Selection, superpixels
from .training.data import lgg_patient_volume_paths, sample_hole_crops, SliceSet

MIN_TUMOUR_PIXELS = 50
MIN_HEALTHY_BRAIN_PIXELS = 2000
HOLES_PER_HEALTHY_SLICE = 4
HEALTHY_SLICES_PER_PATIENT = 4
# What a whole-volume heatmap cache holds (its key's "whole_volumes"): since slices with less brain than one window may be
# labelled by growth, every slice with brain. Caches made before (key: true) lack the tumour-free ones and are refused.
WHOLE_VOLUMES = "every slice with brain"


def check_heatmap_caches(cache: Path, gammas: list[int]) -> None:
    """Refuse a --heatmap-cache that could not be written or is something else, before the run and not after it."""
    if not cache.name.endswith(".npz"):
        raise InputError(f"{cache}: a heatmap cache is an .npz file; give a name ending in .npz")
    if not cache.parent.is_dir():
        raise InputError(f"{cache.parent}: folder of the heatmap cache does not exist")
    for path in [cache] if len(gammas) == 1 else [per_window_cache(cache, gamma) for gamma in gammas]:
        if path.exists():
            try:
                json.loads(cache_key(path))
            except Exception as exc:  # not an npz, or one without our key
                raise InputError(f"{path}: exists but is not a heatmap cache of inpaint-seg evaluate ({exc}); give another --heatmap-cache name") from exc


@dataclass
class EvaluatedSlice:
    """One slice with its normalised image, brain, ground truth (empty on healthy slices) and heatmap.

    Heatmaps are the expensive part; keeping them lets every selection setting be scored without the model.
    """

    patient: str
    index: int
    image: np.ndarray
    brain: np.ndarray
    tumour: np.ndarray
    heatmap: np.ndarray
    seconds: float

    @property
    def has_tumour(self) -> bool:
        return bool(self.tumour.any())


def tumour_slice_indices(tumour: np.ndarray) -> np.ndarray:
    """The paper's test slices: at least :data:`MIN_TUMOUR_PIXELS` tumour pixels."""
    return np.flatnonzero(tumour.sum(axis=(0, 1)) >= MIN_TUMOUR_PIXELS)


def mean_tumour_slice_dice(labels: np.ndarray, tumour: np.ndarray) -> float:
    """The paper's measure for one labelled volume: the mean Dice over its :func:`tumour_slice_indices`."""
    return float(np.mean([dice(labels[:, :, z], tumour[:, :, z]) for z in tumour_slice_indices(tumour)]))


def command_line_labels(image, modality: str, *options: str) -> np.ndarray:
    """The labels ``inpaint-seg segment`` writes for a nibabel ``image`` stored as a ``modality`` scan, in the file's
    voxel order: for scripts that measure the tool as a user runs it (a separate process, files in and out)."""
    import subprocess
    import sys
    import tempfile

    import nibabel as nib

    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / f"scan_{modality}.nii.gz", Path(folder) / "labels.nii.gz"
        nib.save(image, source)
        subprocess.run([sys.executable, "-m", "napari_inpaint_seg.cli", "segment", str(source), "--out", str(out), *options], check=True, capture_output=True)
        return np.asarray(nib.load(out).dataobj) > 0


def score_variants(data_dir: str | Path, patients: list[str], modality: str, variants: list[str], labels_of: Callable[[object, str], np.ndarray],
                   json_path: Path | None = None) -> dict:
    """Each patient's scan segmented each of several ways (``labels_of(nibabel image, variant)``, labels in the scan's
    voxel order), scored against its mask: a row per patient and variant (mean tumour-slice Dice, volume Dice),
    printed as it comes (a run over patients takes minutes), then the mean slice Dice per variant; all of it written
    to ``json_path`` as well. For scripts that measure how the tool copes with the way a scan is stored."""
    import nibabel as nib

    rows = []
    for patient in patients:
        scan_path, mask_path = lgg_patient_volume_paths(Path(data_dir), patient, modality)
        scan, mask = nib.load(scan_path), np.asarray(nib.load(mask_path).dataobj) > 0
        for variant in variants:
            labels = labels_of(scan, variant)
            rows.append({"patient": patient, "variant": variant, "dice_mean": mean_tumour_slice_dice(labels, mask), "volume_dice": float(dice(labels, mask))})
            print(json.dumps(rows[-1]), flush=True)
    result = {"modality": modality, "rows": rows,
              "mean_slice_dice": {variant: round(float(np.mean([row["dice_mean"] for row in rows if row["variant"] == variant])), 3) for variant in variants}}
    print(json.dumps({"mean_slice_dice": result["mean_slice_dice"]}))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1))
    return result


def healthy_slice_indices(tumour: np.ndarray, brain: np.ndarray, count: int, min_brain_pixels: int = 0) -> np.ndarray:
    """``count`` tumour-free slices with plenty of brain, evenly spread (for the false-positive rate): at least
    :data:`MIN_HEALTHY_BRAIN_PIXELS`, and at least ``min_brain_pixels`` (the largest window's area), or the
    scoring, which counts only slices the product would label, would drop some of them."""
    enough = brain.sum(axis=(0, 1)) >= max(MIN_HEALTHY_BRAIN_PIXELS, min_brain_pixels)
    candidates = np.flatnonzero(~tumour.any(axis=(0, 1)) & enough)
    if count <= 0 or not len(candidates):
        return candidates[:0]
    return candidates[np.unique(np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round().astype(int))]


def volume_slice_indices(tumour: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Every slice that matters to a whole-volume score: those with brain, which the product may label (by growth
    where there is too little brain to localise, see :func:`~.pipeline.segment_volume`), and any with tumour
    (else its voxels would be missed)."""
    return np.flatnonzero(tumour.any(axis=(0, 1)) | brain.any(axis=(0, 1)))


def slice_heatmaps(
    prepared: PreparedScan, tumour: np.ndarray, indices, patient: str, models: list[Model], *, step: int, fast: bool, device: str, polarity: str
) -> list[EvaluatedSlice]:
    """Each slice of ``indices`` with its heat (:func:`slice_heat`) and the seconds it took."""
    rows = []
    for index in indices:
        began = time.perf_counter()
        heatmap = slice_heat(prepared, int(index), models, step=step, fast=fast, device=device, polarity=polarity)
        rows.append(EvaluatedSlice(patient, int(index), prepared.image[:, :, index], prepared.brain[:, :, index], tumour[:, :, index], heatmap, time.perf_counter() - began))
    return rows


def fuse_slices(runs: list[list[EvaluatedSlice]]) -> list[EvaluatedSlice]:
    """The slices common to several evaluations (one per gamma), with their heatmaps fused."""
    by_key = [{(item.patient, item.index): item for item in run} for run in runs]
    common = [key for key in by_key[0] if all(key in other for other in by_key[1:])]
    return [
        replace(
            by_key[0][key],
            heatmap=fuse_heatmaps([other[key].heatmap for other in by_key], by_key[0][key].brain),
            seconds=sum(other[key].seconds for other in by_key),
        )
        for key in common
    ]


def slice_heat(
    prepared: PreparedScan, index: int, models: list[Model], *, step: int | None = None, fast: bool = True, device: str = "cpu", polarity: str = "both",
) -> np.ndarray:
    """The heat ``inpaint-seg segment`` gives slice ``index``: none (zeros) where there is less brain than the largest
    window, which it does not localise."""
    if prepared.brain[:, :, index].sum() < min_brain_pixels(models):
        return np.zeros(prepared.brain.shape[:2], np.float32)
    return final(localize_slice(prepared, index, models, step=step, fast=fast, device=device, polarity=polarity))


def patient_volumes(slices: list[EvaluatedSlice]) -> list[dict[int, int]]:
    """Per patient, the slices that are segmented together (slice index -> position in ``slices``); those with too
    little brain to be localised among them."""
    patients = dict.fromkeys(item.patient for item in slices)
    return [{item.index: position for position, item in enumerate(slices) if item.patient == patient} for patient in patients]


def answers(
    slices: list[EvaluatedSlice], params: FelzenszwalbParams, selection: Selection, superpixel_maps: list[np.ndarray] | None = None, min_brain_pixels: int = 0
) -> list[np.ndarray]:
    """The label each slice gets under one choice of superpixels and selection, decided per patient across its
    slices as ``inpaint-seg segment`` does (:func:`~.pipeline.volume_labels`; slices with less than
    ``min_brain_pixels`` of brain get no answer of their own, and a label only where the selection grows into
    them). ``superpixel_maps``: already computed with ``params``, to compare many selections without recomputing
    Felzenszwalb."""
    maps = superpixel_maps or [superpixels(item.image, params) for item in slices]
    labels = [np.zeros(item.tumour.shape, dtype=bool) for item in slices]
    for members in patient_volumes(slices):
        results = {index: result_from_superpixels(index, slices[i].image, maps[i], slices[i].brain, slices[i].heatmap, selection).summary()
                   for index, i in members.items() if slices[i].brain.sum() >= min_brain_pixels}
        images = {index: slices[i].image for index, i in members.items()}
        brains = {index: slices[i].brain for index, i in members.items()}
        for index, label in volume_labels(results, images, brains, selection).items():
            labels[members[index]] = label
    return labels


def score_selection(
    slices: list[EvaluatedSlice], params: FelzenszwalbParams, selection: Selection, superpixel_maps: list[np.ndarray] | None = None, *,
    min_brain_pixels: int = 0, whole_volumes: bool = False,
) -> dict:
    """Dice over tumour slices (at least :data:`MIN_TUMOUR_PIXELS`), patient-pooled Dice, the false-positive
    rate over the tumour-free slices the selection can label (``min_brain_pixels`` of brain, the largest window's
    area, or any brain when it grows into slices with less) and, when ``slices`` hold ``whole_volumes``
    (:func:`volume_slice_indices`), the volume Dice per patient of the labels ``inpaint-seg segment`` would write."""
    labels = answers(slices, params, selection, superpixel_maps, min_brain_pixels)
    return {"selection": selection.description,
            **score_labels(slices, labels, min_brain_pixels=labelled_brain(selection, min_brain_pixels), whole_volumes=whole_volumes)}


def labelled_brain(selection: Selection, min_brain_pixels: int) -> int:
    """The brain a tumour-free slice needs to count in the false-positive rate: what the selection may label, one
    window's area (``min_brain_pixels``), or any brain when the labels grow into slices with less."""
    return 1 if selection.grow_into_small_slices and selection.volume_radius else min_brain_pixels


def score_labels(slices: list[EvaluatedSlice], labels: list[np.ndarray], *, min_brain_pixels: int = 0, whole_volumes: bool = False) -> dict:
    """The scores of :func:`score_selection` for labels however they were made (one per slice of ``slices``), so
    that oracle bounds are scored exactly as the product's labels are."""
    tumour = [(item, label) for item, label in zip(slices, labels) if item.tumour.sum() >= MIN_TUMOUR_PIXELS]
    healthy = [label for item, label in zip(slices, labels) if not item.has_tumour and item.brain.sum() >= min_brain_pixels]
    dices = np.asarray([dice(label, item.tumour) for item, label in tumour])
    pooled = []
    for patient in dict.fromkeys(item.patient for item, _ in tumour):
        pairs = [(label, item.tumour) for item, label in tumour if item.patient == patient]
        pooled.append(dice(np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])))
    volume_dices = []
    if whole_volumes:
        for patient in dict.fromkeys(item.patient for item in slices):
            rows = [(label, item.tumour) for item, label in zip(slices, labels) if item.patient == patient]
            volume_dices.append(dice(np.stack([a for a, _ in rows]), np.stack([b for _, b in rows])))
    return {
        "dice_mean": float(dices.mean()) if len(dices) else None,
        "dice_sd": float(dices.std()) if len(dices) else None,
        "patient_pooled_dice_mean": float(np.mean(pooled)) if pooled else None,
        "false_positive_rate": float(np.mean([label.any() for label in healthy])) if healthy else None,
        "volume_dice_mean": float(np.mean(volume_dices)) if volume_dices else None,
        "volume_dice_sd": float(np.std(volume_dices)) if volume_dices else None,
        "n_tumour_slices": len(dices),
        "n_healthy_slices": len(healthy),
        "dice_per_slice": [round(float(d), 4) for d in dices],
    }


@torch.inference_mode()
def inpainting_quality(prepared: PreparedScan, healthy_slices: np.ndarray, models: list[Model], rng: np.random.Generator, device: str) -> list[dict]:
    """PSNR and SSIM inside random gamma x gamma holes on brain pixels of tumour-free slices (range [0, 1]),
    for every model (rows carry their gamma)."""
    slices = SliceSet([prepared.image[:, :, z] for z in healthy_slices], [prepared.brain[:, :, z] for z in healthy_slices])
    if not len(slices):
        return []
    rows = []
    for generator, config in models:
        images, holes = sample_hole_crops(slices, HOLES_PER_HEALTHY_SLICE * len(slices), config.gamma, config.context, rng)
        filled = inpaint(generator, torch.from_numpy(images).to(device), torch.from_numpy(holes).to(device)).cpu().numpy()
        side = config.gamma
        for original, result, hole in zip(images[:, 0], filled[:, 0], holes[:, 0].astype(bool)):
            a, b = original[hole].reshape(side, side), result[hole].reshape(side, side)
            rows.append({"gamma": config.gamma, "psnr": psnr(a, b), "ssim": ssim(a, b)})
    return rows


def localise_patients(
    data_dir: str | Path, patients: list[str], modality: str, models: list[Model], *, step: int, fast: bool,
    healthy_per_patient: int, device: str, seed: int, report: Callable[[str], None], polarity: str = "both", whole_volumes: bool = False,
) -> tuple[list[EvaluatedSlice], list[dict]]:
    """Heatmaps of every patient's tumour slices and of a few healthy ones (with ``whole_volumes``, of every
    slice that matters to a volume score instead), and inpainting-quality rows."""
    rng = np.random.default_rng(seed)
    slices, quality_rows = [], []
    for patient in patients:
        scan_path, mask_path = lgg_patient_volume_paths(Path(data_dir), patient, modality)
        prepared = prepare_scan(read_scan(scan_path), device=device)
        tumour = read_scan(mask_path).data > 0
        if whole_volumes:
            indices = volume_slice_indices(tumour, prepared.brain)
        else:
            indices = [*tumour_slice_indices(tumour), *healthy_slice_indices(tumour, prepared.brain, healthy_per_patient, min_brain_pixels(models))]
        slices += slice_heatmaps(prepared, tumour, indices, patient, models, step=step, fast=fast, device=device, polarity=polarity)
        healthy = np.flatnonzero(~tumour.any(axis=(0, 1)) & (prepared.brain.sum(axis=(0, 1)) >= MIN_HEALTHY_BRAIN_PIXELS))
        quality_rows += inpainting_quality(prepared, healthy, models, rng, device)
        report(f"{patient}: {len(indices)} slices localised")
    return slices, quality_rows


def min_brain_pixels(models: list[Model]) -> int:
    """The brain a slice needs to be labelled at all: the largest window's area (as :func:`~.pipeline.segment_volume`)."""
    return brain_needed(max(config.gamma for _, config in models))


SLICE_ARRAYS = ("image", "brain", "tumour", "heatmap")


def save_heatmap_cache(path: str | Path, slices: list[EvaluatedSlice], quality_rows: list[dict], key: dict) -> None:
    """Keep an evaluation's heatmaps so selection settings can be compared without the model (tuning)."""
    arrays = {name: np.stack([getattr(item, name) for item in slices]) for name in SLICE_ARRAYS}
    arrays.update(
        patient=np.array([item.patient for item in slices]), index=np.array([item.index for item in slices]), seconds=np.array([item.seconds for item in slices]),
        quality=np.array(json.dumps(quality_rows)), key=np.array(json.dumps(key, sort_keys=True)),
    )
    write_npz_atomically(path, arrays)


def cache_key(path: str | Path) -> str:
    """The settings a heatmap cache was made with, as saved (JSON)."""
    with np.load(path, allow_pickle=False) as pack:
        return str(pack["key"])


def cache_gamma(path: str | Path) -> int:
    """The largest window of the evaluation that wrote the cache: a slice needs that much brain to be labelled."""
    return max(model["gamma"] for model in json.loads(cache_key(path))["models"])


def differing_settings(path: str | Path, key: dict) -> list[str]:
    """The settings in which the cache at ``path`` differs from ``key``, as 'name: cached -> now'."""
    cached = json.loads(cache_key(path))
    return [f"{name}: {cached.get(name)} -> {key.get(name)}" if name not in ("patients", "models") else name
            for name in sorted({*cached, *key}) if cached.get(name) != key.get(name)]


def load_heatmap_cache(path: str | Path, key: dict) -> tuple[list[EvaluatedSlice], list[dict]] | None:
    """The cached slices if ``path`` holds an evaluation made with the same ``key`` (model, data, step...)."""
    if not Path(path).is_file() or cache_key(path) != json.dumps(key, sort_keys=True):
        return None
    return read_heatmap_cache_unchecked(path)


def read_heatmap_cache_for(path: str | Path, modality: str, *, whole_volumes: bool = False) -> tuple[list[EvaluatedSlice], list[dict]]:
    """The slices of a heatmap cache for the tuning and baseline scripts, refused unless it holds ``modality``'s
    heatmaps (and whole volumes when the script scores volumes): another cache would be scored without a word."""
    try:
        key = json.loads(cache_key(path))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such heatmap cache") from exc
    except Exception as exc:  # not an npz, or one without our key
        raise InputError(f"{path}: not a heatmap cache of inpaint-seg evaluate ({exc})") from exc
    if key.get("modality") != modality:
        raise InputError(f"{path}: holds {key.get('modality')} heatmaps, not {modality}")
    if whole_volumes and not key.get("whole_volumes"):
        raise InputError(f"{path}: was made without --whole-volumes; this needs every slice of each patient")
    return read_heatmap_cache_unchecked(path)


def read_heatmap_cache_unchecked(path: str | Path) -> tuple[list[EvaluatedSlice], list[dict]]:
    """Every slice of a heatmap cache, whatever made it (for baselines that only need images and truth)."""
    with np.load(path, allow_pickle=False) as pack:
        arrays = {name: pack[name] for name in (*SLICE_ARRAYS, "patient", "index", "seconds")}  # each member read once
        slices = [
            EvaluatedSlice(str(arrays["patient"][i]), int(arrays["index"][i]), *(arrays[name][i] for name in SLICE_ARRAYS), float(arrays["seconds"][i]))
            for i in range(len(arrays["index"]))
        ]
        return slices, json.loads(str(pack["quality"]))


def localised_slices(
    data_dir: str | Path, patients: list[str], modality: str, models: list[Model], *, step: int | None = None, fast: bool = True,
    healthy_per_patient: int = HEALTHY_SLICES_PER_PATIENT, device: str = "cpu", seed: int = 0, cache: str | Path | None = None,
    report: Callable[[str], None] = print, polarity: str = "both", whole_volumes: bool = False,
) -> tuple[list[EvaluatedSlice], list[dict]]:
    """:func:`localise_patients`, read from ``cache`` instead when it was made with the same settings (a cache
    made with other settings is refused, not replaced).

    With several models (windows) each is localised on its own and the heatmaps fused; the cache is then one
    file per window, ``NAME_gamma32.npz`` and so on beside ``cache``, shared with single-window runs that use
    those names.
    """
    if len(models) > 1:
        runs = [
            localised_slices(data_dir, patients, modality, [model], step=step, fast=fast, healthy_per_patient=healthy_per_patient, device=device,
                             seed=seed, cache=per_window_cache(cache, model[1].gamma) if cache else None, report=report, polarity=polarity,
                             whole_volumes=whole_volumes)
            for model in models
        ]
        return fuse_slices([slices for slices, _ in runs]), [row for _, quality in runs for row in quality]
    key = {"data": str(Path(data_dir).resolve()), "patients": patients, "modality": modality, "models": [heat_settings(config) for _, config in models],
           "step": step_for_window(models[0][1].gamma, step), "fast": FAST_PATH_REVISION if fast else False, "healthy_per_patient": healthy_per_patient, "seed": seed,
           "polarity": polarity, "whole_volumes": WHOLE_VOLUMES if whole_volumes else False, "precision": heat_precision(fast, device),
           "fast_path": fast_path_settings(models[0][1].gamma, step_for_window(models[0][1].gamma, step)) if fast else None}
    cached = load_heatmap_cache(cache, key) if cache else None
    if cached is not None:
        report(f"heatmaps read from {cache}")
        return cached
    if cache and Path(cache).is_file():  # hours of localisation: never overwritten by a run with a typo in it
        raise InputError(f"{cache}: made with other settings ({'; '.join(differing_settings(cache, key))}); give another cache name, "
                         "or delete the file to localise again")
    slices, quality_rows = localise_patients(data_dir, patients, modality, models, step=step, fast=fast, healthy_per_patient=healthy_per_patient,
                                             device=device, seed=seed, report=report, polarity=polarity, whole_volumes=whole_volumes)
    if cache:
        save_heatmap_cache(cache, slices, quality_rows, key)
    return slices, quality_rows


def heat_settings(config: ModelConfig) -> dict:
    """What of a model's configuration its heat depends on: all but the decision stored with it, so that a model
    calibrated after its heatmaps were cached (training_scripts/calibrate_decision.py) still reads them."""
    return {name: value for name, value in asdict(config).items() if name != "decision"}


def per_window_cache(cache: str | Path, gamma: int) -> Path:
    cache = Path(cache)
    return cache.with_name(f"{cache.name.removesuffix('.npz')}_gamma{gamma}.npz")


def evaluate_lgg(
    data_dir: str | Path,
    patients: list[str],
    modality: str,
    models: list[Model],
    *,
    step: int | None = None,
    params: FelzenszwalbParams = FelzenszwalbParams(),
    fast: bool = True,
    selections: dict[str, Selection] | None = None,
    healthy_per_patient: int = HEALTHY_SLICES_PER_PATIENT,
    device: str = "cpu",
    seed: int = 0,
    cache: str | Path | None = None,
    report: Callable[[str], None] = print,
    polarity: str = "both",
    whole_volumes: bool = False,
) -> dict:
    """Table 1 for ``patients``: per selection, Dice mean ± sd over tumour slices and the false-positive rate
    on a few tumour-free slices per patient; PSNR/SSIM of inpainting on tumour-free slices. JSON-ready.

    With ``cache``, heatmaps are read from (or written to) that .npz when it was made with the same settings.
    ``whole_volumes``: every slice that matters, for volume Dice and a false-positive rate over all tumour-free
    slices.
    """
    selections = selections or {"paper": PAPER_SELECTION, "default": Selection()}
    slices, quality_rows = localised_slices(data_dir, patients, modality, models, step=step, fast=fast,
                                            healthy_per_patient=healthy_per_patient, device=device, seed=seed, cache=cache, report=report,
                                            polarity=polarity, whole_volumes=whole_volumes)
    scoring = {"min_brain_pixels": min_brain_pixels(models), "whole_volumes": whole_volumes}
    seconds = [item.seconds for item in slices if item.brain.sum() >= scoring["min_brain_pixels"]]  # the slices localised
    return {
        "modality": modality,
        "gamma": [config.gamma for _, config in models],
        "step": [step_for_window(config.gamma, step) for _, config in models],
        "felzenszwalb": {"scale": params.scale, "sigma": params.sigma, "min_size": params.min_size},
        "localizer": "fast" if fast else "reference",
        "polarity": polarity,
        "whole_volumes": whole_volumes,
        "model_iterations": [config.iterations for _, config in models],
        "patients": patients,
        "selections": {name: score_selection(slices, params, selection, **scoring) for name, selection in selections.items()},
        "inpainting": {str(gamma): quality_summary([row for row in quality_rows if row.get("gamma", gamma) == gamma]) for gamma in (config.gamma for _, config in models)},
        "seconds_per_slice": float(np.mean(seconds)) if seconds else None,
    }


def quality_summary(rows: list[dict]) -> dict:
    """PSNR and SSIM mean ± sd over inpainted holes (None when there were no healthy slices). A hole inpainted
    exactly has an infinite PSNR, one under 3 pixels no SSIM: they are left out, so the JSON stays valid."""
    summary: dict = {"n_holes": len(rows)}
    for metric in ("psnr", "ssim"):
        values = [row[metric] for row in rows if np.isfinite(row[metric])]
        summary[f"{metric}_mean"] = float(np.mean(values)) if values else None
        summary[f"{metric}_sd"] = float(np.std(values)) if values else None
    return summary
