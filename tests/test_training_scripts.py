"""The training scripts as a user runs them: nonsense flags and bad inputs end in one line on stderr and exit
status 2, never a traceback; packs record their modality and land where the user asked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from napari_inpaint_seg.training.data import SliceSet, load_slice_pack, save_slice_pack

SCRIPTS = Path(__file__).resolve().parents[1] / "training_scripts"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"training_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exit_status_and_error(main, argv: list[str], capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    return stopped.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def pack(tmp_path, make_brain_slice) -> Path:
    images, brains = zip(*[make_brain_slice(size=40, seed=seed, square=None)[:2] for seed in range(3)])
    path = tmp_path / "pack.npz"
    save_slice_pack(path, SliceSet(list(images), list(brains), "synthetic discs", "flair"))
    return path


def tiny_run(pack: Path, out: Path, modality: str = "flair") -> list[str]:
    return ["--pack", str(pack), "--modality", modality, "--gamma", "8", "--batch-size", "2", "--base-channels", "4", "--depth", "2",
            "--iterations", "1", "--device", "cpu", "--out", str(out)]  # fmt: skip


@pytest.mark.parametrize("flag, value", [
    ("--iterations", "0"), ("--iterations", "-5"), ("--batch-size", "0"), ("--checkpoint-every", "0"), ("--gamma", "0"),
    ("--gamma", "-4"), ("--lr-generator", "-1"), ("--lr-discriminator", "nan"), ("--max-minutes", "0"),
])  # fmt: skip
def test_train_refuses_nonsense_numbers(tmp_path, pack, capsys, flag, value):
    status, error = exit_status_and_error(script("train").main, [*tiny_run(pack, tmp_path / "run"), flag, value], capsys)
    assert status == 2 and f"argument {flag}" in error[-1]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, message", [
    (["--gamma", "1030"], "gamma=1030"),
    (["--modality", "t1"], "the training slices are flair"),
    (["--pack", "missing.npz"], "missing.npz: no such slice pack"),
    (["--lgg", "somewhere"], "needs its patient list (--patients)"),
])  # fmt: skip
def test_train_reports_bad_input_in_one_line(tmp_path, pack, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    status, error = exit_status_and_error(script("train").main, [*tiny_run(pack, tmp_path / "run"), *extra], capsys)
    assert status == 2 and len(error) == 1 and error[0].startswith("train.py: error: ") and message in error[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_train_says_when_the_asked_device_is_missing(tmp_path, pack, capsys):
    status, error = exit_status_and_error(script("train").main, [*tiny_run(pack, tmp_path / "run"), "--device", "cuda"], capsys)
    assert status == 2 and len(error) == 1 and error[0].startswith("train.py: error: ") and "no CUDA GPU" in error[0]


def test_train_runs_a_flair_pack_and_exports(tmp_path, pack, capsys):
    script("train").main(tiny_run(pack, tmp_path / "run"))
    generator = tmp_path / "run" / "generator.safetensors"
    assert capsys.readouterr().out.splitlines() == [
        f"generator: {generator}",
        f"next: calibrate its no-tumour decision (docs/training.md): python training_scripts/calibrate_decision.py --model {generator} --pack {pack}",
    ]


def test_train_fine_tunes_the_shipped_model_and_refuses_a_missing_or_mismatched_one(tmp_path, capsys, make_brain_slice):
    """--init-from shipped takes the shipped model of --modality and --gamma, and its iterations count on; a
    generator of another window or architecture is refused before any slice is read."""
    from napari_inpaint_seg.models.config import checkpoint_config, shipped_model_path

    images, brains = zip(*[make_brain_slice(size=160, seed=seed, square=None)[:2] for seed in range(2)])
    save_slice_pack(tmp_path / "t1.npz", SliceSet(list(images), list(brains), "synthetic discs", "t1"))
    run = ["--pack", str(tmp_path / "t1.npz"), "--modality", "t1", "--gamma", "64", "--batch-size", "1", "--iterations", "1", "--device", "cpu"]
    script("train").main([*run, "--init-from", "shipped", "--out", str(tmp_path / "tuned")])
    config = checkpoint_config(tmp_path / "tuned" / "generator.safetensors")
    assert config.iterations == checkpoint_config(shipped_model_path("t1", 64)).iterations + 1
    assert config.notes["train"]["init_from"] == str(shipped_model_path("t1", 64))
    status, error = exit_status_and_error(script("train").main, [*run, "--gamma", "48", "--init-from", "shipped", "--out", str(tmp_path / "none")], capsys)
    assert status == 2 and "no shipped model for modality=t1 gamma=48" in error[-1]
    status, error = exit_status_and_error(script("train").main, [*run, "--pack", "missing.npz", "--init-from", str(shipped_model_path("t1", 32)),
                                                                 "--out", str(tmp_path / "none")], capsys)
    assert status == 2 and "trained for gamma=32, not gamma=64" in error[-1]
    status, error = exit_status_and_error(script("train").main, [*run, "--pack", "missing.npz", "--base-channels", "8", "--init-from", "shipped",
                                                                 "--out", str(tmp_path / "none")], capsys)
    assert status == 2 and "differs in base_channels 16 (this run: 8)" in error[-1]


def write_healthy_png(path: Path, seed: int) -> None:
    """A skull-stripped 64x64 slice: a textured disc with enough brain pixels to be kept."""
    rows, cols = np.mgrid[:64, :64]
    disc = (rows - 32) ** 2 + (cols - 32) ** 2 < 28**2
    Image.fromarray(np.where(disc, np.random.default_rng(seed).integers(80, 200, (64, 64)), 0).astype(np.uint8)).save(path)


def test_pack_slices_appends_npz_and_records_the_modality(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    for seed in range(2):
        write_healthy_png(tmp_path / "images" / f"s{seed}.png", seed)
    script("pack_slices").main(["--images", str(tmp_path / "images"), "--modality", "t1", "--out", str(tmp_path / "x")])
    assert f"2 slices -> {tmp_path / 'x.npz'}" in capsys.readouterr().out
    assert not (tmp_path / "x").exists() and load_slice_pack(tmp_path / "x.npz").modality == "t1"


@pytest.mark.parametrize("listed, message", [("A\nA\n", "more than once: A"), ("A\n", "no flair scan and mask for 1 patient(s): A")])
def test_pack_slices_checks_the_patient_list_first(tmp_path, capsys, listed, message):
    (tmp_path / "lgg").mkdir()
    (tmp_path / "patients.txt").write_text(listed)
    argv = ["--lgg", str(tmp_path / "lgg"), "--patients", str(tmp_path / "patients.txt"), "--modality", "flair", "--out", str(tmp_path / "p.npz")]
    status, error = exit_status_and_error(script("pack_slices").main, argv, capsys)
    assert status == 2 and len(error) == 1 and error[0].startswith("pack_slices.py: error: ") and message in error[0]


def test_anogan_refuses_negative_iterations_and_bad_packs(tmp_path, capsys):
    main = script("baseline_anogan").main
    status, error = exit_status_and_error(main, ["train", "--pack", "p.npz", "--iterations", "-3", "--out", str(tmp_path)], capsys)
    assert status == 2 and "argument --iterations" in error[-1]
    (tmp_path / "text.npz").write_text("not a pack")
    status, error = exit_status_and_error(main, ["train", "--pack", str(tmp_path / "text.npz"), "--out", str(tmp_path / "m")], capsys)
    assert status == 2 and len(error) == 1 and error[0].startswith("baseline_anogan.py: error: ")


def test_anogan_evaluation_names_a_missing_or_damaged_model(tmp_path, capsys):
    main = script("baseline_anogan").main
    status, error = exit_status_and_error(main, ["evaluate", "--model", str(tmp_path), "--cache", "c.npz"], capsys)
    assert status == 2 and len(error) == 1 and "generator.safetensors: no such file" in error[0]
    (tmp_path / "generator.safetensors").write_bytes(b"x")
    status, error = exit_status_and_error(main, ["evaluate", "--model", str(tmp_path), "--cache", "c.npz"], capsys)
    assert status == 2 and len(error) == 1 and "not weights of this baseline" in error[0]


def test_anogan_model_is_written_whole_or_not_at_all(tmp_path, pack, monkeypatch):
    anogan = script("baseline_anogan")

    def die_half_way(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(anogan, "save_file", die_half_way)
    with pytest.raises(KeyboardInterrupt):
        anogan.main(["train", "--pack", str(pack), "--iterations", "1", "--batch-size", "2", "--out", str(tmp_path / "m")])
    assert list((tmp_path / "m").iterdir()) == []


@pytest.mark.parametrize("name", ["baseline_intensity", "baseline_anogan"])
def test_baselines_rank_the_papers_superpixels_whatever_the_default_scale(name, tmp_path, monkeypatch):
    """The paper's comparison: its scale (75), not the merge mode's default (50), which once leaked into them."""
    from napari_inpaint_seg.evaluation import EvaluatedSlice
    from napari_inpaint_seg.segmentation import PAPER_SCALE

    baseline, used = script(name), []
    image = np.zeros((16, 16), np.float32)
    cached = ([EvaluatedSlice("a", 0, image, image > -1, image > 0, image, 0.1)], [])
    monkeypatch.setattr(baseline, "read_heatmap_cache_for" if name == "baseline_intensity" else "read_heatmap_cache_unchecked", lambda *a, **k: cached)
    monkeypatch.setattr(baseline, "score_selection", lambda slices, params, selection: used.append(params) or {"dice_per_slice": []})
    if name == "baseline_anogan":
        for part in ("generator", "discriminator"):
            (tmp_path / f"{part}.safetensors").write_bytes(b"")
        monkeypatch.setattr(baseline, "load_model", lambda *a, **k: None)
        monkeypatch.setattr(baseline, "residual_heatmaps", lambda images, *a: np.zeros_like(images))
        baseline.main(["evaluate", "--model", str(tmp_path), "--cache", "c.npz", "--steps", "1"])
    else:
        monkeypatch.setattr("sys.argv", ["baseline_intensity.py", "--cache", "c.npz", "--modality", "flair"])
        baseline.main()
    assert [params.scale for params in used] == [PAPER_SCALE]


def test_brain_sizes_reports_the_training_brains_largest_sections(tmp_path, make_head_volume, capsys):
    import json

    import nibabel as nib

    from napari_inpaint_seg.brain_size import largest_section_px

    (tmp_path / "lgg").mkdir()
    for seed, patient in enumerate(["P1", "P2"]):
        nib.save(nib.Nifti1Image(make_head_volume(seed=seed), np.eye(4)), str(tmp_path / "lgg" / f"{patient}_flair.nii.gz"))
    (tmp_path / "patients.txt").write_text("P1\nP2\n")
    script("brain_sizes").main(["--lgg", str(tmp_path / "lgg"), "--patients", str(tmp_path / "patients.txt"), "--modality", "flair",
                                "--cache", str(tmp_path / "cache")])
    report = json.loads(capsys.readouterr().out)
    sizes = sorted(largest_section_px(np.load(path)["brain"]) for path in (tmp_path / "cache").glob("*_brain.npz"))
    assert len(sizes) == 2 and min(sizes) > 0
    assert report == {"modality": "flair", "patients": 2, "smallest_px": round(sizes[0], 1), "median_px": round(float(np.median(sizes)), 1),
                      "largest_px": round(sizes[1], 1)}


def test_resampled_scans_segment_the_resampled_scan_and_score_on_the_scans_grid(monkeypatch):
    """The CLI sees the scan resampled by the chain's factors; "auto" as the last link is left to the CLI."""
    import subprocess

    import nibabel as nib

    seen = []

    def fake_cli(command, **_):
        source, out = command[command.index("segment") + 1], command[command.index("--out") + 1]
        data = np.asarray(nib.load(source).dataobj)
        seen.append((data.shape, command[command.index("--out") + 2:]))
        nib.save(nib.Nifti1Image((data > 0).astype(np.uint8), np.eye(4)), out)

    monkeypatch.setattr(subprocess, "run", fake_cli)
    scan = np.zeros((20, 20, 3), np.float32)
    scan[4:12, 6:14] = 1.0
    labels = script("resampled_scans").segment_resampled(nib.Nifti1Image(scan, np.eye(4)), "flair", ["0.5", "2"])
    assert seen[-1] == ((20, 20, 3), []) and labels.shape == scan.shape
    script("resampled_scans").segment_resampled(nib.Nifti1Image(scan, np.eye(4)), "flair", ["0.5", "auto"])
    assert seen[-1] == ((10, 10, 3), ["--in-plane-zoom", "auto"])


@pytest.mark.parametrize("way", ["as trained", "turned, true affine", "turned, no affine"])
def test_turned_scans_score_labels_in_the_lgg_voxel_order(monkeypatch, way):
    """Whatever way the scan is stored, the labels the CLI writes (here: its bright voxels, in the stored order) are
    brought back to the voxels they were read from."""
    import subprocess

    import nibabel as nib

    def fake_cli(command, **_):
        source, out = command[command.index("segment") + 1], command[command.index("--out") + 1]
        stored = nib.load(source)
        nib.save(nib.Nifti1Image((np.asarray(stored.dataobj) > 0.5).astype(np.uint8), stored.affine), out)

    monkeypatch.setattr(subprocess, "run", fake_cli)
    scan = np.zeros((20, 24, 3), np.float32)
    scan[2:9, 5:8] = 1.0  # off-centre, so a turn or a flip would move it
    np.testing.assert_array_equal(script("turned_scans").segment_stored(scan, "flair", way), scan > 0.5)


def test_evaluations_of_parts_of_a_split_combine_as_one_run_would_score_them():
    combined = script("combine_evaluations").combined

    def part(patients, dices, healthy, fpr, volume, **settings):
        score = {"selection": "s", "dice_per_slice": dices, "n_tumour_slices": len(dices), "n_healthy_slices": healthy, "false_positive_rate": fpr,
                 "patient_pooled_dice_mean": volume, "volume_dice_mean": volume}
        return {"modality": "flair", "gamma": [64], "step": [8], "localizer": "reference", "patients": patients, "selections": {"chosen": score},
                "seconds_per_slice": 10.0, **settings}

    whole = combined([part(["a"], [1.0, 0.0], 4, 0.25, 0.5), part(["b", "c"], [0.5], 2, 0.5, 0.8)])
    chosen = whole["selections"]["chosen"]
    assert chosen["dice_mean"] == pytest.approx(0.5) and chosen["n_tumour_slices"] == 3 and chosen["n_healthy_slices"] == 6
    assert chosen["false_positive_rate"] == pytest.approx(2 / 6) and chosen["volume_dice_mean"] == pytest.approx((0.5 + 2 * 0.8) / 3)
    assert whole["patients"] == ["a", "b", "c"]
    with pytest.raises(SystemExit, match="differ in localizer"):
        combined([part(["a"], [1.0], 1, 0.0, 1.0), part(["b"], [1.0], 1, 0.0, 1.0, localizer="fast")])
    with pytest.raises(SystemExit, match="a patient is in more than one part"):
        combined([part(["a"], [1.0], 1, 0.0, 1.0), part(["a"], [1.0], 1, 0.0, 1.0)])


def test_variants_of_each_scan_are_scored_against_its_mask(tmp_path, capsys):
    import nibabel as nib

    from napari_inpaint_seg.evaluation import score_variants

    mask = np.zeros((20, 20, 4), np.uint8)
    mask[5:15, 5:15, 1:3] = 1  # two tumour slices of 100 pixels
    for patient in ("P1", "P2"):
        nib.save(nib.Nifti1Image(mask.astype(np.float32), np.eye(4)), str(tmp_path / f"{patient}_flair.nii.gz"))
        nib.save(nib.Nifti1Image(mask, np.eye(4)), str(tmp_path / f"{patient}_mask.nii.gz"))

    def labels_of(scan, variant):  # "right": the scan's bright voxels (the mask); "half": only the first tumour slice
        labels = np.asarray(scan.dataobj) > 0.5
        if variant == "half":
            labels[:, :, 2] = False
        return labels

    result = score_variants(tmp_path, ["P1", "P2"], "flair", ["right", "half"], labels_of, tmp_path / "out" / "scores.json")
    assert result["mean_slice_dice"] == {"right": 1.0, "half": 0.5}
    assert [(row["patient"], row["variant"], row["volume_dice"]) for row in result["rows"]] == [
        ("P1", "right", 1.0), ("P1", "half", pytest.approx(2 / 3)), ("P2", "right", 1.0), ("P2", "half", pytest.approx(2 / 3))]
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["mean_slice_dice"] == result["mean_slice_dice"]
    assert len(capsys.readouterr().out.splitlines()) == 5  # a line per row as it comes, then the summary


def test_tune_selection_refuses_a_levelling_grid_other_than_0_and_1(capsys, monkeypatch):
    tune = script("tune_selection")
    monkeypatch.setattr("sys.argv", ["tune_selection.py", "--data", "d", "--patients", "p.txt", "--modality", "flair", "--cache", "c.npz",
                                     "--json", "o.json", "--level-slices", "0,2"])
    with pytest.raises(SystemExit) as stopped:
        tune.main()
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and "--level-slices" in error and "takes 0, 1 or 0,1" in error
    assert tune.levels("1,0") == [True, False]


def test_tune_selection_takes_none_in_its_optional_grids_and_refuses_other_words(capsys, monkeypatch):
    from napari_inpaint_seg.training.arguments import optional_float_list

    assert optional_float_list("none, 0.45") == [None, 0.45]
    tune = script("tune_selection")
    monkeypatch.setattr("sys.argv", ["tune_selection.py", "--data", "d", "--patients", "p.txt", "--modality", "flair", "--cache", "c.npz",
                                     "--json", "o.json", "--end-weights", "none,half"])
    with pytest.raises(SystemExit) as stopped:
        tune.main()
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and "--end-weights" in error and "numbers or 'none'" in error


def test_slice_positions_counts_tumour_free_and_tumour_slices_along_the_scan(tmp_path, capsys):
    import json

    import nibabel as nib

    (tmp_path / "lgg").mkdir()
    mask = np.zeros((8, 8, 11), np.uint8)  # positions 0, 0.1, ..., 1: tumour on slices 4-6, a speck on slice 7
    mask[2:7, 2:7, 4:7] = 1
    mask[0, 0, 7] = 1
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(tmp_path / "lgg" / "P1_mask.nii.gz"))
    (tmp_path / "patients.txt").write_text("P1\n")
    script("slice_positions").main(["--lgg", str(tmp_path / "lgg"), "--patients", str(tmp_path / "patients.txt"), "--bins", "2", "--min-tumour", "20"])
    report = json.loads(capsys.readouterr().out)
    assert report["tumour_free_slices"] == [4, 3] and report["tumour_slices"] == [1, 2]  # 0.4 | 0.5, 0.6; the speck in neither
    status, lines = exit_status_and_error(script("slice_positions").main, ["--lgg", str(tmp_path), "--patients", str(tmp_path / "patients.txt")], capsys)
    assert status == 2 and "P1_mask.nii.gz" in lines[-1]
