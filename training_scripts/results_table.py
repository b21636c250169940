"""Print docs/results.md's tables from the JSON files the evaluation commands wrote (no number typed by hand).

    python training_scripts/results_table.py runs/eval
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cell(scores: dict | None) -> str:
    if not scores or scores.get("dice_mean") is None:
        return "–"
    return f"{scores['dice_mean']:.3f} ± {scores['dice_sd']:.3f}"


def fpr(scores: dict | None) -> str:
    if not scores or scores.get("false_positive_rate") is None:
        return "–"
    return f"{scores['false_positive_rate']:.2f}"


def volume(scores: dict | None) -> str:
    if not scores or scores.get("volume_dice_mean") is None:
        return "–"
    return f"{scores['volume_dice_mean']:.3f}"


# Rows of the whole-volume runs (error sign of the modality, per-modality tuned selection, scale 50): the
# selections differ by modality, so the row says what was added rather than quoting one modality's settings.
# Each row: (label, the selection's names in the T1 file, in the FLAIR file), the first name the file has that no
# earlier row took (a run fills one row); none: not part of that modality's default (the intensity refinement is off
# on T1-pre, so T1's tuned row has no refinement to remove; the darkest tissue is kept out of the heat on T1-pre only).
# Files written before the darkest tissue was left out (2026-12-06) have no "darkest counted" run: their "always
# answers" fills the tuned row, and the darkest tissue's row stays empty.
# Likewise files written before T1-pre's labels were smoothed (2026-12-06, evening) have no "before smoothing the labels"
# run: their "chosen" fills the small pieces' row, and the smoothing row stays empty. And files written before the slices
# were levelled for the volume step (2026-12-07) have no "slices not levelled" run: the levelling's row stays empty; and
# those written before the lesion's ends got their own threshold (2026-12-07, later) no "ends at the scan's threshold" run:
# their "before dropping small pieces" fills the levelling's row, and the ends' row stays empty; and those written before
# FLAIR's labels were carried one slice further (2026-12-07, stop 46) no "not carried further" run: their "before dropping
# small pieces" fills the ends' row, and the carrying's row stays empty; and those written before FLAIR's runs of slices
# were labelled at a lower contrast (2026-12-07, stop 47) no "runs of slices not labelled" run: their "chosen" fills the
# small pieces' row, and the runs' row stays empty; and those written before FLAIR's labels followed the lesion into the
# slices the decision labelled (2026-12-07, stop 48) no "not followed into decided slices" run: their "chosen" fills the
# runs' row, and the following's row stays empty; and those written before FLAIR's labels grew into slices with less brain
# than one window (2026-12-08, stop 49) no "slices with little brain left out" run: their "chosen" fills the following's
# row, and the last row stays empty.
SIGNED_ROWS = [
    ("γ = 64, error sign of the modality: top segment only", ("paper",), ("paper",)),
    ("γ = 64, error sign: merge on the raw heat", ("merge, raw heat",), ("merge, raw heat",)),
    ("γ = 64, error sign: merge, tuned smoothing and rim (per modality)", ("always answers, darkest counted", "always answers"), ("always answers, unrefined",)),
    ("γ = 64, error sign: + the darkest tenth of the brain and a rim around it kept out of the heat (T1-pre only)", ("always answers",), ()),
    ("γ = 64, error sign: + answer refined to the lesion's intensity edge (FLAIR only)", (), ("always answers",)),
    ("γ = 64, error sign: + no-tumour decision across slices", ("before the volume redraw",), ("before the volume redraw",)),
    ("γ = 64, error sign: + the volume redrawn with one threshold", ("volume redrawn, slices not levelled", "before dropping small pieces"),
     ("volume redrawn, slices not levelled", "before dropping small pieces")),
    ("γ = 64, error sign: + the slices brought to one brightness first (FLAIR only)", ("before dropping small pieces",),
     ("ends at the scan's threshold", "before dropping small pieces")),
    ("γ = 64, error sign: + the lesion's ends drawn at a lower threshold (FLAIR only)", (), ("not carried further", "before dropping small pieces")),
    ("γ = 64, error sign: + the labels carried one slice further where the lesion keeps its size (FLAIR only)", (), ("before dropping small pieces",)),
    ("γ = 64, error sign: + small 3D pieces dropped", ("before smoothing the labels", "chosen"), ("runs of slices not labelled", "chosen")),
    ("γ = 64, error sign: + labels smoothed (T1-pre only; T1-pre's default)", ("chosen",), ()),
    ("γ = 64, error sign: + runs of overlapping slices labelled at a lower contrast (FLAIR only)", (), ("not followed into decided slices", "chosen")),
    ("γ = 64, error sign: + the lesion followed into the slices the decision labelled (FLAIR only)", (), ("slices with little brain left out", "chosen")),
    ("γ = 64, error sign: + grown into the slices with less brain than one window (FLAIR only; FLAIR's default)", (), ("chosen",)),
]


def signed_scores(evaluation: dict | None, names: tuple[str, ...], taken: set[str]) -> dict | None:
    """The scores of the first of ``names`` that ``evaluation`` ran and no earlier row took (None if none); the
    name is added to ``taken``."""
    found = next((name for name in names if evaluation and name in evaluation["selections"] and name not in taken), None)
    if found is None:
        return None
    taken.add(found)
    return evaluation["selections"][found]


def load(folder: Path, name: str) -> dict | None:
    """An evaluation's JSON file, None when it is not there; a damaged one stops the table, naming it."""
    path = folder / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        sys.exit(f"{path}: not a readable evaluation JSON ({exc}); run its command again")


def inpainting_quality(folder: Path, modality: str, split: str, gamma: str) -> dict | None:
    """PSNR and SSIM of a window's model: from the paper-heat run, else from the whole-volume run (γ = 64)."""
    for name in (f"{modality}_{split}_g{gamma}.json", f"{modality}_{split}_g{gamma}_volumes.json"):
        quality = (load(folder, name) or {}).get("inpainting", {}).get(gamma)
        if quality and quality.get("psnr_mean") is not None:
            return quality
    return None


def rows_for(folder: Path, split: str) -> list[tuple[str, dict | None, dict | None, str]]:
    """(label, t1 scores, flair scores, seconds per slice) per row, in the order of the table."""
    rows = []
    for modality_files, label in [(("intensity_t1_{s}.json", "intensity_flair_{s}.json"), "trivial rule: darkest (T1) / brightest (FLAIR) superpixel"),
                                  (("anogan_t1_{s}.json", "anogan_flair_{s}.json"), "AnoGAN (ours, same slices)")]:
        t1, flair = (load(folder, name.format(s=split)) for name in modality_files)
        seconds = "/".join(f"{d['seconds_per_slice']:.2f}" for d in (t1, flair) if d and "seconds_per_slice" in d) or "–"
        rows.append((label, t1, flair, seconds))
    for gammas in ("g32", "g64", "g32+64"):
        t1, flair = (load(folder, f"{m}_{split}_{gammas}.json") for m in ("t1", "flair"))
        if not (t1 or flair):
            continue
        seconds = "/".join(f"{d['seconds_per_slice']:.2f}" for d in (t1, flair) if d) or "–"
        names = dict.fromkeys(name for d in (t1, flair) if d for name in d["selections"])
        for name in names:
            label = next(d["selections"][name]["selection"] for d in (t1, flair) if d and name in d["selections"])
            rows.append((f"γ = {gammas[1:]}: {label}", t1 and t1["selections"].get(name), flair and flair["selections"].get(name), seconds))
    t1, flair = (load(folder, f"{m}_{split}_g64_volumes.json") for m in ("t1", "flair"))
    if t1 or flair:
        seconds = "/".join(f"{d['seconds_per_slice']:.2f}" for d in (t1, flair) if d) or "–"
        t1_taken: set[str] = set()
        flair_taken: set[str] = set()
        for label, t1_names, flair_names in SIGNED_ROWS:
            rows.append((label, signed_scores(t1, t1_names, t1_taken), signed_scores(flair, flair_names, flair_taken), seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, nargs="?", default=Path("runs/eval"),
                        help="where the evaluation commands of docs/results.md wrote their JSON files (default: runs/eval)")
    folder = parser.parse_args().folder
    tables = {split: rows_for(folder, split) for split in ("val", "test")}
    if not any(t1 or flair for rows in tables.values() for _, t1, flair, _ in rows):
        sys.exit(f"{folder}: no evaluation JSON files here; run the commands of docs/results.md (Regenerate) first")
    for split, rows in tables.items():
        if not any(t1 or flair for _, t1, flair, _ in rows):
            continue
        print(f"\n{split} patients\n")
        print("| method | Dice T1-pre | Dice FLAIR | FPR T1 | FPR FLAIR | pooled Dice T1 / FLAIR | volume Dice T1 / FLAIR | s/slice (T1/FLAIR) |")
        print("|---|---|---|---|---|---|---|---|")
        for label, t1, flair, seconds in rows:
            pooled = " / ".join(f"{d['patient_pooled_dice_mean']:.3f}" if d and d.get("patient_pooled_dice_mean") is not None else "–" for d in (t1, flair))
            print(f"| {label} | {cell(t1)} | {cell(flair)} | {fpr(t1)} | {fpr(flair)} | {pooled} | {volume(t1)} / {volume(flair)} | {seconds} |")
        print(f"\ninpainting quality, {split} patients (tumour-free slices)\n")
        print("| model | PSNR T1 | SSIM T1 | PSNR FLAIR | SSIM FLAIR |")
        print("|---|---|---|---|---|")
        for gamma in ("32", "64"):
            quality = [inpainting_quality(folder, m, split, gamma) for m in ("t1", "flair")]
            cells = [f"{q['psnr_mean']:.2f} ± {q['psnr_sd']:.2f} | {q['ssim_mean']:.3f} ± {q['ssim_sd']:.3f}" if q else "– | –" for q in quality]
            print(f"| γ = {gamma} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
