"""training_scripts/selection_ceilings.py on a heatmap cache of a small synthetic volume made here."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_inpaint_seg.evaluation import EvaluatedSlice, save_heatmap_cache, score_selection
from napari_inpaint_seg.segmentation import FelzenszwalbParams, default_selection

SCRIPT = Path(__file__).resolve().parents[1] / "training_scripts" / "selection_ceilings.py"
SIDE, GAMMA = 128, 16


def disc(radius: float, centre=(64, 64)) -> np.ndarray:
    rows, cols = np.mgrid[:SIDE, :SIDE]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def synthetic_patient() -> list[EvaluatedSlice]:
    """A bright lesion on slices 2-5 with heat on it, and on slices 6-8 (tumour-free), apart from it, a hot bright
    spot on plain tissue that passes the no-tumour decision and is more than half the lesion's volume, so that
    dropping small pieces keeps it: a false positive only the decision oracle removes."""
    brain = disc(60)
    slices = []
    for index in range(9):
        lesion = disc(14) if 2 <= index <= 5 else np.zeros((SIDE, SIDE), bool)
        spot = disc(12, centre=(64, 30)) if index >= 6 else np.zeros((SIDE, SIDE), bool)
        image = np.where(brain, 0.4, 0.0) + 0.5 * lesion + 0.4 * spot
        heat = np.where(brain, 1.0, 0.0) + 20.0 * (lesion | spot)
        slices.append(EvaluatedSlice("p", index, image.astype(np.float32), brain, lesion, heat.astype(np.float32), 0.0))
    return slices


def test_oracle_rows_bound_the_default_which_matches_the_evaluation(tmp_path, monkeypatch):
    slices = synthetic_patient()
    cache = tmp_path / "cache.npz"
    save_heatmap_cache(cache, slices, [], {"models": [{"gamma": GAMMA}], "modality": "flair", "whole_volumes": True})
    out = tmp_path / "ceilings.json"
    monkeypatch.setattr(sys, "argv", ["selection_ceilings.py", "--cache", str(cache), "--modality", "flair", "--weights", "0.5", "--json", str(out)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rows = {row["labels"]: row for row in json.loads(out.read_text())["rows"]}

    default = rows["default decision, volume weight 0.6 (default)"]
    evaluated = score_selection(slices, FelzenszwalbParams(), default_selection("flair"), min_brain_pixels=GAMMA**2, whole_volumes=True)
    assert default["dice_mean"] == evaluated["dice_mean"] and default["false_positive_rate"] == evaluated["false_positive_rate"]
    oracle = rows["oracle decision, volume weight 0.6 (default)"]
    assert default["false_positive_rate"] > 0 and oracle["false_positive_rate"] == 0
    assert oracle["dice_mean"] >= default["dice_mean"] > 0.5
    for source in ("default decision", "oracle decision", "truth as the answer"):
        best = rows[f"{source}, volume weight best per patient (oracle)"]
        assert best["dice_mean"] >= max(rows[f"{source}, volume weight {w}"]["dice_mean"] for w in ("0.5", "0.6 (default)"))
    assert rows["truth as the answer, volume weight 0.6 (default)"]["dice_mean"] == 1.0  # the lesion is exactly what is bright


def test_the_default_tumour_slices_are_sorted_by_where_their_dice_is_lost():
    where_lost = runpy.run_path(str(SCRIPT))["where_lost"]
    tumour = disc(10)
    slices = [EvaluatedSlice("p", index, tumour.astype(np.float32), disc(60), tumour, tumour.astype(np.float32), 0.0) for index in range(4)]
    half = tumour.copy()
    half[:64] = False  # the lower half of the lesion: Dice 2/3
    labels = [np.zeros_like(tumour), disc(5, centre=(20, 20)), tumour, half]
    breakdown = where_lost(slices, labels)
    assert [breakdown[kind]["slices"] for kind in ("emptied", "elsewhere", "found")] == [1, 1, 2]
    assert breakdown["emptied"]["dice_lost"] == breakdown["elsewhere"]["dice_lost"] == 0.25
    found_dice = (1 + 2 * half.sum() / (half.sum() + tumour.sum())) / 2
    assert breakdown["found"]["dice_mean"] == pytest.approx(found_dice) and breakdown["found"]["dice_lost"] == pytest.approx((1 - found_dice) / 2)
