"""training_scripts/lesion_sign_per_scan.py on two heatmap caches of a slice made here: a T1-pre lesion brighter
than the brain, which the dark heat misses (hot elsewhere) and the bright heat finds."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_inpaint_seg.evaluation import EvaluatedSlice, save_heatmap_cache

SCRIPT = Path(__file__).resolve().parents[1] / "training_scripts" / "lesion_sign_per_scan.py"
SIDE = 256


def disc(radius: float, centre: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[:SIDE, :SIDE]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_a_bright_lesion_is_found_on_the_bright_side_only(tmp_path, monkeypatch):
    brain, lesion = disc(100, (128, 128)), disc(18, (128, 88))
    rng = np.random.default_rng(0)
    image = np.where(brain, 0.5 + 0.02 * rng.standard_normal((SIDE, SIDE)) + 0.3 * lesion, 0.0).astype(np.float32)
    heats = {"dark": 1.0 + 5.0 * disc(18, (128, 168)), "bright": 1.0 + 5.0 * lesion}
    caches = {}
    for sign, heat in heats.items():
        caches[sign] = tmp_path / f"{sign}.npz"
        item = EvaluatedSlice("p", 0, image, brain, lesion, np.where(brain, heat, 0.0).astype(np.float32), 0.0)
        save_heatmap_cache(caches[sign], [item], [], {"models": [{"gamma": 32}], "modality": "t1", "whole_volumes": True, "polarity": sign})
    out = tmp_path / "sides.json"
    monkeypatch.setattr(sys, "argv", ["lesion_sign_per_scan.py", "--dark", str(caches["dark"]), "--bright", str(caches["bright"]), "--json", str(out)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    result = json.loads(out.read_text())
    scan = result["scans"]["p"]
    assert scan["tumour_offset"] < 0  # brighter than the rest of the brain
    assert scan["dark"]["dice"] < 0.1 and scan["bright"]["dice"] > 0.7
    assert result["choices"]["better Dice (oracle)"]["bright_scans"] == ["p"]
    assert result["choices"]["always dark"]["dice_mean"] == scan["dark"]["dice"]


def test_swapped_caches_are_refused(tmp_path, monkeypatch, capsys):
    brain = disc(100, (128, 128))
    item = EvaluatedSlice("p", 0, brain.astype(np.float32), brain, np.zeros_like(brain), brain.astype(np.float32), 0.0)
    caches = {sign: tmp_path / f"{sign}.npz" for sign in ("dark", "bright")}
    for sign, path in caches.items():
        save_heatmap_cache(path, [item], [], {"models": [{"gamma": 32}], "modality": "t1", "whole_volumes": True, "polarity": sign})
    monkeypatch.setattr(sys, "argv", ["lesion_sign_per_scan.py", "--dark", str(caches["bright"]), "--bright", str(caches["dark"]), "--json", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "heat of error sign 'bright', not 'dark'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
