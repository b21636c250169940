"""Compare segment-selection settings on cached heatmaps (tuning is done on validation patients only).

    python training_scripts/tune_selection.py --data ../shared/data/lgg --patients splits/lgg_val.txt \
        --modality flair --cache .cache/heatmaps_flair_val.npz --json runs/tune_flair_val.json

Heatmaps come from ``inpaint-seg evaluate ... --heatmap-cache`` with the same settings (computed here with
the shipped model when the cache is missing). Every combination of Felzenszwalb scale, selection mode,
merge ratio and no-tumour contrast is then scored by Dice on tumour slices and false-positive rate on
healthy slices, without running the model again.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from napari_inpaint_seg.evaluation import localised_slices, read_patient_list, score_selection
from napari_inpaint_seg.models.checkpoint import load_model
from napari_inpaint_seg.segmentation import FelzenszwalbParams, Selection


def floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--patients", type=Path, required=True)
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--gamma", type=int, default=32)
    parser.add_argument("--step", type=int, default=4)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="heatmap cache (.npz) shared with inpaint-seg evaluate --heatmap-cache")
    parser.add_argument("--scales", default="50,75,100,150,200,300")
    parser.add_argument("--ratios", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8", help="merge ratios to try (paper mode is always tried)")
    parser.add_argument("--contrasts", default="0", help="no-tumour contrasts to try (0 = always answer)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    generator, config = load_model(args.model, args.modality, args.gamma)
    patients = read_patient_list(args.patients)
    slices, _ = localised_slices(args.data, patients, args.modality, generator, config, step=args.step, cache=args.cache)
    selections = [Selection(mode="paper", min_contrast=c) for c in floats(args.contrasts)]
    selections += [Selection(mode="merge", merge_ratio=r, min_contrast=c) for r, c in itertools.product(floats(args.ratios), floats(args.contrasts))]
    rows = []
    for scale, selection in itertools.product(floats(args.scales), selections):
        scores = score_selection(slices, FelzenszwalbParams(scale=scale), selection)
        scores.pop("dice_per_slice")
        rows.append({"scale": scale, "mode": selection.mode, "merge_ratio": selection.merge_ratio, "min_contrast": selection.min_contrast, **scores})
        print(f"scale {scale:5.0f}  {selection.description:45s}  Dice {scores['dice_mean']:.3f} ± {scores['dice_sd']:.3f}  "
              f"FPR {scores['false_positive_rate']:.2f}", flush=True)
    best = max(rows, key=lambda row: row["dice_mean"])
    print(f"best: {best}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"modality": args.modality, "patients": str(args.patients), "model_iterations": config.iterations, "best": best, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
