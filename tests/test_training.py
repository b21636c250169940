"""Algorithm 1 on a handful of synthetic slices: it runs, logs, checkpoints, resumes and exports a usable model."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_inpaint_seg.models.checkpoint import load_generator
from napari_inpaint_seg.training.data import SliceSet, load_slice_pack, sample_hole_crops, save_slice_pack
from napari_inpaint_seg.training.loop import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def slices(make_brain_slice) -> SliceSet:
    images, brains = [], []
    for seed, size in enumerate([40, 40, 44, 36]):
        image, brain, _ = make_brain_slice(size=size, seed=seed, square=None)
        images.append(image)
        brains.append(brain)
    return SliceSet(images, brains, "synthetic discs")


def tiny_train_config(iterations: int) -> TrainConfig:
    return TrainConfig(gamma=8, iterations=iterations, batch_size=2, base_channels=4, depth=2, checkpoint_every=1, log_every=1)


def log_rows(out: Path) -> list[dict]:
    with open(out / "log.csv") as handle:
        return list(csv.DictReader(handle))


def test_three_iterations_log_checkpoint_and_export(tmp_path, slices):
    exported = train(tiny_train_config(3), slices, tmp_path / "run", progress=False)
    rows = log_rows(tmp_path / "run")
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert all(np.isfinite(float(r[key])) for r in rows for key in ("g_loss", "l1_hole", "d_loss"))
    assert exported == tmp_path / "run" / "generator.safetensors"

    generator, config = load_generator(exported)
    assert (config.gamma, config.base_channels, config.depth, config.iterations) == (8, 4, 2, 3)
    assert config.context == 16 and config.data == "synthetic discs"
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["iteration"] == 3
    for key, value in state["generator"].items():
        assert torch.equal(generator.state_dict()[key], value), key
    assert not list((tmp_path / "run").glob("*.part"))


def test_resume_continues_from_the_saved_iteration(tmp_path, slices):
    out = tmp_path / "run"
    train(tiny_train_config(2), slices, out, progress=False)
    after_two = torch.load(out / "state.pt", weights_only=True)
    train(tiny_train_config(4), slices, out, progress=False)
    after_four = torch.load(out / "state.pt", weights_only=True)

    assert [int(r["iteration"]) for r in log_rows(out)] == [1, 2, 3, 4]  # not 1, 2, 1, 2, 3, 4
    assert after_four["iteration"] == 4
    # Adam's step counters continued from 2 (a fresh start would also leave them at 2 after two more steps).
    assert {int(s["step"]) for s in after_two["opt_g"]["state"].values()} == {2}
    assert {int(s["step"]) for s in after_four["opt_g"]["state"].values()} == {4}
    assert load_generator(out / "generator.safetensors")[1].iterations == 4
    changed = [not torch.equal(after_two["generator"][k], after_four["generator"][k]) for k in after_two["generator"] if k.endswith("weight")]
    assert any(changed)


def test_training_is_deterministic_for_a_seed(tmp_path, slices):
    first = train(tiny_train_config(2), slices, tmp_path / "a", progress=False)
    second = train(tiny_train_config(2), slices, tmp_path / "b", progress=False)
    a, b = load_generator(first)[0].state_dict(), load_generator(second)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_slice_pack_round_trip(tmp_path, slices):
    save_slice_pack(tmp_path / "pack.npz", slices)
    loaded = load_slice_pack(tmp_path / "pack.npz")
    assert len(loaded) == len(slices) and loaded.description == slices.description
    for original, image, brain_original, brain in zip(slices.images, loaded.images, slices.brains, loaded.brains):
        assert image.shape == original.shape and image.dtype == np.float32
        np.testing.assert_allclose(image, original, atol=0.5 / 255 + 1e-6)  # stored as uint8
        np.testing.assert_array_equal(brain, brain_original)


def test_hole_crops_have_one_hole_of_side_gamma_on_the_brain(slices):
    images, holes = sample_hole_crops(slices, 16, gamma=8, context=24, rng=np.random.default_rng(0))
    assert images.shape == holes.shape == (16, 1, 24, 24)
    assert set(np.unique(holes)) == {0.0, 1.0}
    for image, hole in zip(images[:, 0], holes[:, 0]):
        rows, cols = np.nonzero(hole)
        assert len(rows) == 64 and np.ptp(rows) == 7 and np.ptp(cols) == 7
        assert image[hole == 1].mean() > 0.2  # centred on brain tissue, not background


@pytest.mark.slow
def test_distributed_training_on_two_cpu_processes(tmp_path, slices):
    """torchrun with two gloo processes: both ranks train, rank 0 writes the log, state and generator."""
    save_slice_pack(tmp_path / "pack.npz", slices)
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPO / "training_scripts" / "train.py"), "--pack", str(tmp_path / "pack.npz"), "--modality", "t1",
        "--gamma", "8", "--iterations", "2", "--batch-size", "2", "--base-channels", "4", "--depth", "2",
        "--checkpoint-every", "1", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("generator:") == 1  # printed by rank 0 only
    assert [int(r["iteration"]) for r in log_rows(out)] == [2]
    _, config = load_generator(out / "generator.safetensors")
    assert config.iterations == 2
