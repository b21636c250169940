"""Felzenszwalb's scale chosen per slice, against fixed scales, on cached heatmaps (validation patients only).

    python training_scripts/scale_per_slice.py --cache .cache/hmv_flair_val_gamma64.npz --modality flair

The rule: for every candidate scale, segment the slice and take the top merged candidate of the modality's
default selection; keep the scale whose candidate stands out most from its surroundings (mean scoring heat
inside minus mean in a ring of ``--ring`` pixels around it), i.e. whose segments best follow the heat's edge.
Prints Dice over tumour slices (every slice answered) for each fixed scale and for the per-slice choice.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_inpaint_seg.evaluation import MIN_TUMOUR_PIXELS, EvaluatedSlice, read_heatmap_cache_for
from napari_inpaint_seg.metrics import dice
from napari_inpaint_seg.pipeline import SliceResult, result_from_superpixels
from napari_inpaint_seg.segmentation import FelzenszwalbParams, default_selection, superpixels
from napari_inpaint_seg.training.arguments import input_errors_exit


def edge_contrast(result: SliceResult, ring: int) -> float:
    """Mean scoring heat inside the top candidate minus around it (-inf when there is no candidate)."""
    heat, counted = result.scoring
    top = result.mask(0) & counted
    if not top.any():
        return -np.inf
    around = ndimage.binary_dilation(top, iterations=ring) & ~top & counted
    return float(heat[top].mean() - (heat[around].mean() if around.any() else result.baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="heatmap cache of inpaint-seg evaluate (validation patients)")
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--scales", default="50,75,100,150,200,300")
    parser.add_argument("--ring", type=int, default=6)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with input_errors_exit(parser):
        cached = read_heatmap_cache_for(args.cache, args.modality)[0]
    slices: list[EvaluatedSlice] = [item for item in cached if item.tumour.sum() >= MIN_TUMOUR_PIXELS]
    selection = replace(default_selection(args.modality), min_contrast=0.0, grow_contrast=None)  # every slice answers
    scales = [float(value) for value in args.scales.split(",")]
    results = {scale: [result_from_superpixels(item.index, item.image, superpixels(item.image, FelzenszwalbParams(scale)), item.brain, item.heatmap, selection) for item in slices]
               for scale in scales}
    report = {f"fixed {scale:g}": float(np.mean([dice(r.answer(), item.tumour) for r, item in zip(results[scale], slices)])) for scale in scales}
    chosen = [max(scales, key=lambda scale: edge_contrast(results[scale][i], args.ring)) for i in range(len(slices))]
    report["per slice"] = float(np.mean([dice(results[scale][i].answer(), item.tumour) for i, (scale, item) in enumerate(zip(chosen, slices))]))
    report["scales chosen"] = {f"{scale:g}": chosen.count(scale) for scale in scales}
    report["n_tumour_slices"] = len(slices)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
