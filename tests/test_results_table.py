"""training_scripts/results_table.py on evaluation files made here: which run fills which row of Table 1."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "training_scripts" / "results_table.py"
NAMES = ["paper", "merge, raw heat", "always answers", "before the volume redraw", "before dropping small pieces", "chosen"]


def evaluation(names: list[str]) -> dict:
    """An evaluation file whose runs score Dice 0.1, 0.2, ... in the order of ``names``, so a row tells which run filled it."""
    scores = {name: {"selection": name, "dice_mean": (rank + 1) / 10, "dice_sd": 0.0, "false_positive_rate": 0.5, "patient_pooled_dice_mean": 0.0,
                     "volume_dice_mean": 0.0} for rank, name in enumerate(names)}
    return {"seconds_per_slice": 1.0, "selections": scores, "inpainting": {}}


def table(folder: Path, capsys, column: int = 1) -> dict[str, str]:
    """The Dice cell of each row of the validation table (column 1: T1-pre, 2: FLAIR), by the row's label."""
    argv = sys.argv
    sys.argv = [str(SCRIPT), str(folder)]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = argv
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| γ = 64, error sign")]
    return {cells[0].lstrip("| "): cells[column] for cells in rows}


TUNED = "γ = 64, error sign: merge, tuned smoothing and rim (per modality)"
DARKEST = "γ = 64, error sign: + the darkest tenth of the brain and a rim around it kept out of the heat (T1-pre only)"
PIECES = "γ = 64, error sign: + small 3D pieces dropped"
SMOOTHED = "γ = 64, error sign: + labels smoothed (T1-pre only; T1-pre's default)"
REDRAWN = "γ = 64, error sign: + the volume redrawn with one threshold"
LEVELLED = "γ = 64, error sign: + the slices brought to one brightness first (FLAIR only)"
ENDS = "γ = 64, error sign: + the lesion's ends drawn at a lower threshold (FLAIR only)"
CARRIED = "γ = 64, error sign: + the labels carried one slice further where the lesion keeps its size (FLAIR only)"
RUNS = "γ = 64, error sign: + runs of overlapping slices labelled at a lower contrast (FLAIR only)"
FOLLOWED = "γ = 64, error sign: + the lesion followed into the slices the decision labelled (FLAIR only)"
SMALL = "γ = 64, error sign: + grown into the slices with less brain than one window (FLAIR only; FLAIR's default)"


@pytest.mark.parametrize("names,expected", [
    # a file with every step: each run fills its own row
    (NAMES[:2] + ["always answers, darkest counted"] + NAMES[2:], {TUNED: "0.300 ± 0.000", DARKEST: "0.400 ± 0.000", PIECES: "0.700 ± 0.000"}),
    # a file of before 2026-12-06: its "always answers" is the tuned row, and there is no darkest row to show
    (NAMES, {TUNED: "0.300 ± 0.000", DARKEST: "–", PIECES: "0.600 ± 0.000", SMOOTHED: "–"}),
    # a file that smoothed the labels: its "chosen" is the smoothing row, the run before it the small pieces' row
    (NAMES[:-1] + ["before smoothing the labels", "chosen"], {PIECES: "0.600 ± 0.000", SMOOTHED: "0.700 ± 0.000"}),
    # a file that levelled the slices: the unlevelled redraw fills the volume's row, the levelled one its own
    (NAMES[:4] + ["volume redrawn, slices not levelled"] + NAMES[4:], {REDRAWN: "0.500 ± 0.000", LEVELLED: "0.600 ± 0.000", PIECES: "0.700 ± 0.000"}),
    # a file of before 2026-12-07: the redraw's row as before, no levelling row
    (NAMES, {REDRAWN: "0.500 ± 0.000", LEVELLED: "–"}),
])
def test_each_run_fills_its_row_and_rows_of_steps_a_file_did_not_run_stay_empty(tmp_path, capsys, names, expected):
    (tmp_path / "t1_val_g64_volumes.json").write_text(json.dumps(evaluation(names)))
    cells = table(tmp_path, capsys)
    assert {label: cells[label] for label in expected} == expected


LEVELLED_NAMES = NAMES[:4] + ["volume redrawn, slices not levelled"] + NAMES[4:]


@pytest.mark.parametrize("names,expected", [
    # a file that drew the lesion's ends at their own threshold: the run before that fills the levelling's row
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold"] + LEVELLED_NAMES[5:],
     {REDRAWN: "0.500 ± 0.000", LEVELLED: "0.600 ± 0.000", ENDS: "0.700 ± 0.000", PIECES: "0.800 ± 0.000"}),
    # a file of before that step: the levelling's row as before, no row for the ends
    (LEVELLED_NAMES, {LEVELLED: "0.600 ± 0.000", ENDS: "–", PIECES: "0.700 ± 0.000"}),
    # a file that carried the labels one slice further: the run before that fills the ends' row
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold", "not carried further"] + LEVELLED_NAMES[5:],
     {LEVELLED: "0.600 ± 0.000", ENDS: "0.700 ± 0.000", CARRIED: "0.800 ± 0.000", PIECES: "0.900 ± 0.000"}),
    # a file of before the carry: the ends' row as before, no row for the carry
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold"] + LEVELLED_NAMES[5:], {ENDS: "0.700 ± 0.000", CARRIED: "–", PIECES: "0.800 ± 0.000"}),
    # a file that labelled runs of slices: the run before that fills the small pieces' row, "chosen" the runs' row
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold", "not carried further"] + LEVELLED_NAMES[5:-1] + ["runs of slices not labelled", "chosen"],
     {CARRIED: "0.800 ± 0.000", PIECES: "0.900 ± 0.000", RUNS: "1.000 ± 0.000"}),
    # a file of before the runs: "chosen" fills the small pieces' row, no row for the runs
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold", "not carried further"] + LEVELLED_NAMES[5:], {PIECES: "0.900 ± 0.000", RUNS: "–"}),
    # a file that followed the lesion into the decided slices: the run before that fills the runs' row, "chosen" its own
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold", "not carried further"] + LEVELLED_NAMES[5:-1]
     + ["runs of slices not labelled", "not followed into decided slices", "chosen"],
     {PIECES: "0.900 ± 0.000", RUNS: "1.000 ± 0.000", FOLLOWED: "1.100 ± 0.000"}),
    # a file of before the following: "chosen" fills the runs' row, no row for the following
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold", "not carried further"] + LEVELLED_NAMES[5:-1] + ["runs of slices not labelled", "chosen"],
     {RUNS: "1.000 ± 0.000", FOLLOWED: "–"}),
    # a file that grew into the slices with little brain: the run before that fills the following's row, "chosen" its own
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold", "not carried further"] + LEVELLED_NAMES[5:-1]
     + ["runs of slices not labelled", "not followed into decided slices", "slices with little brain left out", "chosen"],
     {RUNS: "1.000 ± 0.000", FOLLOWED: "1.100 ± 0.000", SMALL: "1.200 ± 0.000"}),
    # a file of before that: "chosen" fills the following's row, no row for the slices with little brain
    (LEVELLED_NAMES[:5] + ["ends at the scan's threshold", "not carried further"] + LEVELLED_NAMES[5:-1]
     + ["runs of slices not labelled", "not followed into decided slices", "chosen"],
     {FOLLOWED: "1.100 ± 0.000", SMALL: "–"}),
])
def test_flair_rows_of_the_volume_step(tmp_path, capsys, names, expected):
    (tmp_path / "flair_val_g64_volumes.json").write_text(json.dumps(evaluation(names)))
    cells = table(tmp_path, capsys, column=2)
    assert {label: cells[label] for label in expected} == expected
