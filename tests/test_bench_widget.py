"""benchmarks/bench_widget.py on a toy scan and a tiny model: it drives a real viewer (needs the X server the
suite runs under) and reports the click-to-heatmap times of a first and a repeated Run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_widget.py"


def test_bench_widget_times_runs_on_a_given_scan(toy_scan_path, tiny_model):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scan", str(toy_scan_path), "--model", str(tiny_model), "--skull-stripped", "--slice", "2", "--repeats", "2", "--threads", "1", "--wait-before-run", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # the JSON alone on stdout, whatever napari prints
    assert result["model"] == "flair, gamma=8" and result["slice"] == 2 and result["repeats"] == 2
    assert result["brain_extraction"] is False
    assert 0 < result["seconds_to_prepared_in_background"] < 3  # the widget prepared the scan before the first Run
    for run in (result["first_run"], result["repeated"]):
        assert 0 < run["seconds_to_first_heatmap_drawn"] <= run["seconds_to_finished"]
        assert 0 < run["seconds_to_first_update"] <= run["seconds_to_finished"]
