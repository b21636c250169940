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
from dataclasses import asdict
from pathlib import Path

from napari_inpaint_seg.evaluation import (
    fuse_slices,
    localised_slices,
    min_brain_pixels,
    read_heatmap_cache_for,
    score_selection,
)
from napari_inpaint_seg.models.checkpoint import load_model
from napari_inpaint_seg.pipeline import POLARITY_CHOICES, resolve_polarity
from napari_inpaint_seg.segmentation import FelzenszwalbParams, Selection, lesion_sign, superpixels
from napari_inpaint_seg.training.arguments import float_list as floats, input_errors_exit, optional_float_list
from napari_inpaint_seg.training.data import read_patient_list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--patients", type=Path, required=True)
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--gamma", type=int, default=32)
    parser.add_argument("--step", type=int, help="window stride (default: as inpaint-seg evaluate)")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="heatmap cache (.npz) shared with inpaint-seg evaluate --heatmap-cache")
    parser.add_argument("--fuse-with", type=Path, action="append", default=[],
                        help="heatmap cache of another gamma on the same patients: score the fused heatmap (repeatable)")
    parser.add_argument("--scales", default="50,75,100,150,200,300")
    parser.add_argument("--ratios", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8", help="merge ratios to try (paper mode is always tried)")
    parser.add_argument("--contrasts", default="0", help="no-tumour contrasts to try (0 = always answer)")
    parser.add_argument("--grows", type=optional_float_list, default="none", help="grow contrasts to try beside a labelled slice ('none' = no growth; only below the no-tumour contrast)")
    parser.add_argument("--sigmas", default="0", help="heat smoothing sigmas to try (merge mode)")
    parser.add_argument("--margins", default="0", help="brain-rim margins to try (merge mode)")
    parser.add_argument("--refines", default="0", help="intensity-refinement radii to try (merge mode; 0 = off; the lesion's side follows --polarity bright or dark, else the modality's)")
    parser.add_argument("--volume-radii", default="0", help="volume-redraw radii to try (merge mode; 0 = off)")
    parser.add_argument("--level-slices", type=levels, default="0", help="volume step on slices brought to one brightness first: 0 (off), 1 (on) or 0,1 (both) (merge mode)")
    parser.add_argument("--component-shares", default="0", help="shares of the largest 3D piece a piece needs to be kept, to try (merge mode; 0 = off)")
    parser.add_argument("--dark-shares", default="0", help="shares of the brain, its darkest pixels, kept out of the heat, to try (merge mode; 0 = off)")
    parser.add_argument("--dark-margins", default="0", help="rims (px) around the darkest pixels also kept out of the heat, to try (with a dark share)")
    parser.add_argument("--grown-shares", default="0.5", help="shares of the neighbour's label that growth into an unlabelled slice needs, to try (merge mode, volume step)")
    parser.add_argument("--end-weights", type=optional_float_list, default="none",
                        help="volume-step threshold weights in slices the decision left empty, to try ('none' = as elsewhere; merge mode)")
    parser.add_argument("--carry-shares", default="0", help="shares of the neighbour's label that carrying the labels one slice further needs, to try (merge mode, volume step; 0 = off)")
    parser.add_argument("--follow-shares", default="0",
                        help="shares of the neighbour's label that following the lesion into a slice the decision labelled needs, to try (merge mode, volume step; 0 = off)")
    parser.add_argument("--small-slices", type=levels, default="0",
                        help="let the labels grow into slices with less brain than one window: 0 (off), 1 (on) or 0,1 (both) (merge mode, volume step)")
    parser.add_argument("--run-contrasts", default="0", help="contrasts at which a run of overlapping slices is labelled, to try (0 = off)")
    parser.add_argument("--run-lengths", default="4", help="slices such a run needs, to try")
    parser.add_argument("--label-sigmas", default="0", help="in-plane label smoothing sigmas (px) to try (merge mode; 0 = off)")
    parser.add_argument("--label-sigmas-slices", default="0", help="across-slice label smoothing sigmas (slices) to try (merge mode)")
    parser.add_argument("--polarity", choices=POLARITY_CHOICES, default="auto", help="error sign of the heatmaps (as inpaint-seg evaluate)")
    parser.add_argument("--whole-volumes", action="store_true", help="the cache holds whole volumes (inpaint-seg evaluate --whole-volumes)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    decisions = [(c, g) for c, g in itertools.product(floats(args.contrasts), args.grows) if g is None or g < c]
    if not decisions:  # a grow contrast only applies below the no-tumour contrast
        parser.error("no --contrasts/--grows pair to try: each grow contrast must lie below a contrast (or be 'none')")
    with input_errors_exit(parser):
        generator, config = load_model(args.model, args.modality, args.gamma)
        patients = read_patient_list(args.patients)
        slices, _ = localised_slices(args.data, patients, args.modality, [(generator, config)], step=args.step, cache=args.cache,
                                     polarity=resolve_polarity(args.polarity, args.modality), whole_volumes=args.whole_volumes)
        if args.fuse_with:
            slices = fuse_slices([slices, *(read_heatmap_cache_for(path, args.modality, whole_volumes=args.whole_volumes)[0] for path in args.fuse_with)])
    selections = [Selection(mode="paper", min_contrast=c, grow_contrast=g, heat_sigma=0.0, edge_margin=0) for c, g in decisions]
    lesion = lesion_sign(args.polarity, args.modality)
    selections += [
        Selection(mode="merge", merge_ratio=r, min_contrast=c, grow_contrast=g, run_contrast=run, run_length=int(length), heat_sigma=sigma, edge_margin=int(margin), refine_radius=int(radius), lesion=lesion,
                  volume_radius=int(volume), level_slices=level, min_component_share=share, min_grown_share=grown, end_weight=end, carry_share=carry, follow_share=follow, dark_share=dark,
                  dark_margin=int(rim), label_sigma=plane, label_sigma_slices=across, grow_into_small_slices=small)
        for r, (c, g), run, length, sigma, margin, radius, volume, level, share, grown, end, carry, follow, dark, rim, plane, across, small in itertools.product(
            floats(args.ratios), decisions, floats(args.run_contrasts), floats(args.run_lengths), floats(args.sigmas), floats(args.margins), floats(args.refines), floats(args.volume_radii), args.level_slices,
            floats(args.component_shares),
            floats(args.grown_shares), args.end_weights, floats(args.carry_shares), floats(args.follow_shares), floats(args.dark_shares), floats(args.dark_margins), floats(args.label_sigmas), floats(args.label_sigmas_slices),
            args.small_slices,
        )
    ]
    rows = []
    for scale in floats(args.scales):
        params = FelzenszwalbParams(scale=scale)
        maps = [superpixels(item.image, params) for item in slices]
        rows += [score_row(slices, params, selection, maps, min_brain_pixels([(generator, config)]), args.whole_volumes) for selection in selections]
    best = max(rows, key=lambda row: row["dice_mean"])
    print(f"best: {best}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"modality": args.modality, "patients": str(args.patients), "model_iterations": config.iterations, "fused_with": [str(p) for p in args.fuse_with], "best": best, "rows": rows}, indent=1))


def levels(text: str) -> list[bool]:
    """``"0,1"`` -> [False, True]; anything but 0 and 1 is refused."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(value not in ("0", "1") for value in values):
        raise argparse.ArgumentTypeError(f"takes 0, 1 or 0,1, got {text!r}")
    return [value == "1" for value in values]


def score_row(slices, params: FelzenszwalbParams, selection: Selection, maps, min_brain: int, whole_volumes: bool) -> dict:
    scores = score_selection(slices, params, selection, maps, min_brain_pixels=min_brain, whole_volumes=whole_volumes)
    scores.pop("dice_per_slice")
    volume = f"  volume Dice {scores['volume_dice_mean']:.3f}" if whole_volumes else ""
    print(f"scale {params.scale:5.0f}  {selection.description:80s}  Dice {scores['dice_mean']:.3f} ± {scores['dice_sd']:.3f}  "
          f"FPR {scores['false_positive_rate']:.2f}{volume}", flush=True)
    return {"scale": params.scale, **asdict(selection), **scores}


if __name__ == "__main__":
    main()
