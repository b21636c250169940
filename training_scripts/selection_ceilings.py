"""How much Dice the last two steps of the default selection leave on the table: oracle bounds on cached
heatmaps (validation patients only; the oracles read the truth, so they are bounds, never settings).

    python training_scripts/selection_ceilings.py --cache .cache/hmv5_flair_val_gamma64.npz --modality flair

After each slice's answer, the default decides across slices which answers to keep (the no-tumour decision),
redraws the kept labels with one intensity threshold for the scan (the volume step), drops their small 3D
pieces and (T1-pre) smooths them. The first two are replaced by oracles in turn:

- **oracle decision**: every slice with tumour keeps its own top answer, every tumour-free slice is emptied,
  then the volume step as usual;
- **threshold weight**: the volume step's weight (:data:`~napari_inpaint_seg.volume.THRESHOLD_WEIGHT`) over a
  grid, and the best weight picked per patient.

What both oracles together still miss is lost in the answers themselves: where the heat puts them and which
superpixels they take. A third source bounds the delineation: **the truth as the answer**, every mask redrawn
by the volume step, measures how far one intensity threshold is from the edge the annotator drew. The cache
must hold whole volumes (``inpaint-seg evaluate --whole-volumes``).

Last, the default's own tumour slices are sorted into emptied (no label), answered elsewhere (a label that does not
touch the tumour) and found, with the share of the mean Dice each kind loses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_inpaint_seg.evaluation import (
    MIN_TUMOUR_PIXELS,
    EvaluatedSlice,
    cache_gamma,
    labelled_brain,
    patient_volumes,
    read_heatmap_cache_for,
    score_labels,
)
from napari_inpaint_seg.metrics import dice
from napari_inpaint_seg.pipeline import brain_needed, consistent_labels, finished_labels, result_from_superpixels
from napari_inpaint_seg.segmentation import FelzenszwalbParams, default_selection, superpixels
from napari_inpaint_seg.training.arguments import input_errors_exit
from napari_inpaint_seg.volume import THRESHOLD_WEIGHT

Labels = dict[int, np.ndarray]  # one patient's labels, keyed by slice index


def tumour_dice(labels: Labels, members: dict[int, int], slices: list[EvaluatedSlice]) -> float:
    """Mean Dice of one patient's tumour slices (as scored: at least MIN_TUMOUR_PIXELS), for the per-patient pick."""
    scores = [dice(labels.get(index, np.zeros_like(slices[i].tumour)), slices[i].tumour) for index, i in members.items() if slices[i].tumour.sum() >= MIN_TUMOUR_PIXELS]
    return float(np.mean(scores)) if scores else 0.0


def where_lost(slices: list[EvaluatedSlice], labels: list[np.ndarray]) -> dict:
    """The tumour slices (as scored) in three kinds, each with its count, mean Dice and the Dice it takes off the
    mean over all of them (its slices' 1 - Dice, summed, over their number): what a better decision could win back
    (emptied), what a better localisation could (elsewhere), and what is lost at the edge (found)."""
    pairs = [(label, item.tumour) for item, label in zip(slices, labels) if item.tumour.sum() >= MIN_TUMOUR_PIXELS]
    kinds = ["emptied" if not label.any() else "elsewhere" if not (label & tumour).any() else "found" for label, tumour in pairs]
    dices = np.array([dice(label, tumour) for label, tumour in pairs])
    breakdown = {}
    for kind in ("emptied", "elsewhere", "found"):
        chosen = np.array([k == kind for k in kinds], dtype=bool)
        breakdown[kind] = {"slices": int(chosen.sum()), "dice_mean": float(dices[chosen].mean()) if chosen.any() else None,
                           "dice_lost": float((1 - dices[chosen]).sum() / len(dices)) if len(dices) else 0.0}
        print(f"default's tumour slices {kind:9s}: {chosen.sum():4d}" + (f", Dice {dices[chosen].mean():.3f}" if chosen.any() else "")
              + f"; takes {breakdown[kind]['dice_lost']:.3f} off the mean", flush=True)
    return breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="whole-volume heatmap cache of inpaint-seg evaluate (validation patients)")
    parser.add_argument("--modality", choices=["t1", "flair"], required=True)
    parser.add_argument("--weights", default="0.4,0.5,0.6,0.7,0.8", help="volume-step threshold weights to try")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with input_errors_exit(parser):
        slices = read_heatmap_cache_for(args.cache, args.modality, whole_volumes=True)[0]
    min_brain = brain_needed(cache_gamma(args.cache))
    selection = default_selection(args.modality)
    weights = sorted({*(float(value) for value in args.weights.split(",")), THRESHOLD_WEIGHT})
    params = FelzenszwalbParams()
    labels_by_source: dict[str, list[dict[float, Labels]]] = {"default decision": [], "oracle decision": [], "truth as the answer": []}  # per patient, per weight
    volumes = patient_volumes(slices)
    for members in volumes:  # the slices with too little brain are not localised (small), and the decisions leave them out
        localised = {index: i for index, i in members.items() if slices[i].brain.sum() >= min_brain}
        small = [index for index in members if index not in localised]
        results = {index: result_from_superpixels(index, slices[i].image, superpixels(slices[i].image, params), slices[i].brain, slices[i].heatmap, selection)
                   for index, i in localised.items()}
        images = {index: slices[i].image for index, i in members.items()}
        brains = {index: slices[i].brain for index, i in members.items()}
        sources = {
            "default decision": consistent_labels({index: result.summary() for index, result in results.items()}, selection.run_contrast, selection.run_length),
            "oracle decision": {index: results[index].mask(0) if slices[i].has_tumour else np.zeros(slices[i].tumour.shape, bool) for index, i in localised.items()},
            "truth as the answer": {index: slices[i].tumour & slices[i].brain for index, i in localised.items()},
        }
        for name, decided in sources.items():  # then the default's last steps, the volume step with each weight
            labels_by_source[name].append({weight: finished_labels(decided, images, brains, selection, weight, small) for weight in weights})

    def per_slice(per_patient: list[Labels]) -> list[np.ndarray]:
        labels = [np.zeros(item.tumour.shape, dtype=bool) for item in slices]
        for members, patient_labels in zip(volumes, per_patient):
            for index, label in patient_labels.items():
                labels[members[index]] = label
        return labels

    def scored(name: str, per_patient: list[Labels]) -> dict:
        row = {"labels": name, **score_labels(slices, per_slice(per_patient), min_brain_pixels=labelled_brain(selection, min_brain), whole_volumes=True)}
        row.pop("dice_per_slice")
        print(f"{name:62s} Dice {row['dice_mean']:.3f} ± {row['dice_sd']:.3f}  FPR {row['false_positive_rate']:.2f}  volume Dice {row['volume_dice_mean']:.3f}", flush=True)
        return row

    rows = []
    for source, per_patient in labels_by_source.items():
        rows += [scored(f"{source}, volume weight {weight:g}" + (" (default)" if weight == THRESHOLD_WEIGHT else ""), [labels[weight] for labels in per_patient])
                 for weight in weights]
        best = [max(weights, key=lambda weight: tumour_dice(labels[weight], members, slices)) for labels, members in zip(per_patient, volumes)]
        rows.append({**scored(f"{source}, volume weight best per patient (oracle)", [labels[weight] for labels, weight in zip(per_patient, best)]),
                     "weights_picked": best})
    breakdown = where_lost(slices, per_slice([labels[THRESHOLD_WEIGHT] for labels in labels_by_source["default decision"]]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cache": str(args.cache), "modality": args.modality, "selection": selection.description, "rows": rows,
                                         "default_tumour_slices": breakdown}, indent=1))


if __name__ == "__main__":
    main()
