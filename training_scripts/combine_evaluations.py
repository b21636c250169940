"""The scores of one split evaluated in parts: ``inpaint-seg evaluate`` run on disjoint lists of patients (in parallel,
one thread each, as the reference localiser's hours call for), combined as one run over all of them would report them.

    python training_scripts/combine_evaluations.py runs/half1.json runs/half2.json --json runs/whole.json

Slice Dice is the mean over every part's tumour slices, the false-positive rate is counted over every part's
tumour-free slices, pooled and volume Dice are means over every part's patients. The parts must have been run with
the same settings (window, stride, localiser, selections) on different patients.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SETTINGS = ("modality", "gamma", "step", "felzenszwalb", "localizer", "polarity", "whole_volumes", "model_iterations")


def combined(parts: list[dict]) -> dict:
    """One evaluation's scores from ``parts`` (each an ``inpaint-seg evaluate`` JSON)."""
    for key in SETTINGS:
        if any(part.get(key) != parts[0].get(key) for part in parts):
            raise SystemExit(f"the parts differ in {key}: they are not one evaluation")
    patients = [patient for part in parts for patient in part["patients"]]
    if len(set(patients)) != len(patients):
        raise SystemExit("a patient is in more than one part")
    selections = {}
    for name, first in parts[0]["selections"].items():
        scores = [part["selections"][name] for part in parts]
        dices = np.array([value for score in scores for value in score["dice_per_slice"]])
        healthy = sum(score["n_healthy_slices"] for score in scores)
        weights = [len(part["patients"]) for part in parts]

        def patient_mean(key: str) -> float | None:
            values = [score[key] for score in scores]
            return None if None in values else float(np.average(values, weights=weights))

        selections[name] = {
            "selection": first["selection"], "dice_mean": float(dices.mean()) if len(dices) else None, "dice_sd": float(dices.std()) if len(dices) else None,
            "patient_pooled_dice_mean": patient_mean("patient_pooled_dice_mean"),
            "false_positive_rate": sum(score["false_positive_rate"] * score["n_healthy_slices"] for score in scores) / healthy if healthy else None,
            "volume_dice_mean": patient_mean("volume_dice_mean"), "n_tumour_slices": len(dices), "n_healthy_slices": healthy,
            "dice_per_slice": dices.round(4).tolist(),
        }
    slices = [sum(s["n_tumour_slices"] + s["n_healthy_slices"] for s in part["selections"].values()) for part in parts]
    return {**{key: parts[0].get(key) for key in SETTINGS}, "patients": patients, "selections": selections,
            "seconds_per_slice": float(np.average([part["seconds_per_slice"] for part in parts], weights=slices)), "parts": len(parts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", type=Path, nargs="+", help="inpaint-seg evaluate JSON files of the same settings on different patients")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = combined([json.loads(path.read_text()) for path in args.parts])
    for name, score in result["selections"].items():
        volume = f"; volume Dice {score['volume_dice_mean']:.3f}" if score["volume_dice_mean"] is not None else ""
        print(f"{score['selection']}: Dice {score['dice_mean']:.3f} ± {score['dice_sd']:.3f} on {score['n_tumour_slices']} tumour slices; "
              f"false positives on {score['false_positive_rate']:.2f} of {score['n_healthy_slices']} healthy slices{volume}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
