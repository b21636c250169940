"""Algorithm 1 on a handful of synthetic slices: it runs, logs, checkpoints, resumes and exports a usable model,
and refuses bad data, bad settings and a resume that would not continue the same run."""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.models.checkpoint import load_generator
from napari_inpaint_seg.training import data, loop
from napari_inpaint_seg.training.data import (
    SliceSet,
    cached_brain_mask,
    lgg_healthy_slices,
    load_slice_pack,
    sample_hole_crops,
    save_slice_pack,
)
from napari_inpaint_seg.training.loop import TrainConfig, generator_loss, train

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


# ---------------------------------------------------------------------------------------------------------
# Resuming continues the same run, or refuses


def test_resume_after_a_crash_logs_each_iteration_once_and_keeps_counting_seconds(tmp_path, slices, monkeypatch):
    """Killed after logging iteration 3 but before its checkpoint: the resumed run logs 3 again, not twice."""
    clock = itertools.count(step=10.0)
    monkeypatch.setattr(loop.time, "monotonic", lambda: next(clock))
    out = tmp_path / "run"
    train(tiny_train_config(2), slices, out, progress=False)
    checkpoint_at_two = (out / "state.pt").read_bytes()
    train(tiny_train_config(3), slices, out, progress=False)
    (out / "state.pt").write_bytes(checkpoint_at_two)  # as if the process died right after logging row 3

    train(tiny_train_config(4), slices, out, progress=False)
    rows = log_rows(out)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds == sorted(seconds) and seconds[2] > seconds[1]  # continues from the checkpoint's time
    assert torch.load(out / "state.pt", weights_only=True)["seconds"] == pytest.approx(seconds[-1])


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, slices):
    straight = train(replace(tiny_train_config(4), checkpoint_every=2), slices, tmp_path / "straight", progress=False)
    train(replace(tiny_train_config(2), checkpoint_every=2), slices, tmp_path / "resumed", progress=False)
    resumed = train(replace(tiny_train_config(4), checkpoint_every=2), slices, tmp_path / "resumed", progress=False)
    a, b = load_generator(straight)[0].state_dict(), load_generator(resumed)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("changes, named", [
    ({"gamma": 16, "seed": 7}, ["gamma 8 (now 16)", "seed 0 (now 7)"]),
    ({"lr_generator": 0.5}, ["lr_generator"]),
    ({"base_channels": 8}, ["base_channels 4 (now 8)"]),
])  # fmt: skip
def test_resume_with_other_settings_is_refused_naming_them(tmp_path, slices, changes, named):
    out = tmp_path / "run"
    train(tiny_train_config(2), slices, out, progress=False)
    with pytest.raises(InputError, match="other settings") as refused:
        train(replace(tiny_train_config(4), **changes), slices, out, progress=False)
    assert all(text in str(refused.value) for text in named)
    # how long and how often to write may change
    train(replace(tiny_train_config(3), checkpoint_every=3, log_every=3), slices, out, progress=False)


def test_resume_on_other_slices_is_refused(tmp_path, slices):
    out = tmp_path / "run"
    train(tiny_train_config(2), slices, out, progress=False)
    fewer = SliceSet(slices.images[:3], slices.brains[:3], slices.description)
    with pytest.raises(InputError, match="other slices"):
        train(tiny_train_config(4), fewer, out, progress=False)


def test_rerunning_a_finished_run_exports_a_missing_generator(tmp_path, slices):
    """The process died between the final state and the export: the same command exports again."""
    out = tmp_path / "run"
    train(tiny_train_config(2), slices, out, progress=False)
    (out / "generator.safetensors").unlink()
    exported = train(tiny_train_config(2), slices, out, progress=False)
    assert load_generator(exported)[1].iterations == 2


def weight_distance(a: dict, b: dict) -> float:
    return sum(float((a[k] - b[k]).abs().sum()) for k in a if a[k].is_floating_point())


def test_fine_tuning_starts_from_the_given_generator_and_counts_its_iterations(tmp_path, slices):
    base = train(replace(tiny_train_config(3), seed=5), slices, tmp_path / "base", progress=False)
    tuned = train(replace(tiny_train_config(1), init_from=str(base), init_iterations=3), slices, tmp_path / "tuned", progress=False)
    fresh = train(tiny_train_config(1), slices, tmp_path / "fresh", progress=False)  # the same seed and step, random start
    start = load_generator(base)[0].state_dict()
    tuned_generator, tuned_config = load_generator(tuned)
    assert weight_distance(tuned_generator.state_dict(), start) < 0.1 * weight_distance(load_generator(fresh)[0].state_dict(), start)
    assert tuned_config.iterations == 4 and tuned_config.notes["train"]["init_from"] == str(base)


def test_fine_tuning_refuses_a_generator_of_another_architecture_naming_it(tmp_path, slices):
    other = train(replace(tiny_train_config(1), base_channels=8), slices, tmp_path / "other", progress=False)
    with pytest.raises(InputError, match=r"differs in base_channels 8 \(this run: 4\)"):
        train(replace(tiny_train_config(1), init_from=str(other)), slices, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "state.pt").exists()


def test_a_state_from_before_fine_tuning_resumes_with_its_defaults(tmp_path, slices):
    """States written before init_from existed lack it: they were not fine-tuned, and resume as such."""
    out = tmp_path / "run"
    train(tiny_train_config(2), slices, out, progress=False)
    state = torch.load(out / "state.pt", weights_only=True)
    for name in ("init_from", "init_iterations"):
        del state["config"][name]
    torch.save(state, out / "state.pt")
    assert load_generator(train(tiny_train_config(3), slices, out, progress=False))[1].iterations == 3
    with pytest.raises(InputError, match="init_iterations 0 \\(now 7\\)"):
        train(replace(tiny_train_config(4), init_iterations=7), slices, out, progress=False)


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_damaged_or_foreign_training_state_is_an_input_error(tmp_path, slices, damage):
    out = tmp_path / "run"
    train(tiny_train_config(2), slices, out, progress=False)
    state = out / "state.pt"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:5000])
    else:
        torch.save({"foo": torch.zeros(1)}, state)
    with pytest.raises(InputError, match="state.pt"):
        train(tiny_train_config(4), slices, out, progress=False)


# ---------------------------------------------------------------------------------------------------------
# Settings and slices are checked before any step


@pytest.mark.parametrize("changes, named", [
    ({"gamma": 1030}, "gamma=1030"),
    ({"iterations": 0}, "iterations=0"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"checkpoint_every": 0}, "checkpoint_every=0"),
    ({"lr_generator": -1.0}, "lr_generator=-1.0"),
    ({"downsample": 0}, "downsample=0"),
])  # fmt: skip
def test_unusable_configuration_is_refused_before_training(tmp_path, slices, changes, named):
    with pytest.raises(InputError, match=named):
        train(replace(tiny_train_config(2), **changes), slices, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_slices_of_another_modality_are_refused(tmp_path, slices):
    save_slice_pack(tmp_path / "flair.npz", replace(slices, modality="flair"))
    flair = load_slice_pack(tmp_path / "flair.npz")
    assert flair.modality == "flair"
    with pytest.raises(InputError, match="flair"):
        train(tiny_train_config(1), flair, tmp_path / "run", progress=False)  # the config says t1


def test_pack_without_a_modality_is_read_as_unknown(tmp_path, slices):
    """Packs written before the field existed train with whatever modality the user declares."""
    save_slice_pack(tmp_path / "pack.npz", slices)
    with np.load(tmp_path / "pack.npz") as pack:
        np.savez(tmp_path / "old.npz", **{key: pack[key] for key in pack.files if key != "modality"})
    assert load_slice_pack(tmp_path / "old.npz").modality == ""


def test_slice_with_an_empty_brain_mask_is_refused(tmp_path, slices):
    slices.brains[2] = np.zeros_like(slices.brains[2])
    with pytest.raises(InputError, match="slice 2 .*brain mask is empty"):
        train(tiny_train_config(1), slices, tmp_path / "run", progress=False)


@pytest.mark.parametrize("value", [1.5, np.nan, -0.2])
def test_pack_refuses_values_outside_the_intensity_convention(tmp_path, slices, value):
    slices.images[1] = slices.images[1].copy()
    slices.images[1][20, 20] = value
    with pytest.raises(InputError, match=r"slice 1 .*outside \[0, 1\]"):
        save_slice_pack(tmp_path / "pack.npz", slices)
    assert not (tmp_path / "pack.npz").exists()


def write_bad_pack(path: Path, kind: str, good: Path) -> None:
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:200])
    elif kind == "text":
        path.write_text("not a pack\n")
    elif kind == "other arrays":
        np.savez(path, x=np.zeros(3))
    elif kind == "single array":
        with open(path, "wb") as handle:
            np.save(handle, np.zeros(3))


@pytest.mark.parametrize("kind", ["missing", "truncated", "text", "other arrays", "single array"])
def test_unreadable_pack_is_an_input_error(tmp_path, slices, kind):
    save_slice_pack(tmp_path / "good.npz", slices)
    write_bad_pack(tmp_path / "bad.npz", kind, tmp_path / "good.npz")
    with pytest.raises(InputError, match="bad.npz"):
        load_slice_pack(tmp_path / "bad.npz")


def test_interrupted_pack_write_keeps_the_previous_pack(tmp_path, slices, monkeypatch):
    save_slice_pack(tmp_path / "pack.npz", slices)
    before = (tmp_path / "pack.npz").read_bytes()

    def die_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(data.np, "savez_compressed", die_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_slice_pack(tmp_path / "pack.npz", slices)
    assert (tmp_path / "pack.npz").read_bytes() == before
    assert os.listdir(tmp_path) == ["pack.npz"]


def test_pack_is_written_under_exactly_the_given_name(tmp_path, slices):
    save_slice_pack(tmp_path / "pack", slices)
    assert os.listdir(tmp_path) == ["pack"] and len(load_slice_pack(tmp_path / "pack")) == len(slices)


def test_half_written_brain_mask_cache_is_recomputed(tmp_path, monkeypatch):
    """A cache file cut short (a killed run of an older version) is computed again, not a crash forever after."""
    monkeypatch.setattr(data, "extract_brain_volume", lambda volume, affine: volume > 0)
    scan = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(lgg_volume(seed=0), np.eye(4)), str(scan))
    first = cached_brain_mask(scan, tmp_path / "cache")
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(b"PK\x03\x04half-written")
    np.testing.assert_array_equal(cached_brain_mask(scan, tmp_path / "cache"), first)
    with np.load(cached) as rewritten:
        np.testing.assert_array_equal(rewritten["brain"], first)


def test_adversarial_term_is_log_one_minus_d_with_a_gradient_when_d_is_confident():
    images = torch.rand(1, 1, 16, 16)
    holes = torch.zeros_like(images)
    cfg = TrainConfig(lambda_rec=0.0)
    for logit in (-3.0, 0.5, 30.0):
        x = torch.tensor([logit], requires_grad=True)
        total, _ = generator_loss(x, images, images, holes, cfg)
        total.backward()
        assert total.item() == pytest.approx(-np.log1p(np.exp(logit)), rel=1e-5)  # log(1 - sigmoid) = log(sigmoid(-x))
        assert x.grad.item() == pytest.approx(-torch.sigmoid(torch.tensor(logit)).item(), rel=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Reading LGG patients (a fake folder in the LGG layout; deepbet replaced by a threshold)


def lgg_volume(seed: int, size: int = 64, depth: int = 3) -> np.ndarray:
    """A uint8 disc of more than MIN_BRAIN_PIXELS pixels on every slice, on a zero background."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    disc = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < 28**2
    plane = np.where(disc, rng.integers(60, 200, size=(size, size)), 0)
    return np.repeat(plane[:, :, None], depth, axis=2).astype(np.uint8)


@pytest.fixture
def lgg_folder(tmp_path, monkeypatch) -> Path:
    """Patients A (real T1) and B (T1-pre a copy of FLAIR, as summary.json says), tumour-free."""
    folder = tmp_path / "lgg"
    folder.mkdir()
    for seed, patient in enumerate(["A", "B"]):
        flair = lgg_volume(seed)
        volumes = {"flair": flair, "t1pre": flair if patient == "B" else lgg_volume(seed + 10), "mask": np.zeros_like(flair)}
        for suffix, volume in volumes.items():
            nib.save(nib.Nifti1Image(volume, np.eye(4)), str(folder / f"{patient}_{suffix}.nii.gz"))
    summary = [{"patient": p, "n_slices": 3, "t1pre_missing_replaced_by_flair": p == "B"} for p in ("A", "B")]
    (folder / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(data, "cached_brain_mask", lambda path, cache: nib.load(path).get_fdata() > 0)
    return folder


def test_lgg_t1_slices_skip_patients_whose_t1_is_a_copy_of_flair(lgg_folder):
    notes = []
    t1 = lgg_healthy_slices(lgg_folder, ["A", "B"], "t1", report=notes.append)
    assert len(t1) == 3 and t1.modality == "t1" and "1 patients" in t1.description
    assert len(notes) == 1 and "B" in notes[0] and "copy of FLAIR" in notes[0]
    assert len(lgg_healthy_slices(lgg_folder, ["A", "B"], "flair", report=notes.append)) == 6  # FLAIR is real


def test_tumour_margin_adds_tumour_slices_with_holes_centred_away_from_the_tumour(lgg_folder):
    tumour = np.zeros((64, 64, 3), dtype=np.uint8)
    tumour[30:34, 30:34, 1] = 1  # a small tumour in the middle slice, at the disc's centre
    nib.save(nib.Nifti1Image(tumour, np.eye(4)), str(lgg_folder / "A_mask.nii.gz"))
    healthy = lgg_healthy_slices(lgg_folder, ["A"], "flair")
    assert len(healthy) == 2 and not healthy.shows_tumour  # without the option the slice is left out

    slices = lgg_healthy_slices(lgg_folder, ["A"], "flair", tumour_margin=3)
    assert len(slices) == 3 and "hole centres at least 3 px from the tumour" in slices.description
    save_slice_pack(lgg_folder / "pack.npz", slices)
    assert load_slice_pack(lgg_folder / "pack.npz").shows_tumour  # a pack still says so (calibration refuses it)
    centres = slices.brains[2]
    assert not centres[27:37, 27:37].any()  # within 3 px (square) of the tumour: never a hole centre
    assert centres[26, 32] and centres[32, 37] and centres.sum() == slices.brains[0].sum() - 100
    assert slices.images[2][27:37, 27:37].mean() > 0.2  # the image itself keeps the tumour's surroundings

    assert len(lgg_healthy_slices(lgg_folder, ["A"], "flair", tumour_margin=20)) == 2  # too little room left


def test_tumour_margin_needs_an_lgg_folder(tmp_path):
    with pytest.raises(InputError, match="needs --lgg"):
        data.gather_slices("t1", images=tmp_path, tumour_margin=32)


@pytest.mark.parametrize("patients, message", [(["A", "C", "A"], "more than once: A"), (["A", "C"], "for 1 patient.*: C")])
def test_unknown_or_repeated_patients_are_refused_before_any_scan_is_read(lgg_folder, monkeypatch, patients, message):
    monkeypatch.setattr(data, "read_scan", lambda path: pytest.fail(f"read {path} before checking the list"))
    with pytest.raises(InputError, match=message):
        lgg_healthy_slices(lgg_folder, patients, "flair")
