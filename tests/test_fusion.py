"""Several window sizes in one heatmap: the fusion rule, the fused live updates, and the CLI's --gamma 8,16."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from napari_inpaint_seg.cli import main
from napari_inpaint_seg.io import Scan
from napari_inpaint_seg.localizer import final, fuse_heatmaps
from napari_inpaint_seg.pipeline import PreparedScan, localize_slice


@pytest.fixture
def two_models(tiny_generator, tiny_config):
    """The tiny gamma=8 model and a gamma=16 one."""
    import torch

    from napari_inpaint_seg.models.checkpoint import build_generator

    torch.manual_seed(1)
    config16 = type(tiny_config)(gamma=16, modality="t1", base_channels=4, depth=2, context=32)
    return [(tiny_generator, tiny_config), (build_generator(config16).eval(), config16)]


def test_fusion_averages_heatmaps_in_units_of_their_brain_median():
    brain = np.zeros((8, 8), bool)
    brain[1:7, 1:7] = True
    a = np.where(brain, 2.0, 0.0)
    b = np.where(brain, 50.0, 0.0)
    a[3, 3], b[3, 3] = 6.0, 100.0  # 3x and 2x their medians
    fused = fuse_heatmaps([a, b], brain)
    assert fused[3, 3] == pytest.approx(2.5) and fused[brain].min() == pytest.approx(1.0)
    assert not fused[~brain].any()
    np.testing.assert_allclose(fuse_heatmaps([a], brain), np.where(brain, a / 2.0, 0))


def test_fused_updates_end_with_the_fusion_of_each_models_heatmap(two_models, make_brain_slice):
    image, brain, _ = make_brain_slice(size=48)
    prepared = PreparedScan(Scan(image[:, :, None], np.eye(4), None), image[:, :, None], brain[:, :, None])
    updates = list(localize_slice(prepared, 0, two_models, step=4))
    assert updates[-1].finished and not any(update.finished for update in updates[:-1])
    assert [u.windows_done for u in updates] == sorted(u.windows_done for u in updates)
    separate = [final(localize_slice(prepared, 0, [model], step=4)) for model in two_models]
    np.testing.assert_allclose(updates[-1].heatmap, fuse_heatmaps(separate, brain), rtol=1e-5)


def test_cli_fuses_two_windows_given_one_model_each(tmp_path, two_models, make_brain_slice):
    from napari_inpaint_seg.models.checkpoint import save_generator

    paths = []
    for generator, config in two_models:
        paths += ["--model", str(tmp_path / f"g{config.gamma}.safetensors")]
        save_generator(tmp_path / f"g{config.gamma}.safetensors", generator, config)
    image, brain, _ = make_brain_slice(size=48)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    command = ["segment", str(tmp_path / "slice.png"), "--modality", "t1", "--gamma", "8,16", *paths, "--device", "cpu", "--min-contrast", "0"]  # every slice answers
    assert main([*command, "--out", str(tmp_path / "labels.nii.gz"), "--heatmap-out", str(tmp_path / "heat.nii.gz")]) == 0
    assert np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj).any()
    heat = np.asarray(nib.load(str(tmp_path / "heat.nii.gz")).dataobj)
    assert np.median(heat[brain]) == pytest.approx(1.0, rel=0.05)  # fused heat is in units of the brain's median


def test_cli_refuses_a_model_count_that_does_not_match_the_windows(tmp_path, tiny_model_path, capsys):
    status = main(["segment", str(tmp_path / "x.png"), "--modality", "t1", "--gamma", "8,16", "--model", str(tiny_model_path), "--out", str(tmp_path / "y.nii.gz")])
    assert status == 2
    assert "give one per window" in capsys.readouterr().err
