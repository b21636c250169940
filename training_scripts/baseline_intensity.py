"""The trivial baseline on the same slices as an evaluation: the brightest superpixel (FLAIR) or the darkest (T1).

    python training_scripts/baseline_intensity.py --cache .cache/heatmaps_flair_val.npz --modality flair

Reads the slices of a heatmap cache written by ``inpaint-seg evaluate --heatmap-cache`` and replaces each
heatmap by the slice's own intensity (FLAIR: bright is abnormal; T1-pre: dark is), then takes the top segment
exactly as paper mode does. Any method worth using must beat this.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_inpaint_seg.evaluation import read_heatmap_cache_for, score_selection
from napari_inpaint_seg.segmentation import PAPER_SELECTION, PAPER_SUPERPIXELS
from napari_inpaint_seg.training.arguments import input_errors_exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with input_errors_exit(parser):
        slices, _ = read_heatmap_cache_for(args.cache, args.modality)
    abnormal = (lambda image: image) if args.modality == "flair" else (lambda image: 1.0 - image)
    rule = [replace(item, heatmap=np.where(item.brain, abnormal(item.image), 0.0).astype(np.float32)) for item in slices]
    scores = score_selection(rule, PAPER_SUPERPIXELS, PAPER_SELECTION)
    scores["selection"] = "brightest superpixel" if args.modality == "flair" else "darkest superpixel"
    scores.pop("dice_per_slice")
    print(json.dumps(scores))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
