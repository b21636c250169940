"""Where a cue puts its hottest pixel: how often inside the tumour, per cue (cached heatmaps, validation patients).

    python training_scripts/cue_hit_rates.py --cache .cache/hmv7_t1_val_gamma64.npz --modality t1
    python training_scripts/cue_hit_rates.py --cache .cache/hmv7_t1_val_gamma64.npz --modality t1 --weights 0,1,2,4 --contrasts 1.2,1.6,2

On T1-pre the default's answers are mostly in the wrong place (docs/results.md, oracle bounds), so the question
is which map points at the lesion at all, before any superpixel is chosen. Each cue is smoothed and its brain
rim left out as the modality's default selection scores segments (:func:`~napari_inpaint_seg.segmentation.scoring_heat`),
and a tumour slice is a hit when the cue's maximum lies in the tumour:

- **heat**: the inpainting heatmap the default ranks segments with (on T1-pre without its darkest tissue, ``dark_share``);
- **intensity asymmetry**: the slice against its own left-right mirror, shifted to the column that best
  matches (a low-grade glioma is mostly one-sided): how much darker (T1-pre) or brighter (FLAIR) a pixel is
  than the pixel opposite; a cue without the inpainting model;
- **heat asymmetry**: the heatmap against its mirror in the same way;
- **heat + intensity asymmetry**: both cues, each over its spread in the counted brain, added.

The hit rates are a measurement to choose what to build next: no segment, decision or Dice is involved. With
``--weights`` (a cache of whole volumes), the next step is scored as the product would score it: the modality's
default selection ranks segments on heat + weight x the intensity asymmetry on the lesion's side (its positive
part, in the heat's units: scaled by the ratio of the two maps' spreads over every brain pixel of the cache), for
each weight and no-tumour contrast (the grow contrast kept in the same proportion to it), by Dice, false-positive
rate and volume Dice; weight 0 is the default.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_inpaint_seg.evaluation import MIN_TUMOUR_PIXELS, EvaluatedSlice, cache_gamma, read_heatmap_cache_for, score_selection
from napari_inpaint_seg.pipeline import brain_needed
from napari_inpaint_seg.segmentation import LESION_SIGN, FelzenszwalbParams, Selection, default_selection, scoring_heat, superpixels, without_darkest
from napari_inpaint_seg.training.arguments import float_list, input_errors_exit

MAX_MIDLINE_SHIFT = 40  # pixels; the LGG scans' heads sit within a few pixels of the centre
MIN_OVERLAP = 100  # brain pixels the slice and its mirror must share for a shift to be scored


def mirror_shift(image: np.ndarray, brain: np.ndarray) -> int:
    """The column shift that makes the left-right mirror of ``image`` correlate best with it over the brain both
    share: the head is rarely centred, so mirroring about the array's middle would compare unlike tissue."""
    best, best_shift = -np.inf, 0
    for shift in range(-MAX_MIDLINE_SHIFT, MAX_MIDLINE_SHIFT + 1):
        both = brain & mirrored(brain, shift)
        if both.sum() < MIN_OVERLAP:
            continue
        correlation = np.corrcoef(image[both], mirrored(image, shift)[both])[0, 1]
        if correlation > best:
            best, best_shift = correlation, shift
    return best_shift


def mirrored(values: np.ndarray, shift: int) -> np.ndarray:
    return np.roll(values[:, ::-1], shift, axis=1)


def asymmetry(values: np.ndarray, brain: np.ndarray, shift: int, sign: str) -> np.ndarray:
    """How much ``values`` exceed (``sign`` "bright") or fall below ("dark") the mirror image, where both are brain."""
    opposite = mirrored(values, shift)
    difference = values - opposite if sign == "bright" else opposite - values
    return np.where(brain & mirrored(brain, shift), difference, 0.0)


def slice_cues(image: np.ndarray, heatmap: np.ndarray, brain: np.ndarray, shift: int, sign: str, dark_share: float = 0.0) -> dict[str, np.ndarray]:
    """The cues of one slice; the heat as the default ranks with it, without its darkest ``dark_share`` of the brain."""
    return {
        "heat": without_darkest(heatmap.astype(np.float64), image, brain, dark_share),
        "intensity asymmetry": asymmetry(image.astype(np.float64), brain, shift, sign),
        "heat asymmetry": asymmetry(heatmap.astype(np.float64), brain, shift, "bright"),
    }


def hits(cues: dict[str, np.ndarray], tumour: np.ndarray, brain: np.ndarray, selection: Selection) -> dict[str, bool]:
    """Whether each cue's maximum over the counted brain, smoothed as ``selection`` scores segments, lies in the tumour."""
    smoothed = {name: scoring_heat(cue, brain, selection.heat_sigma, selection.edge_margin) for name, cue in cues.items()}
    scored = {name: values for name, (values, _) in smoothed.items()}
    counted = smoothed["heat"][1]  # the same brain pixels for every cue
    spread = {name: max(float(values[counted].std()), 1e-9) for name, values in scored.items()}
    scored["heat + intensity asymmetry"] = scored["heat"] / spread["heat"] + scored["intensity asymmetry"] / spread["intensity asymmetry"]
    return {name: bool(tumour.flat[np.argmax(np.where(counted, values, -np.inf))]) for name, values in scored.items()}


def asymmetry_in_heat_units(slices: list[EvaluatedSlice], shifts: list[int], sign: str) -> list[np.ndarray]:
    """Each slice's intensity asymmetry on the lesion's side (0 where the pixel is not darker/brighter than the one
    opposite), times the heat's spread over the asymmetry's (every brain pixel of ``slices``): one global factor, so
    that a slice's asymmetry keeps its size relative to other slices' and a weight of 1 gives both maps the same say."""
    maps = [np.maximum(asymmetry(item.image.astype(np.float64), item.brain.astype(bool), shift, sign), 0.0) for item, shift in zip(slices, shifts)]
    heat_spread = np.concatenate([item.heatmap[item.brain.astype(bool)] for item in slices]).std()
    asymmetry_spread = np.concatenate([values[item.brain.astype(bool)] for values, item in zip(maps, slices)]).std()
    return [values * heat_spread / max(asymmetry_spread, 1e-9) for values in maps]


def selection_rows(slices: list[EvaluatedSlice], shifts: list[int], sign: str, selection: Selection, weights: list[float], contrasts: list[float], min_brain: int) -> list[dict]:
    """The product's scores with ``selection`` on heat + weight x asymmetry, per weight and no-tumour contrast."""
    added = asymmetry_in_heat_units(slices, shifts, sign)
    params = FelzenszwalbParams()
    maps = [superpixels(item.image, params) for item in slices]
    rows = []
    for weight, contrast in itertools.product(weights, contrasts):
        scored = [replace(item, heatmap=item.heatmap + weight * values) for item, values in zip(slices, added)]
        grow = None if selection.grow_contrast is None or not selection.min_contrast else contrast * selection.grow_contrast / selection.min_contrast
        chosen = replace(selection, min_contrast=contrast, grow_contrast=grow)
        scores = score_selection(scored, params, chosen, maps, min_brain_pixels=min_brain, whole_volumes=True)
        scores.pop("dice_per_slice")
        print(f"weight {weight:g}, {chosen.description}: Dice {shown(scores['dice_mean'])} ± {shown(scores['dice_sd'])}, "
              f"FPR {shown(scores['false_positive_rate'], 2)}, volume Dice {shown(scores['volume_dice_mean'])}", flush=True)
        rows.append({"weight": weight, "min_contrast": contrast, "grow_contrast": grow, **scores})
    return rows


def shown(value: float | None, digits: int = 3) -> str:
    """A score as printed; "–" where there was nothing to score (no tumour-free slice for a false-positive rate)."""
    return "–" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="a heatmap cache of inpaint-seg evaluate")
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--weights", type=float_list, help="also score the default selection on heat + weight x asymmetry, for these weights (a cache of whole volumes)")
    parser.add_argument("--contrasts", type=float_list, help="--weights: the no-tumour contrasts to try (default: the modality's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with input_errors_exit(parser):
        slices, _ = read_heatmap_cache_for(args.cache, args.modality, whole_volumes=args.weights is not None)
    selection, sign = default_selection(args.modality), LESION_SIGN[args.modality]
    shifts = [mirror_shift(item.image.astype(np.float64), item.brain.astype(bool)) for item in slices]  # each slice's midline, once
    counts: dict[str, int] = {}
    tumour = [(item, shift) for item, shift in zip(slices, shifts) if item.tumour.sum() >= MIN_TUMOUR_PIXELS]
    for item, shift in tumour:
        brain = item.brain.astype(bool)
        for name, hit in hits(slice_cues(item.image, item.heatmap, brain, shift, sign, selection.dark_share), item.tumour.astype(bool), brain, selection).items():
            counts[name] = counts.get(name, 0) + hit
    result = {"cache": str(args.cache), "modality": args.modality, "tumour_slices": len(tumour),
              "hit_rate": {name: round(count / max(len(tumour), 1), 3) for name, count in counts.items()}}
    print(json.dumps(result, indent=1), flush=True)
    if args.weights:
        contrasts = args.contrasts or [selection.min_contrast]
        result["selection"] = selection_rows(slices, shifts, sign, selection, args.weights, contrasts, brain_needed(cache_gamma(args.cache)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
