"""Compare segment-selection settings on cached heatmaps (tuning is done on validation patients only).

    python training_scripts/tune_selection.py --data ../shared/data/lgg --patients splits/lgg_val.txt \
        --modality flair --cache .cache/heatmaps_flair_val.npz --json runs/tune_flair_val.json

Heatmaps are computed once with the model (shipped default unless --model) and cached; then every
combination of Felzenszwalb scale and merge ratio (None = the paper's single segment) is scored by Dice.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from napari_inpaint_seg.evaluation import TumourSlice, read_patient_list, selection_dice, tumour_slice_heatmaps
from napari_inpaint_seg.io import read_scan
from napari_inpaint_seg.models.checkpoint import load_model
from napari_inpaint_seg.pipeline import prepare_scan
from napari_inpaint_seg.segmentation import FelzenszwalbParams
from napari_inpaint_seg.training.data import lgg_patient_volume_paths

FIELDS = ("image", "brain", "tumour", "heatmap")


def compute(args) -> list[TumourSlice]:
    generator, config = load_model(args.model, args.modality, args.gamma)
    slices = []
    for patient in read_patient_list(args.patients):
        scan_path, mask_path = lgg_patient_volume_paths(args.data, patient, args.modality)
        prepared = prepare_scan(read_scan(scan_path))
        slices += tumour_slice_heatmaps(prepared, read_scan(mask_path).data > 0, patient, generator, config, step=args.step, fast=True, device="cpu")
        print(patient, len(slices), flush=True)
    return slices


def save(path: Path, slices: list[TumourSlice]) -> None:
    arrays = {name: np.stack([getattr(s, name) for s in slices]) for name in FIELDS}
    arrays.update(patient=np.array([s.patient for s in slices]), index=np.array([s.index for s in slices]), seconds=np.array([s.seconds for s in slices]))
    np.savez_compressed(path, **arrays)


def load(path: Path) -> list[TumourSlice]:
    with np.load(path) as pack:
        return [
            TumourSlice(str(pack["patient"][i]), int(pack["index"][i]), pack["image"][i], pack["brain"][i], pack["tumour"][i], pack["heatmap"][i], float(pack["seconds"][i]))
            for i in range(len(pack["index"]))
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--patients", type=Path, required=True)
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--gamma", type=int, default=32)
    parser.add_argument("--step", type=int, default=4)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--scales", default="50,75,100,150,200,300")
    parser.add_argument("--ratios", default="none,0.5,0.6,0.7,0.8,0.9")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    if args.cache.is_file():
        slices = load(args.cache)
    else:
        slices = compute(args)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        save(args.cache, slices)
    scales = [float(v) for v in args.scales.split(",")]
    ratios = [None if v == "none" else float(v) for v in args.ratios.split(",")]
    rows = []
    for scale, ratio in itertools.product(scales, ratios):
        dices = selection_dice(slices, FelzenszwalbParams(scale=scale), ratio)
        rows.append({"scale": scale, "merge_ratio": ratio, "dice_mean": float(dices.mean()), "dice_sd": float(dices.std()), "n": len(dices)})
        print(f"scale {scale:6.0f}  merge {str(ratio):5s}  Dice {dices.mean():.3f} ± {dices.std():.3f}", flush=True)
    args.json.write_text(json.dumps({"modality": args.modality, "patients": str(args.patients), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
