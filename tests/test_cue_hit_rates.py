"""training_scripts/cue_hit_rates.py on a heatmap cache of a slice made here: a one-sided dark lesion that the
heat misses (it is hot elsewhere) and the slice's asymmetry finds, on a head away from the array's middle; hit
rates, and (--weights) the default selection on heat plus asymmetry."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_inpaint_seg.evaluation import EvaluatedSlice, save_heatmap_cache
from napari_inpaint_seg.segmentation import default_selection

SCRIPT = Path(__file__).resolve().parents[1] / "training_scripts" / "cue_hit_rates.py"
SIDE, MIDLINE = 256, 140


def disc(radius: float, centre: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[:SIDE, :SIDE]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def lesion_slice() -> EvaluatedSlice:
    cols = np.mgrid[:SIDE, :SIDE][1]
    brain = disc(100, (128, MIDLINE))
    tissue = 0.5 + 0.2 * np.cos(np.abs(cols - MIDLINE) / 6.0)  # symmetric about the head's midline, not the array's
    lesion = disc(15, (128, MIDLINE - 40))
    image = np.where(brain, tissue - 0.3 * lesion, 0.0).astype(np.float32)
    heat = np.where(brain, 1.0 + 5.0 * disc(15, (128, MIDLINE + 40)), 0.0).astype(np.float32)
    return EvaluatedSlice("p", 0, image, brain, lesion, heat, 0.0)


def test_the_midline_is_found_where_the_head_is():
    item = lesion_slice()
    script = runpy.run_path(str(SCRIPT))
    assert script["mirror_shift"](item.image.astype(np.float64), item.brain) == 2 * MIDLINE - (SIDE - 1)


def test_asymmetry_finds_the_lesion_the_heat_misses(tmp_path, monkeypatch):
    cache, out = tmp_path / "cache.npz", tmp_path / "cues.json"
    save_heatmap_cache(cache, [lesion_slice()], [], {"models": [{"gamma": 16}], "modality": "t1"})
    monkeypatch.setattr(sys, "argv", ["cue_hit_rates.py", "--cache", str(cache), "--modality", "t1", "--json", str(out)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rates = json.loads(out.read_text())["hit_rate"]
    assert rates["heat"] == 0.0 and rates["heat asymmetry"] == 0.0
    assert rates["intensity asymmetry"] == 1.0


def test_asymmetry_added_to_the_heat_moves_the_answer_to_the_lesion(tmp_path, monkeypatch):
    """--weights scores the default selection as the product would: weight 0 is the default, which answers on the
    hot spot; enough asymmetry moves the answer onto the one-sided dark lesion."""
    cache, out = tmp_path / "cache.npz", tmp_path / "selection.json"
    save_heatmap_cache(cache, [lesion_slice()], [], {"models": [{"gamma": 16}], "modality": "t1", "whole_volumes": True})
    monkeypatch.setattr(sys, "argv", ["cue_hit_rates.py", "--cache", str(cache), "--modality", "t1", "--weights", "0,4", "--json", str(out)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rows = {row["weight"]: row for row in json.loads(out.read_text())["selection"]}
    assert rows[0.0]["min_contrast"] == default_selection("t1").min_contrast and rows[0.0]["n_tumour_slices"] == 1
    assert rows[0.0]["dice_mean"] == 0.0
    assert rows[4.0]["dice_mean"] > 0.3  # the superpixels follow the tissue's stripes, so part of the lesion


def test_weights_need_a_cache_of_whole_volumes(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache.npz"
    save_heatmap_cache(cache, [lesion_slice()], [], {"models": [{"gamma": 16}], "modality": "t1"})
    monkeypatch.setattr(sys, "argv", ["cue_hit_rates.py", "--cache", str(cache), "--modality", "t1", "--weights", "1"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "whole-volumes" in capsys.readouterr().err
