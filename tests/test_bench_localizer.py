"""benchmarks/bench_localizer.py --volume on a prepared scan saved in a file made here: the way a GPU machine,
which has neither ../shared nor deepbet, times a whole scan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_localizer.py"


def test_volume_from_a_saved_prepared_scan(tmp_path):
    rows, cols = np.mgrid[:64, :64]
    brain = (rows - 32) ** 2 + (cols - 32) ** 2 <= 28**2
    image = np.where(brain, 0.4, 0.0) + 0.5 * ((rows - 30) ** 2 + (cols - 36) ** 2 <= 6**2)
    volume = np.stack([image, image], axis=2).astype(np.float32)
    np.savez_compressed(tmp_path / "scan.npz", image=volume, brain=np.stack([brain, brain], axis=2))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--gamma", "32", "--step", "8", "--threads", "1", "--volume", "--volume-from", str(tmp_path / "scan.npz")],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["volume_shape"] == [64, 64, 2]
    assert result["seconds_volume_fast"] > 0 and result["peak_rss_gb"] > 0 and result["gamma"] == 32
    assert "peak_gpu_memory_gb" not in result  # only on CUDA


def test_both_paths_on_slices_saved_in_a_file(tmp_path):
    """--slices-from: what a GPU machine without the data compares (the slices made here); --profile writes a table."""
    rows, cols = np.mgrid[:64, :64]
    brain = (rows - 32) ** 2 + (cols - 32) ** 2 <= 28**2
    tumour = (rows - 30) ** 2 + (cols - 36) ** 2 <= 6**2
    image = (np.where(brain, 0.4, 0.0) + 0.5 * tumour).astype(np.float32)
    np.savez_compressed(tmp_path / "slices.npz", index=np.array([7]), image=image[None], brain=brain[None], tumour=tumour[None], modality="flair")
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--gamma", "32", "--step", "8", "--threads", "1", "--slices-from", str(tmp_path / "slices.npz")]
    done = subprocess.run(command + ["--profile", str(tmp_path / "profile.txt")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n_slices"] == 1 and result["ratio"] > 0 and result["seconds_per_slice_reference"] > 0
    assert "both paths run here" in result["data"] and "convolution" in (tmp_path / "profile.txt").read_text()
    refused = subprocess.run(command[:-2] + ["--modality", "t1", "--slices-from", str(tmp_path / "slices.npz")], capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "saved from flair scans, not t1" in refused.stderr
