"""The no-tumour decision calibrated for a model of one's own: measured on healthy slices, stored with the model,
and used by the command line (the plugin's side is in test_widget_workflow.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, brain_slice
from napari_inpaint_seg.calibration import REFERENCE_HEALTHY_CONTRAST, calibrated_decision, healthy_contrasts
from napari_inpaint_seg.errors import InputError
from napari_inpaint_seg.models.checkpoint import load_generator, store_decision
from napari_inpaint_seg.models.config import CONFIG_KEY, ModelConfig, checkpoint_config, decision_caveat, stored_decision
from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS
from napari_inpaint_seg.training.data import WITH_TUMOUR_SLICES, SliceSet, save_slice_pack


def healthy_pack(count: int = 6, modality: str = "t1") -> SliceSet:
    images, brains = zip(*(brain_slice(seed=seed, square=None)[:2] for seed in range(count)))
    return SliceSet([image.astype(np.float32) for image in images], list(brains), "toy healthy slices", modality)


def test_the_tuned_decision_is_scaled_by_the_healthy_median_over_the_shipped_models():
    tuned = DEFAULT_SELECTIONS["flair"]
    doubled = 2 * REFERENCE_HEALTHY_CONTRAST["flair"]
    decision = calibrated_decision(np.array([doubled * 0.5, doubled, doubled * 3, np.inf]), "flair", "toy")
    assert decision["min_contrast"] == pytest.approx(2 * tuned.min_contrast, abs=1e-3)
    assert decision["grow_contrast"] == pytest.approx(2 * tuned.grow_contrast, abs=1e-3)
    assert decision["healthy_slices"] == 3  # a slice whose heat stands out infinitely says nothing of the scale
    assert decision["calibrated_on"] == "toy"


@pytest.mark.parametrize("contrasts", [np.array([np.inf, np.nan]), np.array([0.0, 0.0, 1.0])])
def test_contrasts_that_give_no_scale_are_refused(contrasts):
    with pytest.raises(InputError, match="contrast"):
        calibrated_decision(contrasts, "t1", "toy")


def test_healthy_contrasts_come_from_slices_with_a_window_of_brain(tiny_generator, tiny_config):
    slices = healthy_pack(5)
    slices.brains.append(np.zeros_like(slices.brains[0]))  # no brain: never drawn
    slices.images.append(np.zeros_like(slices.images[0]))
    contrasts = healthy_contrasts(slices, (tiny_generator, tiny_config), "t1", count=10)
    assert contrasts.shape == (5,) and np.all(contrasts >= 1)  # the top segment scores at least the brain's median
    again = healthy_contrasts(slices, (tiny_generator, tiny_config), "t1", count=3, seed=1)
    assert again.shape == (3,) and set(np.round(again, 9)) <= set(np.round(contrasts, 9))


def test_healthy_contrasts_refuse_slices_of_another_modality_with_tumours_or_without_brain(tiny_generator, tiny_config):
    with pytest.raises(InputError, match="the slices are flair"):
        healthy_contrasts(healthy_pack(2, "flair"), (tiny_generator, tiny_config), "t1")
    with_tumours = healthy_pack(2, "t1")
    with_tumours.description += f", {WITH_TUMOUR_SLICES} with hole centres at least 40 px from the tumour"
    with pytest.raises(InputError, match="calibrate on tumour-free slices"):
        healthy_contrasts(with_tumours, (tiny_generator, tiny_config), "t1")
    empty = SliceSet([np.zeros((48, 48), np.float32)], [np.zeros((48, 48), bool)], "empty", "t1")
    with pytest.raises(InputError, match="enough brain"):
        healthy_contrasts(empty, (tiny_generator, tiny_config), "t1")


def test_a_stored_decision_travels_with_the_weights(tiny_model_path):
    before = {name: tensor.clone() for name, tensor in load_generator(tiny_model_path)[0].state_dict().items()}
    config = store_decision(tiny_model_path, {"min_contrast": 2.0, "grow_contrast": 1.5, "calibrated_on": "toy"})
    assert config.decision_contrasts == (2.0, 1.5)
    generator, loaded = load_generator(tiny_model_path)
    assert loaded.decision_contrasts == (2.0, 1.5) and checkpoint_config(tiny_model_path).decision["calibrated_on"] == "toy"
    assert all(np.array_equal(before[name].numpy(), tensor.numpy()) for name, tensor in generator.state_dict().items())
    assert not list(tiny_model_path.parent.glob("*.part"))


@pytest.mark.parametrize("decision, problem", [
    ({"min_contrast": 0.0}, "not a positive number"),
    ({"min_contrast": "6"}, "not a positive number"),
    ({"min_contrast": math.nan}, "not a positive number"),
    ({"min_contrast": 2.0, "grow_contrast": 2.0}, "below min_contrast"),
    ({"min_contrast": 2.0, "grow_contrast": -1.0}, "below min_contrast"),
    ({}, None),
])
def test_an_unusable_decision_is_refused_when_stored_and_when_read(tiny_model_path, decision, problem):
    problems = [found for found in ModelConfig(decision=decision).problems() if "decision" in found]
    if problem is None:
        assert problems == []
        return
    assert len(problems) == 1 and problem in problems[0]
    with pytest.raises(InputError, match=problem):
        store_decision(tiny_model_path, decision)
    header = json.loads(checkpoint_config(tiny_model_path).to_json())
    header["decision"] = decision
    written = tiny_model_path.with_name("written.safetensors")
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(tiny_model_path)), str(written), metadata={CONFIG_KEY: json.dumps(header)})
    with pytest.raises(InputError, match=f"unusable checkpoint configuration: .*{problem}"):
        checkpoint_config(written)


def test_the_decision_applies_to_the_heat_of_one_model_only():
    calibrated = ModelConfig(modality="flair", decision={"min_contrast": 9.0, "grow_contrast": None})
    plain = ModelConfig(modality="flair")
    assert stored_decision([calibrated]) == (9.0, None)
    assert stored_decision([plain]) is None and stored_decision([calibrated, plain]) is None
    assert "fused" in decision_caveat(["a", "b"], [calibrated, plain])
    assert decision_caveat(["a", "b"], [plain, plain]) is None
    assert decision_caveat(["mine.safetensors"], [calibrated]) is None
    assert "mine.safetensors carries no no-tumour decision" in decision_caveat(["mine.safetensors"], [plain])


def test_calibrate_decision_stores_the_decision_and_the_command_line_uses_it(tmp_path, tiny_model_path):
    from napari_inpaint_seg.cli import build_parser, decision_note, resolve_models, selection

    pack = tmp_path / "healthy.npz"
    save_slice_pack(pack, healthy_pack(4))
    script = [sys.executable, str(REPO / "training_scripts" / "calibrate_decision.py"), "--model", str(tiny_model_path), "--pack", str(pack), "--device", "cpu"]
    dry = subprocess.run([*script, "--dry-run"], capture_output=True, text=True, check=True)
    assert "decision: no tumour below contrast" in dry.stdout and checkpoint_config(tiny_model_path).decision == {}
    command = ["segment", "scan.nii.gz", "--out", "labels.nii.gz", "--modality", "t1", "--gamma", "8", "--model", str(tiny_model_path)]
    args = build_parser().parse_args(command)
    assert selection(args).min_contrast == DEFAULT_SELECTIONS["t1"].min_contrast
    assert "carries no no-tumour decision" in decision_note(args, resolve_models(args))

    done = subprocess.run(script, capture_output=True, text=True, check=True)
    stored = checkpoint_config(tiny_model_path).decision
    assert f"stored in {tiny_model_path}" in done.stdout and stored["healthy_slices"] == 4 and "healthy.npz" in stored["calibrated_on"]
    assert f"contrast {stored['min_contrast']}" in done.stdout
    chosen = selection(args)
    assert (chosen.min_contrast, chosen.grow_contrast) == (stored["min_contrast"], stored["grow_contrast"])
    assert decision_note(args, resolve_models(args)) is None
    given = build_parser().parse_args([*command, "--min-contrast", "3"])  # what is given on the command line comes first
    assert (selection(given).min_contrast, selection(given).grow_contrast) == (3.0, stored["grow_contrast"])
    assert decision_note(given, resolve_models(given)) is None


def test_calibrate_decision_refuses_a_pack_of_another_modality(tmp_path, tiny_model_path):
    pack = tmp_path / "flair.npz"
    save_slice_pack(pack, healthy_pack(2, "flair"))
    result = subprocess.run([sys.executable, str(REPO / "training_scripts" / "calibrate_decision.py"), "--model", str(tiny_model_path), "--pack", str(pack)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "the slices are flair" in result.stderr and "Traceback" not in result.stderr
    assert checkpoint_config(tiny_model_path).decision == {}


def test_segment_notes_a_model_without_a_decision_and_records_the_stored_one(tmp_path, tiny_model_path, make_brain_slice, capsys):
    from PIL import Image

    from napari_inpaint_seg.cli import main

    Image.fromarray(np.round(make_brain_slice(size=48)[0] * 255).astype(np.uint8)).save(tmp_path / "slice.png")

    def segment(out: str) -> dict:
        assert main(["segment", str(tmp_path / "slice.png"), "--modality", "t1", "--gamma", "8", "--device", "cpu", "--model", str(tiny_model_path),
                     "--out", str(tmp_path / f"{out}.nii.gz")]) == 0
        return json.loads((tmp_path / f"{out}.json").read_text())

    before = segment("before")
    assert "carries no no-tumour decision of its own" in capsys.readouterr().err
    assert before["Selection"]["min_contrast"] == DEFAULT_SELECTIONS["t1"].min_contrast and before["Models"][0]["Decision"] is None
    store_decision(tiny_model_path, {"min_contrast": 2.5, "grow_contrast": None})
    after = segment("after")
    assert "no-tumour decision" not in capsys.readouterr().err
    assert (after["Selection"]["min_contrast"], after["Selection"]["grow_contrast"]) == (2.5, None)
    assert after["Models"][0]["Decision"] == {"min_contrast": 2.5, "grow_contrast": None}


def test_calibrate_decision_stores_contrasts_given_and_refuses_unusable_ones(tiny_model_path):
    script = [sys.executable, str(REPO / "training_scripts" / "calibrate_decision.py"), "--model", str(tiny_model_path)]
    done = subprocess.run([*script, "--contrasts", "9,6"], capture_output=True, text=True, check=True)
    assert "no tumour below contrast 9.0 (6.0 beside a labelled slice)" in done.stdout
    assert checkpoint_config(tiny_model_path).decision == {"min_contrast": 9.0, "grow_contrast": 6.0, "calibrated_on": "given with --contrasts"}
    for contrasts, problem in (("6,9", "below min_contrast"), ("1,2,3", "MIN or MIN,GROW")):
        refused = subprocess.run([*script, "--contrasts", contrasts], capture_output=True, text=True)
        assert refused.returncode == 2 and problem in refused.stderr and "Traceback" not in refused.stderr
    assert checkpoint_config(tiny_model_path).decision["min_contrast"] == 9.0  # the stored one is kept
    missing = subprocess.run(script, capture_output=True, text=True)
    assert missing.returncode == 2 and "give --pack" in missing.stderr
