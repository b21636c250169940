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


def table(folder: Path, capsys) -> dict[str, str]:
    """The T1-pre Dice cell of each row of the validation table, by the row's label."""
    argv = sys.argv
    sys.argv = [str(SCRIPT), str(folder)]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = argv
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| γ = 64, error sign")]
    return {cells[0].lstrip("| "): cells[1] for cells in rows}


@pytest.mark.parametrize("with_darkest", [True, False])
def test_the_darkest_tissue_row_is_filled_only_by_files_that_ran_without_it(tmp_path, capsys, with_darkest):
    names = NAMES[:2] + ["always answers, darkest counted"] + NAMES[2:] if with_darkest else NAMES
    (tmp_path / "t1_val_g64_volumes.json").write_text(json.dumps(evaluation(names)))
    cells = table(tmp_path, capsys)
    tuned = cells["γ = 64, error sign: merge, tuned smoothing and rim (per modality)"]
    darkest = cells["γ = 64, error sign: + the darkest tenth of the brain kept out of the heat (T1-pre only)"]
    if with_darkest:
        assert (tuned, darkest) == ("0.300 ± 0.000", "0.400 ± 0.000")
    else:  # a file of before 2026-12-06: its "always answers" is the tuned row, and there is no darkest row to show
        assert (tuned, darkest) == ("0.300 ± 0.000", "–")
    assert cells["γ = 64, error sign: + small 3D pieces dropped (FLAIR's default)"] == f"{len(names) / 10:.3f} ± 0.000"


@pytest.mark.parametrize("with_smoothing", [True, False])
def test_the_smoothing_row_is_filled_only_by_files_that_smoothed_the_labels(tmp_path, capsys, with_smoothing):
    names = NAMES[:-1] + ["before smoothing the labels", "chosen"] if with_smoothing else NAMES
    (tmp_path / "t1_val_g64_volumes.json").write_text(json.dumps(evaluation(names)))
    cells = table(tmp_path, capsys)
    pieces = cells["γ = 64, error sign: + small 3D pieces dropped (FLAIR's default)"]
    smoothed = cells["γ = 64, error sign: + labels smoothed (T1-pre only; T1-pre's default)"]
    if with_smoothing:
        assert (pieces, smoothed) == ("0.600 ± 0.000", "0.700 ± 0.000")
    else:  # a file of before the smoothing: its "chosen" is the small pieces' row
        assert (pieces, smoothed) == ("0.600 ± 0.000", "–")
