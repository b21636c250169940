"""Which side of the brain's intensities a T1-pre LGG lies on, per scan, and what drawing it on that side gives.

    python training_scripts/lesion_sign_per_scan.py --dark .cache/hmv7_t1_val_gamma64.npz \
        --bright .cache/hmv7b_t1_val_gamma64.npz --json runs/s38/lesion_sign_t1_val.json

The T1-pre default counts only errors darker than the inpainting and draws a dark lesion, but some LGGs are
not darker than the rest of the brain on T1-pre. Two whole-volume heatmap caches of the same patients, made by
``inpaint-seg evaluate --modality t1 --whole-volumes`` with the default error sign and with ``--polarity bright``,
are segmented with the T1-pre default selection, the second with its lesion side bright
(:func:`~napari_inpaint_seg.segmentation.lesion_sign`), as ``inpaint-seg segment --polarity bright`` does. Per
scan it prints the tumour's offset from the rest of the brain (median difference over the brain's interquartile
range, positive: darker), each side's slice and volume Dice, and two cues that need no truth: the labels' mean
heat over the brain's median heat, and the labels' intensity offset. Then the scores of always dark, always
bright, the side each cue prefers, and the side with the better Dice (an oracle: the bound of choosing the side
per scan, for instance by a reader who sees the lesion).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_inpaint_seg.evaluation import MIN_TUMOUR_PIXELS, answers, cache_gamma, cache_key, read_heatmap_cache_for, score_labels
from napari_inpaint_seg.metrics import dice
from napari_inpaint_seg.pipeline import brain_needed
from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS, FelzenszwalbParams, superpixels


def offset_in_brain(image: np.ndarray, region: np.ndarray, brain: np.ndarray) -> float:
    """How much darker the region's median is than the rest of the brain's, in the rest's interquartile ranges."""
    rest = image[brain & ~region]
    if not region.any() or not rest.size:
        return 0.0
    low, high = np.percentile(rest, [25, 75])
    return float((np.median(rest) - np.median(image[region])) / max(high - low, 1e-6))


def scan_row(slices, labels, patient: str) -> dict:
    picked = [i for i, item in enumerate(slices) if item.patient == patient]
    image, brain = np.stack([slices[i].image for i in picked]), np.stack([slices[i].brain for i in picked])
    tumour, label = np.stack([slices[i].tumour for i in picked]), np.stack([labels[i] for i in picked]) & brain
    heat = np.stack([slices[i].heatmap for i in picked]).astype(np.float32)
    tumour_slices = [i for i in picked if slices[i].tumour.sum() >= MIN_TUMOUR_PIXELS]
    return {
        "dice": float(np.mean([dice(labels[i], slices[i].tumour) for i in tumour_slices])) if tumour_slices else None,
        "volume_dice": float(dice(label, tumour)),
        "heat_contrast": float(heat[label].mean() / max(float(np.median(heat[brain])), 1e-9)) if label.any() else 0.0,
        "label_offset": abs(offset_in_brain(image, label, brain)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dark", type=Path, required=True, help="whole-volume T1-pre heatmap cache, default error sign (dark)")
    parser.add_argument("--bright", type=Path, required=True, help="the same patients' cache made with --polarity bright")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    for sign, path in (("dark", args.dark), ("bright", args.bright)):
        made_with = json.loads(cache_key(path)).get("polarity")
        if made_with != sign:
            parser.error(f"--{sign} {path}: heat of error sign {made_with!r}, not {sign!r}")
    runs = {"dark": read_heatmap_cache_for(args.dark, "t1", whole_volumes=True)[0], "bright": read_heatmap_cache_for(args.bright, "t1", whole_volumes=True)[0]}
    if [(item.patient, item.index) for item in runs["dark"]] != [(item.patient, item.index) for item in runs["bright"]]:
        parser.error("--dark and --bright hold different slices: make both with the same patients and settings")
    slices = runs["dark"]
    params = FelzenszwalbParams()  # the default selection's superpixels, as the CLI
    maps = [superpixels(item.image, params) for item in slices]
    default = DEFAULT_SELECTIONS["t1"]
    min_brain = brain_needed(cache_gamma(args.dark))  # a slice needs one window of brain to be segmented, as the CLI
    labels = {sign: answers(runs[sign], params, replace(default, lesion=sign), maps, min_brain) for sign in runs}
    patients = list(dict.fromkeys(item.patient for item in slices))
    scans = {}
    for patient in patients:
        picked = [i for i, item in enumerate(slices) if item.patient == patient]
        tumour, image, brain = (np.stack([getattr(slices[i], name) for i in picked]) for name in ("tumour", "image", "brain"))
        scans[patient] = {"tumour_offset": offset_in_brain(image, tumour & brain, brain), **{sign: scan_row(runs[sign], labels[sign], patient) for sign in runs}}
        row = scans[patient]
        print(f"{patient:24s} tumour darker by {row['tumour_offset']:+.2f} IQR   "
              + "   ".join(f"{s}: Dice {row[s]['dice']:.3f} vol {row[s]['volume_dice']:.3f} heat x{row[s]['heat_contrast']:.2f} offset {row[s]['label_offset']:.2f}" for s in runs))

    def better(key):
        return {p: max(runs, key=lambda s: scans[p][s][key] or 0.0) for p in patients}  # Dice is None without a tumour slice

    choices = {"always dark": dict.fromkeys(patients, "dark"), "always bright": dict.fromkeys(patients, "bright"),
               "higher heat contrast": better("heat_contrast"), "larger label offset": better("label_offset"), "better Dice (oracle)": better("dice")}
    summary = {}
    for name, side in choices.items():
        scores = score_labels(slices, [labels[side[item.patient]][i] for i, item in enumerate(slices)], min_brain_pixels=min_brain, whole_volumes=True)
        scores.pop("dice_per_slice")
        summary[name] = {**scores, "bright_scans": sorted(p for p in patients if side[p] == "bright")}
        fpr = "–" if scores["false_positive_rate"] is None else f"{scores['false_positive_rate']:.2f}"  # None: no tumour-free slice
        print(f"{name:22s} Dice {scores['dice_mean']:.3f}  FPR {fpr}  volume Dice {scores['volume_dice_mean']:.3f}  "
              f"bright on {len(summary[name]['bright_scans'])} of {len(patients)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"dark": str(args.dark), "bright": str(args.bright), "selection": default.description, "scans": scans, "choices": summary}, indent=1))


if __name__ == "__main__":
    main()
