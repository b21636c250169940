"""``inpaint-seg segment`` end to end, as a user runs it, on small synthetic scans and a tiny model."""

from __future__ import annotations

import argparse
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from napari_inpaint_seg.cli import main, parse_slices
from napari_inpaint_seg.metrics import dice

OBLIQUE = np.array([[0.0, -0.9, 0.1, 90.0], [1.1, 0.0, 0.0, -126.0], [0.0, 0.05, 2.5, -72.0], [0, 0, 0, 1]])


def segment(*args: str, always_answer: bool = True) -> int:
    """The CLI on a tiny model; ``always_answer`` turns the no-tumour decision off (its default contrasts are
    tuned for the shipped models, not for an untrained tiny one)."""
    return main(["segment", *map(str, args), "--modality", "t1", "--gamma", "8", "--device", "cpu", *(["--min-contrast", "0"] if always_answer else [])])


def test_segment_a_png_slice(tmp_path, tiny_model_path, make_brain_slice, capsys):
    image, brain, _ = make_brain_slice(size=48)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    status = segment(tmp_path / "slice.png", "--model", tiny_model_path, "--out", tmp_path / "labels.nii.gz", "--heatmap-out", tmp_path / "heat.nii.gz")
    assert status == 0
    labels = nib.load(str(tmp_path / "labels.nii.gz"))
    assert labels.shape == image.shape and labels.get_data_dtype() == np.uint8
    values = np.asarray(labels.dataobj)
    assert set(np.unique(values)) == {0, 1} and not values[~brain].any()
    heat = np.asarray(nib.load(str(tmp_path / "heat.nii.gz")).dataobj)
    assert heat.shape == image.shape and heat[brain].max() > 0 and not heat[~brain].any()
    assert "labels.nii.gz" in capsys.readouterr().out


def test_segment_a_two_dimensional_nifti_keeps_its_geometry(tmp_path, tiny_model_path, make_brain_slice):
    image, _, _ = make_brain_slice(size=40)
    nib.save(nib.Nifti1Image((image * 1000 - 300).astype(np.int16), OBLIQUE), str(tmp_path / "slice.nii.gz"))
    assert segment(tmp_path / "slice.nii.gz", "--model", tiny_model_path, "--out", tmp_path / "labels.nii") == 0
    scan, labels = nib.load(str(tmp_path / "slice.nii.gz")), nib.load(str(tmp_path / "labels.nii"))
    assert labels.shape == scan.shape == (40, 40)
    np.testing.assert_array_equal(labels.affine, scan.affine)
    assert np.asarray(labels.dataobj).any()


def test_force_replaces_an_earlier_result(tmp_path, tiny_model_path, make_brain_slice):
    image, _, _ = make_brain_slice(size=32)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    out = tmp_path / "labels.nii.gz"
    out.write_bytes(b"old")
    assert segment(tmp_path / "slice.png", "--model", tiny_model_path, "--out", out) == 2
    assert out.read_bytes() == b"old"
    assert segment(tmp_path / "slice.png", "--model", tiny_model_path, "--out", out, "--force") == 0
    assert nib.load(str(out)).shape == (32, 32)


def test_paper_mode_labels_one_superpixel_and_merge_mode_at_least_as_much(tmp_path, tiny_model_path, make_brain_slice):
    image, _, _ = make_brain_slice(size=48)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    assert segment(tmp_path / "slice.png", "--model", tiny_model_path, "--mode", "paper", "--out", tmp_path / "paper.nii.gz") == 0
    # The paper's heat and scale, unsmoothed: the same ranking as paper mode, so the same seed (and labels not
    # smoothed, which would round the seed's own edge).
    raw_heat = ["--heat-sigma", "0", "--edge-margin", "0", "--polarity", "both", "--scale", "75", "--label-sigma", "0", "--label-sigma-slices", "0"]
    assert segment(tmp_path / "slice.png", "--model", tiny_model_path, "--mode", "merge", "--merge-ratio", "0", *raw_heat, "--out", tmp_path / "merge.nii.gz") == 0
    paper, merged = (np.asarray(nib.load(str(tmp_path / f"{mode}.nii.gz")).dataobj).astype(bool) for mode in ("paper", "merge"))
    assert paper.any() and (paper <= merged).all()  # merging grows from the paper's segment, never drops it


def test_polarity_auto_is_the_modality_lesion_sign(tmp_path, tiny_model_path, make_brain_slice):
    image, _, _ = make_brain_slice(size=40)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    heat = {}
    for polarity in ("auto", "dark", "both"):
        out = tmp_path / f"{polarity}.nii.gz"
        assert segment(tmp_path / "slice.png", "--model", tiny_model_path, "--polarity", polarity, "--out", tmp_path / f"labels_{polarity}.nii.gz", "--heatmap-out", out) == 0
        heat[polarity] = np.asarray(nib.load(str(out)).dataobj)
    np.testing.assert_array_equal(heat["auto"], heat["dark"])  # the tiny model is a T1 one: LGG is dark on T1-pre
    assert heat["both"].sum() > heat["dark"].sum()  # the absolute error also counts the bright side


@pytest.mark.parametrize(
    "modality,polarity,lesion",
    [("t1", "auto", "dark"), ("t1", "both", "dark"), ("t1", "bright", "bright"), ("flair", "auto", "bright"), ("flair", "dark", "dark")],
)
def test_an_explicit_error_sign_sets_the_lesion_side(modality, polarity, lesion):
    """--polarity bright on T1-pre (an LGG that is not dark there) draws a bright lesion; the modality's other
    tuned settings stay."""
    from dataclasses import replace

    from napari_inpaint_seg.cli import build_parser, selection
    from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--polarity", polarity, "--out", "x.nii.gz"]))
    assert chosen == replace(DEFAULT_SELECTIONS[modality], lesion=lesion)


def test_the_help_states_each_modalitys_tuned_default_as_the_settings_hold_it():
    """The help's "(default: tuned per modality, X on FLAIR, Y on T1-pre" is written by hand, since building the
    parser must not import the selection (scipy, for instant input errors); so each stated value is checked here
    against DEFAULT_SELECTIONS, and a retuned default whose help was not updated fails."""
    import re

    from napari_inpaint_seg.cli import build_parser
    from napari_inpaint_seg.segmentation import DEFAULT_SELECTIONS
    from napari_inpaint_seg.volume import THRESHOLD_WEIGHT

    commands = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    stated = {}
    for action in commands.choices["segment"]._actions:
        defaults = (action.help or "").partition("default: tuned per modality,")[2]
        values = {name: re.search(rf"(\S+) (?:on|for) {name}\b", defaults) for name in ("FLAIR", "T1-pre")}
        if all(values.values()):
            stated[action.dest] = {name: found.group(1) for name, found in values.items()}
    assert len(stated) >= 8  # every per-modality option of the volume step and the T1-pre extras

    def written(value) -> str:
        return ("on" if value else "off") if isinstance(value, bool) else f"{value:g}"

    for dest, values in stated.items():
        for name, modality in (("FLAIR", "flair"), ("T1-pre", "t1")):
            value = getattr(DEFAULT_SELECTIONS[modality], dest)
            assert values[name] == written(THRESHOLD_WEIGHT if value is None and dest == "end_weight" else value), (dest, name)


@pytest.mark.parametrize(
    "flags,polarity,scale",
    [([], "bright", 50.0), (["--mode", "paper"], "both", 75.0), (["--mode", "paper", "--polarity", "bright", "--scale", "60"], "bright", 60.0),
     (["--polarity", "both"], "both", 50.0)],
)
def test_paper_mode_defaults_to_the_papers_heat_and_scale(flags, polarity, scale):
    from napari_inpaint_seg.cli import build_parser, felzenszwalb_params, heat_polarity

    args = build_parser().parse_args(["segment", "scan.nii.gz", "--modality", "flair", "--out", "labels.nii.gz", *flags])
    assert heat_polarity(args) == polarity and felzenszwalb_params(args).scale == scale


@pytest.mark.parametrize("modality,flags,radius,lesion", [("flair", [], 20, "bright"), ("t1", [], 0, "dark"), ("flair", ["--refine-radius", "0"], 0, "bright"),
                                                        ("t1", ["--refine-radius", "15"], 15, "dark")])
def test_the_answer_is_refined_to_the_modalitys_lesion_edge_by_default_on_flair(modality, flags, radius, lesion):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert (chosen.refine_radius, chosen.lesion) == (radius, lesion)


@pytest.mark.parametrize("flags,radius", [([], 3), (["--volume-radius", "0"], 0), (["--volume-radius", "12"], 12)])
def test_the_volume_is_redrawn_together_by_default(flags, radius):
    from napari_inpaint_seg.cli import build_parser, selection

    for modality in ("flair", "t1"):
        chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
        assert chosen.volume_radius == radius


@pytest.mark.parametrize("modality,flags,level", [("flair", [], True), ("t1", [], False), ("flair", ["--no-level-slices"], False), ("t1", ["--level-slices"], True)])
def test_the_slices_are_levelled_for_the_volume_step_as_tuned_per_modality(modality, flags, level):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert chosen.level_slices is level


def test_levelling_the_slices_is_refused_in_paper_mode():
    from napari_inpaint_seg.cli import build_parser, selection
    from napari_inpaint_seg.errors import InputError

    args = build_parser().parse_args(["segment", "scan.nii.gz", "--modality", "flair", "--out", "labels.nii.gz", "--mode", "paper", "--no-level-slices"])
    with pytest.raises(InputError, match="level slices apply to --mode merge"):
        selection(args)


@pytest.mark.parametrize("modality,flags,share", [("flair", [], 0.5), ("t1", [], 0.1), ("flair", ["--min-component-share", "0"], 0.0),
                                                  ("t1", ["--min-component-share", "1"], 1.0)])
def test_small_3d_pieces_are_dropped_by_default_as_tuned_per_modality(modality, flags, share):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert chosen.min_component_share == share


@pytest.mark.parametrize("modality,flags,share", [("flair", [], 0.25), ("t1", [], 0.5), ("flair", ["--min-grown-share", "0.5"], 0.5)])
def test_growth_into_an_unlabelled_slice_needs_the_share_tuned_per_modality(modality, flags, share):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert chosen.min_grown_share == share


@pytest.mark.parametrize("modality,flags,weight", [("flair", [], 0.45), ("t1", [], None), ("t1", ["--end-weight", "0.5"], 0.5)])
def test_the_lesions_ends_get_the_threshold_tuned_per_modality(modality, flags, weight):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert chosen.end_weight == weight


@pytest.mark.parametrize("modality,flags,share", [("flair", [], 0.75), ("t1", [], 0.0), ("flair", ["--carry-share", "0"], 0.0), ("t1", ["--carry-share", "0.5"], 0.5)])
def test_labels_are_carried_one_slice_further_as_tuned_per_modality(modality, flags, share):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert chosen.carry_share == share


@pytest.mark.parametrize("modality,flags,share", [("flair", [], 0.5), ("t1", [], 0.0), ("flair", ["--follow-share", "0"], 0.0), ("t1", ["--follow-share", "0.25"], 0.25)])
def test_the_lesion_is_followed_into_decided_slices_as_tuned_per_modality(modality, flags, share):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert chosen.follow_share == share


@pytest.mark.parametrize("modality,flags,grows", [("flair", [], True), ("t1", [], False), ("flair", ["--no-grow-into-small-slices"], False),
                                                  ("t1", ["--grow-into-small-slices"], True)])
def test_labels_grow_into_slices_with_too_little_brain_as_tuned_per_modality(modality, flags, grows):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert chosen.grow_into_small_slices is grows


@pytest.mark.parametrize("modality,flags,contrast,length", [("flair", [], 3.5, 4), ("t1", [], 0.0, 4), ("flair", ["--run-contrast", "0"], 0.0, 4),
                                                            ("t1", ["--run-contrast", "1.2", "--run-length", "3"], 1.2, 3)])
def test_runs_of_slices_are_labelled_as_tuned_per_modality(modality, flags, contrast, length):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert (chosen.run_contrast, chosen.run_length) == (contrast, length)


@pytest.mark.parametrize("modality,flags,share,margin", [("flair", [], 0.0, 0), ("t1", [], 0.1, 1), ("t1", ["--dark-share", "0"], 0.0, 1),
                                                        ("t1", ["--dark-margin", "0"], 0.1, 0)])
def test_the_darkest_tissue_is_left_out_of_the_heat_as_tuned_per_modality(modality, flags, share, margin):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert (chosen.dark_share, chosen.dark_margin) == (share, margin)


@pytest.mark.parametrize("modality,flags,sigmas", [("flair", [], (0.0, 0.0)), ("t1", [], (4.0, 1.5)), ("t1", ["--label-sigma", "0", "--label-sigma-slices", "0"], (0.0, 0.0)),
                                                   ("flair", ["--label-sigma", "2"], (2.0, 0.0))])
def test_the_labels_are_smoothed_as_tuned_per_modality(modality, flags, sigmas):
    from napari_inpaint_seg.cli import build_parser, selection

    chosen = selection(build_parser().parse_args(["segment", "scan.nii.gz", "--modality", modality, "--out", "labels.nii.gz", *flags]))
    assert (chosen.label_sigma, chosen.label_sigma_slices) == sigmas


def test_refine_fraction_one_gives_the_reference_heatmap(tmp_path, tiny_model_path, make_brain_slice):
    """--refine-fraction 1 runs every window of the stride, as --reference does; 0 only the first, coarser pass."""
    image, brain, _ = make_brain_slice(size=48)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    heat = {}
    for name, flags in {"reference": ["--reference"], "every": ["--refine-fraction", "1"], "coarse": ["--refine-fraction", "0"]}.items():
        assert segment(tmp_path / "slice.png", "--model", tiny_model_path, "--out", tmp_path / f"{name}.nii.gz", "--heatmap-out", tmp_path / f"heat_{name}.nii.gz", *flags) == 0
        heat[name] = np.asarray(nib.load(str(tmp_path / f"heat_{name}.nii.gz")).dataobj)[brain]
    difference = {name: np.abs(heat[name] - heat["reference"]).max() for name in ("every", "coarse")}
    assert difference["every"] < 0.1 * difference["coarse"]  # the same windows, in bfloat16 where the CPU has it


def test_by_default_a_slice_where_nothing_stands_out_gets_no_label(tmp_path, tiny_model_path):
    rows, cols = np.mgrid[:48, :48]
    disc = (rows - 24) ** 2 + (cols - 24) ** 2 <= 20**2
    Image.fromarray(np.where(disc, 120, 0).astype(np.uint8)).save(tmp_path / "flat.png")  # uniform tissue: no anomaly
    assert segment(tmp_path / "flat.png", "--model", tiny_model_path, "--out", tmp_path / "labels.nii.gz", always_answer=False) == 0
    assert not np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj).any()
    assert segment(tmp_path / "flat.png", "--model", tiny_model_path, "--out", tmp_path / "forced.nii.gz") == 0
    assert np.asarray(nib.load(str(tmp_path / "forced.nii.gz")).dataobj).any()  # --min-contrast 0: the paper's forced answer


def test_a_featureless_slice_gets_no_label(tmp_path, tiny_model_path):
    """A constant slice is 0 after normalisation, so no inpainting is darker than it: counting bright errors only,
    its heat is 0 everywhere, which is no finding, not an infinite contrast."""
    Image.fromarray(np.full((48, 48), 120, np.uint8)).save(tmp_path / "constant.png")
    assert segment(tmp_path / "constant.png", "--model", tiny_model_path, "--polarity", "bright", "--out", tmp_path / "labels.nii.gz",
                   "--heatmap-out", tmp_path / "heat.nii.gz", always_answer=False) == 0
    assert not np.asarray(nib.load(str(tmp_path / "heat.nii.gz")).dataobj).any()
    assert not np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj).any()


def test_a_nan_background_is_background_when_the_scan_is_skull_stripped(tmp_path, tiny_model_path):
    """Some tools store a stripped brain on NaN; mostly NaN is otherwise refused as a broken file."""
    from conftest import toy_volume

    volume = np.pad(toy_volume(), ((16, 16), (16, 16), (0, 0)))
    volume[volume == 0] = np.nan
    assert np.isnan(volume).mean() > 0.5
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "nan_background.nii.gz"))
    assert segment(tmp_path / "nan_background.nii.gz", "--model", tiny_model_path, "--out", tmp_path / "refused.nii.gz") == 2
    assert segment(tmp_path / "nan_background.nii.gz", "--model", tiny_model_path, "--skull-stripped", "--slices", "1", "--out", tmp_path / "labels.nii.gz") == 0
    labels = np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj)
    assert labels[:, :, 1].any() and not labels[np.isnan(volume)].any()


def test_axial_slices_follow_the_affine_whatever_the_file_order(tmp_path, tiny_model_path, capsys):
    """The same scan stored slice-last and slice-first (the affine says which axis is inferior-superior) gets the
    same labels, written back in each file's own order, as the plugin shows and labels it."""
    from conftest import toy_volume

    volume = toy_volume()
    nib.save(nib.Nifti1Image(volume, np.diag([1.0, 1.0, 3.0, 1.0])), str(tmp_path / "axial_last.nii.gz"))
    slice_first = np.array([[0, 0, -1.0, 0], [0, -1.0, 0, 0], [3.0, 0, 0, 0], [0, 0, 0, 1]])  # array axis 0 runs inferior-superior, then P, L
    nib.save(nib.Nifti1Image(np.ascontiguousarray(np.moveaxis(volume, -1, 0)), slice_first), str(tmp_path / "axial_first.nii.gz"))
    for name in ("axial_last", "axial_first"):
        assert segment(tmp_path / f"{name}.nii.gz", "--model", tiny_model_path, "--skull-stripped", "--slices", "1,2", "--out", tmp_path / f"{name}_labels.nii.gz",
                       "--heatmap-out", tmp_path / f"{name}_heat.nii.gz") == 0
    printed = capsys.readouterr()
    assert "axial slices lie along array axis 0" in printed.err
    last, first = (nib.load(str(tmp_path / f"{name}_labels.nii.gz")) for name in ("axial_last", "axial_first"))
    n_voxels = int(np.asarray(last.dataobj).sum())
    assert printed.out.count(f"{n_voxels} tumour voxels ({n_voxels * 0.003:.2f} mL by the scan's affine) in 2 slices") == 2  # 1 x 1 x 3 mm
    assert first.shape == (4, 48, 48)
    np.testing.assert_array_equal(first.affine, slice_first)
    assert np.asarray(last.dataobj)[:, :, [1, 2]].any()
    np.testing.assert_array_equal(np.asarray(first.dataobj), np.moveaxis(np.asarray(last.dataobj), -1, 0))
    heat_last, heat_first = (np.asarray(nib.load(str(tmp_path / f"{name}_heat.nii.gz")).dataobj) for name in ("axial_last", "axial_first"))
    np.testing.assert_allclose(heat_first, np.moveaxis(heat_last, -1, 0), atol=1e-4)


def test_asked_slices_with_too_little_brain_are_reported(tmp_path, tiny_model_path, capsys):
    """A slice with less brain than one window is not localised; the user who asked for it is told what it gets."""
    from conftest import toy_volume

    volume = toy_volume()
    volume[:, :, 0] = 0
    volume[20:25, 20:25, 0] = 0.5  # 25 pixels of brain, fewer than one 8 x 8 window
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "scan.nii.gz"))
    assert segment(tmp_path / "scan.nii.gz", "--model", tiny_model_path, "--skull-stripped", "--slices", "0,1", "--out", tmp_path / "labels.nii.gz") == 0
    err = capsys.readouterr().err
    assert "inpaint-seg: warning: slice(s) 0: less brain than one window (8x8 pixels); not localised, left empty" in err
    assert segment(tmp_path / "scan.nii.gz", "--model", tiny_model_path, "--skull-stripped", "--slices", "0,1", "--grow-into-small-slices",
                   "--out", tmp_path / "grown.nii.gz") == 0
    assert "slice(s) 0: less brain than one window (8x8 pixels); not localised, labelled only where a neighbouring slice's label grows into them" \
        in capsys.readouterr().err
    assert segment(tmp_path / "scan.nii.gz", "--model", tiny_model_path, "--skull-stripped", "--out", tmp_path / "all.nii.gz") == 0
    assert "warning" not in capsys.readouterr().err  # a whole scan always has such slices at its ends: not worth a word


def test_skull_stripped_volume_skips_brain_extraction(tmp_path, tiny_model_path, monkeypatch):
    """--skull-stripped takes the non-zero foreground as the brain: deepbet must not run (it would need a head)."""
    from conftest import toy_volume

    import napari_inpaint_seg.pipeline as pipeline

    monkeypatch.setattr(pipeline, "extract_brain_volume", lambda *a, **k: pytest.fail("deepbet ran on a skull-stripped scan"))
    nib.save(nib.Nifti1Image(toy_volume(), np.eye(4)), str(tmp_path / "stripped.nii.gz"))
    assert segment(tmp_path / "stripped.nii.gz", "--model", tiny_model_path, "--skull-stripped", "--slices", "1", "--out", tmp_path / "labels.nii.gz") == 0
    labels = np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj)
    assert labels[:, :, 1].any() and not labels[toy_volume() == 0].any()


def test_single_slice_volume_is_segmented_when_said_to_be_skull_stripped(tmp_path, tiny_model_path):
    """(H, W, 1) is refused for brain extraction (deepbet needs a volume), but --skull-stripped needs none."""
    from conftest import toy_volume

    one_slice = toy_volume()[:, :, 1:2]
    nib.save(nib.Nifti1Image(one_slice, np.eye(4)), str(tmp_path / "one.nii.gz"))
    assert segment(tmp_path / "one.nii.gz", "--model", tiny_model_path, "--out", tmp_path / "refused.nii.gz") != 0
    assert not (tmp_path / "refused.nii.gz").exists()
    assert segment(tmp_path / "one.nii.gz", "--model", tiny_model_path, "--skull-stripped", "--out", tmp_path / "labels.nii.gz") == 0
    labels = np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj)
    assert labels.shape == one_slice.shape and labels.any() and not labels[one_slice == 0].any()


@pytest.mark.slow
def test_segment_selected_slices_of_a_3d_head(tmp_path, tiny_model_path, make_head_volume):
    """The 3D path with deepbet, on a synthetic int16 head with negative values and an oblique affine, run as
    a user runs the command: only the chosen slices get labels; shape and affine are the scan's."""
    head = (make_head_volume() * 8 - 2000).astype(np.int16)  # every voxel negative
    nib.save(nib.Nifti1Image(head, OBLIQUE), str(tmp_path / "head.nii.gz"))
    command = [sys.executable, "-m", "napari_inpaint_seg.cli", "segment", str(tmp_path / "head.nii.gz"), "--modality", "t1", "--gamma", "8",
               "--model", str(tiny_model_path), "--slices", "10,12-13", "--device", "cpu", "--out", str(tmp_path / "labels.nii.gz"),
               "--heatmap-out", str(tmp_path / "heat.nii.gz"), "--polarity", "both", "--min-contrast", "0", "--min-component-share", "0"]  # fmt: skip  (every chosen slice answers and keeps its answer; one-signed heat is 0 where errors have the other sign)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    scan, labels = nib.load(str(tmp_path / "head.nii.gz")), nib.load(str(tmp_path / "labels.nii.gz"))
    assert labels.shape == scan.shape
    np.testing.assert_array_equal(labels.affine, scan.affine)
    values = np.asarray(labels.dataobj)
    assert set(np.flatnonzero(values.any(axis=(0, 1)))) == {10, 12, 13}
    assert not values[head == head.min()].any()  # nothing labelled in the background
    # The heatmap is non-zero exactly on the brain deepbet found: it must be the synthetic head, although the
    # volume is int16 with negative values and deepbet only ever saw it reoriented through the oblique affine.
    heat = np.asarray(nib.load(str(tmp_path / "heat.nii.gz")).dataobj)
    for index in (10, 12, 13):
        assert dice(heat[:, :, index] > 0, head[:, :, index] > head.min()) > 0.8


@pytest.mark.parametrize(
    "text,expected",
    [("3", [3]), ("3,7,12", [3, 7, 12]), ("10-14", [10, 11, 12, 13, 14]), (" 1, 3-4 ,", [1, 3, 4]), ("0-0", [0])],
)
def test_parse_slices(text, expected):
    assert parse_slices(text) == expected


@pytest.mark.parametrize("text", ["", ",", "a", "3-", "1.5", "5-3", "-2", "1,-2"])
def test_parse_slices_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_slices(text)


def test_bad_slices_flag_is_one_line_and_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", str(tmp_path / "x.nii.gz"), "--modality", "t1", "--out", str(tmp_path / "y.nii.gz"), "--slices", "5-3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("inpaint-seg: error:") and "backwards" in err[0]


def test_console_script_is_installed():
    import shutil

    if shutil.which("inpaint-seg") is None:
        pytest.skip("the inpaint-seg console script is not on PATH (package not pip-installed here)")
    result = subprocess.run(["inpaint-seg", "segment", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--slices" in result.stdout


def test_models_lists_every_shipped_model(capsys):
    from napari_inpaint_seg.models.config import shipped_models

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    shipped = shipped_models()
    if shipped:
        listed = [line for line in lines if not line.startswith("note")]
        assert [line.split(":")[0] for line in listed] == [f"{m} gamma={g}" for m, g in shipped]
        assert any(line.startswith("note, t1: on T1-pre") for line in lines)
    else:
        assert lines == ["no default models are shipped with this installation; pass --model CHECKPOINT.safetensors"]


def test_segmenting_with_a_shipped_t1_model_says_how_little_to_trust_it(tmp_path, tiny_model_path, make_brain_slice, capsys):
    """The shipped T1-pre models' labels miss the lesion on most held-out slices: said on stderr, not for a user's own model."""
    image, _, _ = make_brain_slice(size=96)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    assert main(["segment", str(tmp_path / "slice.png"), "--modality", "t1", "--gamma", "32", "--device", "cpu", "--out", str(tmp_path / "shipped.nii.gz")]) == 0
    assert "inpaint-seg: note: on T1-pre the shipped models' heat often misses" in capsys.readouterr().err
    assert segment(tmp_path / "slice.png", "--model", tiny_model_path, "--out", tmp_path / "own.nii.gz") == 0
    assert "note:" not in capsys.readouterr().err


def test_a_brain_smaller_than_the_shipped_models_saw_is_noted(tmp_path, tiny_model_path, make_brain_slice, capsys):
    """The shipped models learnt brains 126-178 pixels across; a smaller one is said to need resampling, a
    large enough one is not, and a user's own model (whose training brains are unknown) says nothing."""
    for size in (96, 200):  # discs about 71 and 149 pixels across
        image, _, _ = make_brain_slice(size=size)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / f"slice{size}.png")
        assert main(["segment", str(tmp_path / f"slice{size}.png"), "--modality", "flair", "--gamma", "32", "--device", "cpu",
                     "--out", str(tmp_path / f"shipped{size}.nii.gz")]) == 0
        noted = "inpaint-seg: note: the brain is small for the shipped models: its largest axial section is 71 pixels across"
        assert (noted in capsys.readouterr().err) == (size == 96)
    assert segment(tmp_path / "slice96.png", "--model", tiny_model_path, "--out", tmp_path / "own.nii.gz") == 0
    assert "note:" not in capsys.readouterr().err


def test_a_small_brain_is_segmented_on_a_finer_grid_when_asked_and_written_on_the_scans(tmp_path, make_brain_slice, capsys):
    from napari_inpaint_seg.brain_size import TRAINING_MEDIAN_SECTION_PX, largest_section_px

    image, brain, _ = make_brain_slice(size=96)  # a disc about 71 pixels across: the note advises about x2
    factor = TRAINING_MEDIAN_SECTION_PX / largest_section_px(brain)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    assert main(["segment", str(tmp_path / "slice.png"), "--modality", "flair", "--gamma", "32", "--device", "cpu", "--in-plane-zoom", "auto",
                 "--out", str(tmp_path / "labels.nii.gz"), "--heatmap-out", str(tmp_path / "heat.nii.gz")]) == 0
    err = capsys.readouterr().err
    assert f"resampled in-plane by x{factor:.2f} ({round(96 * factor)}x{round(96 * factor)})" in err and "note: the brain is small" not in err
    labels, heat = (np.asarray(nib.load(str(tmp_path / name)).dataobj) for name in ("labels.nii.gz", "heat.nii.gz"))
    assert labels.shape == heat.shape == image.shape
    assert set(np.unique(labels)) <= {0, 1} and not labels[~brain].any() and heat[brain].max() > 0
    assert main(["segment", str(tmp_path / "slice.png"), "--modality", "flair", "--in-plane-zoom", "5", "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "--in-plane-zoom must lie between 0.25 and 4" in capsys.readouterr().err
